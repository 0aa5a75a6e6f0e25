namespace Berth.Cgroups;

/// <summary>The few categories callers map to API errors (containerd errdefs style).</summary>
public enum CgroupErrorKind
{
    /// <summary>A kernel file operation failed (see <see cref="CgroupException.Errno"/>).</summary>
    Io,
    /// <summary>A requested value is invalid.</summary>
    InvalidArgument,
    /// <summary>A requested controller or feature is not available on this host.</summary>
    Unavailable,
}

/// <summary>
/// A cgroup operation failed. The message names the operation, the file and the reason, e.g.
/// <c>write 104857600 to /sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes: Device or resource busy</c>.
/// </summary>
public sealed class CgroupException : Exception
{
    public CgroupException(string message, CgroupErrorKind kind = CgroupErrorKind.Io, int errno = 0, string? path = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Errno = errno;
        Path = path;
    }

    public CgroupErrorKind Kind { get; }

    /// <summary>The errno of the failed system call, 0 when there was none.</summary>
    public int Errno { get; }

    /// <summary>The file or directory the failed operation touched, if any.</summary>
    public string? Path { get; }
}
