using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Images.References;

namespace Berth.Cli.Commands;

/// <summary>The image commands, under Docker's top-level names and under <c>berth image …</c>; each is a client of the /images endpoints.</summary>
internal static partial class ImageCommands
{
    public static IEnumerable<Command> TopLevel() =>
    [
        Pull("pull"), Push("push"), Images("images"), Tag("tag"), Rmi("rmi"), History("history"),
        Save("save"), Load("load"), Import("import"), Build("build"),
    ];

    public static Command ImageGroup()
    {
        var image = new Command("image", "Manage images")
        {
            Pull("pull"), Push("push"), Images("ls", "list"), Tag("tag"), Rmi("rm", "rmi"), History("history"),
            Save("save"), Load("load"), Import("import"), Inspect(), Prune(), Build("build"),
        };
        return image;
    }

    internal static Option<string?> FormatOption(string what) => new("--format") { Description = $"format the output using a Go template ({what}), 'table …' or 'json'" };

    internal static Option<bool> NoTruncOption() => new("--no-trunc") { Description = "don't truncate output" };

    internal static Option<bool> QuietOption(string what) => new("--quiet", "-q") { Description = what };

    internal static bool StdoutIsTerminal => Interop.Libc.IsTerminal(1);

    /// <summary>
    /// <c>X-Registry-Auth</c> for a registry host: base64url of <c>{"username","password","serveraddress"}</c>
    /// from <c>$DOCKER_CONFIG/config.json</c> (or <c>~/.docker/config.json</c>) <c>auths</c>; <c>{}</c> when there is none.
    /// </summary>
    internal static string RegistryAuth(string reference)
    {
        string domain = ImageReference.ParseNormalized(reference).Domain;
        string dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } d ? d
            : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".docker");
        var auth = new JsonObject();
        try
        {
            if (JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))?["auths"] is JsonObject auths)
            {
                foreach (var (key, value) in auths)
                {
                    string host = key.Replace("https://", "").Replace("http://", "").TrimEnd('/');
                    if (host.EndsWith("/v1", StringComparison.Ordinal)) host = host[..^3];
                    if (host == "index.docker.io") host = "docker.io";
                    if (host != domain || value?["auth"]?.GetValue<string>() is not { } b64) continue;
                    string pair = Encoding.UTF8.GetString(Convert.FromBase64String(b64));
                    int colon = pair.IndexOf(':');
                    if (colon < 0) continue;
                    auth["username"] = pair[..colon];
                    auth["password"] = pair[(colon + 1)..];
                    auth["serveraddress"] = key;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or FormatException)
        {
        }
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(auth.ToJsonString())).Replace('+', '-').Replace('/', '_');
    }
}
