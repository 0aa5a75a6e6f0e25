namespace Berth.Seccomp;

/// <summary>
/// An architecture a filter can hold a syscall table for. Named for seccomp, not
/// <see cref="System.Runtime.InteropServices.Architecture"/>, which it would otherwise shadow.
/// </summary>
public enum SeccompArch
{
    X86_64,
    /// <summary>i386.</summary>
    X86,
    /// <summary>The x32 ABI: x86_64's AUDIT_ARCH, syscall numbers with bit 30 set.</summary>
    X32,
    Aarch64,
    /// <summary>32-bit ARM EABI.</summary>
    Arm,
}

public static class SeccompArchitectures
{
    private const uint Audit64Bit = 0x80000000, AuditLittleEndian = 0x40000000;

    /// <summary>The AUDIT_ARCH_* value the kernel puts in <c>seccomp_data.arch</c>.</summary>
    public static uint AuditArch(this SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 or SeccompArch.X32 => 62 | Audit64Bit | AuditLittleEndian,  // EM_X86_64
        SeccompArch.X86 => 3 | AuditLittleEndian,                                      // EM_386
        SeccompArch.Aarch64 => 183 | Audit64Bit | AuditLittleEndian,                   // EM_AARCH64
        SeccompArch.Arm => 40 | AuditLittleEndian,                                     // EM_ARM
        _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>Whether syscall arguments are compared as 64-bit values (libseccomp treats x32 as 32-bit).</summary>
    public static bool Is64Bit(this SeccompArch arch) => arch is SeccompArch.X86_64 or SeccompArch.Aarch64;

    /// <summary>libseccomp's name (<c>SCMP_ARCH_X86_64</c>…) for the architecture.</summary>
    public static string ScmpName(this SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X86 => "SCMP_ARCH_X86",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.Aarch64 => "SCMP_ARCH_AARCH64",
        SeccompArch.Arm => "SCMP_ARCH_ARM",
        _ => throw new ArgumentOutOfRangeException(nameof(arch)),
    };

    /// <summary>Maps an OCI/libseccomp architecture name; false for names Berth has no syscall table for.</summary>
    public static bool TryParse(string name, out SeccompArch arch)
    {
        (var ok, arch) = name switch
        {
            "SCMP_ARCH_X86_64" => (true, SeccompArch.X86_64),
            "SCMP_ARCH_X86" => (true, SeccompArch.X86),
            "SCMP_ARCH_X32" => (true, SeccompArch.X32),
            "SCMP_ARCH_AARCH64" => (true, SeccompArch.Aarch64),
            "SCMP_ARCH_ARM" => (true, SeccompArch.Arm),
            _ => (false, default),
        };
        return ok;
    }

    /// <summary>The architecture of this process, i.e. of the containers it starts.</summary>
    public static SeccompArch Native => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => SeccompArch.X86_64,
        System.Runtime.InteropServices.Architecture.X86 => SeccompArch.X86,
        System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
        System.Runtime.InteropServices.Architecture.Arm => SeccompArch.Arm,
        var other => throw new PlatformNotSupportedException($"seccomp: no syscall table for {other}"),
    };
}
