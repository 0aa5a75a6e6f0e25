using Berth.Oci;

namespace Berth.Runtime.Tests.Init;

/// <summary>Specs for compiler tests: runc's template without the cgroup mount (which needs a host plan).</summary>
static class UnitSpecs
{
    public static Spec Default(params string[] namespaces)
    {
        var spec = SpecTemplate.Default();
        spec.Process!.Terminal = false;
        spec.Mounts!.RemoveAll(m => m.Type == "cgroup");
        if (namespaces.Length > 0)
            spec.Linux!.Namespaces = namespaces.Select(n => n.Split('=', 2) is [var t, var p] ? new LinuxNamespace { Type = t, Path = p } : new LinuxNamespace { Type = n }).ToList();
        return spec;
    }

    /// <summary>No mounts, masked or readonly paths: only what a test adds.</summary>
    public static Spec Bare(params string[] namespaces)
    {
        var spec = Default(namespaces);
        spec.Mounts = [];
        spec.Linux!.MaskedPaths = [];
        spec.Linux.ReadonlyPaths = [];
        return spec;
    }
}
