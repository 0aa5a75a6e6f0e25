using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>Sends a signal to the init, or with <paramref name="all"/> to every process of the container.</summary>
    public void Kill(string id, int signal, bool all = false)
    {
        var record = Store.Load(id);
        var status = StatusOf(record);
        if (status == ContainerStatus.Stopped && !all)
            throw new InvalidStateException($"container \"{id}\" is not running");
        if (all)
        {
            // Without a cgroup (rootless, nothing delegated) the init: its pid namespace dies with it.
            foreach (var pid in LoadCgroup(record)?.GetPids() ?? [record.InitPid])
                LibC.kill(pid, signal);
            return;
        }
        if (LibC.kill(record.InitPid, signal) != 0)
            throw LibC.Error($"kill {record.InitPid} with signal {signal}", LibC.Errno);
    }

    /// <summary>The host pids of the container's processes (from its cgroup).</summary>
    public IReadOnlyList<int> GetPids(string id)
    {
        var record = Store.Load(id);
        if (StatusOf(record) == ContainerStatus.Stopped) return [];
        return LoadCgroup(record)?.GetPids() ?? [record.InitPid];
    }

    public static int ParseSignal(string text)
    {
        if (int.TryParse(text, out var number) && number is > 0 and < 65) return number;
        var name = text.ToUpperInvariant();
        if (name.StartsWith("SIG", StringComparison.Ordinal)) name = name[3..];
        return name switch
        {
            "HUP" => 1, "INT" => 2, "QUIT" => 3, "ILL" => 4, "TRAP" => 5, "ABRT" => 6, "IOT" => 6, "BUS" => 7,
            "FPE" => 8, "KILL" => 9, "USR1" => 10, "SEGV" => 11, "USR2" => 12, "PIPE" => 13, "ALRM" => 14,
            "TERM" => 15, "STKFLT" => 16, "CHLD" => 17, "CONT" => 18, "STOP" => 19, "TSTP" => 20, "TTIN" => 21,
            "TTOU" => 22, "URG" => 23, "XCPU" => 24, "XFSZ" => 25, "VTALRM" => 26, "PROF" => 27, "WINCH" => 28,
            "IO" => 29, "POLL" => 29, "PWR" => 30, "SYS" => 31,
            _ when name.StartsWith("RTMIN+", StringComparison.Ordinal) && int.TryParse(name[6..], out var n) && n is >= 0 and <= 30 => 34 + n,
            _ when name.StartsWith("RTMAX-", StringComparison.Ordinal) && int.TryParse(name[6..], out var n) && n is >= 0 and <= 30 => 64 - n,
            _ => throw new RuntimeException($"unknown signal \"{text}\""),
        };
    }
}
