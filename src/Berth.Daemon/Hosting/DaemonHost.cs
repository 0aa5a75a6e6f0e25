using System.Security.Cryptography.X509Certificates;
using Berth.Daemon.Api;
using Berth.Daemon.Configuration;
using Berth.Daemon.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Hosting;

/// <summary>
/// One running berthd: the data-root lock, the engine, Kestrel on the configured sockets and the
/// PID file. Started by Program (the binary) and by tests in-process alike. Dispose stops
/// Kestrel, then removes the sockets and the PID file and releases the lock, in that order, so
/// a new daemon can start as soon as this one is gone.
/// </summary>
public sealed partial class DaemonHost : IAsyncDisposable
{
    /// <summary>Go's http.DefaultMaxHeaderBytes, dockerd's limit on a request's line and headers together.</summary>
    public const int MaxRequestHeadBytes = 1 << 20;

    private readonly WebApplication _app;
    private readonly DataRootLock _lock;
    private readonly PidFile _pidFile;
    private readonly IReadOnlyList<ListenAddress> _listeners;
    private readonly ILogger _logger;
    private int _disposed;

    private DaemonHost(WebApplication app, BerthEngine engine, DataRootLock dataLock, PidFile pidFile, IReadOnlyList<ListenAddress> listeners, ILogger logger)
    {
        _app = app;
        Engine = engine;
        _lock = dataLock;
        _pidFile = pidFile;
        _listeners = listeners;
        _logger = logger;
    }

    public BerthEngine Engine { get; }

    /// <summary>The unix socket paths served.</summary>
    public IEnumerable<string> SocketPaths => _listeners.Where(l => l.Kind == ListenKind.Unix).Select(l => l.SocketPath!);

