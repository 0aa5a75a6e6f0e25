using Berth.Images;

namespace Berth.Daemon.Api;

/// <summary>An API error with its HTTP status; the body is Docker's <c>{"message": …}</c>.</summary>
public sealed class ApiException(int statusCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int StatusCode { get; } = statusCode;

    public static ApiException BadRequest(string message) => new(400, message);
    public static ApiException NotFound(string message) => new(404, message);
    public static ApiException Conflict(string message) => new(409, message);
    public static ApiException Forbidden(string message) => new(403, message);
    public static ApiException NotImplemented(string message) => new(501, message);

    /// <summary>The status Docker's errdefs give each category of the image store's errors.</summary>
    public static int StatusOf(ImagesErrorKind kind) => kind switch
    {
        ImagesErrorKind.InvalidArgument => 400,
        ImagesErrorKind.NotFound => 404,
        ImagesErrorKind.Conflict => 409,
        ImagesErrorKind.Unauthorized => 401,
        ImagesErrorKind.Unavailable => 503,
        _ => 500,
    };
}
