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
/// <c>identitytoken</c>; and the credential helpers docker runs, <c>credHelpers</c> (per
/// registry) and <c>credsStore</c> (for all), asked first (see <see cref="CredentialHelper"/>).
/// </summary>
public sealed class DockerConfigCredentials : ICredentialProvider
{
    private readonly Dictionary<string, RegistryCredential> _byHost;
    private readonly Dictionary<string, string> _helperByHost;
    private readonly string? _credsStore;
    private readonly Func<string, string?>? _findHelper;

    private DockerConfigCredentials(Dictionary<string, RegistryCredential> byHost, Dictionary<string, string>? helperByHost = null,
        string? credsStore = null, Func<string, string?>? findHelper = null)
    {
        _byHost = byHost;
        _helperByHost = helperByHost ?? new(StringComparer.OrdinalIgnoreCase);
        _credsStore = credsStore;
        _findHelper = findHelper;
    }

    /// <summary>An empty provider.</summary>
    public static DockerConfigCredentials Empty { get; } = new(new(StringComparer.OrdinalIgnoreCase));

    /// <summary>The path of the Docker CLI config file: <c>$DOCKER_CONFIG/config.json</c> or <c>~/.docker/config.json</c>.</summary>
    public static string DefaultPath => Path.Combine(Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } dir ? dir
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker"), "config.json");

    /// <summary>The key docker files a registry's login under: Docker Hub's v1 URL, else the host[:port].</summary>
    public static string ServerKey(string registry)
        => NormalizeKey(registry) is var host && host == "docker.io" ? "https://index.docker.io/v1/" : host;

    /// <summary>The helper that holds <paramref name="registry"/>'s credentials (credHelpers, then credsStore), or null.</summary>
    public CredentialHelper? HelperFor(string registry)
        => _helperByHost.TryGetValue(NormalizeKey(registry), out string? name) ? new CredentialHelper(name, _findHelper)
            : _credsStore is { Length: > 0 } store ? new CredentialHelper(store, _findHelper) : null;

    /// <summary>Loads <c>$DOCKER_CONFIG/config.json</c> or <c>~/.docker/config.json</c>; empty when absent.</summary>
    public static DockerConfigCredentials LoadDefault()
    {
        string path = DefaultPath;
        return File.Exists(path) ? Load(path) : Empty;
    }

    /// <param name="findHelper">Finds <c>docker-credential-NAME</c>'s binary (default: on PATH).</param>
    public static DockerConfigCredentials Load(string path, Func<string, string?>? findHelper = null)
    {
        try
        {
            return Parse(File.ReadAllBytes(path), findHelper);
        }
        catch (ImagesException e)
        {
            throw new ImagesException(e.Kind, $"credentials file `{path}`: {e.Message}", e);
        }
    }

