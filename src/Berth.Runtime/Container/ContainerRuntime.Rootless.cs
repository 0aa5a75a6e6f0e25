using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>
    /// runc's rootless cgroup policy (--rootless, auto: euid != 0): a cgroup that cannot be
    /// created for lack of permission (nothing delegated to the user) is skipped with a warning
    /// when no limit is requested, and is a clear error naming the limits otherwise.
    /// </summary>
    public bool Rootless { get; init; } = Berth.Runtime.Container.Rootless.IsUnprivileged;

    /// <summary>The container's cgroup, or null when rootless and nothing is delegated to the user.</summary>
    ICgroupManager? CreateContainerCgroup(Spec spec, string id)
    {
        var cgroup = CgroupManager.Create(Layout, CgroupsPath(spec, id));
        if (!Rootless)
        {
            CreateCgroup(cgroup);
            return cgroup;
        }
        try
        {
            CreateCgroup(cgroup);
            return cgroup;
        }
        catch (CgroupException e) when (e.Errno is Sys.EACCES or Sys.EPERM or 30 /* EROFS */)
        {
            try { cgroup.Destroy(); } catch (CgroupException) { }
            var limits = RequestedLimits(spec.Linux?.Resources);
            var uid = Berth.Runtime.Container.Rootless.EffectiveUid;
            if (limits.Count > 0)
                throw new RuntimeException($"rootless: linux.resources sets {string.Join(", ", limits)}, but no cgroup is delegated to uid {uid} " +
                    $"({e.Path ?? "cgroupfs"}: permission denied; {Layout}): limits need a cgroup v2 subtree owned by the user (systemd's Delegate=yes, " +
                    "with linux.cgroupsPath inside it); remove the limits to run without a cgroup", e.Errno, e);
            Warn($"rootless: no cgroup is delegated to uid {uid} ({e.Path ?? "cgroupfs"}: permission denied): the container runs in the caller's cgroups, " +
                "without limits; pause, resume and update need a delegated cgroup");
            return null;
        }
    }

    /// <summary>The linux.resources fields that need a cgroup. Device rules are left out, as runc
    /// does for rootless containers: a user namespace cannot mknod anyway.</summary>
    static List<string> RequestedLimits(LinuxResources? r)
    {
        var limits = new List<string>();
        if (r is null) return limits;
        var mapped = CgroupResourcesMapper.Map(r);
        if (mapped.Memory is not null) limits.Add("a memory limit (linux.resources.memory)");
        if (mapped.Cpu is not null) limits.Add("a cpu limit (linux.resources.cpu)");
        if (mapped.Pids is not null) limits.Add("a pids limit (linux.resources.pids)");
        if (mapped.BlockIo is not null) limits.Add("a block I/O limit (linux.resources.blockIO)");
        if (mapped.HugepageLimits is not null) limits.Add("hugepage limits (linux.resources.hugepageLimits)");
        if (mapped.Network is not null) limits.Add("network classes (linux.resources.network)");
        if (mapped.Rdma is not null) limits.Add("rdma limits (linux.resources.rdma)");
        if (mapped.Unified is not null) limits.Add("cgroup v2 files (linux.resources.unified)");
        return limits;
    }

    /// <summary>Device rules are not applied to a rootless container's group (runc ignores their errors there).</summary>
    CgroupResources ResourcesToApply(CgroupResources resources) =>
        !Rootless || resources.Devices is null ? resources : new CgroupResources
        {
            Memory = resources.Memory, Cpu = resources.Cpu, Pids = resources.Pids, BlockIo = resources.BlockIo,
            HugepageLimits = resources.HugepageLimits, Network = resources.Network, Rdma = resources.Rdma, Unified = resources.Unified,
        };

    /// <summary>Without a group of its own the container stays in the caller's groups: /sys/fs/cgroup shows those.</summary>
    CgroupMountPlan OwnCgroupMountPlan()
    {
        var layout = Layout;
        string InHierarchy(string mountPoint, string root, string own)
        {
            if (root != "/" && (own == root || own.StartsWith(root + "/", StringComparison.Ordinal))) own = own[root.Length..];
            return mountPoint.TrimEnd('/') + "/" + own.Trim('/');
        }
        var unified = layout.UnifiedMountPoint is { } u ? InHierarchy(u, layout.UnifiedRoot, layout.GetOwnCgroup(CgroupManager.UnifiedKey)) : null;
        var v1 = layout.V1Hierarchies
            .Select(h => (Path.GetFileName(h.MountPoint), string.Join(',', h.Controllers), InHierarchy(h.MountPoint, h.Root, layout.GetOwnCgroup(h.Controllers[0]))))
            .ToList();
        return new CgroupMountPlan(unified, v1);
    }
}
