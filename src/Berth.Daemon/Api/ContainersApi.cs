using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Containers;
using Berth.Daemon.Monitor;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>/containers/…</c> (all but attach, which takes the raw connection: see <see cref="HijackMiddleware"/>).
/// </summary>
public static class ContainersApi
{
    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        string method = context.Request.Method;
        bool get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        bool post = HttpMethods.IsPost(method);
        if (get && rest == "json") return List(context);
        if (post && rest == "create") return Create(context);
        if (post && rest == "prune") return Prune(context);
        // A DELETE's whole path is the name: a link's (parent/alias) names the linked container (docker rm app/db)
        // or, with link=1, the link itself (docker rm --link app/db).
        if (HttpMethods.IsDelete(method) && rest.Length > 0) return QueryArgs.Bool(context, "link") ? RemoveLink(context, rest) : Remove(context, rest);
        // The action is the last segment: a link's name (parent/alias) names its container too, as in
        // dockerd's routes ({name:.*}/json).
        int slash = rest.LastIndexOf('/');
        if (slash <= 0) throw ApiException.NotFound("page not found");
        string id = rest[..slash], action = rest[(slash + 1)..];
        return (action, get, post) switch
        {
            ("json", true, _) => Inspect(context, id),
            ("start", _, true) => Start(context, id),
            ("stop", _, true) => Stop(context, id),
            ("restart", _, true) => Restart(context, id),
            ("kill", _, true) => Kill(context, id),
            ("pause", _, true) => Pause(context, id, true),
            ("unpause", _, true) => Pause(context, id, false),
            ("rename", _, true) => Rename(context, id),
            ("wait", _, true) => Wait(context, id),
            ("resize", _, true) => Resize(context, id),
            ("logs", true, _) => Logs(context, id),
            ("top", true, _) => Top(context, id),
            ("stats", true, _) => Stats(context, id),
            ("exec", _, true) => ExecApi.Create(context, id),
            ("attach", _, true) => throw ApiException.BadRequest("attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)"),
            ("update", _, true) => Update(context, id),
            ("archive", _, _) => ContainerFilesApi.Archive(context, id),
            ("export", true, _) => ContainerFilesApi.Export(context, id),
            ("changes", true, _) => ContainerFilesApi.Changes(context, id),
            _ => throw ApiException.NotFound("page not found"),
        };
    }

    internal static ContainerService Containers(HttpContext context) => SystemApi.Engine(context).Containers;

    // ---- create, list, inspect -----------------------------------------------------------------

    private static async Task Create(HttpContext context)
    {
        ContainerCreateBody? body = await JsonResults.ReadAsync(context, ApiJson.Context.ContainerCreateBody);
        if (body is null) throw ApiException.BadRequest("Config cannot be empty in order to create a container");
        if (body.Healthcheck is { } health && ApiVersion.LessThan(context, "1.44")) health.StartInterval = 0; // added in API 1.44, ignored before (dockerd)
        if (ApiVersion.LessThan(context, "1.45") && (body.HostConfig?.Mounts ?? []).Any(m => !string.IsNullOrEmpty(m.VolumeOptions?.Subpath)))
            throw ApiException.BadRequest("VolumeOptions.Subpath needs API v1.45 or newer"); // dockerd's check
        // A bind of one part ("/data": docker-py's volumes=["/data"]) is, as moby's parser reads it, an anonymous volume there.
        if (body.HostConfig?.Binds is { } binds && binds.Any(b => !b.Contains(':')))
        {
            foreach (string path in binds.Where(b => !b.Contains(':'))) (body.Volumes ??= [])[path] = ContainerService.EmptyObject;
            body.HostConfig.Binds = [.. binds.Where(b => b.Contains(':'))];
        }
        string? name = QueryArgs.String(context, "name");
        string? platform = QueryArgs.String(context, "platform") is { Length: > 0 } p ? p : null;
        ContainerCreateResponse created = await Containers(context).CreateAsync(name, body, context.RequestAborted, platform);
        await JsonResults.WriteAsync(context, created, ApiJson.Context.ContainerCreateResponse, 201);
    }

    private static async Task Update(HttpContext context, string id)
    {
        ContainerUpdateBody? body = await JsonResults.ReadAsync(context, ApiJson.Context.ContainerUpdateBody);
        if (body is null) throw ApiException.BadRequest("invalid update: no body");
        List<string> warnings = await Containers(context).UpdateAsync(id, body);
        await JsonResults.WriteAsync(context, new ContainerUpdateResponse(warnings), ApiJson.Context.ContainerUpdateResponse);
    }

    /// <summary>Resolves image names to IDs through the store, each name once per call of the list.</summary>
    internal static Func<string, string?> ImageIdResolver(ContainerService service)
    {
        var resolved = new Dictionary<string, string?>(StringComparer.Ordinal);
        return name =>
        {
            if (resolved.TryGetValue(name, out string? id)) return id;
            try
            {
                id = service.Images.Get(name).Id.Value;
            }
            catch (Berth.Images.ImagesException)
            {
                id = null;
            }
            return resolved[name] = id;
        };
    }

    private static Task List(HttpContext context)
    {
        bool all = QueryArgs.Bool(context, "all"), withSizes = QueryArgs.Bool(context, "size");
        // dockerd answers a limit that is no integer with strconv's words, as a 500; a client's mistake here is a 400.
        string? limitText = QueryArgs.String(context, "limit");
        int limit = limitText is null ? -1
            : int.TryParse(limitText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int l) ? l
            : throw ApiException.BadRequest($"invalid value for limit: strconv.Atoi: parsing \"{limitText}\": invalid syntax");
        var filters = QueryArgs.Filters(context, "id", "name", "status", "label", "ancestor", "exited", "before", "since", "network", "volume", "health", "isolation", "is-task", "publish", "expose");
        ContainerFilters.CheckValues(filters);
        ContainerService service = Containers(context);
        List<ContainerEntry> entries = service.Snapshot().OrderByDescending(e => e.Record.Created, StringComparer.Ordinal).ToList();
        if (!all && limit <= 0 && !filters.ContainsKey("status") && !filters.ContainsKey("exited")) entries = entries.Where(e => e.Record.State.Running).ToList();
        DateTimeOffset now = service.Time.GetUtcNow();
        var result = new List<ContainerSummaryJson>();
        Dictionary<string, List<string>> linkNames = service.LinkNamesByTarget();
        Func<string, string?> imageIdOf = ImageIdResolver(service);
        string engineId = SystemApi.Engine(context).Id;
        foreach (ContainerEntry e in entries)
        {
            ContainerRecord r = e.Record;
            List<string>? names = linkNames.GetValueOrDefault(r.Id);
            if (!ContainerFilters.Matches(r, filters, service, names)) continue;
            ContainerSummaryJson summary = Summary(r, engineId, now, names, imageIdOf);
            if (withSizes && service.Sizes(e) is var (rw, rootFs)) summary = summary.WithSizes(rw, rootFs);
            result.Add(summary);
            if (limit > 0 && result.Count >= limit) break;
        }
        return JsonResults.WriteAsync(context, result, ApiJson.Context.IReadOnlyListContainerSummaryJson);
    }

    /// <summary>One container of GET /containers/json; <paramref name="linkNames"/> are the names its links give it
    /// (<c>/parent/alias</c>), listed with its own name in dockerd's order, sorted.</summary>
    /// <param name="imageIdOf">The image ID a name resolves to now (null: none; see <see cref="ImageIdResolver"/>):
    /// a name that no longer gives the container's image is shown as the image's ID, as dockerd's list does
    /// (after an rmi -f, or the name tagged onto another image).</param>
    internal static ContainerSummaryJson Summary(ContainerRecord r, string engineId, DateTimeOffset now, IReadOnlyList<string>? linkNames = null, Func<string, string?>? imageIdOf = null) => new()
    {
        Id = r.Id,
        Names = linkNames is null ? [r.Name] : [.. linkNames.Append(r.Name).Order(StringComparer.Ordinal)],
        Image = string.IsNullOrEmpty(r.Config.Image) || (imageIdOf is not null && r.Config.Image != r.ImageId && imageIdOf(r.Config.Image) != r.ImageId)
            ? r.ImageId : r.Config.Image,
        ImageID = r.ImageId,
        Command = CommandLine(r),
        Created = DateTimeOffset.Parse(r.Created, CultureInfo.InvariantCulture).ToUnixTimeSeconds(),
        Labels = r.Config.Labels ?? [],
        State = r.State.Status,
        Status = StatusText(r.State, now),
        HostConfig = new SummaryHostConfig(string.IsNullOrEmpty(r.HostConfig.NetworkMode) ? "default" : r.HostConfig.NetworkMode),
        NetworkSettings = new SummaryNetworkSettings(Networks(r, engineId, summary: true)),
        Ports = SummaryPorts(r),
        Mounts = MountPoints(r),
    };

    /// <summary>The exposed ports, but none while the container's ports are on a macvlan or ipvlan endpoint (dockerd shows none then).</summary>
    private static IEnumerable<string> ExposedPortsShown(ContainerRecord r)
        => (r.Networks ?? []).Any(n => n.Connected && n.PortsUnsupported) ? [] : r.Config.ExposedPorts?.Keys ?? Enumerable.Empty<string>();

    internal static List<SummaryPortJson> SummaryPorts(ContainerRecord r)
    {
        var ports = new List<SummaryPortJson>();
        foreach (PublishedPort p in (r.Networks ?? []).SelectMany(n => n.Ports))
            ports.Add(new SummaryPortJson { IP = p.HostIp, PrivatePort = p.ContainerPort, PublicPort = p.HostPort, Type = p.Protocol });
        foreach (string exposed in ExposedPortsShown(r))
        {
            string[] parts = exposed.Split('/');
            // A key such as "70000/tcp" (dockerd takes it at create) is left out: PrivatePort is a uint16 to
            // docker clients, and one such value fails their whole `docker ps`.
            if (ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) && !ports.Any(p => p.PrivatePort == port))
                ports.Add(new SummaryPortJson { PrivatePort = port, Type = parts.Length > 1 ? parts[1] : "tcp" });
        }
        return ports;
    }

    /// <param name="summary">For the list and df: dockerd's container view copies the addresses and IPAMConfig
    /// of each endpoint, not its Aliases, Links or DNSNames (null there).</param>
    private static Dictionary<string, EndpointSettingsJson> Networks(ContainerRecord r, string engineId, bool summary = false)
    {
        // Every network the container belongs to; the endpoint's fields are empty while it does not run (dockerd's cleanOperationalData).
        var result = new Dictionary<string, EndpointSettingsJson>(StringComparer.Ordinal);
        // --network none or host: dockerd lists that network, with its ID once the container has
        // started (its sandbox joined it), and no endpoint or address.
        if (r.HostConfig.NetworkMode is "none" or "host" && r.Networks is null or { Count: 0 })
            result[r.HostConfig.NetworkMode] = new EndpointSettingsJson
            {
                NetworkID = r.State.StartedAt == ContainerStateJson.ZeroTime ? "" : NetworksApi.PredefinedId(engineId, r.HostConfig.NetworkMode),
            };
        foreach (ContainerNetworkState n in r.Networks ?? [])
            result[n.NetworkName] = new EndpointSettingsJson
            {
                IPAMConfig = n.RequestedAddress is null && n.RequestedAddress6 is null ? null
                    : JsonSerializer.SerializeToElement(new EndpointIpamJson(n.RequestedAddress, n.RequestedAddress6), ApiJson.Context.EndpointIpamJson),
                NetworkID = n.NetworkId,
                EndpointID = n.EndpointId,
                Gateway = n.Gateway,
                IPAddress = n.IPAddress,
                IPPrefixLen = n.IPPrefixLen,
                IPv6Gateway = n.IPv6Gateway,
                GlobalIPv6Address = n.GlobalIPv6Address,
                GlobalIPv6PrefixLen = n.GlobalIPv6PrefixLen,
                MacAddress = n.MacAddress,
                Aliases = summary ? null : n.Aliases,
                Links = summary ? null : n.Links,
                DNSNames = summary ? null : n.DnsNames,
            };
        return result;
    }

    private static NetworkSettingsJson NetworkSettings(ContainerRecord r, string engineId)
    {
        var ports = new Dictionary<string, IReadOnlyList<PortBindingJson>?>(StringComparer.Ordinal);
        foreach (string exposed in ExposedPortsShown(r)) ports[exposed] = null;
        foreach (var group in (r.Networks ?? []).SelectMany(n => n.Ports).GroupBy(p => $"{p.ContainerPort}/{p.Protocol}"))
            ports[group.Key] = group.Select(p => new PortBindingJson(p.HostIp, p.HostPort.ToString(CultureInfo.InvariantCulture))).ToList();
        // The top-level address fields are the default bridge's, as dockerd's: empty for a container
        // on user networks only.
        ContainerNetworkState? n = r.Networks?.FirstOrDefault(x => x.Connected && x.NetworkName == "bridge");
        return new NetworkSettingsJson
        {
            SandboxKey = r.State.Running && r.State.Pid > 0 ? $"/proc/{r.State.Pid}/ns/net" : "",
            Ports = ports,
            EndpointID = n?.EndpointId ?? "",
            Gateway = n?.Gateway ?? "",
            IPAddress = n?.IPAddress ?? "",
            IPPrefixLen = n?.IPPrefixLen ?? 0,
            MacAddress = n?.MacAddress ?? "",
            GlobalIPv6Address = n?.GlobalIPv6Address ?? "",
            GlobalIPv6PrefixLen = n?.GlobalIPv6PrefixLen ?? 0,
            IPv6Gateway = n?.IPv6Gateway ?? "",
            Networks = Networks(r, engineId),
        };
    }

    /// <summary>dockerd's list Command: the path, then the arguments, each one with a space in it between single quotes.</summary>
    private static string CommandLine(ContainerRecord r)
    {
        List<string> args = [.. r.Config.Entrypoint ?? [], .. r.Config.Cmd ?? []];
        return string.Join(' ', args.Select((a, i) => i > 0 && a.Contains(' ', StringComparison.Ordinal) ? "'" + a + "'" : a));
    }

    /// <summary>Docker's human status: "Up 3 seconds", "Up 2 minutes (Paused)", "Up 5 seconds (health: starting)", "Up 1 minute (healthy)", "Exited (0) 5 seconds ago", "Created".</summary>
    internal static string StatusText(ContainerStateJson s, DateTimeOffset now)
    {
        if (s.Running)
        {
            string up = "Up " + HumanDuration(now - Parse(s.StartedAt));
            if (s.Paused) return up + " (Paused)";
            if (s.Health is { } h) return up + (h.Status == HealthStatus.Starting ? " (health: starting)" : $" ({h.Status})");
            return up;
        }
        if (s.Status == "exited")
            return $"Exited ({s.ExitCode}) {HumanDuration(now - Parse(s.FinishedAt))} ago";
        if (s.Status == "dead") return "Dead";
        return "Created";
    }

    private static DateTimeOffset Parse(string time) => DateTimeOffset.Parse(time, CultureInfo.InvariantCulture);

    /// <summary>Go's units.HumanDuration.</summary>
    internal static string HumanDuration(TimeSpan d)
    {
        double seconds = d.TotalSeconds;
        if (seconds < 1) return "Less than a second";
        if (seconds < 2) return "1 second";
        if (seconds < 60) return $"{(int)seconds} seconds";
        double minutes = d.TotalMinutes;
        if (minutes < 2) return "About a minute";
        if (minutes < 60) return $"{(int)minutes} minutes";
        double hours = Math.Round(d.TotalHours);
        if (hours < 2) return "About an hour";
        if (hours < 48) return $"{(int)hours} hours";
        if (hours < 24 * 7 * 2) return $"{(int)(hours / 24)} days";
        if (hours < 24 * 30 * 2) return $"{(int)(hours / 24 / 7)} weeks";
        if (hours < 24 * 365 * 2) return $"{(int)(hours / 24 / 30)} months";
        return $"{(int)(hours / 24 / 365)} years";
    }

    private static IReadOnlyList<MountPointJson> MountPoints(ContainerRecord r)
    {
        var list = new List<MountPointJson>();
        foreach (string bind in r.HostConfig.Binds ?? [])
        {
            if (ContainerRequestCheck.IsVolumeBind(bind)) continue; // listed with the volumes below
            var (source, destination, readOnly, propagation) = ContainerRequestCheck.ParseBind(bind);
            string[] p = bind.Split(':');
            list.Add(new MountPointJson("bind", source, destination, p.Length > 2 ? p[2] : "", !readOnly, propagation));
        }
        foreach (MountJson m in r.HostConfig.Mounts ?? [])
            if (m.Type != "volume") list.Add(new MountPointJson(m.Type, m.Source, m.Target, "", !m.ReadOnly, m.Type == "bind" ? ContainerRequestCheck.BindPropagation(m) : ""));
        foreach (Berth.Images.Engine.BindMount b in r.InheritedBinds ?? [])
            list.Add(new MountPointJson("bind", b.Source, b.Destination, "", !b.ReadOnly, b.Propagation));
        foreach (ContainerVolumeMount v in r.Volumes ?? [])
            list.Add(new MountPointJson("volume", v.Source, v.Destination, v.Mode, !v.ReadOnly, "") { Name = v.Name, Driver = Volumes.VolumeService.LocalDriver });
        return list;
    }

    private static Task Inspect(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        ContainerRecord r = entry.Record;
        string dir = service.Store.DirectoryOf(r.Id);
        IReadOnlyList<string> args = (r.Config.Entrypoint ?? []).Concat(r.Config.Cmd ?? []).ToList();
        (long Rw, long RootFs)? size = QueryArgs.Bool(context, "size") ? service.Sizes(entry) : null;
        var result = new ContainerInspectJson
        {
            Id = r.Id,
            Created = r.Created,
            Path = args.Count > 0 ? args[0] : "",
            Args = args.Skip(1).ToList(),
            State = r.State,
            Image = r.ImageId,
            ResolvConfPath = Path.Combine(dir, "resolv.conf"),
            HostnamePath = Path.Combine(dir, "hostname"),
            HostsPath = Path.Combine(dir, "hosts"),
            // As dockerd: only json-file's path is shown; the local driver's files are not an API.
            LogPath = service.LogOf(r)?.Format == LogFormat.JsonFile ? service.LogPath(r.Id) : "",
            Name = r.Name,
            RestartCount = r.RestartCount,
            ExecIDs = service.LiveExecIds(entry),
            HostConfig = r.HostConfig,
            GraphDriver = new GraphDriverJson("overlayfs", new Dictionary<string, string> { ["MergedDir"] = service.RootfsDirectory(r.Id) }),
            SizeRw = size?.Rw,
            SizeRootFs = size?.RootFs,
            Mounts = MountPoints(r),
            Config = r.Config,
            NetworkSettings = NetworkSettings(r, SystemApi.Engine(context).Id),
        };
        return JsonResults.WriteAsync(context, result, ApiJson.Context.ContainerInspectJson);
    }

    // ---- lifecycle -----------------------------------------------------------------------------

    private static async Task Start(HttpContext context, string id)
    {
        if (context.Request.ContentLength is > 0)
        {
            // API < 1.24 took a HostConfig here; dockerd refuses it since 1.24.
            using var doc = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.EnumerateObject().Any())
                throw ApiException.BadRequest("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24");
        }
        bool started = await Containers(context).StartAsync(id, context.RequestAborted);
        context.Response.StatusCode = started ? 204 : 304;
    }

    private static int? Timeout(HttpContext context)
    {
        string? t = QueryArgs.String(context, "t") ?? QueryArgs.String(context, "timeout");
        if (t is null) return null;
        return int.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : throw ApiException.BadRequest($"invalid value for t: {t}");
    }

    private static async Task Stop(HttpContext context, string id)
    {
        bool stopped = await Containers(context).StopAsync(id, Timeout(context), QueryArgs.String(context, "signal"), context.RequestAborted);
        context.Response.StatusCode = stopped ? 204 : 304;
    }

    private static async Task Restart(HttpContext context, string id)
    {
        await Containers(context).RestartAsync(id, Timeout(context), QueryArgs.String(context, "signal"), context.RequestAborted);
        context.Response.StatusCode = 204;
    }

    private static async Task Kill(HttpContext context, string id)
    {
        await Containers(context).KillAsync(id, QueryArgs.String(context, "signal"));
        context.Response.StatusCode = 204;
    }

    private static async Task Pause(HttpContext context, string id, bool pause)
    {
        await Containers(context).PauseAsync(id, pause, context.RequestAborted);
        context.Response.StatusCode = 204;
    }

    private static async Task Rename(HttpContext context, string id)
    {
        await Containers(context).RenameAsync(id, QueryArgs.String(context, "name") ?? "");
        context.Response.StatusCode = 204;
    }

    private static async Task Remove(HttpContext context, string id)
    {
        await Containers(context).RemoveAsync(id, QueryArgs.Bool(context, "force"), context.RequestAborted, removeVolumes: QueryArgs.Bool(context, "v"));
        context.Response.StatusCode = 204;
    }

    private static async Task RemoveLink(HttpContext context, string name)
    {
        await Containers(context).RemoveLinkAsync(name);
        context.Response.StatusCode = 204;
    }

    private static async Task Prune(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "until", "label", "label!");
        ContainerService service = Containers(context);
        // label! (dockerd's prune filter: the label is absent or has another value) is not a list filter.
        List<string> notLabels = filters.Remove("label!", out List<string>? nl) ? nl : [];
        var (deleted, reclaimed) = await service.PruneAsync(
            r => ContainerFilters.Matches(r, filters, service) && !notLabels.Any(l => ContainerFilters.LabelMatches(l, r.Config.Labels)),
            context.RequestAborted);
        await JsonResults.WriteAsync(context, new ContainersPruneReport(deleted.Count > 0 ? deleted : null, reclaimed), ApiJson.Context.ContainersPruneReport);
    }

    /// <summary>
    /// Headers go at once (dockerd flushes them so a client knows the wait is registered before it
    /// starts the container), the status when the condition is met.
    /// </summary>
    private static async Task Wait(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        string condition = QueryArgs.String(context, "condition") ?? "not-running";
        if (condition is not ("not-running" or "next-exit" or "removed")) throw ApiException.BadRequest($"invalid condition: \"{condition}\"");
        Task<WaitResponse> waiting = service.WaitAsync(entry, condition, context.RequestAborted);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.StartAsync(context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        WaitResponse result = await waiting;
        await context.Response.Body.WriteAsync(JsonResults.Line(result, ApiJson.Context.WaitResponse), context.RequestAborted);
    }

    private static async Task Resize(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        (ushort h, ushort w) = ResizeArgs(context);
        if (!entry.Record.State.Running) throw ApiException.Conflict($"Container {entry.Record.Id} is not running");
        // A container that exits as the resize comes: dockerd's 409, not a 500.
        AttachConnection connection;
        try
        {
            connection = await AttachConnection.ConnectAsync(service.MonitorDirectory(entry.Record.Id), context.RequestAborted);
        }
        catch (IOException)
        {
            throw ApiException.Conflict($"Container {entry.Record.Id} is not running");
        }
        await using (connection)
            if (!await connection.TryResizeAsync(h, w, context.RequestAborted))
                throw ApiException.Conflict($"Container {entry.Record.Id} is not running");
        service.PublishEvent(entry.Record, "resize", ("height", h.ToString(CultureInfo.InvariantCulture)), ("width", w.ToString(CultureInfo.InvariantCulture)));
        context.Response.StatusCode = 200;
    }

    internal static (ushort H, ushort W) ResizeArgs(HttpContext context)
    {
        static ushort Parse(string? v, string name) => ushort.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out ushort n)
            ? n : throw ApiException.BadRequest($"invalid {name} value: `{v}`");
        return (Parse(QueryArgs.String(context, "h"), "h"), Parse(QueryArgs.String(context, "w"), "w"));
    }

    // ---- logs ----------------------------------------------------------------------------------

    private static async Task Logs(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        bool stdout = QueryArgs.Bool(context, "stdout"), stderr = QueryArgs.Bool(context, "stderr");
        if (!stdout && !stderr) throw ApiException.BadRequest("Bad parameters: you must choose at least one stream");
        LogLocation log = service.LogOf(entry.Record) ?? throw ApiException.NotImplemented("configured logging driver does not support reading");
        bool follow = QueryArgs.Bool(context, "follow"), timestamps = QueryArgs.Bool(context, "timestamps"), details = QueryArgs.Bool(context, "details");
        DateTimeOffset? since = UnixTime(QueryArgs.String(context, "since"), "since");
        DateTimeOffset? until = UnixTime(QueryArgs.String(context, "until"), "until");
        string tailText = QueryArgs.String(context, "tail") ?? "all";
        int tail = tailText == "all" ? -1 : int.TryParse(tailText, NumberStyles.None, CultureInfo.InvariantCulture, out int t) ? t : -1;
        bool tty = entry.Record.Config.Tty;

        context.Response.StatusCode = 200;
        context.Response.ContentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        await context.Response.StartAsync(context.RequestAborted);
        Stream body = context.Response.Body;
        byte[] header = new byte[8];
        // Following stops once the container has stopped and its log has been read to the end.
        Func<bool> stopped = () => !entry.Record.State.Running || entry.Removed;
        await foreach (LogEntry e in LogReader.ReadAsync(log, since, until, tail, follow, stopped, context.RequestAborted))
        {
            int stream = e.Stream == "stderr" ? 2 : 1;
            if ((stream == 1 && !stdout) || (stream == 2 && !stderr)) continue;
            ReadOnlyMemory<byte> payload = e.Line;
            // dockerd's order: the timestamp, then the attributes, then the line; one copy per entry.
            string prefix = (timestamps ? e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'00Z' ", CultureInfo.InvariantCulture) : "")
                + (details ? DetailsPrefix(e.Attributes) : "");
            if (prefix.Length > 0)
            {
                byte[] joined = new byte[Encoding.UTF8.GetByteCount(prefix) + e.Line.Length];
                int n = Encoding.UTF8.GetBytes(prefix, joined);
                e.Line.Span.CopyTo(joined.AsSpan(n));
                payload = joined;
            }
            if (!tty)
            {
                header[0] = (byte)stream;
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)payload.Length);
                await body.WriteAsync(header, context.RequestAborted);
            }
            await body.WriteAsync(payload, context.RequestAborted);
            if (follow) await body.FlushAsync(context.RequestAborted);
        }
    }

    /// <summary>
    /// <c>docker logs --details</c>: an entry's attributes as dockerd writes them before its line, <c>k=v,k2=v2 </c>
    /// sorted by key, each part escaped as Go's url.QueryEscape does; a lone space when it has none.
    /// </summary>
    internal static string DetailsPrefix(IReadOnlyList<KeyValuePair<string, string>>? attributes)
        => string.Join(',', (attributes ?? []).OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => QueryEscape(a.Key) + "=" + QueryEscape(a.Value))) + " ";

    /// <summary>Go's url.QueryEscape: unreserved bytes (A-Z a-z 0-9 - _ . ~) stay, a space becomes +, every other UTF-8 byte %XX.</summary>
    internal static string QueryEscape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            if (b is (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~')
                sb.Append((char)b);
            else if (b == ' ') sb.Append('+');
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>Docker's since/until: unix seconds with an optional fraction (the CLI converts durations and dates).</summary>
    internal static DateTimeOffset? UnixTime(string? text, string name)
    {
        if (string.IsNullOrEmpty(text) || text == "0") return null;
        string[] parts = text.Split('.', 2);
        if (!long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long seconds))
            throw ApiException.BadRequest($"invalid value for {name}: {text}");
        long nanos = 0;
        if (parts.Length == 2)
        {
            string frac = (parts[1] + "000000000")[..9];
            if (!long.TryParse(frac, NumberStyles.None, CultureInfo.InvariantCulture, out nanos)) throw ApiException.BadRequest($"invalid value for {name}: {text}");
        }
        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
    }

    // ---- top, stats ----------------------------------------------------------------------------

    private static async Task Top(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        if (!entry.Record.State.Running) throw ApiException.Conflict($"Container {entry.Record.Id} is not running");
        string psArgs = QueryArgs.String(context, "ps_args") ?? "-ef";
        ContainerTopResponse top = await service.TopAsync(entry, psArgs);
        await JsonResults.WriteAsync(context, top, ApiJson.Context.ContainerTopResponse);
    }

    private static async Task Stats(HttpContext context, string id)
    {
        ContainerService service = Containers(context);
        ContainerEntry entry = service.Find(id);
        bool stream = !context.Request.Query.ContainsKey("stream") || QueryArgs.Bool(context, "stream");
        bool oneShot = QueryArgs.Bool(context, "one-shot");
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        if (!stream && !entry.Record.State.Running)
        {
            await context.Response.Body.WriteAsync(JsonResults.Line(ContainerStats.Stopped(entry.Record), ApiJson.Context.StatsJson), context.RequestAborted);
            return;
        }
        bool ownNetwork = service.HasOwnNetwork(entry.Record);
        StatsJson? previous = null;
        do
        {
            StatsJson sample = ContainerStats.Sample(entry.Record, previous, service.Time.GetUtcNow(), ownNetwork);
            if (previous is null && !oneShot && !stream)
            {
                // One sample with a meaningful precpu: dockerd takes two a second apart.
                await Task.Delay(TimeSpan.FromSeconds(1), context.RequestAborted);
                previous = sample;
                sample = ContainerStats.Sample(entry.Record, previous, service.Time.GetUtcNow(), ownNetwork);
            }
            await context.Response.Body.WriteAsync(JsonResults.Line(sample, ApiJson.Context.StatsJson), context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            previous = sample;
            if (!stream) break;
            await Task.Delay(TimeSpan.FromSeconds(1), context.RequestAborted);
        }
        while (entry.Record.State.Running && !entry.Removed);
    }
}
