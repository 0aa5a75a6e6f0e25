namespace Berth.Seccomp;

/// <summary>The SECCOMP_RET_* values a filter returns (linux/seccomp.h), and the OCI action names mapped to them.</summary>
public static class SeccompReturn
{
    public const uint KillProcess = 0x80000000, KillThread = 0x00000000, Trap = 0x00030000, Errno = 0x00050000,
        UserNotif = 0x7fc00000, Trace = 0x7ff00000, Log = 0x7ffc0000, Allow = 0x7fff0000;
    public const uint ActionMask = 0xffff0000, DataMask = 0x0000ffff;

    public const uint EPERM = 1, ENOSYS = 38;

    /// <summary>
    /// The filter return value for an OCI action. As runc: SCMP_ACT_KILL is KILL_THREAD (libseccomp's SCMP_ACT_KILL),
    /// ERRNO and TRACE carry errnoRet, EPERM when it is not given.
    /// </summary>
    public static uint FromAction(string action, uint? errnoRet) => action switch
    {
        "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD" => KillThread,
        "SCMP_ACT_KILL_PROCESS" => KillProcess,
        "SCMP_ACT_TRAP" => Trap,
        "SCMP_ACT_ERRNO" => Errno | Data(errnoRet ?? EPERM),
        "SCMP_ACT_TRACE" => Trace | Data(errnoRet ?? EPERM),
        "SCMP_ACT_ALLOW" => Allow,
        "SCMP_ACT_LOG" => Log,
        "SCMP_ACT_NOTIFY" => UserNotif,
        _ => throw new SeccompException($"unknown action \"{action}\""),
    };

    private static uint Data(uint value) =>
        value <= DataMask ? value : throw new SeccompException($"errnoRet {value} does not fit in 16 bits");

    /// <summary>A readable form of a return value, e.g. <c>ERRNO(1)</c>.</summary>
    public static string Describe(uint ret) => (ret & ActionMask) switch
    {
        KillProcess => "KILL_PROCESS",
        KillThread => "KILL_THREAD",
        Trap => "TRAP",
        Errno => $"ERRNO({ret & DataMask})",
        UserNotif => "NOTIFY",
        Trace => $"TRACE({ret & DataMask})",
        Log => "LOG",
        Allow => "ALLOW",
        _ => $"0x{ret:x8}",
    };
}

/// <summary>A seccomp section that cannot be compiled; the message names the field.</summary>
public sealed class SeccompException(string message) : Exception(message);