    /// <summary>Stopping starts when the host's lifetime is stopped (SIGTERM, SIGINT) or <see cref="DisposeAsync"/>.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <param name="time">The engine's clock (tests move it on); the system's when null.</param>
    public static async Task<DaemonHost> StartAsync(DaemonOptions options, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default, TimeProvider? time = null)
    {
        DaemonArgs.Validate(options);
        // --userns-remap is resolved before anything is made: a missing user, group or range stops the start.
        UsernsRemap? remap = null;
        string? remapWarning = null;
        if (options.UsernsRemapSetting is { } remapSetting)
            remap = UsernsRemap.Resolve(remapSetting, options.PasswdFile, options.GroupFile, options.SubuidFile, options.SubgidFile, out remapWarning);
        var listeners = options.Hosts.Select(h => ListenAddress.Parse(h, options.Tls)).ToList();
        Directory.CreateDirectory(options.DataRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        Directory.CreateDirectory(options.ExecRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);

        // The lock first: nothing below may touch the state of a data root another daemon owns.
        DataRootLock dataLock = DataRootLock.Acquire(options.DataRoot);
        if (remap is not null) options = RemappedDataRoot(options, remap);
        BerthEngine? engine = null;
        WebApplication? app = null;
        PidFile? pidFile = null;
        try
        {
            foreach (ListenAddress l in listeners.Where(l => l.Kind == ListenKind.Unix)) UnixSocket.Prepare(l.SocketPath!);

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
            {
                // No appsettings.json from the working directory, and no watching of it: a daemon
                // started in / watched the whole filesystem (a recursive inotify watch, every
                // container's files included), and any directory it ran in could reconfigure it.
                // berthd takes its settings from its flags and --config-file only.
                Args = ["--hostBuilder:reloadConfigOnChange=false"],
                ContentRootPath = AppContext.BaseDirectory,
            });
            foreach (var fileSource in builder.Configuration.Sources.OfType<Microsoft.Extensions.Configuration.FileConfigurationSource>().ToList())
                builder.Configuration.Sources.Remove(fileSource);
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
            });
            builder.Logging.SetMinimumLevel(options.LogLevel switch
            {
                "debug" => LogLevel.Debug,
                "warn" => LogLevel.Warning,
                "error" => LogLevel.Error,
                "fatal" => LogLevel.Critical,
                _ => LogLevel.Information,
            });
            // Kestrel's and routing's per-request chatter is noise in a daemon log.
            builder.Logging.AddFilter("Microsoft", options.LogLevel == "debug" ? LogLevel.Information : LogLevel.Warning);
            logging?.Invoke(builder.Logging);
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            // --shutdown-timeout: how long requests in progress (a load, a pull, a build) may go on once
            // stopping starts; containers are not stopped, they outlive berthd.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout < 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(options.ShutdownTimeout));
            if (listeners.Any(l => l.Kind == ListenKind.Tcp)) builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                k.Limits.MaxRequestBodySize = null; // load and import stream whole image archives
                k.Limits.MinRequestBodyDataRate = null;
                k.Limits.MinResponseDataRate = null;
                // Go's net/http (dockerd) reads up to 1 MiB of request line and headers; Kestrel's defaults
                // (8 KiB line, 32 KiB headers, 100 headers) refuse what docker clients send: a build's
                // X-Registry-Config carries every stored credential, a list's filters ride in the query.
                k.Limits.MaxRequestLineSize = MaxRequestHeadBytes;
                k.Limits.MaxRequestHeadersTotalSize = MaxRequestHeadBytes;
                k.Limits.MaxRequestHeaderCount = 4096;
                k.Limits.MaxRequestBufferSize = 2 * MaxRequestHeadBytes; // Kestrel requires it ≥ both limits above
                foreach (ListenAddress l in listeners)
                {
                    if (l.Kind == ListenKind.Unix) k.ListenUnixSocket(l.SocketPath!, lo => lo.Use(HijackMiddleware.Create(() => engine)));
                    else k.Listen(l.Address!, l.Port, lo =>
                    {
                        lo.UseHttps(Https(options.Tls));
                        lo.Use(HijackMiddleware.Create(() => engine));
                    });
                }
            });

            // The engine is made after Build (it logs through the host's loggers); requests resolve it later.
            builder.Services.AddSingleton(_ => engine!);
            app = builder.Build();
            engine = new BerthEngine(options, app.Services.GetRequiredService<ILoggerFactory>(), time);
            ApiRoutes.Map(app);
            // Containers that kept running while no daemon did are found again before the API opens.
            await engine.Containers.RestoreAsync(cancellationToken);
            await app.StartAsync(cancellationToken);
            foreach (ListenAddress l in listeners.Where(l => l.Kind == ListenKind.Unix)) UnixSocket.Secure(l.SocketPath!, options.SocketGroup);
            pidFile = PidFile.Write(options.PidFile ?? Path.Combine(options.ExecRoot, "berthd.pid"));
            ILogger logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("berthd");
            if (remapWarning is not null) LogRemapWarning(logger, remapWarning);
            if (remap is not null) LogRemap(logger, remap.User, remap.Group, remap.DirectoryName);
            LogListening(logger, BerthEngine.Version, string.Join(", ", listeners.Select(l => l.Text)), options.DataRoot, ApiVersion.Current);
            return new DaemonHost(app, engine, dataLock, pidFile, listeners, logger);
        }
        catch
        {
            if (app is not null)
            {
                try
                {
                    await app.StopAsync(CancellationToken.None);
                }
                catch (Exception)
                {
                    // Kestrel may not have started; cleanup below is what matters.
                }
                await app.DisposeAsync();
            }
            foreach (ListenAddress l in listeners.Where(l => l.Kind == ListenKind.Unix)) UnixSocket.Remove(l.SocketPath!);
            pidFile?.Dispose();
            engine?.Dispose();
            dataLock.Dispose();
            throw;
        }
    }

    private static HttpsConnectionAdapterOptions Https(TlsOptions tls)
    {
        var https = new HttpsConnectionAdapterOptions { ServerCertificate = X509Certificate2.CreateFromPemFile(tls.CertFile!, tls.KeyFile!) };
        if (tls.Verify)
        {
            X509Certificate2Collection ca = [];
            ca.ImportFromPemFile(tls.CaCertFile!);
            https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
            https.ClientCertificateValidation = (cert, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(cert);
            };
        }
        return https;
    }

    /// <summary>Waits until SIGTERM/SIGINT (or a stop from elsewhere).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        LogStopping(_logger);
        try
        {
            await _app.StopAsync(CancellationToken.None);
        }
        finally
        {
            await _app.DisposeAsync();
            foreach (string socket in SocketPaths) UnixSocket.Remove(socket);
            _pidFile.Dispose();
            Engine.Dispose();
            _lock.Dispose();
        }
    }

    /// <summary>
    /// As dockerd: everything of a remapped daemon lives in &lt;data-root&gt;/UID.GID (another mapping over the same
    /// data root finds none of this one's images, containers or volumes), and both directories are root:GID 0710 so
    /// that the remapped root can reach what is bind-mounted from there into its containers. Runtime state is in
    /// &lt;exec-root&gt;/UID.GID.
    /// </summary>
    private static DaemonOptions RemappedDataRoot(DaemonOptions options, UsernsRemap remap)
    {
        string root = Path.Combine(options.DataRoot, remap.DirectoryName);
        Directory.CreateDirectory(root);
        foreach (string dir in new[] { options.DataRoot, root })
        {
            Interop.Chown(dir, 0, remap.RootGid);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
        }
        // The runtime state goes aside as well (dockerd 20.10 makes <exec-root>.UID.GID; its tasks stay with containerd): a
        // start on another mapping, or without one, would otherwise take this mapping's running containers for what a
        // crash left and remove them.
        string execRoot = Path.Combine(options.ExecRoot, remap.DirectoryName);
        Directory.CreateDirectory(execRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        return options with
        {
            DataRoot = root,
            ExecRoot = execRoot,
            PidFile = options.PidFile ?? Path.Combine(options.ExecRoot, "berthd.pid"),
            Remap = remap,
        };
    }

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogRemapWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "User namespaces: ID ranges will be mapped to subuid/subgid ranges of: {User} (group {Group}); state in {Directory}")]
    private static partial void LogRemap(ILogger logger, string user, string group, string directory);

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "berthd {Version} listening on {Hosts} (data root {DataRoot}, API {ApiVersion})")]
    private static partial void LogListening(ILogger logger, string version, string hosts, string dataRoot, string apiVersion);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "berthd stopping")]
    private static partial void LogStopping(ILogger logger);
}
