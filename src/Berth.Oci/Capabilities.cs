namespace Berth.Oci;

/// <summary>Linux capability names as the spec spells them (CAP_*), and their numbers.</summary>
public static class Capabilities
{
    /// <summary>Indexed by capability number.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>The highest capability number known (CAP_CHECKPOINT_RESTORE).</summary>
    public const int Last = 40;

    private static readonly Dictionary<string, int> s_byName =
        Names.Select((name, number) => (name, number)).ToDictionary(p => p.name, p => p.number, StringComparer.Ordinal);

    /// <summary>Exact, case-sensitive match, as runc does.</summary>
    public static bool TryParse(string name, out int number) => s_byName.TryGetValue(name, out number);

    public static int Parse(string name) =>
        TryParse(name, out var number) ? number : throw new ArgumentException($"unknown capability \"{name}\"", nameof(name));

    public static string NameOf(int number) =>
        number is >= 0 and <= Last ? Names[number] : throw new ArgumentOutOfRangeException(nameof(number), number, "unknown capability number");

    /// <summary>The bit mask (bit n = capability n) for the capset/prctl calls; throws on an unknown name.</summary>
    public static ulong ToMask(IEnumerable<string>? names)
    {
        ulong mask = 0;
        foreach (var name in names ?? [])
            mask |= 1UL << Parse(name);
        return mask;
    }

    /// <summary>Every known capability.</summary>
    public static ulong AllMask => (1UL << (Last + 1)) - 1;

    /// <summary>This process's bounding set (CapBnd of /proc/self/status): what no process it starts can exceed; null when unreadable.</summary>
    public static ulong? OwnBoundingSet()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
            return line is not null && ulong.TryParse(line["CapBnd:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber,
                System.Globalization.CultureInfo.InvariantCulture, out var mask) ? mask : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The names of the capabilities in <paramref name="mask"/>, in number order.</summary>
    public static List<string> NamesOf(ulong mask) => Names.Where((_, number) => (mask & (1UL << number)) != 0).ToList();
}
