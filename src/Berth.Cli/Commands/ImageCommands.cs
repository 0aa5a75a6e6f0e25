using System.CommandLine;

namespace Berth.Cli.Commands;

/// <summary>The image commands, under Docker's top-level names and under <c>berth image …</c>.</summary>
internal static partial class ImageCommands
{
    public static IEnumerable<Command> TopLevel() =>
    [
        Pull("pull"), Push("push"), Images("images"), Tag("tag"), Rmi("rmi"), History("history"),
        Save("save"), Load("load"), Import("import"),
    ];

    public static Command ImageGroup()
    {
        var image = new Command("image", "Manage images")
        {
            Pull("pull"), Push("push"), Images("ls", "list"), Tag("tag"), Rmi("rm", "rmi"), History("history"),
            Save("save"), Load("load"), Import("import"), Inspect(), Prune(),
        };
        return image;
    }

    private static Option<string?> FormatOption(string what) => new("--format") { Description = $"format the output using a Go template ({what}), 'table …' or 'json'" };

    private static Option<bool> NoTruncOption() => new("--no-trunc") { Description = "don't truncate output" };

    private static Option<bool> QuietOption(string what) => new("--quiet", "-q") { Description = what };

    private static bool IsTerminal(TextWriter _) => !Console.IsOutputRedirected;
}
