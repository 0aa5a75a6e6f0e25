using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using Berth.Cli.Client;
using Berth.Cli.Commands;

namespace Berth.Cli;

/// <summary>
/// berth: Docker's command line, a client of berthd's Docker Engine API (see README.md). The
/// daemon owns all state; every command is one or a few HTTP requests over the unix socket.
/// </summary>
public static class Program
{
    /// <summary>Docker's exit code for a command line it cannot parse and for a failure of the engine itself.</summary>
    public const int UsageOrEngineError = 125;

    /// <summary>
    /// <c>-H/--host</c>, before the command as with docker (not recursive: <c>history -H</c> is
    /// <c>--human</c>, as in docker).
    /// </summary>
    internal static readonly Option<string?> HostOption = new("--host", "-H")
    {
        Description = "daemon socket to connect to (unix:///path; default $BERTH_HOST or " + DaemonClient.DefaultHost + ")",
    };

    /// <summary>Commands whose arguments after IMAGE/CONTAINER are the container's command line, never berth's flags.</summary>
    private static readonly HashSet<string> PassThrough = new(StringComparer.Ordinal) { "run", "create", "exec" };

    public static int Main(string[] args)
    {
        // Console's own writers initialise the terminal on first use (on a TTY .NET sends
        // keypad-transmit, ESC[?1h ESC=, and keeps terminfo state); docker writes plain bytes.
        Console.SetOut(StandardWriter(1));
        Console.SetError(StandardWriter(2));
        // --help and --version are options whose construction loads System.CommandLine's
        // localized resources (reflection, ~0.2 ms of every command). A command line that
        // names neither and parses cleanly does without them; any other is parsed again with
        // them, so that help, --version and every error are exactly as before.
        // Likewise only the invoked command is built (`run` alone has ~100 options, and the whole
        // tree was about a tenth of `berth ps`'s CPU time); help, --version, an unknown command
        // and any parse error get the whole tree, so their output is unchanged.
        bool helpOrVersion = args.Any(a => a is "--help" or "-h" or "--version");
        Command root = BuildRoot(helpOrVersion ? null : CommandWord(args), withHelpAndVersion: helpOrVersion);
        string[] parsedArgs = SplitContainerCommand(root, args, out bool split);
        ParseResult parse = root.Parse(parsedArgs);
        if (!helpOrVersion && (parse.Errors.Count > 0 || parse.UnmatchedTokens.Count > 0))
        {
            root = BuildRoot(only: null, withHelpAndVersion: true);
            parsedArgs = SplitContainerCommand(root, args, out split);
            parse = root.Parse(parsedArgs);
        }
        string commandName = string.Join(' ', CommandPath(parse.CommandResult));
        // docker 28's answer to a word that is no command, with its exit code (1, not a usage error's 125).
        if (parse.CommandResult.Command == root && parse.UnmatchedTokens.FirstOrDefault(t => !t.StartsWith('-')) is { } notCommand)
        {
            Console.Error.WriteLine($"berth: unknown command: berth {notCommand}");
            Console.Error.WriteLine();
            Console.Error.WriteLine("Run 'berth --help' for more information");
            return 1;
        }
        if (parse.UnmatchedTokens.FirstOrDefault(t => t.StartsWith('-') && t.Length > 1) is { } unknown)
            return Usage(commandName, $"unknown flag: {unknown}");
        if (parse.Errors.Count > 0)
            return Usage(commandName, $"{commandName}: {parse.Errors[0].Message.TrimEnd('.')}.");
        // Docker refuses an unknown flag even where an argument could take it (System.CommandLine would bind it).
        IEnumerable<ArgumentResult> checkedArguments = parse.CommandResult.Children.OfType<ArgumentResult>();
        if (split) checkedArguments = checkedArguments.Take(1);
        foreach (ArgumentResult a in checkedArguments)
            foreach (Token t in split ? a.Tokens.Take(1) : a.Tokens)
                if (t.Value.Length > 1 && t.Value[0] == '-')
                    return Usage(commandName, $"unknown flag: {t.Value}");
        return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>Every command under the root, in help's order, by the name that invokes it.</summary>
    internal static IEnumerable<(string Name, Func<Command> Build)> CommandTable() =>
    [
        .. ImageCommands.TopLevel(),
        ("image", ImageCommands.ImageGroup),
        ("volume", VolumeCommands.VolumeGroup),
        .. ContainerCommands.TopLevel(),
        ("container", ContainerCommands.ContainerGroup),
        .. SystemCommands.TopLevel(),
        .. LoginCommands.TopLevel(),
        ("system", SystemGroupCommands.SystemGroup),
        ("network", NetworkCommands.NetworkGroup),
    ];

    /// <summary>The first word of the command line that is not a global flag or its value (the command's name), or null.</summary>
    internal static string? CommandWord(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--") return null;
            if (a is "-H" or "--host") i++;
            else if (!a.StartsWith('-') || a.Length == 1) return a;
        }
        return null;
    }

