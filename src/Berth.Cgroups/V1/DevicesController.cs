namespace Berth.Cgroups.V1;

/// <summary>
/// cgroup v1 devices: "a" is written to devices.deny first, then each rule in order to
/// devices.allow or devices.deny (runc before its emulator did the same). While this runs on a
/// live group its processes are briefly denied every device; an <c>update</c> that rewrites
/// device rules has that window, a new container has no process in the group yet.
/// </summary>
internal sealed class DevicesController : ICgroupController
{
    internal const string Allow = "devices.allow";
    internal const string Deny = "devices.deny";
    internal const string List = "devices.list";

    public string Name => "devices";

    public bool NeedsApply(CgroupResources resources) => resources.Devices is not null;

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Devices is not { } rules)
        {
            return;
        }
        // In order; each run of rules for the same file goes through one open of it.
        var file = Deny;
        var run = new List<string> { "a" };
        foreach (var rule in rules)
        {
            var target = rule.Allow ? Allow : Deny;
            if (target != file)
            {
                CgroupFs.WriteEach(path, file, run);
                (file, run) = (target, []);
            }
            run.Add(rule.ToV1Rule());
        }
        CgroupFs.WriteEach(path, file, run);
    }
}
