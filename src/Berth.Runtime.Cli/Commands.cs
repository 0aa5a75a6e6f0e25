using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Berth.Oci;
using Berth.Runtime.Container;
using Berth.Runtime.Native;

namespace Berth.Runtime.Cli;

/// <summary>The commands, with runc's names, flags and output.</summary>
internal static partial class Commands
{
    static Argument<string> IdArgument() => new("container-id") { Description = "the container's id" };
    static Option<string> BundleOption() => new("--bundle", "-b") { Description = "path to the root of the bundle directory", DefaultValueFactory = _ => "." };
    static Option<string?> PidFileOption() => new("--pid-file") { Description = "file to write the init's pid to" };
    static Option<string?> ConsoleSocketOption() => new("--console-socket") { Description = "unix socket to send the pty master to" };
    static Option<bool> NoPivotOption() => new("--no-pivot") { Description = "do not use pivot_root (for a rootfs on a ramdisk)" };
    static Option<int> PreserveFdsOption() => new("--preserve-fds") { Description = "pass N additional fds to the container (3 … 3+N-1)" };
    static Option<bool> NoNewKeyringOption() => new("--no-new-keyring") { Description = "do not create a session keyring (Berth never does)" };

    static CreateOptions ReadCreateOptions(ParseResult parse, Option<string> bundle, Option<string?> pidFile, Option<string?> console,
        Option<bool> noPivot, Option<int> preserve) => new()
    {
        Bundle = parse.GetValue(bundle)!,
        PidFile = parse.GetValue(pidFile),
        ConsoleSocket = parse.GetValue(console),
        NoPivot = parse.GetValue(noPivot),
        PreserveFds = parse.GetValue(preserve),
        NotifySocket = CallersNotifySocket(),
    };

    /// <summary>runc reads NOTIFY_SOCKET from its own environment (systemd, podman and conmon set it there).</summary>
    static string? CallersNotifySocket() =>
        Environment.GetEnvironmentVariable(NotifySocket.EnvironmentVariable) is { Length: > 0 } socket ? socket : null;