    /// <summary>The root with the command named <paramref name="only"/> under it, or with all of them when it is null or unknown.</summary>
    internal static Command BuildRoot(string? only, bool withHelpAndVersion)
    {
        const string description = "berth: a container engine (Docker's command line)";
        Command root = withHelpAndVersion ? new RootCommand(description) : new Command(RootCommand.ExecutableName, description);
        root.Options.Add(HostOption);
        if (withHelpAndVersion)
        {
            // Docker has no -h for help on run/create (it is --hostname); keep --help alone everywhere.
            for (int i = root.Options.Count - 1; i >= 0; i--)
                if (root.Options[i] is HelpOption) root.Options.RemoveAt(i);
            root.Options.Add(new HelpOption("--help", "-h"));
        }
        var table = CommandTable();
        if (only is not null && table.FirstOrDefault(c => c.Name == only).Build is { } build)
            root.Subcommands.Add(build());
        else
            foreach ((_, Func<Command> b) in table) root.Subcommands.Add(b());
        root.TreatUnmatchedTokensAsErrors = true;
        return root;
    }

    // Console's own streams write(2) at the descriptor's offset. A FileStream over fd 1 would
    // pwrite at positions of its own starting from 0: with stdout a regular file shared by
    // several commands (`{ berth a; berth b; } > file`), each would overwrite the one before.
    private static StreamWriter StandardWriter(int fd)
        => new(fd == 1 ? Console.OpenStandardOutput() : Console.OpenStandardError(), new System.Text.UTF8Encoding(false), 4096)
        {
            AutoFlush = true,
        };

    private static int Usage(string command, string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine($"See '{command} --help'.");
        return UsageOrEngineError;
    }

    /// <summary>
    /// Docker stops parsing flags at <c>run</c>'s IMAGE (and <c>exec</c>'s CONTAINER): <c>berth run
    /// busybox ls -l</c> runs <c>ls -l</c>. A <c>--</c> is inserted after that word so System.CommandLine
    /// reads the rest as arguments. The word is found by walking the tokens with the command's own
    /// option table (which flags take a value).
    /// </summary>
    private static string[] SplitContainerCommand(Command root, string[] args, out bool split)
    {
        split = false;
        int i = 0;
        Command current = root;
        while (i < args.Length)
        {
            string a = args[i];
            if (a == "--") return args;
            if (a.StartsWith('-') && a.Length > 1)
            {
                i += TakesValue(current, a) ? 2 : 1;
                continue;
            }
            Command? sub = current.Subcommands.FirstOrDefault(c => c.Name == a || c.Aliases.Contains(a));
            if (sub is null) break;
            current = sub;
            i++;
            if (PassThrough.Contains(sub.Name))
            {
                while (i < args.Length && args[i].StartsWith('-') && args[i].Length > 1 && args[i] != "--")
                    i += TakesValue(current, args[i]) ? 2 : 1;
                if (i < args.Length && args[i] != "--" && i + 1 < args.Length)
                {
                    split = true;
                    return [.. args[..(i + 1)], "--", .. args[(i + 1)..]];
                }
                split = true;
                return args;
            }
        }
        return args;
    }

    private static bool TakesValue(Command command, string token)
    {
        if (token.Contains('=')) return false;
        Option? Find(string name) => command.Options.FirstOrDefault(o => o.Name == name || o.Aliases.Contains(name))
            ?? (command.Parents.FirstOrDefault() is Command parent ? parent.Options.FirstOrDefault(o => o.Recursive && (o.Name == name || o.Aliases.Contains(name))) : null);
        static bool IsFlag(Option o) => o.ValueType == typeof(bool);
        if (token.StartsWith("--", StringComparison.Ordinal)) return Find(token) is { } o && !IsFlag(o);
        if (token.Length == 2) return Find(token) is { } s && !IsFlag(s);
        // Bundled short flags (-it, -dit) or a short option with its value attached (-p8080:80).
        Option? first = Find(token[..2]);
        if (first is not null && !IsFlag(first)) return false;
        for (int k = 1; k < token.Length; k++)
        {
            Option? o = Find("-" + token[k]);
            if (o is null) return false;
            if (!IsFlag(o)) return k == token.Length - 1;
        }
        return false;
    }

    private static IEnumerable<string> CommandPath(CommandResult? result)
    {
        var names = new Stack<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Push(c.Command is RootCommand ? "berth" : c.Command.Name);
        return names;
    }
}
