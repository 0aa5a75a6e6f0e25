namespace Berth.Runtime.Container;

/// <summary>What /proc/&lt;pid&gt;/stat says about a process.</summary>
public readonly record struct ProcessInfo(char State, ulong StartTime)
{
    public bool IsDead => State is 'Z' or 'X' or 'x';

    public static ProcessInfo? Read(int pid)
    {
        if (Native.LibC.ReadSmallFile($"/proc/{pid}/stat") is not { } stat) return null;
        // The command name is in parentheses and may itself contain ") ": parse from the last one.
        var end = stat.LastIndexOf(')');
        if (end < 0) return null;
        var fields = stat[(end + 2)..].Split(' ');
        // fields[0] is field 3 (state); starttime is field 22.
        return new ProcessInfo(fields[0][0], ulong.Parse(fields[19]));
    }

    /// <summary>The pid as the process's own pid namespace sees it (the last NSpid field), or <paramref name="hostPid"/>.</summary>
    public static int PidInItsNamespace(int hostPid)
    {
        var status = Native.LibC.ReadSmallFile($"/proc/{hostPid}/status");
        var line = status?.Split('\n').FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
        var last = line?.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        return int.TryParse(last, out var pid) ? pid : hostPid;
    }

    /// <summary>Whether <paramref name="pid"/> is still the process that started at <paramref name="startTime"/> and has not exited.</summary>
    public static bool IsAlive(int pid, ulong startTime) =>
        pid > 0 && Read(pid) is { } info && info.StartTime == startTime && !info.IsDead;
}
