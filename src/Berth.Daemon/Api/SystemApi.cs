using System.Text;
using System.Text.Json;
using Berth.Daemon.Engine;
using Berth.Images.References;
using Berth.Images.Registry;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary><c>/_ping</c>, <c>/version</c>, <c>/info</c>, <c>/auth</c>.</summary>
public static class SystemApi
{
    public static async Task Ping(HttpContext context)
    {
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            await ErrorHandling.WriteAsync(context, 404, "page not found");
            return;
        }
        HttpResponse response = context.Response;
        response.Headers.CacheControl = "no-cache, no-store, must-revalidate";
        response.Headers.Pragma = "no-cache";
        response.Headers["Builder-Version"] = "1";
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = 2;
        if (HttpMethods.IsGet(context.Request.Method)) await response.Body.WriteAsync("OK"u8.ToArray(), context.RequestAborted);
    }

    public static Task Version(HttpContext context)
    {
        RequireGet(context);
        BerthEngine engine = Engine(context);
        var details = new Dictionary<string, string>
        {
            ["ApiVersion"] = ApiVersion.Current,
            ["MinAPIVersion"] = ApiVersion.Minimum,
            ["GitCommit"] = "",
            ["GoVersion"] = $".NET {Environment.Version}",
            ["Os"] = "linux",
            ["Arch"] = HostInfo.GoArch,
            ["KernelVersion"] = engine.Host.KernelVersion,
            ["Experimental"] = engine.Options.Experimental ? "true" : "false",
            ["BuildTime"] = "",
        };
        string runtime = RuntimeFinder.Find("berth-runtime") ?? "berth-runtime";
        var version = new SystemVersion
        {
            Components =
            [
                new ComponentVersion { Name = "Engine", Version = BerthEngine.Version, Details = details },
                new ComponentVersion { Name = "berth-runtime", Version = BerthEngine.Version, Details = new() { ["Path"] = runtime } },
            ],
            Version = BerthEngine.Version,
            ApiVersion = ApiVersion.Current,
            MinAPIVersion = ApiVersion.Minimum,
            GoVersion = details["GoVersion"],
            Arch = HostInfo.GoArch,
            KernelVersion = engine.Host.KernelVersion,
            Experimental = engine.Options.Experimental,
        };
        return JsonResults.WriteAsync(context, version, ApiJson.Context.SystemVersion);
    }

    public static Task Info(HttpContext context)
    {
        RequireGet(context);
        BerthEngine engine = Engine(context);
        HostInfo host = engine.Host;
        var options = engine.Options;
        var indexConfigs = new Dictionary<string, IndexInfo> { ["docker.io"] = new("docker.io", options.RegistryMirrors, true, true) };
        foreach (string r in options.InsecureRegistries) indexConfigs[r] = new IndexInfo(r, [], false, false);
        string runtimePath = RuntimeFinder.Find("berth-runtime") ?? "berth-runtime";
        var runtimes = new Dictionary<string, RuntimeInfo> { ["berth-runtime"] = new(runtimePath) };
        foreach (string other in new[] { "runc", "crun" })
            if (RuntimeFinder.Find(other) is { } p) runtimes[other] = new RuntimeInfo(p);
        foreach (var (name, added) in options.Runtimes)
            runtimes[name] = new RuntimeInfo(options.RuntimePath(name) ?? added.Path, added.Args.Count > 0 ? [.. added.Args] : null);
        bool v2 = host.CgroupVersion == "2";
        var (running, paused, stopped) = engine.Containers.Counts();
        var info = new SystemInfo
        {
            ID = engine.Id,
            Containers = running + paused + stopped,
            ContainersRunning = running,
            ContainersPaused = paused,
            ContainersStopped = stopped,
            Images = engine.Images.Count,
            Driver = "overlayfs",
            DriverStatus = [["driver-type", "berth overlay snapshotter (chain-ID layers, index=off)"], ["Snapshots", Path.Combine(options.DataRoot, "snapshots")]],
            // What this engine serves: the local volume driver, the bridge/host/ipvlan/macvlan/null network
            // drivers (bridge, ipvlan and macvlan only when berthd runs with networking), the json-file and local log drivers.
            Plugins = new PluginsInfo
            {
                Volume = ["local"],
                Network = engine.Network is null ? ["host", "null"] : ["bridge", "host", "ipvlan", "macvlan", "null"],
                Log = ["json-file", "local"],
            },
            MemoryLimit = true,
            SwapLimit = true,
            CpuCfsPeriod = true,
            CpuCfsQuota = true,
            CPUShares = true,
            CPUSet = true,
            PidsLimit = true,
            KernelMemory = ApiVersion.LessThan(context, "1.42") ? false : null,
            KernelMemoryTCP = ApiVersion.LessThan(context, "1.42") ? false : null,
            IPv4Forwarding = ReadFlag("/proc/sys/net/ipv4/ip_forward"),
            BridgeNfIptables = ApiVersion.LessThan(context, "1.49") ? ReadFlag("/proc/sys/net/bridge/bridge-nf-call-iptables") : null,
            BridgeNfIp6tables = ApiVersion.LessThan(context, "1.49") ? ReadFlag("/proc/sys/net/bridge/bridge-nf-call-ip6tables") : null,
            Debug = options.LogLevel == "debug",
            LoggingDriver = options.LogDriver,
            NFd = CountFds(),
            NGoroutines = System.Threading.ThreadPool.ThreadCount,
            SystemTime = engine.Time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", System.Globalization.CultureInfo.InvariantCulture),
            CgroupDriver = host.CgroupDriver,
            CgroupVersion = host.CgroupVersion,
            KernelVersion = host.KernelVersion,
            OperatingSystem = host.OperatingSystem,
            OSVersion = host.OSVersion,
            Architecture = host.Architecture,
            RegistryConfig = new RegistryServiceConfig
            {
                AllowNondistributableArtifactsCIDRs = ApiVersion.LessThan(context, "1.49") ? [] : null,
                AllowNondistributableArtifactsHostnames = ApiVersion.LessThan(context, "1.49") ? [] : null,
                InsecureRegistryCIDRs = ["127.0.0.0/8", "::1/128"],
                IndexConfigs = indexConfigs,
                Mirrors = options.RegistryMirrors,
            },
            NCPU = host.Cpus,
            MemTotal = host.MemTotal,
            DockerRootDir = options.DataRoot,
            HttpProxy = Environment.GetEnvironmentVariable("HTTP_PROXY") ?? "",
            HttpsProxy = Environment.GetEnvironmentVariable("HTTPS_PROXY") ?? "",
            NoProxy = Environment.GetEnvironmentVariable("NO_PROXY") ?? "",
            Name = host.Hostname,
            ServerVersion = BerthEngine.Version,
            Runtimes = runtimes,
            DefaultRuntime = options.DefaultRuntime,
            // Containers outlive the daemon by design (issue 6): live-restore is always on.
            LiveRestoreEnabled = true,
            SecurityOptions = SecurityOptions(options, v2),
            Labels = options.Labels,
            ExperimentalBuild = options.Experimental,
            Warnings = null,
        };
        return JsonResults.WriteAsync(context, info, ApiJson.Context.SystemInfo);
    }

    /// <summary>
    /// POST /auth (<c>docker login</c>): checks the credentials against the registry, as dockerd
    /// does, and stores nothing (the client keeps them). 401 with the registry's refusal when they
    /// are wrong.
    /// </summary>
    public static async Task Auth(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method)) throw ApiException.NotFound("page not found");
        AuthConfig? auth = await JsonResults.ReadAsync(context, ApiJson.Context.AuthConfig);
        if (auth is null) throw ApiException.BadRequest("invalid auth configuration: no body");
        RegistryCredential credential = RegistryAuth.ToCredential(auth) ?? throw ApiException.BadRequest("invalid auth configuration: no username");
        string registry = DockerConfigCredentials.NormalizeKey(string.IsNullOrEmpty(auth.ServerAddress) ? ImageReference.DefaultDomain : auth.ServerAddress);
        try
        {
            await Engine(context).Images.LoginAsync(registry, credential, context.RequestAborted);
        }
        catch (RegistryException e)
        {
            throw new ApiException(ApiException.StatusOf(e.Kind), e.Message, e);
        }
        await JsonResults.WriteAsync(context, new AuthResponse("Login Succeeded", ""), ApiJson.Context.AuthResponse);
    }

    /// <summary>
    /// dockerd's list: the seccomp profile, "name=userns" with --userns-remap, "name=cgroupns" when containers get a cgroup namespace
    /// of their own by default, "name=no-new-privileges" with --no-new-privileges.
    /// </summary>
    private static List<string> SecurityOptions(Configuration.DaemonOptions options, bool cgroupV2)
    {
        var list = new List<string> { "name=seccomp,profile=" + options.SeccompProfilePath };
        if (options.Remap is not null) list.Add("name=userns");
        if (options.CgroupnsModeFor(cgroupV2) == "private") list.Add("name=cgroupns");
        if (options.NoNewPrivileges) list.Add("name=no-new-privileges");
        return list;
    }

    internal static BerthEngine Engine(HttpContext context) => context.RequestServices.GetService(typeof(BerthEngine)) as BerthEngine
        ?? throw new InvalidOperationException("the engine is not registered");

    internal static void RequireGet(HttpContext context)
    {
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
            throw ApiException.NotFound("page not found");
    }

    private static bool ReadFlag(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim() == "1";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static int CountFds()
    {
        try
        {
            return Directory.GetFileSystemEntries("/proc/self/fd").Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}

/// <summary>Finds a runtime binary: next to berthd first (artifacts/bin), then on PATH.</summary>
public static class RuntimeFinder
{
    public static string? Find(string name) => Berth.Oci.ExecutableSearch.Find(name, firstDirectory: AppContext.BaseDirectory);
}
