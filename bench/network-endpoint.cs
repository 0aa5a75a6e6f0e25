// Setup + teardown of one container endpoint (veth pair into the container's namespace, address,
// lo up, default route, attach to the bridge; then delete), with Berth's NetworkController
// (netlink from C#), with one published port as well (adds one `nft -f -` run each way), and the
// same steps as iproute2 commands, the way shell-based setups do it. Medians and ratios.
// Everything happens inside private namespaces (bnb-*), deleted at the end.
//
//   dotnet run bench/network-endpoint.cs -- [iterations=200]
#:project ../src/Berth.Network/Berth.Network.csproj
#:property PublishAot=false
using System.Diagnostics;
using Berth.Network;

var iterations = args.Length > 0 ? int.Parse(args[0]) : 200;
var prefix = "bnb-" + Guid.NewGuid().ToString("N")[..6];
var hostNs = prefix + "-host";
var containers = Enumerable.Range(0, 3).Select(i => $"{prefix}-c{i}").ToArray();
var state = Directory.CreateTempSubdirectory("berth-net-bench-").FullName;

static void Run(string file, params string[] a)
{
    var p = Process.Start(new ProcessStartInfo(file, a) { RedirectStandardError = true, RedirectStandardOutput = true })!;
    p.WaitForExit();
    if (p.ExitCode != 0) throw new Exception($"{file} {string.Join(' ', a)}: {p.StandardError.ReadToEnd()}");
}

static double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }

try
{
    foreach (var ns in containers.Prepend(hostNs)) Run("ip", "netns", "add", ns);
    using var controller = NetworkController.Open(new NetworkControllerOptions { StateDirectory = state, HostNetnsPath = "/run/netns/" + hostNs });
    var net = controller.EnsureDefaultNetwork();

    List<double> Measure(Func<int, Action> make)
    {
        var times = new List<double>();
        for (var i = 0; i < iterations + 10; i++)
        {
            var step = make(i);
            var w = Stopwatch.StartNew();
            step();
            if (i >= 10) times.Add(w.Elapsed.TotalMilliseconds); // 10 warm-up rounds
        }
        return times;
    }

    var setup = new List<double>();
    var teardown = new List<double>();
    var berth = Measure(i => () =>
    {
        var w = Stopwatch.StartNew();
        var ep = controller.CreateEndpoint(new EndpointCreateOptions { Network = "bridge", ContainerId = "bench", NetnsPath = "/run/netns/" + containers[i % 3] });
        var created = w.Elapsed.TotalMilliseconds;
        controller.DeleteEndpoint(ep.Id);
        if (i >= 10) { setup.Add(created); teardown.Add(w.Elapsed.TotalMilliseconds - created); }
    });
    var berthPort = Measure(i => () =>
    {
        var ep = controller.CreateEndpoint(new EndpointCreateOptions
        {
            Network = "bridge", ContainerId = "bench", NetnsPath = "/run/netns/" + containers[i % 3],
            Ports = [new PortMapping { Protocol = "tcp", HostPort = 20000 + i, ContainerPort = 80 }],
        });
        controller.DeleteEndpoint(ep.Id);
    });
    var iproute = Measure(i => () =>
    {
        var c = containers[i % 3];
        Run("ip", "-n", hostNs, "link", "add", "vbench", "mtu", net.Mtu.ToString(), "master", net.Bridge, "up", "type", "veth", "peer", "name", "eth0", "netns", c);
        Run("ip", "-n", c, "link", "set", "lo", "up");
        Run("ip", "-n", c, "addr", "add", "172.17.200.2/16", "dev", "eth0");
        Run("ip", "-n", c, "link", "set", "eth0", "up");
        Run("ip", "-n", c, "route", "add", "default", "via", net.Gateway.ToString());
        Run("ip", "-n", hostNs, "link", "del", "vbench");
    });

    double b = Median(berth), bp = Median(berthPort), ip = Median(iproute);
    Console.WriteLine($"endpoint setup+teardown, median of {iterations} (ms):");
    Console.WriteLine($"  berth (netlink)              {b,8:F3}");
    Console.WriteLine($"    of which setup             {Median(setup),8:F3}");
    Console.WriteLine($"    of which teardown (the kernel's veth unregister) {Median(teardown),8:F3}");
    Console.WriteLine($"  berth + 1 published port     {bp,8:F3}");
    Console.WriteLine($"  iproute2 commands, same steps {ip,7:F3}   (berth is {ip / b:F1}x faster)");
    controller.RemoveNetwork("bridge");
}
finally
{
    foreach (var ns in containers.Prepend(hostNs)) { try { Run("ip", "netns", "del", ns); } catch (Exception) { } }
    Directory.Delete(state, recursive: true);
}
