using System.Net;
using System.Net.Sockets;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>What the logging drivers' tests share: options refused at create, and a server that is not there.</summary>
internal static class LogDriverChecks
{
    /// <summary>Each set of <c>--log-opt</c> values is refused at create, with an error that contains the one given.</summary>
    public static void AssertRefusedAtCreate(DockerCli docker, string driver, IEnumerable<(string[] Options, string Error)> refused)
    {
        foreach (var (options, error) in refused)
        {
            var (exit, _, stderr) = docker.Run(["create", "--log-driver", driver, .. options.SelectMany(o => new[] { "--log-opt", o }), "busybox"]);
            Assert.True(exit != 0 && stderr.Contains(error, StringComparison.Ordinal), $"{string.Join(' ', options)}: exit {exit}: {stderr}");
        }
    }

    /// <inheritdoc cref="AssertRefusedAtCreate(DockerCli, string, IEnumerable{ValueTuple{string[], string}})"/>
    public static void AssertRefusedAtCreate(DockerCli docker, string driver, IEnumerable<(string Option, string Error)> refused)
        => AssertRefusedAtCreate(docker, driver, refused.Select(r => (new[] { r.Option }, r.Error)));

    /// <summary>A loopback TCP port bound and not listening: a connection to it is refused while the socket lives.</summary>
    public static Socket ClosedTcpPort(out int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        return socket;
    }
}
