using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Berth.Tests.Shared;

/// <summary>
/// Debian's Distribution registry (<c>/usr/bin/docker-registry serve config.yml</c>) on 127.0.0.1
/// with a free port, a temp storage directory and a temp config; killed by its PID and its
/// directory removed on Dispose.
/// </summary>
public sealed class RegistryProcess : IDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    private readonly TempDirectory _dir = new("registry");
    private readonly Process _process;

    /// <param name="authSection">YAML for the <c>auth:</c> key (indented two spaces), or null for none.</param>
    public RegistryProcess(string? authSection = null)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException(
                $"{Binary} is missing: the registry tests need Debian's Distribution registry (apt-get install -y docker-registry; .ci/run installs it)");
        Port = FreePort();
        string config = $"""
            version: 0.1
            log:
              level: error
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {_dir.Combine("data")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{Port}
            {(authSection is null ? "" : "auth:\n" + authSection)}
            """;
        string configPath = _dir.Combine("config.yml");
        File.WriteAllText(configPath, config);
        LogPath = _dir.Combine("registry.log");

        var start = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(configPath);
        _process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + Binary);
        var log = new StreamWriter(LogPath) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            WaitReady();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    /// <summary>The registry's storage root (filesystem driver).</summary>
    public string DataPath => _dir.Combine("data");

    public string LogPath { get; }

    private void WaitReady()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}: {ReadLog()}");
            try
            {
                using HttpResponseMessage r = http.GetAsync($"http://{Host}/v2/").GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException)
            {
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"docker-registry did not answer on {Host} within 15 s: {ReadLog()}");
    }

    private string ReadLog()
    {
        try
        {
            return File.ReadAllText(LogPath);
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        _dir.Dispose();
    }
}

/// <summary>One registry for the whole test collection.</summary>
public sealed class RegistryFixture : IDisposable
{
    private readonly Lazy<RegistryProcess> _registry = new(() => new RegistryProcess());

    /// <summary>Started on first use, so a missing binary fails the registry tests alone, with a clear message.</summary>
    public RegistryProcess Registry => _registry.Value;

    public void Dispose()
    {
        if (_registry.IsValueCreated) _registry.Value.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class RegistryCollection : ICollectionFixture<RegistryFixture>
{
    public const string Name = "registry";
}
