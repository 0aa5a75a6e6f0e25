using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Images.References;
using Berth.Images.Registry;

namespace Berth.Cli.Commands;

/// <summary>The image commands, under Docker's top-level names and under <c>berth image …</c>; each is a client of the /images endpoints.</summary>
internal static partial class ImageCommands
{
    /// <summary>The top-level image commands by name, each built only when invoked (see <see cref="Program"/>).</summary>
    public static IEnumerable<(string Name, Func<Command> Build)> TopLevel() =>
    [
        ("pull", () => Pull("pull")), ("push", () => Push("push")), ("images", () => Images("images")), ("tag", () => Tag("tag")),
        ("rmi", () => Rmi("rmi")), ("history", () => History("history")), ("save", () => Save("save")), ("load", () => Load("load")),
        ("import", () => Import("import")), ("build", () => Build("build")), ("search", Search),
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
    /// <c>X-Registry-Auth</c> for an image's registry: base64url of <c>{"username","password",
    /// "serveraddress"}</c> (or <c>identitytoken</c>) from the Docker CLI config file, its
    /// credential helper first (<see cref="DockerConfigCredentials"/>); <c>{}</c> when there is
    /// none. A config file that cannot be read is a warning, as docker's; a helper that fails is
    /// an error.
    /// </summary>
    internal static string RegistryAuth(string reference)
    {
        string domain = ImageReference.ParseNormalized(reference).Domain;
        DockerConfigCredentials config;
        try
        {
            config = DockerConfigCredentials.LoadDefault();
        }
        catch (Berth.Images.ImagesException e)
        {
            Console.Error.WriteLine($"WARNING: Error loading config file: {e.Message}");
            config = DockerConfigCredentials.Empty;
        }
        var auth = new JsonObject();
        if (config.Get(domain) is { } credential)
        {
            if (credential.IdentityToken is { Length: > 0 } token) auth["identitytoken"] = token;
            else
            {
                auth["username"] = credential.Username;
                auth["password"] = credential.Password;
            }
            auth["serveraddress"] = DockerConfigCredentials.ServerKey(domain);
        }
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(auth.ToJsonString())).Replace('+', '-').Replace('/', '_');
    }
}
