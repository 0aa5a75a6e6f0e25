using System.Diagnostics;
using System.Text;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Berth.Network.Tests.Support;

/// <summary>
/// A private network world for one test, so that nothing ever touches the machine's own
/// namespace: a namespace playing "the host" (bridges, rules and sysctls go there), one playing
/// an "outside" client on another machine, linked to the host by a veth (host 10.199.0.1,
/// outside 10.199.0.2), and namespaces playing containers. All are named
/// <c>bnt-&lt;random&gt;-*</c> and deleted in <see cref="Dispose"/> — which takes every link,
/// rule and sysctl inside them along — after killing, by PID, every process the test started.
/// </summary>
public sealed class NetLab : IDisposable
{
    public const string HostIp = "10.199.0.1", OutsideIp = "10.199.0.2";
    private readonly string _prefix = "bnt-" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<string> _namespaces = new();
    private readonly List<Process> _processes = new();

    public NetLab()
    {
        StateDirectory = Directory.CreateTempSubdirectory("berth-net-test-").FullName;
        try
        {
            Host = AddNamespace("host");
            Outside = AddNamespace("out");
            Ip("-n", Host, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", Outside);
            Ip("-n", Host, "addr", "add", HostIp + "/24", "dev", "uplink");
            Ip("-n", Host, "link", "set", "uplink", "up");
            Ip("-n", Outside, "addr", "add", OutsideIp + "/24", "dev", "eth0");
            Ip("-n", Outside, "link", "set", "eth0", "up");
            // A new namespace's ip_forward default depends on the kernel (1 on this one): start from
            // a host that does not forward, as a fresh machine does, so restoring it is tested.
            Sysctl.Write(HostPath, "net/ipv4/ip_forward", "0");
            // The outside's default route points at the host, like a LAN's router would not:
            // it cannot reach container subnets except through the host's NAT.
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string StateDirectory { get; }
    public string Host { get; }
    public string Outside { get; }
    public string HostPath => PathOf(Host);

    public static string PathOf(string ns) => "/run/netns/" + ns;

    public NetworkController OpenController(string? stateDirectory = null) =>
        NetworkController.Open(new NetworkControllerOptions { StateDirectory = stateDirectory ?? StateDirectory, HostNetnsPath = HostPath });

    public string AddNamespace(string role)
    {
        var name = $"{_prefix}-{role}";
        Ip("netns", "add", name);
        _namespaces.Add(name);
        Ip("-n", name, "link", "set", "lo", "up");
        return name;
    }

    /// <summary>Runs a command inside a namespace; returns exit code and stdout+stderr.</summary>
    public static (int Code, string Output) Run(string ns, params string[] command) => Exec("nsenter", [$"--net={PathOf(ns)}", .. command]);

    public static (int Code, string Output) Exec(string file, params string[] args) => ExecWithInput(null, file, args);

    public static (int Code, string Output) ExecWithInput(string? input, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        try
        {
            if (input is not null) p.StandardInput.Write(input);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command exited before reading its input (e.g. nc on a refused connection):
            // its exit code and output below tell what happened.
        }
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        // Reading to the end would wait as long as the command does: a client stuck on a connection that never answers.
        if (!p.WaitForExit(20_000)) { p.Kill(); p.WaitForExit(); throw new TimeoutException($"{file} {string.Join(' ', args)}"); }
        return (p.ExitCode, output.Result + err.Result);
    }

    public static void Ip(params string[] args)
    {
        var (code, output) = Exec("ip", args);
        if (code != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {output}");
    }

    /// <summary>Starts busybox httpd in a namespace serving one file whose content is <paramref name="token"/>.</summary>
    public void StartHttpd(string ns, int port, string token)
    {
        var root = Path.Combine(StateDirectory, "www-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "index.html"), token);
        var start = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { $"--net={PathOf(ns)}", "/bin/busybox", "httpd", "-f", "-p", port.ToString(), "-h", root }) start.ArgumentList.Add(a);
        var p = Process.Start(start)!;
        _processes.Add(p);
        // Wait until it listens (busybox's own netstat, inside the namespace).
        for (var i = 0; i < 100; i++)
        {
            if (Run(ns, "/bin/busybox", "netstat", "-ltn").Output.Contains($":{port} ")) return;
            if (p.HasExited) throw new InvalidOperationException($"httpd exited: {p.StandardError.ReadToEnd()}");
            Thread.Sleep(20);
        }
        throw new TimeoutException("httpd did not listen");
    }

    /// <summary>
    /// GETs <c>http://host:port/</c> from inside a namespace; returns the body, or null when there was
    /// no HTTP answer. (busybox nc with a hand-written request: Debian's static busybox wget segfaults.)
    /// </summary>
    public static string? Get(string ns, string url)
    {
        var uri = new Uri(url);
        var (_, output) = ExecWithInput("GET / HTTP/1.0\r\n\r\n", "nsenter", $"--net={PathOf(ns)}", "/bin/busybox", "nc", "-w", "2", uri.Host.Trim('[', ']'), uri.Port.ToString());
        if (!output.StartsWith("HTTP/1.", StringComparison.Ordinal)) return null;
        var body = output.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return body < 0 ? null : output[(body + 4)..];
    }

    public static string Nft(string ns) => Run(ns, "nft", "list", "ruleset").Output;

    /// <summary>
    /// `ip -o link` without what the kernel changes on its own, later: the operational state and
    /// the carrier flags of a bridge move (UNKNOWN, UP, DOWN; LOWER_UP, NO-CARRIER) some time
    /// after a port came or went, which made before/after comparisons flaky.
    /// </summary>
    public static string Links(string ns) => System.Text.RegularExpressions.Regex.Replace(
        Run(ns, "ip", "-o", "link").Output, @" state \S+|,?LOWER_UP|NO-CARRIER,?|,?M-DOWN", "");

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) { p.Kill(); p.WaitForExit(5000); } } catch (InvalidOperationException) { }
            p.Dispose();
        }
        foreach (var ns in _namespaces)
        {
            Exec("ip", "netns", "del", ns);
        }
        try { Directory.Delete(StateDirectory, recursive: true); } catch (IOException) { }
    }
}
