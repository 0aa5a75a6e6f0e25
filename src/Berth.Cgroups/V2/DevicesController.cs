using Berth.Cgroups.Interop;

namespace Berth.Cgroups.V2;

/// <summary>
/// cgroup v2 devices: the rules compiled by <see cref="DeviceFilter"/>, loaded with
/// bpf(BPF_PROG_LOAD) and attached to the group with BPF_F_ALLOW_MULTI. On an update the new
/// program is attached before the old ones are detached (runc does the same): with several
/// programs attached all must allow, so for a moment the group has the intersection of the old
/// and new rules, never more than either.
/// </summary>
internal sealed class DevicesController : ICgroupController
{
    public string Name => "devices";

    public bool NeedsApply(CgroupResources resources) => resources.Devices is not null;

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Devices is not { } rules)
        {
            return;
        }
        var code = DeviceFilter.Encode(DeviceFilter.Compile(rules));
        using var group = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY);
        var old = Bpf.QueryDevicePrograms(group, path);
        using (var program = Bpf.LoadDeviceProgram(code))
        {
            Bpf.Attach(group, program, path);
        }
        foreach (var id in old)
        {
            using var previous = Bpf.ProgramById(id);
            Bpf.Detach(group, previous, path);
        }
    }
}
