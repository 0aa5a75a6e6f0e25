using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Berth.Images.Registry;

/// <summary>
/// A Docker credential helper, <c>docker-credential-NAME</c> on PATH (docker-credential-pass,
/// -secretservice, -ecr-login …), spoken to as docker does: <c>get</c> and <c>erase</c> take the
/// server URL on stdin, <c>store</c> takes <c>{"ServerURL","Username","Secret"}</c>; <c>get</c>
/// answers with the same object, or fails with "credentials not found" on stdout. A user name of
/// <c>&lt;token&gt;</c> means the secret is an identity token.
/// </summary>
public sealed class CredentialHelper
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly Func<string, string?> _find;

    /// <param name="name">The part after <c>docker-credential-</c>.</param>
    /// <param name="find">Finds the binary by its full name (default: on PATH).</param>
    public CredentialHelper(string name, Func<string, string?>? find = null)
    {
        // The name comes from a config file and names a program to run: it may not be a path.
        if (name.Length == 0 || name.Contains('/') || name.Contains('\0'))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid credential helper name `{name}` (config.json's credsStore/credHelpers)");
        Name = name;
        _find = find ?? FindOnPath;
    }

    public string Name { get; }

    public string Program => "docker-credential-" + Name;

    /// <summary>The credentials stored for <paramref name="serverUrl"/>, null when the helper has none.</summary>
    public RegistryCredential? Get(string serverUrl)
    {
        var (code, stdout, stderr) = Run("get", serverUrl);
        if (code != 0)
        {
            if (stdout.Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return null;
            throw Failure("get", code, stdout, stderr);
        }
        try
        {
            using JsonDocument doc = JsonDocument.Parse(stdout);
            string? user = doc.RootElement.TryGetProperty("Username", out JsonElement u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
            string? secret = doc.RootElement.TryGetProperty("Secret", out JsonElement s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            if (string.IsNullOrEmpty(secret)) return null;
            return user == "<token>" ? new RegistryCredential(null, null, secret) : new RegistryCredential(user, secret);
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"credential helper {Program} get: malformed answer: {e.Message}", e);
        }
    }

    /// <summary>The server URLs the helper holds credentials for (<c>list</c>: a JSON object of server URL to user name).</summary>
    public IReadOnlyList<string> List()
    {
        var (code, stdout, stderr) = Run("list", "");
        if (code != 0) throw Failure("list", code, stdout, stderr);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(stdout.Length == 0 ? "{}" : stdout);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not a JSON object");
            return [.. doc.RootElement.EnumerateObject().Select(p => p.Name)];
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"credential helper {Program} list: malformed answer: {e.Message}", e);
        }
    }

    public void Store(string serverUrl, string username, string secret)
    {
        string request;
        using (var buffer = new MemoryStream())
        {
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("ServerURL", serverUrl);
                w.WriteString("Username", username);
                w.WriteString("Secret", secret);
                w.WriteEndObject();
            }
            request = Encoding.UTF8.GetString(buffer.ToArray());
        }
        var (code, stdout, stderr) = Run("store", request);
        if (code != 0) throw Failure("store", code, stdout, stderr);
    }

    /// <summary>Forgets <paramref name="serverUrl"/>; false when the helper had nothing for it.</summary>
    public bool Erase(string serverUrl)
    {
        var (code, stdout, stderr) = Run("erase", serverUrl);
        if (code == 0) return true;
        if (stdout.Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return false;
        throw Failure("erase", code, stdout, stderr);
    }

    private (int Code, string Stdout, string Stderr) Run(string action, string input)
    {
        string binary = _find(Program)
            ?? throw new ImagesException(ImagesErrorKind.NotFound, $"credential helper {Program} is not installed (not found on PATH; config.json names `{Name}` in credsStore or credHelpers)");
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(action);
        using Process process = Process.Start(start)
            ?? throw new ImagesException(ImagesErrorKind.Internal, $"credential helper {Program} could not be started");
        // Disposed here: Process leaves redirected streams it hands out open (a pipe fd per run until a GC).
        using StreamReader outReader = process.StandardOutput, errReader = process.StandardError;
        Task<string> stdout = outReader.ReadToEndAsync(), stderr = errReader.ReadToEndAsync();
        try
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // It exited without reading its input: its exit code and output say why.
        }
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new ImagesException(ImagesErrorKind.Unavailable, $"credential helper {Program} {action} did not answer within {Timeout.TotalSeconds:0} s");
        }
        return (process.ExitCode, stdout.Result.Trim(), stderr.Result.Trim());
    }

    private ImagesException Failure(string action, int code, string stdout, string stderr)
    {
        string said = string.Join(" ", new[] { stdout, stderr }.Where(t => t.Length > 0));
        return new ImagesException(ImagesErrorKind.Unavailable, $"credential helper {Program} {action} failed (exit {code}){(said.Length > 0 ? ": " + said : "")}");
    }

    private static string? FindOnPath(string program) => Berth.Oci.ExecutableSearch.Find(program);
}