    public static Command Create()
    {
        var id = IdArgument();
        Option<string> bundle = BundleOption();
        var pidFile = PidFileOption(); var console = ConsoleSocketOption(); var noPivot = NoPivotOption(); var preserve = PreserveFdsOption();
        var command = new Command("create", "create a container") { id, bundle, pidFile, console, noPivot, preserve, NoNewKeyringOption() };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            c.Runtime.Create(parse.GetValue(id)!, ReadCreateOptions(parse, bundle, pidFile, console, noPivot, preserve));
            return 0;
        }));
        return command;
    }

    /// <summary>With NOTIFY_SOCKET, start returns once the container has sent READY (relayed) or its init has gone, as runc's.</summary>
    public static Command Start() => IdCommand("start", "start a created container", (runtime, id) =>
    {
        using var notify = runtime.Start(id, CallersNotifySocket());
        notify?.RelayReady();
    });

    /// <summary>A command that takes only the container id and exits 0 when the operation succeeds.</summary>
    static Command IdCommand(string name, string description, Action<ContainerRuntime, string> operation)
    {
        var id = IdArgument();
        var command = new Command(name, description) { id };
        command.SetAction(parse => Program.Execute(parse, c => { operation(c.Runtime, parse.GetValue(id)!); return 0; }));
        return command;
    }

    public static Command Run()
    {
        var id = IdArgument();
        Option<string> bundle = BundleOption();
        var pidFile = PidFileOption(); var console = ConsoleSocketOption(); var noPivot = NoPivotOption(); var preserve = PreserveFdsOption();
        var detach = new Option<bool>("--detach", "-d") { Description = "detach from the container's process" };
        var keep = new Option<bool>("--keep") { Description = "do not delete the container after it exits" };
        var command = new Command("run", "create and start a container, and wait for it") { id, bundle, pidFile, console, noPivot, preserve, detach, keep, NoNewKeyringOption() };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var containerId = parse.GetValue(id)!;
            var options = ReadCreateOptions(parse, bundle, pidFile, console, noPivot, preserve);
            var spec = SpecLoader.LoadFromBundle(options.Bundle);
            // terminal: true without a console socket: runc relays the pty itself (not when detached).
            TerminalRelay? relay = null;
            int relayFd = -1, containerEnd = -1;
            if (spec.Process?.Terminal == true && options.ConsoleSocket is null)
            {
                if (parse.GetValue(detach)) throw new RuntimeException("cannot allocate a tty for a detached container without --console-socket");
                Span<int> pair = stackalloc int[2];
                LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
                (relayFd, containerEnd) = (pair[0], pair[1]);
                options = new CreateOptions
                {
                    Bundle = options.Bundle, PidFile = options.PidFile, NoPivot = options.NoPivot, PreserveFds = options.PreserveFds,
                    ConsoleSocketFd = containerEnd, Spec = spec, NotifySocket = options.NotifySocket,
                };
            }
            else options = new CreateOptions
            {
                Bundle = options.Bundle, PidFile = options.PidFile, ConsoleSocket = options.ConsoleSocket, NoPivot = options.NoPivot,
                PreserveFds = options.PreserveFds, Spec = spec, NotifySocket = options.NotifySocket,
            };
            ContainerRecord record;
            try
            {
                record = c.Runtime.Create(containerId, options);
                if (relayFd >= 0) relay = TerminalRelay.Start(relayFd);
            }
            finally
            {
                if (relayFd >= 0) { LibC.close(relayFd); LibC.close(containerEnd); }
            }
            NotifySocket? notify;
            try { notify = c.Runtime.Start(containerId, options.NotifySocket); }
            catch
            {
                relay?.Dispose();
                c.Runtime.Delete(containerId, force: true);
                throw;
            }
            using (notify)
            {
                if (parse.GetValue(detach))
                {
                    // runc run -d waits for READY as start does, and exits 0 whatever came of it.
                    if (notify is not null) RelayReadyOrWarn(c, notify, mainPid: null);
                    return 0;
                }

                // In the foreground runc stays the service's main process: MAINPID is its own pid. Its
                // wait for READY comes first; here it runs beside the wait for the exit, so that signals
                // are forwarded meanwhile and a container that exits without READY ends the run (runc
                // 1.1 then waits for READY for ever).
                var relayThread = notify is null ? null
                    : new Thread(() => RelayReadyOrWarn(c, notify, Environment.ProcessId)) { IsBackground = true, Name = "notify" };
                relayThread?.Start();
                // Signals to the runtime go to the container, as runc forwards them.
                var code = WaitInForeground(record.InitPid, relay);
                relayThread?.Join();
                if (!parse.GetValue(keep)) c.Runtime.Delete(containerId, force: true);
                return code;
            }
        }));
        return command;
    }

    static void RelayReadyOrWarn(Program.Context c, NotifySocket notify, int? mainPid)
    {
        try { notify.RelayReady(mainPid); }
        catch (RuntimeException e) { c.Log("warning", $"notify socket: {e.Message}"); }
    }

    /// <summary>
    /// run and exec in the foreground: signals to the runtime go to the process (as runc forwards
    /// them), its pty output is relayed until the pty closes, and its exit code comes back.
    /// </summary>
    internal static int WaitInForeground(int pid, TerminalRelay? relay)
    {
        var registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT }
            .Select(signal => PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                LibC.kill(pid, NativeSignal(context.Signal));
            })).ToList();
        var output = relay is null ? null : new Thread(relay.CopyOutputToEnd) { IsBackground = true, Name = "pty output" };
        output?.Start();
        var code = ContainerRuntime.WaitForExit(pid);
        output?.Join(TimeSpan.FromSeconds(2));
        relay?.Dispose();
        registrations.ForEach(r => r.Dispose());
        return code;
    }

    static int NativeSignal(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGHUP => 1, PosixSignal.SIGINT => 2, PosixSignal.SIGQUIT => 3, PosixSignal.SIGTERM => 15, _ => (int)signal,
    };

    public static Command State()
    {
        var id = IdArgument();
        var command = new Command("state", "output the state of a container") { id };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var state = c.Runtime.GetState(parse.GetValue(id)!);
            Console.Out.WriteLine(ContainerStateWriter.Write(state, indented: true));
            return 0;
        }));
        return command;
    }

    public static Command Kill()
    {
        var id = IdArgument();
        var signal = new Argument<string>("signal") { Description = "signal name or number", DefaultValueFactory = _ => "SIGTERM" };
        var all = new Option<bool>("--all", "-a") { Description = "send the signal to all processes of the container" };
        var command = new Command("kill", "send a signal to the container's init") { id, signal, all };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            c.Runtime.Kill(parse.GetValue(id)!, ContainerRuntime.ParseSignal(parse.GetValue(signal)!), parse.GetValue(all));
            return 0;
        }));
        return command;
    }

    public static Command Delete()
    {
        var id = IdArgument();
        var force = new Option<bool>("--force", "-f") { Description = "kill the container first if it is running" };
        var command = new Command("delete", "delete a container's resources") { id, force };
        command.SetAction(parse => Program.Execute(parse, c => { c.Runtime.Delete(parse.GetValue(id)!, parse.GetValue(force)); return 0; }));
        return command;
    }

    public static Command List()
    {
        var format = new Option<string>("--format", "-f") { Description = "table or json", DefaultValueFactory = _ => "table" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "display only container ids" };
        var command = new Command("list", "list containers") { format, quiet };
        command.Aliases.Add("ls");
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var states = c.Runtime.List().ToList();
            if (parse.GetValue(quiet))
            {
                foreach (var s in states) Console.Out.WriteLine(s.Id);
                return 0;
            }
            switch (parse.GetValue(format))
            {
                case "json":
                    Console.Out.WriteLine(JsonSerializer.Serialize(states, SpecJsonContext.Default.ListContainerState));
                    return 0;
                case "table":
                    var rows = states.Select(s => new[]
                    {
                        s.Id, s.Pid.ToString(), s.Status.ToString().ToLowerInvariant(), s.Bundle,
                        s.Created?.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ") ?? "", s.Owner ?? "",
                    }).Prepend(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]).ToList();
                    var widths = Enumerable.Range(0, 6).Select(i => rows.Max(r => r[i].Length)).ToArray();
                    foreach (var row in rows)
                        Console.Out.WriteLine(string.Join("   ", row.Select((cell, i) => i == 5 ? cell : cell.PadRight(widths[i]))));
                    return 0;
                default:
                    throw new RuntimeException($"invalid format \"{parse.GetValue(format)}\": use table or json");
            }
        }));
        return command;
    }

    public static Command Spec()
    {
        Option<string> bundle = BundleOption();
        var rootless = new Option<bool>("--rootless") { Description = "a spec for a rootless container" };
        var command = new Command("spec", "write a new config.json template") { bundle, rootless };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var path = Path.Combine(parse.GetValue(bundle)!, "config.json");
            if (File.Exists(path)) throw new RuntimeException($"File {path} exists. Remove it first");
            var spec = SpecTemplate.Default();
            if (parse.GetValue(rootless)) spec = SpecTemplate.MakeRootless(spec, (uint)LibC.getuid(), (uint)LibC.getgid());
            File.WriteAllText(path, JsonSerializer.Serialize(spec, SpecJsonContext.Default.Spec));
            return 0;
        }));
        return command;
    }

    public static Command Features()
    {
        var command = new Command("features", "show what the runtime supports (JSON)");
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(Berth.Oci.Features.Describe(new FeatureSupport
            {
                Seccomp = true, Rdma = true, IdmappedMounts = true,
                SeccompFlags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            }), SpecJsonContext.Default.Features));
            return 0;
        }));
        return command;
    }

    public static Command Ps()
    {
        var id = IdArgument();
        var format = new Option<string>("--format", "-f") { Description = "table or json", DefaultValueFactory = _ => "table" };
        var psArgs = new Argument<string[]>("ps-options") { Description = "options for ps(1) (default: -ef)", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("ps", "list the processes of a container") { id, format, psArgs };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var pids = c.Runtime.GetPids(parse.GetValue(id)!);
            if (parse.GetValue(format) == "json")
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(pids.ToArray(), CliJsonContext.Default.Int32Array));
                return 0;
            }
            if (parse.GetValue(format) != "table") throw new RuntimeException($"invalid format \"{parse.GetValue(format)}\": use table or json");
            // As runc: run ps(1) on the host and keep the header and the container's rows.
            var options = parse.GetValue(psArgs) is { Length: > 0 } given ? given : ["-ef"];
            var ps = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ps", options) { RedirectStandardOutput = true })
                ?? throw new RuntimeException("cannot run ps");
            var lines = ps.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            ps.WaitForExit();
            if (lines.Length == 0) return ps.ExitCode;
            var pidColumn = Array.IndexOf(lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries), "PID");
            if (pidColumn < 0) throw new RuntimeException("ps output has no PID column");
            Console.Out.WriteLine(lines[0]);
            var set = pids.ToHashSet();
            foreach (var line in lines.Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length > pidColumn && int.TryParse(fields[pidColumn], out var pid) && set.Contains(pid)) Console.Out.WriteLine(line);
            }
            return 0;
        }));
        return command;
    }

    /// <summary>runc commands Berth does not have yet: said so plainly, with a failing exit code.</summary>
    public static Command NotYet(string name, string description)
    {
        var command = new Command(name, $"{description} (not supported yet)");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(parse => Program.Execute(parse, c => throw new RuntimeException($"{name}: not supported by this version of berth-runtime")));
        return command;
    }
}
