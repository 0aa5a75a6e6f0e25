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
    private Process _process = null!;

    /// <param name="authSection">YAML for the <c>auth:</c> key (indented two spaces), or null for none.</param>
    public RegistryProcess(string? authSection = null)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException(
                $"{Binary} is missing: the registry tests need Debian's Distribution registry (apt-get install -y docker-registry; .ci/run installs it)");
        string configPath = _dir.Combine("config.yml");
        LogPath = _dir.Combine("registry.log");
        var log = new StreamWriter(LogPath) { AutoFlush = true };
        // FreePort's port was free a moment ago, but something else may bind it before the
        // registry does: it then exits with "address already in use" and is started on another port.
        for (int attempt = 1; ; attempt++)
        {
            Port = FreePort();
            long logStart = new FileInfo(LogPath).Length;
            _process = Start(configPath, authSection, log);
            try
            {
                WaitReady();
                return;
            }
            catch (InvalidOperationException) when (attempt < 5 && AddressInUse(logStart))
            {
                _process.Dispose();
            }
            catch
            {
                Dispose();
                throw;
            }
        }
    }

    /// <summary>True when the registry has exited because its port was taken (its output since <paramref name="logStart"/> says so).</summary>
    private bool AddressInUse(long logStart)
    {
        if (!_process.HasExited) return false;
        _process.WaitForExit(); // its redirected output has all been written to the log
        string text = ReadLog();
        return text.Length > logStart && text[(int)logStart..].Contains("address already in use", StringComparison.OrdinalIgnoreCase);
    }

    private Process Start(string configPath, string? authSection, StreamWriter log)
    {
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
        File.WriteAllText(configPath, config);

        var start = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(configPath);
        Process process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + Binary);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public int Port { get; private set; }
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
            catch (TaskCanceledException)
            {
                // HttpClient's timeout: the port accepted but nothing answered in time (a registry
                // still starting on a loaded machine — seen once in CI — or someone else's socket
                // on a port the registry then failed to bind, which the next turn's HasExited finds).
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
