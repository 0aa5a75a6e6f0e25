using System.Net;

namespace Berth.Images.Registry;

/// <summary>A registry answered with an error: names the registry, the repository and the reference.</summary>
public sealed class RegistryException : ImagesException
{
    public RegistryException(ImagesErrorKind kind, string message, string registry, string repository, string? reference,
        HttpStatusCode? statusCode = null, IReadOnlyList<string>? errorCodes = null, Exception? inner = null)
        : base(kind, message, inner)
    {
        Registry = registry;
        Repository = repository;
        ReferenceName = reference;
        StatusCode = statusCode;
        ErrorCodes = errorCodes ?? [];
    }

    public string Registry { get; }
    public string Repository { get; }
    public string? ReferenceName { get; }
    public HttpStatusCode? StatusCode { get; }

    /// <summary>The Distribution API error codes the registry sent (MANIFEST_UNKNOWN, BLOB_UNKNOWN, UNAUTHORIZED, …).</summary>
    public IReadOnlyList<string> ErrorCodes { get; }
}
