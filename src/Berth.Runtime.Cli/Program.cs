using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime;
using Berth.Runtime.Container;
using Berth.Runtime.Native;

namespace Berth.Runtime.Cli;

/// <summary>
/// berth-runtime: runc's command line over Berth's runtime, so that containerd, dockerd
/// and podman can use it in place of runc.
/// </summary>
public static class Program
{
    static readonly Option<string> RootOption = new("--root") { Description = "root directory for storage of container state", DefaultValueFactory = _ => Rootless.DefaultRoot(), Recursive = true };
    static readonly Option<string?> LogOption = new("--log") { Description = "file to write log messages to (default: stderr)", Recursive = true };
    static readonly Option<string> LogFormatOption = new("--log-format") { Description = "log format: text or json", DefaultValueFactory = _ => "text", Recursive = true };
    static readonly Option<bool> DebugOption = new("--debug") { Description = "enable debug logging", Recursive = true };
    static readonly Option<bool> SystemdCgroupOption = new("--systemd-cgroup") { Description = "use systemd for cgroups (not supported: refused)", Recursive = true };
    static readonly Option<string?> RootlessOption = new("--rootless") { Description = "ignore cgroup permission errors (true, false or auto)", Recursive = true };
    static readonly Option<string?> CriuOption = new("--criu") { Description = "path to criu (checkpointing is not supported)", Recursive = true };

    // Every command, by name. Only the one being run is built (see Main).
    static readonly (string Name, Func<Command> Build)[] CommandTable =
    [
        ("create", Commands.Create), ("start", Commands.Start), ("run", Commands.Run), ("state", Commands.State),
        ("kill", Commands.Kill), ("delete", Commands.Delete), ("list", Commands.List), ("spec", Commands.Spec),
        ("features", Commands.Features), ("ps", Commands.Ps), ("exec", Commands.Exec), ("pause", Commands.Pause),
        ("resume", Commands.Resume), ("update", Commands.Update), ("events", Commands.Events),
        ("checkpoint", () => Commands.NotYet("checkpoint", "checkpoint a running container")),
        ("restore", () => Commands.NotYet("restore", "restore a container from a checkpoint")),
    ];

    // Global options that take a value, to find the subcommand's name (and exec's command) behind them.
    internal static readonly string[] GlobalValueOptions = [RootOption.Name, LogOption.Name, LogFormatOption.Name, RootlessOption.Name, CriuOption.Name];

    public static int Main(string[] args)
    {
        args = Commands.SeparateExecCommand(args);
        var name = SubcommandName(args);
        // Help and --version are options whose construction loads System.CommandLine's
        // localized resources (reflection: ~0.2 ms). A command line that asks for neither and
        // parses cleanly does without them; any other is parsed again with them, so that help,
        // --version and the help printed after a parse error are exactly as before.
        var parse = BuildRoot(name, withHelp: false).Parse(args);
        if (parse.Errors.Count > 0 || args.Any(a => a is "-h" or "--help" or "-?" or "/h" or "/?" or "--version"))
            parse = BuildRoot(name, withHelp: true).Parse(args);
        return parse.Invoke();
    }

    static Command BuildRoot(string? name, bool withHelp)
    {
        const string description = "berth-runtime: an OCI runtime (runc's command line)";
        Command root = withHelp ? new RootCommand(description) : new Command(RootCommand.ExecutableName, description);
        foreach (var option in new Option[] { RootOption, LogOption, LogFormatOption, DebugOption, SystemdCgroupOption, RootlessOption, CriuOption })
            root.Options.Add(option);
        // Each runtime command is a process of its own, and building all seventeen commands with
        // their options is a measurable part of its start. When the subcommand is known, the
        // parser gets that one only: its parsing, errors and help are the same. Otherwise (no
        // subcommand, root --help, a typo) it gets all of them, for the full help and error text.
        foreach (var (commandName, build) in CommandTable)
        {
            if (name is null || commandName == name || (name == "ls" && commandName == "list"))
                root.Subcommands.Add(build());
        }
        if (root.Subcommands.Count == 0)
            foreach (var (_, build) in CommandTable) root.Subcommands.Add(build());
        root.TreatUnmatchedTokensAsErrors = true;
        return root;
    }

    /// <summary>The first token that is not a global option or its value; null when there is none.</summary>
    internal static string? SubcommandName(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--") return null;
            if (!a.StartsWith('-')) return a;
            if (!a.Contains('=') && Array.IndexOf(GlobalValueOptions, a) >= 0) i++;
        }
        return null;
    }

    /// <summary>Runs an operation with runc's error conventions: message to stderr and the --log file, exit 1.</summary>
    internal static int Execute(ParseResult parse, Func<Context, int> action)
    {
        var context = new Context(parse);
        try
        {
            if (parse.GetValue(SystemdCgroupOption))
                throw new RuntimeException("--systemd-cgroup: the systemd cgroup driver is not supported; use the cgroupfs driver");
            return action(context);
        }
        catch (Exception e) when (e is RuntimeException or SpecException or CgroupException or IOException or UnauthorizedAccessException)
        {
            context.Log("error", e.Message);
            return 1;
        }
    }

    internal sealed class Context(ParseResult parse)
    {
        public ParseResult Parse { get; } = parse;
        readonly string? _logFile = parse.GetValue(LogOption);
        readonly bool _json = parse.GetValue(LogFormatOption) == "json";
        ContainerRuntime? _runtime;

        public ContainerRuntime Runtime => _runtime ??= new ContainerRuntime(Parse.GetValue(RootOption)!)
        {
            Warn = message => Log("warning", message),
            Debug = Parse.GetValue(DebugOption) ? message => Log("debug", message) : null,
            BeforeEnteringSharedPidNamespace = SealedExecutable.Reexec,
            Rootless = Rootless.ParseMode(Parse.GetValue(RootlessOption)),
        };

        /// <summary>
        /// Errors go to stderr and, like runc, to the --log file (containerd reads the last
        /// error from there, in JSON with --log-format json).
        /// </summary>
        public void Log(string level, string message)
        {
            if (level == "error" || _logFile is null) Console.Error.WriteLine(level == "error" ? $"berth-runtime: {message}" : message);
            if (_logFile is null) return;
            var line = _json
                ? $"{{\"level\":\"{level}\",\"msg\":{JsonSerializer.Serialize(message, CliJsonContext.Default.String)},\"time\":\"{DateTimeOffset.UtcNow:O}\"}}\n"
                : $"time=\"{DateTimeOffset.UtcNow:O}\" level={level} msg=\"{message.Replace("\"", "\\\"")}\"\n";
            try { File.AppendAllText(_logFile, line); }
            catch (IOException) { }
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int[]))]
internal sealed partial class CliJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
