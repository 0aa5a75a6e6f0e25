using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Support;

/// <summary>
/// An OCI bundle whose rootfs is Debian's busybox-static, as scripts/make-busybox-bundle.sh
/// makes it: config.json is runc's `spec` template with terminal off and the given args.
/// Tests change <see cref="Spec"/> and call <see cref="Save"/>.
/// </summary>
public sealed class Bundle
{
    static readonly Lazy<string[]> Applets = new(() =>
    {
        var (code, output) = TestEnvironment.Sh($"{TestEnvironment.Busybox} --list");
        if (code != 0) throw new InvalidOperationException($"busybox --list failed: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    });

    public string Dir { get; }
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public string ConfigPath => Path.Combine(Dir, "config.json");
    public Spec Spec { get; }

    Bundle(string dir, Spec spec)
    {
        Dir = dir;
        Spec = spec;
    }

    public static Bundle Create(string dir, params string[] args)
    {
        var rootfs = Path.Combine(dir, "rootfs");
        foreach (var sub in new[] { "bin", "dev", "proc", "sys", "tmp", "etc", "root" })
            Directory.CreateDirectory(Path.Combine(rootfs, sub));
        File.Copy(TestEnvironment.Busybox!, Path.Combine(rootfs, "bin/busybox"));
        foreach (var applet in Applets.Value)
            if (applet != "busybox") File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        File.WriteAllText(Path.Combine(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        File.WriteAllText(Path.Combine(rootfs, "etc/group"), "root:x:0:\n");

        var spec = SpecTemplate.Default();
        spec.Process!.Terminal = false;
        spec.Process.Args = args.Length == 0 ? ["sh"] : [.. args];
        var bundle = new Bundle(dir, spec);
        bundle.Save();
        return bundle;
    }

    /// <summary>A shell script as the container's command: sh -c SCRIPT.</summary>
    public Bundle Script(string script)
    {
        Spec.Process!.Args = ["sh", "-c", script];
        return this;
    }

    public Bundle Writable()
    {
        Spec.Root!.Readonly = false;
        return this;
    }

    public Bundle Save()
    {
        File.WriteAllText(ConfigPath, JsonSerializer.Serialize(Spec, SpecJsonContext.Default.Spec));
        return this;
    }

    public Linux Linux => Spec.Linux ??= new Linux();
    public Berth.Oci.Process Process => Spec.Process!;
}
