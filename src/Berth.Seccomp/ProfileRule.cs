using Berth.Oci;

namespace Berth.Seccomp;

/// <summary>
/// One syscall rule of a Docker seccomp profile with its conditions, and which of them hold for a
/// container, the way dockerd decides it (moby <c>profiles/seccomp/seccomp_linux.go</c>): a rule is
/// dropped when any of its <c>excludes</c> match (the arch is listed, any listed capability is held,
/// the kernel is at least the excluded <c>minKernel</c>) or any of its <c>includes</c> does not (the
/// arch is not listed, a listed capability is missing, the kernel is older than <c>minKernel</c>).
/// </summary>
internal sealed record ProfileRule(string[] Names, string Action = "SCMP_ACT_ALLOW")
{
    public uint? ErrnoRet { get; init; }
    public (uint Index, ulong Value, ulong? ValueTwo, string Op)[] Args { get; init; } = [];
    public string[] IncludeCaps { get; init; } = [];
    public string[] IncludeArches { get; init; } = [];
    public Version? IncludeMinKernel { get; init; }
    public string[] ExcludeCaps { get; init; } = [];
    public string[] ExcludeArches { get; init; } = [];
    public Version? ExcludeMinKernel { get; init; }

    /// <param name="goArch">The architecture as Go spells it (<see cref="GoArch"/>), as profiles name it in includes/excludes.</param>
    public bool AppliesTo(IReadOnlySet<string> capabilities, string goArch, Version kernel)
    {
        if (ExcludeArches.Contains(goArch) || ExcludeCaps.Any(capabilities.Contains)) return false;
        if (ExcludeMinKernel is { } excluded && kernel >= excluded) return false;
        if (IncludeArches.Length > 0 && !IncludeArches.Contains(goArch)) return false;
        if (!IncludeCaps.All(capabilities.Contains)) return false;
        return IncludeMinKernel is not { } min || kernel >= min;
    }

    public LinuxSyscall ToSyscall() => new()
    {
        Names = [.. Names],
        Action = Action,
        ErrnoRet = ErrnoRet,
        Args = Args.Length == 0 ? null : [.. Args.Select(a => new LinuxSeccompArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo, Op = a.Op })],
    };

    /// <summary>The syscalls of <paramref name="rules"/> that apply to a container holding <paramref name="capabilities"/> (its bounding set).</summary>
    public static List<LinuxSyscall> Select(IEnumerable<ProfileRule> rules, IReadOnlyCollection<string> capabilities, SeccompArch arch, Version kernel)
    {
        var caps = capabilities as IReadOnlySet<string> ?? new HashSet<string>(capabilities, StringComparer.Ordinal);
        string goArch = GoArch(arch);
        return [.. rules.Where(r => r.AppliesTo(caps, goArch, kernel)).Select(r => r.ToSyscall())];
    }

    public static string GoArch(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "amd64", SeccompArch.X86 => "386", SeccompArch.Aarch64 => "arm64", SeccompArch.Arm => "arm",
        SeccompArch.X32 => "x32", _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>libseccomp's name of <paramref name="arch"/> (SCMP_ARCH_…), as profiles' archMap names it.</summary>
    public static string SeccompArchName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64", SeccompArch.X86 => "SCMP_ARCH_X86", SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        SeccompArch.Arm => "SCMP_ARCH_ARM", SeccompArch.X32 => "SCMP_ARCH_X32", _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>This host's kernel as major.minor (what <c>minKernel</c> compares with); 0.0 when unreadable.</summary>
    public static readonly Lazy<Version> HostKernel = new(() =>
    {
        try
        {
            var release = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
            var parts = release.Split('.', 3);
            return new Version(int.Parse(parts[0]), int.Parse(new string([.. parts[1].TakeWhile(char.IsAsciiDigit)])));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return new Version(0, 0);
        }
    });
}
