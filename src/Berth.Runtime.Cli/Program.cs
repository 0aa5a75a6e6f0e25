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

    public static int Main(string[] args)
    {
        var root = new RootCommand("berth-runtime: an OCI runtime (runc's command line)")
        {
            RootOption, LogOption, LogFormatOption, DebugOption, SystemdCgroupOption, RootlessOption, CriuOption,
        };
        root.Subcommands.Add(Commands.Create());
        root.Subcommands.Add(Commands.Start());
        root.Subcommands.Add(Commands.Run());
        root.Subcommands.Add(Commands.State());
        root.Subcommands.Add(Commands.Kill());
        root.Subcommands.Add(Commands.Delete());
        root.Subcommands.Add(Commands.List());
        root.Subcommands.Add(Commands.Spec());
        root.Subcommands.Add(Commands.Features());
        root.Subcommands.Add(Commands.Ps());
        root.Subcommands.Add(Commands.Exec());
        root.Subcommands.Add(Commands.Pause());
        root.Subcommands.Add(Commands.Resume());
        root.Subcommands.Add(Commands.Update());
        root.Subcommands.Add(Commands.Events());
        foreach (var (name, what) in new[] { ("checkpoint", "checkpoint a running container"), ("restore", "restore a container from a checkpoint") })
            root.Subcommands.Add(Commands.NotYet(name, what));
        root.TreatUnmatchedTokensAsErrors = true;
        return root.Parse(Commands.SeparateExecCommand(args)).Invoke();
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
