namespace Berth.Runtime;

/// <summary>An operation of the runtime failed; the message says what, where and why.</summary>
public class RuntimeException(string message, int errno = 0, Exception? inner = null) : Exception(message, inner)
{
    public int Errno { get; } = errno;
}

/// <summary>The container asked for does not exist.</summary>
public sealed class ContainerNotFoundException(string id)
    : RuntimeException($"container \"{id}\" does not exist");

/// <summary>The operation is not allowed in the container's current state.</summary>
public sealed class InvalidStateException(string message) : RuntimeException(message);
