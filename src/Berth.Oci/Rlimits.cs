namespace Berth.Oci;

/// <summary>RLIMIT_* names and their setrlimit resource numbers (Linux, x86_64/arm64 numbering).</summary>
public static class Rlimits
{
    /// <summary>Indexed by resource number.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
        "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ];

    /// <summary>RLIM_INFINITY.</summary>
    public const ulong Infinity = ulong.MaxValue;

    public static bool TryParse(string name, out int resource)
    {
        resource = Names.IndexOf(name);
        return resource >= 0;
    }

    public static int Parse(string name) =>
        TryParse(name, out var resource) ? resource : throw new ArgumentException($"unknown rlimit type \"{name}\"", nameof(name));

    private static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
            if (string.Equals(list[i], value, StringComparison.Ordinal)) return i;
        return -1;
    }
}
