using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// /proc and /sys exposure: the maskedPaths and readonlyPaths Docker passes (moby's
/// oci/defaults.go) and runc's spec template are really applied inside, and a container
/// without CAP_SYS_ADMIN cannot unmount or remount them. Nothing here writes to a host-global
/// file (never /proc/sysrq-trigger): read-only is checked through the mount flags.
/// </summary>
public sealed class ProcSysExposureTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    // moby/moby oci/defaults.go (DefaultLinuxSpec), Docker 25+.
    static readonly string[] DockerMasked =
    [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    static readonly string[] DockerReadonly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    const string Probe = """
        for p in $PATHS; do
          if [ -e $p ]; then
            m=$(awk -v p="$p" '$5 == p {print $6 "|" $9}' /proc/self/mountinfo | tail -1)
            if [ -d $p ]; then n=$(ls -A $p | wc -l); else n=$(head -c 4096 $p 2>/dev/null | wc -c); fi
            echo "path $p mount=${m:-none} entries=$n"
          else
            echo "path $p absent"
          fi
        done
        """;

    Dictionary<string, string> Inspect(Bundle bundle, IEnumerable<string> paths)
    {
        bundle.Script(Probe);
        bundle.Process.Env = [.. bundle.Process.Env ?? [], $"PATHS={string.Join(' ', paths)}"];
        var output = _h.Run(bundle).ShouldSucceed().Stdout;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("path ", StringComparison.Ordinal))
            .ToDictionary(l => l.Split(' ')[1], l => l);
    }

    static void AssertMasked(Dictionary<string, string> seen, IEnumerable<string> masked)
    {
        foreach (var path in masked)
        {
            var line = seen[path];
            if (line.EndsWith("absent", StringComparison.Ordinal)) continue; // nothing to hide on this kernel
            // A file: /dev/null bound over it (empty); a directory: an empty read-only tmpfs.
            Assert.True(line.Contains("entries=0") && !line.Contains("mount=none"), $"{path} is not masked: {line}");
        }
    }

    static void AssertReadonly(Dictionary<string, string> seen, IEnumerable<string> readonlyPaths)
    {
        foreach (var path in readonlyPaths)
        {
            var line = seen[path];
            if (line.EndsWith("absent", StringComparison.Ordinal)) continue;
            var options = line.Split("mount=")[1].Split(' ')[0].Split('|')[0].Split(',');
            Assert.True(options.Contains("ro"), $"{path} is not a read-only mount: {line}");
        }
    }

    [IntegrationFact]
    public void The_runc_template_masks_and_read_only_paths_are_applied()
    {
        var bundle = _h.NewBundle();
        var masked = bundle.Linux.MaskedPaths!.ToList();
        var readOnly = bundle.Linux.ReadonlyPaths!.ToList();
        var seen = Inspect(bundle, masked.Concat(readOnly));
        AssertMasked(seen, masked);
        AssertReadonly(seen, readOnly);
    }

    [IntegrationFact]
    public void Dockers_masked_and_readonly_paths_are_applied()
    {
        var bundle = _h.NewBundle();
        bundle.Linux.MaskedPaths = [.. DockerMasked];
        bundle.Linux.ReadonlyPaths = [.. DockerReadonly];
        var seen = Inspect(bundle, DockerMasked.Concat(DockerReadonly));
        AssertMasked(seen, DockerMasked);
        AssertReadonly(seen, DockerReadonly);
    }

    /// <summary>Without CAP_SYS_ADMIN (Docker's default set, or every capability but it), none of them can be unmounted or remounted read-write.</summary>
    [IntegrationTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Masks_cannot_be_removed_without_cap_sys_admin(bool allCapsButSysAdmin)
    {
        var bundle = _h.NewBundle().Script("""
            for p in /proc/kcore /proc/keys /proc/timer_list /proc/acpi /sys/firmware /proc/sys /proc/sysrq-trigger /proc/bus /proc; do
              umount $p 2>/dev/null && echo "UNMOUNTED $p"
              umount -l $p 2>/dev/null && echo "DETACHED $p"
            done
            mount -o remount,rw /proc/sys 2>/dev/null && echo "REMOUNTED /proc/sys"
            mount -o remount,rw,bind /proc/sys 2>/dev/null && echo "REMOUNTED-BIND /proc/sys"
            mount -o remount,rw /sys 2>/dev/null && echo "REMOUNTED /sys"
            mkdir -p /tmp/p && mount -t proc proc /tmp/p 2>/dev/null && echo "MOUNTED a fresh proc"
            (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo "WROTE /proc/sys"
            echo "kcore $(head -c 16 /proc/kcore | wc -c)"
            """).Writable();
        if (allCapsButSysAdmin)
        {
            var caps = HostCapabilities.All.Where(c => c != "CAP_SYS_ADMIN").ToList();
            bundle.Process.Capabilities = new LinuxCapabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] };
        }
        var output = _h.Run(bundle).ShouldSucceed().Stdout;
        foreach (var bad in new[] { "UNMOUNTED", "DETACHED", "REMOUNTED", "MOUNTED a fresh", "WROTE" })
            Assert.False(output.Contains(bad, StringComparison.Ordinal), $"a container without CAP_SYS_ADMIN lifted a mask ({bad}):\n{output}");
        if (File.Exists("/proc/kcore")) Assert.Contains("kcore 0", output);
    }
}
