using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Berth.Oci;
using Berth.Runtime.Container;
using Berth.Runtime.Native;

namespace Berth.Runtime.Cli;

/// <summary>exec, pause, resume, update, events: runc's flags and output.</summary>
internal static partial class Commands
{
    // exec's options that take a value: needed to find where the command starts (see SeparateExecCommand).
    static readonly HashSet<string> ExecValueOptions =
    [
        "--console-socket", "--cwd", "--env", "-e", "--user", "-u", "--additional-gids", "-g", "--process", "-p", "--pid-file",
        "--process-label", "--apparmor", "--cap", "-c", "--preserve-fds",
        .. Program.GlobalValueOptions,
    ];

    /// <summary>
    /// runc parses exec's flags only up to the container id: `exec ID sh -c x` runs `sh -c x`.
    /// System.CommandLine takes options anywhere, so a "--" goes after the id.
    /// </summary>
    public static string[] SeparateExecCommand(string[] args)
    {
        var exec = Array.IndexOf(args, "exec");
        if (exec < 0) return args;
        // "exec" must be the subcommand: every token before it is a global option or its value.
        for (var i = 0; i < exec; i++)
        {
            if (!args[i].StartsWith('-')) return args;
            if (!args[i].Contains('=') && ExecValueOptions.Contains(args[i])) i++;
        }
        for (var i = exec + 1; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--") return args;
            if (a.StartsWith('-') && a.Length > 1)
            {
                if (!a.Contains('=') && ExecValueOptions.Contains(a)) i++;
                continue;
            }
            // args[i] is the container id.
            return i + 1 < args.Length ? [.. args[..(i + 1)], "--", .. args[(i + 1)..]] : args;
        }
        return args;
    }

