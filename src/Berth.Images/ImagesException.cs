namespace Berth.Images;

/// <summary>
/// The small set of failure categories the API layer maps to status codes
/// (containerd's errdefs: NotFound → 404, InvalidArgument → 400, Conflict → 409).
/// </summary>
public enum ImagesErrorKind
{
    /// <summary>The input (a digest, a layer entry, a key) is malformed or hostile.</summary>
    InvalidArgument,
    /// <summary>The blob, snapshot or path does not exist.</summary>
    NotFound,
    /// <summary>The object already exists, or is in use by another object.</summary>
    Conflict,
    /// <summary>Content did not match what it claimed to be (digest or size).</summary>
    DataLoss,
    /// <summary>An operating-system call failed for another reason.</summary>
    Internal,
    /// <summary>A registry refused the credentials, or there were none (HTTP 401/403).</summary>
    Unauthorized,
    /// <summary>A registry could not be reached, or kept failing or rate-limiting after retries (5xx, 429).</summary>
    Unavailable,
}

/// <summary>An error of the image store, the layer applier/differ or the snapshotter.</summary>
public class ImagesException : Exception
{
    public ImagesException(ImagesErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    public ImagesErrorKind Kind { get; }
}

/// <summary>A failed system call: carries the errno, the operation and the path it touched.</summary>
public sealed class NativeCallException : ImagesException
{
    public NativeCallException(int errno, string operation, string path, string? context = null)
        : base(KindOf(errno), Format(errno, operation, path, context))
    {
        Errno = errno;
        Operation = operation;
        Path = path;
    }

    public int Errno { get; }
    public string Operation { get; }
    public string Path { get; }

    private static string Format(int errno, string operation, string path, string? context)
    {
        string text = $"{operation} `{path}`: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return context is null ? text : $"{context}: {text}";
    }

    private static ImagesErrorKind KindOf(int errno) => errno switch
    {
        Interop.Errno.ENOENT => ImagesErrorKind.NotFound,
        Interop.Errno.EEXIST or Interop.Errno.EBUSY or Interop.Errno.ENOTEMPTY => ImagesErrorKind.Conflict,
        Interop.Errno.EINVAL or Interop.Errno.EXDEV or Interop.Errno.ELOOP or Interop.Errno.ENOTDIR => ImagesErrorKind.InvalidArgument,
        _ => ImagesErrorKind.Internal,
    };
}