    public static DockerConfigCredentials Parse(ReadOnlySpan<byte> json, Func<string, string?>? findHelper = null)
    {
        var byHost = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        var helperByHost = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string? credsStore = null;
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
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, "not a JSON object");
            if (doc.RootElement.TryGetProperty("credsStore", out JsonElement store))
                credsStore = store.ValueKind == JsonValueKind.String ? store.GetString()
                    : throw new ImagesException(ImagesErrorKind.InvalidArgument, "credsStore is not a string");
            if (doc.RootElement.TryGetProperty("credHelpers", out JsonElement helpers))
            {
                if (helpers.ValueKind != JsonValueKind.Object) throw new ImagesException(ImagesErrorKind.InvalidArgument, "credHelpers is not an object");
                foreach (JsonProperty helper in helpers.EnumerateObject())
                    helperByHost[NormalizeKey(helper.Name)] = helper.Value.ValueKind == JsonValueKind.String ? helper.Value.GetString()!
                        : throw new ImagesException(ImagesErrorKind.InvalidArgument, $"credHelpers.{helper.Name} is not a string");
            }
            if (!doc.RootElement.TryGetProperty("auths", out JsonElement auths) || auths.ValueKind != JsonValueKind.Object)
                return new DockerConfigCredentials(byHost, helperByHost, credsStore, findHelper);
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
        return new DockerConfigCredentials(byHost, helperByHost, credsStore, findHelper);
    }

    /// <summary>
    /// The credentials for <paramref name="registry"/>: from its helper when one is configured (as
    /// docker does), else from <c>auths</c>. A helper that fails (not installed, an error other
    /// than "not found") throws: a silent fall-back to anonymous access would hide the reason.
    /// </summary>
    public RegistryCredential? Get(string registry)
    {
        if (HelperFor(registry) is { } helper && helper.Get(ServerKey(registry)) is { } fromHelper) return fromHelper;
        return _byHost.TryGetValue(NormalizeKey(registry), out RegistryCredential? c) ? c : null;
    }

    /// <summary>
    /// Every credential the file gives access to, by the key docker files it under (<see cref="ServerKey"/>), as
    /// docker's GetAllCredentials: the <c>auths</c> entries, the registries of <c>credHelpers</c> and what the
    /// <c>credsStore</c> lists, each asked through <see cref="Get"/> (so a helper wins over <c>auths</c>).
    /// </summary>
    public Dictionary<string, RegistryCredential> All()
    {
        var hosts = new HashSet<string>(_byHost.Keys, StringComparer.OrdinalIgnoreCase);
        hosts.UnionWith(_helperByHost.Keys);
        if (_credsStore is { Length: > 0 } store)
            foreach (string server in new CredentialHelper(store, _findHelper).List()) hosts.Add(NormalizeKey(server));
        var result = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        foreach (string host in hosts.Order(StringComparer.OrdinalIgnoreCase))
            if (Get(host) is { } credential) result[ServerKey(host)] = credential;
        return result;
    }

    // ---- docker login / logout ----------------------------------------------------------------

    /// <summary>
    /// Records a login as <c>docker login</c> does: in the registry's credential helper when one is
    /// configured (the file then lists the server with an empty entry), else base64 in
    /// <c>auths</c>. The file keeps every other key; it is replaced atomically, mode 0600.
    /// Returns true when the password went into the file in plain base64 (docker warns then).
    /// </summary>
    public static bool SaveLogin(string configPath, string registry, string username, string secret, Func<string, string?>? findHelper = null)
    {
        System.Text.Json.Nodes.JsonObject root = ReadNode(configPath);
        string key = ServerKey(registry);
        DockerConfigCredentials current = Parse(Encoding.UTF8.GetBytes(root.ToJsonString()), findHelper);
        var auths = root["auths"] as System.Text.Json.Nodes.JsonObject ?? [];
        root["auths"] = auths;
        bool plain;
        if (current.HelperFor(registry) is { } helper)
        {
            helper.Store(key, username, secret);
            auths[key] = new System.Text.Json.Nodes.JsonObject();
            plain = false;
        }
        else
        {
            auths[key] = new System.Text.Json.Nodes.JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{username}:{secret}")) };
            plain = true;
        }
        WriteAtomically(configPath, root);
        return plain;
    }

    /// <summary>Forgets a login as <c>docker logout</c> does (helper and file); false when there was none.</summary>
    public static bool RemoveLogin(string configPath, string registry, Func<string, string?>? findHelper = null)
    {
        if (!File.Exists(configPath)) return false;
        System.Text.Json.Nodes.JsonObject root = ReadNode(configPath);
        DockerConfigCredentials current = Parse(Encoding.UTF8.GetBytes(root.ToJsonString()), findHelper);
        bool found = false;
        if (current.HelperFor(registry) is { } helper) found |= helper.Erase(ServerKey(registry));
        if (root["auths"] is System.Text.Json.Nodes.JsonObject auths)
            foreach (string name in auths.Select(a => a.Key).Where(k => NormalizeKey(k) == NormalizeKey(registry)).ToList())
                found |= auths.Remove(name);
        if (found) WriteAtomically(configPath, root);
        return found;
    }

    private static System.Text.Json.Nodes.JsonObject ReadNode(string path)
    {
        if (!File.Exists(path)) return [];
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllBytes(path)) as System.Text.Json.Nodes.JsonObject
                ?? throw new ImagesException(ImagesErrorKind.InvalidArgument, $"credentials file `{path}`: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"credentials file `{path}`: malformed JSON: {e.Message}", e);
        }
    }

    /// <summary>temp file (0600) → fsync → rename: a crash leaves the old file or the new one, never half of one.</summary>
    private static void WriteAtomically(string path, System.Text.Json.Nodes.JsonObject root)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temp = path + ".tmp" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using (var file = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                file.Write(Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"));
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary><c>https://index.docker.io/v1/</c>, <c>index.docker.io</c>, <c>registry-1.docker.io</c> → <c>docker.io</c>; a URL → its host[:port].</summary>
    public static string NormalizeKey(string key)
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