    public static Command Exec()
    {
        var id = IdArgument();
        var commandArgs = new Argument<string[]>("command") { Description = "the command and its arguments", Arity = ArgumentArity.ZeroOrMore };
        var console = ConsoleSocketOption();
        var cwd = new Option<string?>("--cwd") { Description = "current working directory in the container" };
        var env = new Option<string[]>("--env", "-e") { Description = "set environment variables" };
        var tty = new Option<bool>("--tty", "-t") { Description = "allocate a pseudo-TTY" };
        var user = new Option<string?>("--user", "-u") { Description = "UID (format: <uid>[:<gid>])" };
        var gids = new Option<string[]>("--additional-gids", "-g") { Description = "additional gids" };
        var processFile = new Option<string?>("--process", "-p") { Description = "path to the process.json" };
        var detach = new Option<bool>("--detach", "-d") { Description = "detach from the container's process" };
        var pidFile = PidFileOption();
        var label = new Option<string?>("--process-label") { Description = "set the asm process label for the process commonly used with selinux" };
        var apparmor = new Option<string?>("--apparmor") { Description = "set the apparmor profile for the process" };
        var noNewPrivs = new Option<bool>("--no-new-privs") { Description = "set the no new privileges value for the process" };
        var cap = new Option<string[]>("--cap", "-c") { Description = "add a capability to the bounding set for the process" };
        var preserve = PreserveFdsOption();
        var command = new Command("exec", "execute new process inside the container")
        {
            id, commandArgs, console, cwd, env, tty, user, gids, processFile, detach, pidFile, label, apparmor, noNewPrivs, cap, preserve,
        };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var containerId = parse.GetValue(id)!;
            var isDetached = parse.GetValue(detach);
            Berth.Oci.Process? process = null;
            if (parse.GetValue(processFile) is { } file)
            {
                process = SpecLoader.ParseProcess(File.ReadAllBytes(file), file);
            }
            ExecOverrides? overrides = null;
            if (process is null)
            {
                uint? uid = null, gid = null;
                if (parse.GetValue(user) is { Length: > 0 } u)
                {
                    var parts = u.Split(':', 2);
                    if (!uint.TryParse(parts[0], out var parsedUid) || (parts.Length == 2 && !uint.TryParse(parts[1], out _)))
                        throw new RuntimeException($"parsing {u} as uid[:gid]: numeric ids only");
                    uid = parsedUid;
                    if (parts.Length == 2) gid = uint.Parse(parts[1], CultureInfo.InvariantCulture);
                }
                var extraGids = new List<uint>();
                foreach (var g in parse.GetValue(gids) ?? [])
                    extraGids.Add(uint.TryParse(g, out var v) ? v : throw new RuntimeException($"invalid additional gid \"{g}\""));
                overrides = new ExecOverrides
                {
                    Args = [.. parse.GetValue(commandArgs) ?? []], Env = [.. parse.GetValue(env) ?? []], Uid = uid, Gid = gid,
                    AdditionalGids = extraGids, Cwd = parse.GetValue(cwd), Capabilities = [.. parse.GetValue(cap) ?? []],
                    Terminal = parse.GetValue(tty), NoNewPrivileges = parse.GetResult(noNewPrivs) is null ? null : parse.GetValue(noNewPrivs),
                    ApparmorProfile = parse.GetValue(apparmor), ProcessLabel = parse.GetValue(label),
                };
                if (overrides.Args is not { Count: > 0 }) throw new RuntimeException("exec: args must not be empty (usage: exec [options] <container-id> <command> [args...])");
            }
            var terminal = process?.Terminal ?? overrides!.Terminal;
            var consoleSocket = parse.GetValue(console);

            // -t without a console socket: the runtime relays the pty itself, as runc.
            int relayFd = -1, containerEnd = -1;
            if (terminal && consoleSocket is null)
            {
                if (isDetached) throw new RuntimeException("cannot allocate tty if runc will detach without setting console socket");
                Span<int> pair = stackalloc int[2];
                LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
                (relayFd, containerEnd) = (pair[0], pair[1]);
            }
            int pid;
            TerminalRelay? relay = null;
            try
            {
                try
                {
                    pid = c.Runtime.Exec(containerId, new ExecRequest
                    {
                        Process = process, Overrides = overrides, ConsoleSocket = consoleSocket, ConsoleSocketFd = containerEnd,
                        PidFile = parse.GetValue(pidFile), PreserveFds = parse.GetValue(preserve),
                    });
                    if (relayFd >= 0) relay = TerminalRelay.Start(relayFd);
                }
                finally
                {
                    if (relayFd >= 0) { LibC.close(relayFd); LibC.close(containerEnd); }
                }
            }
            catch (RuntimeException e)
            {
                // runc: "exec failed: …" and exit status 255.
                c.Log("error", $"exec failed: {e.Message}");
                return 255;
            }
            if (isDetached) return 0;

            return WaitInForeground(pid, relay);
        }));
        return command;
    }

    public static Command Pause() =>
        IdCommand("pause", "pause suspends all processes inside the container", (runtime, id) => runtime.Pause(id));

    public static Command Resume() =>
        IdCommand("resume", "resumes all processes that have been previously paused", (runtime, id) => runtime.Resume(id));

    public static Command Update()
    {
        var id = IdArgument();
        var resources = new Option<string?>("--resources", "-r") { Description = "path to a file containing the resources to update, or '-' to read from stdin" };
        var blkioWeight = new Option<string?>("--blkio-weight") { Description = "specifies per cgroup weight, range is from 10 to 1000" };
        var cpuPeriod = new Option<string?>("--cpu-period") { Description = "CPU CFS period to be used for hardcapping (in usecs)" };
        var cpuQuota = new Option<string?>("--cpu-quota") { Description = "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period" };
        var cpuShare = new Option<string?>("--cpu-share", "--cpu-shares") { Description = "CPU shares (relative weight vs. other containers)" };
        var rtPeriod = new Option<string?>("--cpu-rt-period") { Description = "CPU realtime period to be used for hardcapping (in usecs)" };
        var rtRuntime = new Option<string?>("--cpu-rt-runtime") { Description = "CPU realtime hardcap limit (in usecs)" };
        var cpus = new Option<string?>("--cpuset-cpus") { Description = "CPU(s) to use" };
        var mems = new Option<string?>("--cpuset-mems") { Description = "memory node(s) to use" };
        var kernel = new Option<string?>("--kernel-memory") { Description = "kernel memory limit (in bytes)" };
        var kernelTcp = new Option<string?>("--kernel-memory-tcp") { Description = "kernel memory limit for tcp buffer (in bytes)" };
        var memory = new Option<string?>("--memory") { Description = "memory limit (in bytes)" };
        var reservation = new Option<string?>("--memory-reservation") { Description = "memory reservation or soft_limit (in bytes)" };
        var swap = new Option<string?>("--memory-swap") { Description = "total memory usage (memory + swap); set '-1' to enable unlimited swap" };
        var pids = new Option<string?>("--pids-limit") { Description = "maximum number of pids allowed in the container" };
        var l3 = new Option<string?>("--l3-cache-schema") { Description = "the string of Intel RDT/CAT L3 cache schema (not supported)" };
        var memBw = new Option<string?>("--mem-bw-schema") { Description = "the string of Intel RDT/MBA memory bandwidth schema (not supported)" };
        var command = new Command("update", "update container resource constraints")
        {
            id, resources, blkioWeight, cpuPeriod, cpuQuota, cpuShare, rtPeriod, rtRuntime, cpus, mems, kernel, kernelTcp, memory, reservation, swap, pids, l3, memBw,
        };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            if (parse.GetValue(l3) is not null || parse.GetValue(memBw) is not null)
                throw new RuntimeException("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
            LinuxResources changes;
            if (parse.GetValue(resources) is { } path)
            {
                var json = path == "-" ? ReadAllStdin() : File.ReadAllBytes(path);
                changes = SpecLoader.ParseResources(json, path == "-" ? "stdin" : path);
            }
            else
            {
                long? Bytes(Option<string?> o) => parse.GetValue(o) is { } v ? ParseBytes(o.Name, v) : null;
                ulong? U(Option<string?> o) => parse.GetValue(o) is { } v ? ulong.TryParse(v, out var x) ? x : throw Invalid(o, v) : null;
                long? L(Option<string?> o) => parse.GetValue(o) is { } v ? long.TryParse(v, out var x) ? x : throw Invalid(o, v) : null;
                changes = new LinuxResources();
                var mem = new LinuxMemory
                {
                    Limit = Bytes(memory), Reservation = Bytes(reservation), Swap = Bytes(swap), Kernel = Bytes(kernel), KernelTcp = Bytes(kernelTcp),
                };
                if (mem is not { Limit: null, Reservation: null, Swap: null, Kernel: null, KernelTcp: null }) changes.Memory = mem;
                var cpu = new LinuxCpu
                {
                    Shares = U(cpuShare), Quota = L(cpuQuota), Period = U(cpuPeriod), RealtimePeriod = U(rtPeriod), RealtimeRuntime = L(rtRuntime),
                    Cpus = parse.GetValue(cpus), Mems = parse.GetValue(mems),
                };
                if (cpu is not { Shares: null, Quota: null, Period: null, RealtimePeriod: null, RealtimeRuntime: null, Cpus: null, Mems: null }) changes.Cpu = cpu;
                if (L(pids) is { } limit) changes.Pids = new LinuxPids { Limit = limit };
                if (U(blkioWeight) is { } weight) changes.BlockIo = new LinuxBlockIo { Weight = checked((ushort)weight) };
            }
            c.Runtime.Update(parse.GetValue(id)!, changes);
            return 0;
        }));
        return command;

        static RuntimeException Invalid(Option<string?> o, string value) => new($"invalid value \"{value}\" for {o.Name}");
    }

    static byte[] ReadAllStdin()
    {
        using var stdin = Console.OpenStandardInput();
        using var buffer = new MemoryStream();
        stdin.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>runc update's memory flags: "-1" (unlimited) or a <see cref="ByteSize"/> ("512m", "1.5g", "1024").</summary>
    public static long ParseBytes(string flag, string text)
    {
        if (text == "-1") return -1;
        return ByteSize.TryParse(text, out long bytes) ? bytes : throw new RuntimeException($"invalid value for {flag}: invalid size: '{text}'");
    }

    public static Command Events()
    {
        var id = IdArgument();
        var interval = new Option<string>("--interval") { Description = "set the stats collection interval", DefaultValueFactory = _ => "5s" };
        var stats = new Option<bool>("--stats") { Description = "display the container's stats then exit" };
        var command = new Command("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics") { id, interval, stats };
        command.SetAction(parse => Program.Execute(parse, c =>
        {
            var containerId = parse.GetValue(id)!;
            var stdout = Console.OpenStandardOutput();
            void Write(ContainerEvent e)
            {
                var line = JsonSerializer.SerializeToUtf8Bytes(e, EventsJsonContext.Default.ContainerEvent);
                stdout.Write(line);
                stdout.WriteByte((byte)'\n');
                stdout.Flush();
            }
            if (parse.GetValue(stats))
            {
                Write(c.Runtime.Stats(containerId));
                return 0;
            }
            var period = ParseDuration(parse.GetValue(interval)!);
            if (period <= TimeSpan.Zero) throw new RuntimeException("duration interval must be greater than 0");
            using var cancel = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cancel.Cancel(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; cancel.Cancel(); });
            c.Runtime.Events(containerId, period, Write, cancel.Token);
            return 0;
        }));
        return command;
    }

    /// <summary>Go's time.ParseDuration for the units events takes: "5s", "500ms", "1m30s", "1h".</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var total = TimeSpan.Zero;
        var i = 0;
        if (text.Length == 0) throw new RuntimeException("invalid duration \"\"");
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.')) i++;
            if (!double.TryParse(text[start..i], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                throw new RuntimeException($"invalid duration \"{text}\"");
            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.') i++;
            total += text[unitStart..i] switch
            {
                "ns" => TimeSpan.FromTicks((long)(value / 100)),
                "us" or "µs" => TimeSpan.FromTicks((long)(value * 10)),
                "ms" => TimeSpan.FromMilliseconds(value),
                "s" => TimeSpan.FromSeconds(value),
                "m" => TimeSpan.FromMinutes(value),
                "h" => TimeSpan.FromHours(value),
                var unit => throw new RuntimeException($"invalid duration \"{text}\": unknown unit \"{unit}\""),
            };
        }
        return total;
    }
}
