using System.CommandLine;
using System.CommandLine.Parsing;
using Berth.Cli.Commands;

namespace Berth.Cli;

/// <summary>
/// berth: Docker's command line. Until berthd exists (issue 6) the image commands run in-process
/// against the state under <c>--data-root</c>; invocations on one data root are serialised by a
/// lock file (<see cref="Engine"/>).
/// </summary>
public static class Program
{
    /// <summary>Docker's exit code for a command line it cannot parse and for a failure of the engine itself.</summary>
    public const int UsageOrEngineError = 125;

    internal static readonly Option<string> DataRootOption = new("--data-root")
    {
        Description = "root directory of persistent state (content store, snapshots, image names)",
        DefaultValueFactory = _ => Engine.DefaultDataRoot,
        Recursive = true,
    };

    internal static readonly Option<string[]> InsecureRegistryOption = new("--insecure-registry")
    {
        Description = "registry (host[:port]) to reach over plain HTTP; repeatable (loopback registries always are)",
        Recursive = true,
        AllowMultipleArgumentsPerToken = false,
    };

    public static int Main(string[] args)
    {
        var root = new RootCommand("berth: a container engine (Docker's command line)") { DataRootOption, InsecureRegistryOption };
        foreach (Command c in ImageCommands.TopLevel()) root.Subcommands.Add(c);
        root.Subcommands.Add(ImageCommands.ImageGroup());
        root.TreatUnmatchedTokensAsErrors = true;

        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            string command = string.Join(' ', CommandPath(parse.CommandResult));
            Console.Error.WriteLine($"{command}: {parse.Errors[0].Message.TrimEnd('.')}.");
            Console.Error.WriteLine($"See '{command} --help'.");
            return UsageOrEngineError;
        }
        // Docker refuses an unknown flag even where an argument could take it (System.CommandLine would bind it).
        foreach (ArgumentResult a in parse.CommandResult.Children.OfType<ArgumentResult>())
            foreach (Token t in a.Tokens)
                if (t.Value.Length > 1 && t.Value[0] == '-')
                {
                    string command = string.Join(' ', CommandPath(parse.CommandResult));
                    Console.Error.WriteLine($"unknown flag: {t.Value}");
                    Console.Error.WriteLine($"See '{command} --help'.");
                    return UsageOrEngineError;
                }
        return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    private static IEnumerable<string> CommandPath(CommandResult? result)
    {
        var names = new Stack<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Push(c.Command is RootCommand ? "berth" : c.Command.Name);
        return names;
    }
}
