using System.Text;
using System.Text.Json;

namespace Berth.Images.Registry;

/// <summary>Credentials for one registry: a user name and password, or an identity (refresh) token.</summary>
public sealed record RegistryCredential(string? Username, string? Password, string? IdentityToken = null)
{
    public override string ToString() => $"RegistryCredential({Username}, ***)";
}

/// <summary>Where a registry client finds credentials.</summary>
public interface ICredentialProvider
{
    /// <summary>The credentials for a registry host (<c>docker.io</c>, <c>localhost:5000</c>), or null.</summary>
    RegistryCredential? Get(string registry);
}

/// <summary>
/// Credentials from a Docker CLI config file (<c>~/.docker/config.json</c>): the <c>auths</c>
/// object, keyed by registry host or by URL (<c>https://index.docker.io/v1/</c> for Docker Hub),
/// each with <c>auth</c> (base64 of user:password), or <c>username</c>/<c>password</c>, or
/// <c>identitytoken</c>. Credential helpers (<c>credsStore</c>) are not run.
/// </summary>
public sealed class DockerConfigCredentials : ICredentialProvider
{
    private readonly Dictionary<string, RegistryCredential> _byHost;

    private DockerConfigCredentials(Dictionary<string, RegistryCredential> byHost) => _byHost = byHost;

    /// <summary>An empty provider.</summary>
    public static DockerConfigCredentials Empty { get; } = new(new(StringComparer.OrdinalIgnoreCase));

    /// <summary>Loads <c>$DOCKER_CONFIG/config.json</c> or <c>~/.docker/config.json</c>; empty when absent.</summary>
    public static DockerConfigCredentials LoadDefault()
    {
        string dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        string path = Path.Combine(dir, "config.json");
        return File.Exists(path) ? Load(path) : Empty;
    }

    public static DockerConfigCredentials Load(string path)
    {
        try
        {
            return Parse(File.ReadAllBytes(path));
        }
        catch (ImagesException e)
        {
            throw new ImagesException(e.Kind, $"credentials file `{path}`: {e.Message}", e);
        }
    }

    public static DockerConfigCredentials Parse(ReadOnlySpan<byte> json)
    {
        var byHost = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"malformed JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("auths", out JsonElement auths)
                || auths.ValueKind != JsonValueKind.Object)
                return new DockerConfigCredentials(byHost);
            foreach (JsonProperty entry in auths.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Object) continue;
                string? user = Str(entry.Value, "username"), password = Str(entry.Value, "password");
                if (Str(entry.Value, "auth") is { Length: > 0 } auth)
                {
                    string decoded;
                    try
                    {
                        decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
                    }
                    catch (FormatException)
                    {
                        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"auths.{entry.Name}.auth is not base64");
                    }
                    int colon = decoded.IndexOf(':');
                    if (colon < 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"auths.{entry.Name}.auth is not base64 of `user:password`");
                    user = decoded[..colon];
                    password = decoded[(colon + 1)..];
                }
                string? token = Str(entry.Value, "identitytoken");
                if (user is null && token is null) continue;
                byHost[NormalizeKey(entry.Name)] = new RegistryCredential(user, password, token);
            }
        }
        return new DockerConfigCredentials(byHost);
    }

    public RegistryCredential? Get(string registry)
        => _byHost.TryGetValue(NormalizeKey(registry), out RegistryCredential? c) ? c : null;

    /// <summary><c>https://index.docker.io/v1/</c>, <c>index.docker.io</c>, <c>registry-1.docker.io</c> → <c>docker.io</c>; a URL → its host[:port].</summary>
    internal static string NormalizeKey(string key)
    {
        string k = key;
        int scheme = k.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) k = k[(scheme + 3)..];
        int slash = k.IndexOf('/');
        if (slash >= 0) k = k[..slash];
        k = k.ToLowerInvariant();
        return k is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? "docker.io" : k;
    }

    private static string? Str(JsonElement e, string name)
        => e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
