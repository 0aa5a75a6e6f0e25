namespace Berth.Network;

/// <summary>The few categories the API layer maps to status codes (containerd errdefs style).</summary>
public enum NetworkErrorKind
{
    /// <summary>Malformed input: a bad subnet, gateway, port spec or name (HTTP 400).</summary>
    InvalidArgument,
    /// <summary>No such network or endpoint (HTTP 404).</summary>
    NotFound,
    /// <summary>Already exists or in use: overlapping subnet, published port, address, name (HTTP 409).</summary>
    Conflict,
    /// <summary>A pool has no free address, or no default subnet is free (HTTP 503 in Docker: "no available IPv4 addresses").</summary>
    Exhausted,
    /// <summary>A tool or kernel feature is missing (nft, a netlink family) (HTTP 500).</summary>
    Unavailable,
    /// <summary>A kernel call or a helper command failed for another reason (HTTP 500).</summary>
    Internal,
}

/// <summary>An error of Berth's network layer; the message names the operation and the object.</summary>
public class NetworkException : Exception
{
    public NetworkException(NetworkErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    public NetworkErrorKind Kind { get; }
}

/// <summary>
/// A netlink request answered by NLMSG_ERROR, or a failed socket call: carries the operation
/// (e.g. <c>RTM_NEWLINK create veth vb1a2b3c4d5e</c>), the errno and the kernel's extended-ack text if any.
/// </summary>
public sealed class NetlinkException : NetworkException
{
    public NetlinkException(string operation, int errno, string? kernelMessage = null)
        : base(KindOf(errno), Format(operation, errno, kernelMessage))
    {
        Operation = operation;
        Errno = errno;
        KernelMessage = kernelMessage;
    }

    public string Operation { get; }
    public int Errno { get; }
    public string? KernelMessage { get; }

    private static string Format(string operation, int errno, string? kernelMessage)
    {
        var text = $"{operation}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return string.IsNullOrEmpty(kernelMessage) ? text : $"{text}: {kernelMessage}";
    }

    private static NetworkErrorKind KindOf(int errno) => errno switch
    {
        Interop.Libc.ENODEV or Interop.Libc.ENOENT or Interop.Libc.ESRCH => NetworkErrorKind.NotFound,
        Interop.Libc.EEXIST or Interop.Libc.EBUSY or Interop.Libc.EADDRINUSE => NetworkErrorKind.Conflict,
        Interop.Libc.EINVAL or Interop.Libc.ERANGE => NetworkErrorKind.InvalidArgument,
        Interop.Libc.EPROTONOSUPPORT or Interop.Libc.EOPNOTSUPP => NetworkErrorKind.Unavailable,
        _ => NetworkErrorKind.Internal,
    };
}
