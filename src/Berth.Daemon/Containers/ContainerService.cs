using System.Text.Json;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Berth.Daemon.Api;
using Berth.Daemon.Configuration;
using Berth.Daemon.Monitor;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.Snapshots;
using Berth.Images.Store;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Containers;

/// <summary>
/// Containers: their records, their lifecycle through the monitor and the OCI runtime, and the
/// in-memory state that waits, attaches and execs need.
/// <code>
/// &lt;data-root&gt;/containers/&lt;id&gt;/config.v2.json   the record (ContainerStore)
///                                  &lt;id&gt;-json.log    the log, written by the monitor
///                                  hostname, hosts, resolv.conf (bind-mounted into the container)
///                                  shm/             --ipc shareable: /dev/shm's tmpfs while it runs
/// &lt;exec-root&gt;/containers/&lt;id&gt;/config.json   the OCI bundle's spec; rootfs/ the overlay mount
/// &lt;exec-root&gt;/m/&lt;id[..16]&gt;                 the monitor's state dir (attach.sock, exit, pid)
/// &lt;exec-root&gt;/x/&lt;exec id[..16]&gt;            an exec's monitor state dir and process.json
/// &lt;exec-root&gt;/runtime/&lt;runtime name&gt;          the OCI runtime's --root
/// </code>
/// Concurrency: one lock per container serialises its state changes (create, start, stop, exit,
/// remove); the name index has its own lock. The monitor, not berthd, is the container's parent:
/// berthd watches it through a pidfd and records the exit when it goes, or at the next start of
/// berthd when the exit happened while no daemon ran.
/// </summary>
public sealed partial class ContainerService : IDisposable
{
    private readonly Dictionary<string, ContainerEntry> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Lock _indexLock = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ILogger _logger;
    private readonly InProcessRuntime? _inProcessRuntime;

    public ContainerService(DaemonOptions options, ImageStore images, ISnapshotter snapshotter, Berth.Network.NetworkController? network, ILogger logger, TimeProvider? time = null, Events.EventLog? events = null, Volumes.VolumeService? volumes = null)
    {
        Options = options;
        Events = events ?? new Events.EventLog(time);
        Volumes = volumes ?? new Volumes.VolumeService(Path.Combine(options.DataRoot, "volumes"), logger, time, Events);
        Network = network;
        Images = images;
        Snapshotter = snapshotter;
        _logger = logger;
        if (options.BerthBinary("berth-runtime") is { } berthRuntime) _inProcessRuntime = new InProcessRuntime(berthRuntime);
        Time = time ?? TimeProvider.System;
        Store = new ContainerStore(Path.Combine(options.DataRoot, "containers"));
        StateRoot = Path.Combine(options.ExecRoot, "containers");
        // Short paths: the monitors' sockets live in these directories and sun_path holds 107 bytes.
        MonitorRoot = Path.Combine(options.ExecRoot, "m");
        ExecStateRoot = Path.Combine(options.ExecRoot, "x");
        Directory.CreateDirectory(MonitorRoot);
        Directory.CreateDirectory(StateRoot);
        Directory.CreateDirectory(ExecStateRoot);
    }

    public DaemonOptions Options { get; }
    public ImageStore Images { get; }
    public ISnapshotter Snapshotter { get; }
    public ContainerStore Store { get; }
    public TimeProvider Time { get; }
    public Events.EventLog Events { get; }
    public Volumes.VolumeService Volumes { get; }
    public string StateRoot { get; }
    public string ExecStateRoot { get; }
    public string MonitorRoot { get; }

    public int Count
    {
        get
        {
            lock (_indexLock) return _byId.Count;
        }
    }

    /// <summary>Running, paused and stopped counts for /info.</summary>
    public (int Running, int Paused, int Stopped) Counts()
    {
        int running = 0, paused = 0, stopped = 0;
        foreach (ContainerEntry e in Snapshot())
        {
            if (e.Record.State.Paused) paused++;
            else if (e.Record.State.Running) running++;
            else stopped++;
        }
        return (running, paused, stopped);
    }

    /// <summary>The image IDs containers are made from: rmi refuses them and GC keeps them.</summary>
    public IReadOnlyCollection<Digest> ImagesInUse()
        => Snapshot().Select(e => Digest.Parse(e.Record.ImageId)).Distinct().ToList();

    /// <summary>The containers made from <paramref name="image"/>, running (or paused) ones first, for rmi's conflicts.</summary>
    public IReadOnlyList<ImageUser> UsersOf(Digest image)
        => Snapshot().Where(e => Digest.Parse(e.Record.ImageId) == image)
            .Select(e => new ImageUser(e.Record.Id, e.Record.State.Running))
            .OrderByDescending(u => u.Running).ToList();

    public List<ContainerEntry> Snapshot()
    {
        lock (_indexLock) return [.. _byId.Values];
    }

    public string BundleDirectory(string id) => Path.Combine(StateRoot, id);
    /// <summary>The user-namespace mapping a container runs with: the daemon's --userns-remap, unless it opted out with --userns=host.</summary>
    internal Configuration.UsernsRemap? RemapOf(ContainerRecord r) => Options.RemapFor(r.HostConfig.UsernsMode);

    public string RootfsDirectory(string id) => Path.Combine(StateRoot, id, "rootfs");
    public string MonitorDirectory(string id) => Path.Combine(MonitorRoot, id.Length > 16 ? id[..16] : id);
    /// <summary>The json-file log's path (what inspect shows as LogPath).</summary>
    public string LogPath(string id) => Path.Combine(Store.DirectoryOf(id), id + "-json.log");

    /// <summary>
    /// Where the container's log is and in which format, by its driver: json-file's <c>&lt;id&gt;-json.log</c>, or
    /// the local driver's <c>local-logs/container.log</c> beside it, or the cache (dockerd's dual logging) of syslog,
    /// gelf, fluentd and journald in the local format at <c>container-cached-logs/container.log</c> (dockerd's layout); null with
    /// the "none" driver, and those four's with <c>cache-disabled</c>.
    /// </summary>
    public LogLocation? LogOf(ContainerRecord r) => r.HostConfig.LogConfig.Type switch
    {
        NoLogDriver => null,
        LogLimits.LocalDriver => new LogLocation(Path.Combine(Store.DirectoryOf(r.Id), "local-logs", "container.log"), LogFormat.Local),
        SyslogDriver.Name or GelfDriver.Name or FluentdDriver.Name or JournaldDriver.Name => LogCache.Cached(r.HostConfig.LogConfig)
            ? new LogLocation(Path.Combine(Store.DirectoryOf(r.Id), "container-cached-logs", "container.log"), LogFormat.Local) : null,
        _ => new LogLocation(LogPath(r.Id), LogFormat.JsonFile),
    };

    /// <summary>The json-file <c>"attrs"</c> object of the container's entries (<see cref="LogLimits.Attributes"/>), encoded once for
    /// berth-monitor; null when there are none.</summary>
    /// <exception cref="ApiException">400 when it would exceed what berth-monitor takes (8 KiB).</exception>
    internal static string? LogAttributesJson(ContainerRecord r)
    {
        if (LogLimits.Attributes(r.HostConfig.LogConfig, r.Config.Labels, r.Config.Env) is not { } attributes) return null;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, Berth.Oci.HandWrittenJson.Options()))
        {
            w.WriteStartObject();
            foreach (var (k, v) in attributes) w.WriteString(k, v);
            w.WriteEndObject();
        }
        if (buffer.WrittenCount > 8192)
            throw ApiException.BadRequest($"the log attributes that log-opt labels/env select are {buffer.WrittenCount} bytes: berthd writes at most 8192 into each entry");
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public const string NoLogDriver = "none";
    private static string SnapshotKey(string id) => "container-" + id;

    // ---- lookup --------------------------------------------------------------------------------

    /// <summary>By full ID, name (with or without the slash), a link's name (<c>parent/alias</c>) or unique ID prefix, as dockerd's GetContainer.</summary>
    /// <exception cref="ApiException">404 "No such container", or 400 when a prefix is ambiguous.</exception>
    public ContainerEntry Find(string reference)
    {
        if (string.IsNullOrEmpty(reference)) throw ApiException.NotFound("No such container: ");
        lock (_indexLock)
        {
            if (_byId.TryGetValue(reference, out ContainerEntry? exact)) return exact;
            string name = reference.StartsWith('/') ? reference : "/" + reference;
            if (_idByName.TryGetValue(name, out string? byName)) return _byId[byName];
            if (FindByLinkName(name) is { } linked) return linked;
            if (reference.All(char.IsAsciiHexDigitLower))
            {
                ContainerEntry[] matches = _byId.Values.Where(e => e.Record.Id.StartsWith(reference, StringComparison.Ordinal)).Take(2).ToArray();
                if (matches.Length == 1) return matches[0];
                if (matches.Length > 1) throw ApiException.BadRequest($"multiple IDs found with provided prefix: {reference}");
            }
        }
        throw ApiException.NotFound($"No such container: {reference}");
    }

    // ---- restore at daemon start ---------------------------------------------------------------

    /// <summary>
    /// Loads the records and reconciles them with what still runs: a container whose monitor is
    /// alive is watched again (its exit will be recorded as usual); one whose monitor left an exit
    /// file while berthd was away gets that exit recorded now; one whose monitor vanished without a
    /// word is marked exited with 255 and an error, as dockerd does for a lost shim.
    /// </summary>
    public async Task RestoreAsync(CancellationToken cancellationToken)
    {
        foreach (ContainerRecord record in Store.LoadAll(w => LogWarning(_logger, w)))
        {
            UpgradeNetworks(record);
            var entry = new ContainerEntry(record);
            lock (_indexLock)
            {
                _byId[record.Id] = entry;
                _idByName[record.Name] = record.Id;
            }
        }
        RestoreVolumeReferences();
        ReleaseAllSubpaths(); // a crash during a start leaves them; nothing starts before this
        foreach (ContainerEntry entry in Snapshot())
        {
            ContainerRecord r = entry.Record;
            if (!r.State.Running)
            {
                if (r.MonitorPid > 0 && await FindCutShortStartAsync(entry)) continue;
                // A start cut short by a crash leaves runtime state, a mount, a monitor dir, and a
                // monitor that waits for the init the cleanup's delete kills.
                if (MountPoints.IsMountPoint(RootfsDirectory(r.Id)) || HasRuntimeState(r.Id)) await CleanupRuntimeLeftoversAsync(r.Id, r.MonitorPid);
                // An exit recorded just before a crash leaves the monitor's directory.
                else TryDeleteDirectory(MonitorDirectory(r.Id));
                if (r.HostConfig.AutoRemove && (r.State.Status == "exited" || !HasLayer(r.Id)))
                {
                    // Exited, but berthd went before removing it (as dockerd's restore does; a
                    // created container that never ran stays, unless a machine crash lost its
                    // ephemeral layer).
                    await entry.Lock.WaitAsync(cancellationToken);
                    try
                    {
                        await RemoveLockedAsync(entry, removeVolumes: true);
                    }
                    catch (Exception e) when (e is IOException or ImagesException)
                    {
                        LogWarning(_logger, $"container {r.Id}: auto-remove at restore: {e.Message}");
                    }
                    finally
                    {
                        entry.Lock.Release();
                    }
                    continue;
                }
                if (r.State.Restarting)
                {
                    // It was waiting to be restarted when berthd went: the policy resumes now.
                    await entry.Lock.WaitAsync(cancellationToken);
                    try
                    {
                        ScheduleRestart(entry);
                    }
                    finally
                    {
                        entry.Lock.Release();
                    }
                }
                continue;
            }
            if (r.MonitorPid > 0 && Monitor.MonitorProcess.IsAlive(r.MonitorPid, MonitorDirectory(r.Id)))
            {
                Watch(entry, r.MonitorPid);
                if (!r.State.Paused) InitHealthMonitor(entry); // as dockerd's restore: "starting" again, probes resume
                RestartDns(entry);
                continue;
            }
            await entry.Lock.WaitAsync(cancellationToken);
            try
            {
                await RecordExitAsync(entry, restoring: true);
            }
            finally
            {
                entry.Lock.Release();
            }
        }
        // A create cut short between the layer's Prepare and the record's first save leaves a layer
        // that nothing refers to.
        var known = Snapshot().Select(e => SnapshotKey(e.Record.Id)).ToHashSet(StringComparer.Ordinal);
        foreach (SnapshotInfo s in Snapshotter.Walk())
            if (s.Name.StartsWith("container-", StringComparison.Ordinal) && !known.Contains(s.Name))
            {
                string orphan = s.Name["container-".Length..];
                LogWarning(_logger, $"removing the layer {s.Name}, which no container record refers to");
                await CleanupRuntimeLeftoversAsync(orphan); // unmounted before its layer goes
                TryRemoveSnapshot(orphan);
                TryDeleteDirectory(BundleDirectory(orphan));
            }
        // Bundle directories of containers that are gone (a crash during rm after the record went).
        foreach (string dir in Directory.EnumerateDirectories(StateRoot))
            if (!known.Contains("container-" + Path.GetFileName(dir)))
            {
                await CleanupRuntimeLeftoversAsync(Path.GetFileName(dir));
                TryDeleteDirectory(dir);
            }
        ReconcileNetwork();
        ReconcileVolumeMounts();
        // Execs do not survive a daemon restart in memory; their state dirs are stale.
        foreach (string dir in Directory.EnumerateDirectories(ExecStateRoot))
            TryDeleteDirectory(dir);
    }

    /// <summary>
    /// A start cut short by a crash after the runtime's start and before the record said running
    /// (the record has the monitor's PID, saved just before the start). The monitor and the
    /// runtime tell how far it got: a live monitor whose container the runtime reports running is
    /// adopted; one whose container it reports stopped (just ended) is waited for; a monitor that
    /// has exited and left its exit file means the container ran and exited, and that exit is
    /// recorded. Otherwise (never started) false: the caller cleans up.
    /// </summary>
    private async Task<bool> FindCutShortStartAsync(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        string dir = MonitorDirectory(r.Id);
        DateTimeOffset launched = Directory.Exists(dir) ? Directory.GetCreationTimeUtc(dir) : Time.GetUtcNow();
        if (Monitor.MonitorProcess.IsAlive(r.MonitorPid, dir))
        {
            var (runtime, globals) = RuntimeOf(r);
            var (code, stdout, _) = await RunRuntimeAsync(runtime, globals, ["state", r.Id], throwOnError: false);
            int pid = 0;
            string? status = null;
            try
            {
                using JsonDocument state = JsonDocument.Parse(code == 0 ? stdout : "{}");
                if (state.RootElement.TryGetProperty("status", out JsonElement st)) status = st.GetString();
                if (state.RootElement.TryGetProperty("pid", out JsonElement p)) pid = p.GetInt32();
            }
            catch (JsonException)
            {
            }
            if (status == "running" && pid > 0)
            {
                r.State = new ContainerStateJson
                {
                    Status = "running",
                    Running = true,
                    Pid = pid,
                    StartedAt = Rfc3339(launched),
                    FinishedAt = r.State.FinishedAt,
                    Health = r.State.Health,
                };
                Store.Save(r);
                LogWarning(_logger, $"container {r.Id}: its start was cut short by a crash; found it running");
                Watch(entry, r.MonitorPid);
                if (!r.State.Paused) InitHealthMonitor(entry);
                return true;
            }
            if (status != "stopped") return false; // created, never started
            // It ran and has just ended: its monitor is still up, about to write the exit file.
            // Taking it for a start that never happened marked `created` a container whose process
            // had run (the crash test caught it). Let the monitor finish; its exit is read below.
            await WaitForMonitorAsync(r.MonitorPid, TimeSpan.FromSeconds(5));
        }
        if (Monitor.MonitorProcess.ReadExit(dir) is null) return false;
        r.State.StartedAt = Rfc3339(launched);
        LogWarning(_logger, $"container {r.Id}: its start was cut short by a crash; it ran and exited meanwhile");
        await entry.Lock.WaitAsync();
        try
        {
            await RecordExitAsync(entry, restoring: true);
        }
        finally
        {
            entry.Lock.Release();
        }
        return true;
    }

    // ---- create --------------------------------------------------------------------------------

    private static readonly Regex ValidName = new("^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$", RegexOptions.CultureInvariant);

    /// <summary>POST /containers/create: checks the request, resolves the image, prepares the writable layer, saves the record.</summary>
    /// <param name="platform">?platform= (API 1.41): the image must be for it, as dockerd's GetImage checks.</param>
    /// <summary>
    /// A create for another platform than the image's is a 404 in dockerd's words, so that the docker CLI
    /// pulls the image for that platform (as with a missing image). An image that names no architecture
    /// (an import without one) is taken as it is.
    /// </summary>
    private static void CheckPlatform(string reference, Image image, string platform)
    {
        Platform wanted;
        try
        {
            wanted = PlatformMatcher.Parse(platform);
        }
        catch (ImagesException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
        Platform actual = image.Config.Platform;
        if (string.IsNullOrEmpty(actual.Architecture) || PlatformMatcher.Matches(wanted, actual)) return;
        throw ApiException.NotFound($"image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {PlatformMatcher.Normalize(actual)}");
    }

    public async Task<ContainerCreateResponse> CreateAsync(string? name, ContainerCreateBody body, CancellationToken cancellationToken, string? platform = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var warnings = new List<string>();
        HostConfigJson host = body.HostConfig ?? new HostConfigJson();
        ContainerRequestCheck.Check(body, host, warnings, Options);
        // As dockerd: the record names its runtime, so a later --default-runtime does not move it.
        if (string.IsNullOrEmpty(host.Runtime)) host.Runtime = Options.DefaultRuntime;
        // As dockerd's adaptContainerSettings, the daemon's defaults are written into the record:
        // --default-shm-size, --default-ulimit (for the names the container does not set), and
        // --cgroup-parent (dockerd applies that one at each start without recording it; recorded,
        // a container keeps its group across a daemon restart with another setting).
        if (host.ShmSize == 0) host.ShmSize = Options.DefaultShmSize > 0 ? Options.DefaultShmSize : DaemonOptions.DockerShmSize;
        // Also as dockerd's create records them: the default masked and read-only paths unless the
        // container is privileged (the API lets a client replace them; the CLI's --security-opt
        // systempaths=unconfined sends empty lists), a memory limit's default swap limit (twice the
        // memory: what the container gets), and "unlimited" as null: a pids limit of 0 or below, the
        // swappiness -1 that docker 23+ sends when none is given.
        if (!host.Privileged)
        {
            host.MaskedPaths ??= [.. Berth.Images.Engine.ImageSpecBuilder.DefaultMaskedPaths];
            host.ReadonlyPaths ??= [.. Berth.Images.Engine.ImageSpecBuilder.DefaultReadonlyPaths];
        }
        if (host.Memory > 0 && host.MemorySwap == 0) host.MemorySwap = host.Memory * 2;
        // dockerd's inspect has these whatever the request sent (docker-compose sends none of them):
        // OomKillDisable false and ConsoleSize [0, 0] as its create records them, and the Windows-only
        // and device-request fields (refused above when set) as zero.
        host.OomKillDisable ??= false;
        host.ConsoleSize ??= [0, 0];
        foreach (var (field, zero) in ZeroHostConfigFields) (host.Unknown ??= new(StringComparer.Ordinal)).TryAdd(field, zero);
        if (host.PidsLimit <= 0) host.PidsLimit = null;
        if (host.MemorySwappiness == -1) host.MemorySwappiness = null;
        foreach (DefaultUlimit u in Options.DefaultUlimits)
            if (host.Ulimits?.Any(x => x.Name == u.Name) != true)
                (host.Ulimits ??= []).Add(new UlimitJson { Name = u.Name, Soft = u.Soft, Hard = u.Hard });
        if (string.IsNullOrEmpty(host.CgroupParent) && Options.CgroupParent is { } cgroupParent) host.CgroupParent = cgroupParent;
        // --default-ipc-mode and --default-cgroupns-mode, as adaptContainerSettings writes them (a
        // privileged container on cgroup v1 gets the host's cgroup namespace, whatever the default).
        if (string.IsNullOrEmpty(host.IpcMode)) host.IpcMode = Options.DefaultIpcMode;
        if (string.IsNullOrEmpty(host.CgroupnsMode))
        {
            bool cgroupV2 = ContainerSpecFactory.CgroupV2;
            host.CgroupnsMode = host.Privileged && !cgroupV2 ? "host" : Options.CgroupnsModeFor(cgroupV2);
        }
        // dockerd's mergeAndVerifyLogConfig: a container that names no driver gets the daemon's
        // (--log-driver), and one of the daemon's driver gets the daemon's --log-opt values it does not set.
        if (string.IsNullOrEmpty(host.LogConfig.Type)) host.LogConfig.Type = Options.LogDriver;
        if (host.LogConfig.Type == Options.LogDriver && Options.LogOpts.Count > 0)
        {
            host.LogConfig.Config ??= new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in Options.LogOpts) host.LogConfig.Config.TryAdd(key, value);
        }
        List<ContainerNetworkState> networks = CheckNetwork(body, host, warnings);
        // --pid/--ipc container:NAME: NAME must exist (to run, and for IPC be shareable, only at start).
        if (ContainerRequestCheck.PidModeContainer(host.PidMode) is { } pidDonor) FindForCreate(pidDonor);
        if (ContainerRequestCheck.IpcModeContainer(host.IpcMode) is { } ipcDonor) FindForCreate(ipcDonor);
        body.Unknown = null; // only zero-valued unknown fields are left: nothing to keep
        // Go's encoding/json writes map keys sorted: inspect shows annotations (and labels, below) in that order.
        host.Annotations = host.Annotations?.OrderBy(a => a.Key, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(body.Image)) throw ApiException.BadRequest("Config cannot be empty in order to create a container");

        Image image;
        try
        {
            image = Images.Get(body.Image);
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            throw ApiException.NotFound($"No such image: {NormalizeForMessage(body.Image)}");
        }
        if (platform is not null) CheckPlatform(body.Image, image, platform);
        string? top = await Images.UnpackAsync(image.Id.Value, cancellationToken: cancellationToken);

        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        if (name is not null && !ValidName.IsMatch(name))
            throw ApiException.BadRequest($"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        string fullName = name is null ? "/" + NameGenerator.Generate(n => IsNameTaken("/" + n)) : (name.StartsWith('/') ? name : "/" + name);
        var (links, linkTargets) = CheckLinks(host, fullName);
        host.Links = links;

        var record = new ContainerRecord
        {
            Id = id,
            Name = fullName,
            Created = Rfc3339(Time.GetUtcNow()),
            ImageId = image.Id.Value,
            ImageTopLayer = top,
            Config = body,
            HostConfig = host,
            NetworkingConfig = body.NetworkingConfig,
            Networks = networks,
            LinkTargets = linkTargets,
            StopSignal = !string.IsNullOrEmpty(body.StopSignal) ? body.StopSignal
                : !string.IsNullOrEmpty(image.Config.Config?.StopSignal) ? image.Config.Config!.StopSignal! : "SIGTERM",
        };
        // Docker shows the image's values merged into Config (Env, Cmd, WorkingDir, labels...).
        MergeImageConfig(record.Config, image);
        // As dockerd's newContainer, the hostname is recorded: the host's on the host network, else the short ID.
        if (string.IsNullOrEmpty(record.Config.Hostname))
            record.Config.Hostname = EffectiveNetworkMode(host) == "host" ? System.Net.Dns.GetHostName() : id[..12];
        if (record.Config.Entrypoint is null or { Count: 0 } && record.Config.Cmd is null or { Count: 0 })
            throw ApiException.BadRequest("No command specified");
        var entry = new ContainerEntry(record);
        // Held from the moment the container can be found until its record is saved, so that a
        // concurrent rm (or start) waits for the create instead of removing a half-made container.
        await entry.Lock.WaitAsync(cancellationToken);

        lock (_indexLock)
        {
            if (_idByName.TryGetValue(fullName, out string? holder))
            {
                entry.Lock.Release();
                throw ApiException.Conflict($"Conflict. The container name \"{fullName}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name.");
            }
            _idByName[fullName] = id;
            _byId[id] = entry;
        }
        bool saved = false;
        try
        {
            (record.Volumes, record.InheritedBinds) = AcquireVolumes(id, record.Config, host, image);
            // A container removed at its exit (`run --rm`) is recorded without fsyncs: its layer
            // ephemeral, its record not durable. A machine crash may lose either, and the restore
            // then removes what is left, as it would remove the container anyway; a kill -9 of
            // berthd loses nothing (the page cache stays). Each fsync is ~0.5 ms here, more while
            // other writes are pending, and four of them were on every `run --rm`'s path.
            var labels = new Dictionary<string, string> { ["berth.io/container"] = id };
            if (host.AutoRemove) labels[OverlaySnapshotter.EphemeralLabel] = "1";
            Snapshotter.Prepare(SnapshotKey(id), top, labels);
            Store.Save(record, durable: !host.AutoRemove);
            saved = true;
        }
        finally
        {
            if (!saved)
            {
                lock (_indexLock)
                {
                    _byId.Remove(id);
                    _idByName.Remove(fullName);
                }
                TryRemoveSnapshot(id);
                TryDeleteDirectory(Store.DirectoryOf(id));
                ReleaseVolumes(id, record.Volumes, removeAnonymous: true);
                entry.Removed = true;
            }
            entry.Lock.Release();
        }
        PublishEvent(record, "create");
        return new ContainerCreateResponse(id, warnings);
    }

    private bool IsNameTaken(string name)
    {
        lock (_indexLock) return _idByName.ContainsKey(name);
    }

    private static string NormalizeForMessage(string image)
        => image.Contains(':', StringComparison.Ordinal) || image.Contains('@', StringComparison.Ordinal) ? image : image + ":latest";

    internal static readonly System.Text.Json.JsonElement EmptyObject = System.Text.Json.JsonDocument.Parse("{}").RootElement.Clone();

    private static readonly (string Field, System.Text.Json.JsonElement Zero)[] ZeroHostConfigFields =
    [
        .. new[] { "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth" }.Select(f => (f, System.Text.Json.JsonDocument.Parse("0").RootElement.Clone())),
        ("DeviceRequests", System.Text.Json.JsonDocument.Parse("null").RootElement.Clone()),
    ];

    /// <summary>
    /// The image's config merged into the container's as dockerd's create does it (daemon/commit.go
    /// merge, then mergeAndVerifyConfig): what inspect shows, and what later starts run from.
    /// </summary>
    private static void MergeImageConfig(ContainerConfigJson config, Image image)
    {
        var ic = image.Config.Config ?? new ContainerConfig();
        config.Env = MergeImageEnv(config.Env, ic.Env);
        // An entrypoint given, even [], keeps the image's; any non-empty one also keeps its Cmd.
        if (config.Entrypoint is null or { Count: 0 })
        {
            if (config.Cmd is null or { Count: 0 }) config.Cmd = ic.Cmd?.ToList();
            config.Entrypoint ??= ic.Entrypoint?.ToList();
        }
        // `--entrypoint ""` (sent as [""]) clears the image's entrypoint.
        if (config.Entrypoint is [""]) config.Entrypoint = null;
        if (string.IsNullOrEmpty(config.WorkingDir)) config.WorkingDir = ic.WorkingDir ?? "";
        if (string.IsNullOrEmpty(config.User)) config.User = ic.User ?? "";
        if (ic.Labels is { Count: > 0 })
        {
            var labels = new Dictionary<string, string>(ic.Labels, StringComparer.Ordinal);
            foreach (var (k, v) in config.Labels ?? []) labels[k] = v;
            config.Labels = labels;
        }
        config.Labels = (config.Labels ?? []).OrderBy(l => l.Key, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        config.ExposedPorts = MergeImageSet(config.ExposedPorts, ic.ExposedPorts?.Keys);
        config.Volumes = MergeImageSet(config.Volumes, ic.Volumes?.Keys);
        config.Healthcheck = MergeHealthcheck(config.Healthcheck, ic.Healthcheck);
    }

    /// <summary>
    /// dockerd's merge of the image's Env: the container's entries as given (duplicates and bare
    /// names kept), then each image entry whose name they do not set; none given, the image's (null
    /// without). The process gets them through ReplaceOrAppendEnvValues at start (ImageSpecBuilder).
    /// </summary>
    internal static List<string>? MergeImageEnv(List<string>? given, IReadOnlyList<string>? image)
    {
        if (given is not { Count: > 0 }) return image?.ToList();
        var names = given.Select(EnvName).ToHashSet(StringComparer.Ordinal);
        return [.. given, .. (image ?? []).Where(e => !names.Contains(EnvName(e)))];

        static string EnvName(string entry) => entry.IndexOf('=') is var eq and >= 0 ? entry[..eq] : entry;
    }

    /// <summary>ExposedPorts and Volumes as dockerd merges them: none given (or {}), the image's (null without); else the union.</summary>
    private static Dictionary<string, System.Text.Json.JsonElement>? MergeImageSet(Dictionary<string, System.Text.Json.JsonElement>? given, IEnumerable<string>? image)
    {
        if (given is not { Count: > 0 })
            return image?.ToDictionary(k => k, _ => EmptyObject, StringComparer.Ordinal) is { Count: > 0 } fromImage ? fromImage : null;
        foreach (string key in image ?? []) given.TryAdd(key, EmptyObject);
        return given;
    }

    // ---- rename, remove ------------------------------------------------------------------------

    public async Task RenameAsync(string reference, string newName)
    {
        if (string.IsNullOrEmpty(newName)) throw ApiException.BadRequest("Neither old nor new names may be empty");
        // dockerd's order: the container first (an unknown one is a 404 whatever the new name), then the name.
        ContainerEntry entry = Find(reference);
        string full = newName.StartsWith('/') ? newName : "/" + newName;
        await entry.Lock.WaitAsync();
        try
        {
            string old = entry.Record.Name;
            if (old == full) throw ApiException.BadRequest("Renaming a container with the same name as its current name");
            if (!ValidName.IsMatch(full))
                throw ApiException.BadRequest($"Error when allocating new name: Invalid container name ({full}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            lock (_indexLock)
            {
                if (_idByName.TryGetValue(full, out string? holder))
                    throw ApiException.Conflict($"Error when allocating new name: Conflict. The container name \"{full}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name.");
                _idByName[full] = entry.Record.Id;
            }
            entry.Record.Name = full;
            RenameLinks(entry.Record, old, full);
            try
            {
                Store.Save(entry.Record);
            }
            catch
            {
                entry.Record.Name = old;
                RenameLinks(entry.Record, full, old);
                lock (_indexLock) _idByName.Remove(full);
                throw;
            }
            lock (_indexLock) _idByName.Remove(old);
            PublishEvent(entry.Record, "rename", ("oldName", old));
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>DELETE /containers/{id}: a running container needs <paramref name="force"/> (then it is killed first); <paramref name="removeVolumes"/> (v=1) removes its anonymous volumes.</summary>
    public async Task RemoveAsync(string reference, bool force, CancellationToken cancellationToken, bool removeVolumes = false)
    {
        ContainerEntry entry = Find(reference);
        if (entry.Record.State.Running)
        {
            if (!force)
            {
                string what = entry.Record.State.Paused ? "paused" : "running";
                throw ApiException.Conflict($"cannot remove container \"{entry.Record.Name}\": container is {what}: stop the container before removing or force remove");
            }
            await KillAndWaitAsync(entry, cancellationToken);
        }
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            if (entry.Removed) return;
            if (entry.Record.State.Running) throw ApiException.Conflict($"cannot remove container \"{entry.Record.Name}\": it started again meanwhile");
            await RemoveLockedAsync(entry, removeVolumes);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>Removes a stopped container's record, layer and state; the caller holds its lock.</summary>
    private async Task RemoveLockedAsync(ContainerEntry entry, bool removeVolumes = false)
    {
        string id = entry.Record.Id;
        entry.Removed = true;
        StopHealthMonitor(entry);
        // The record goes first: once it is gone the container is gone, whatever happens next (a
        // crash from here on leaves a layer and maybe a mount, which the next start cleans). An
        // exited auto-remove container that a crash brings back is removed by the restore, so its
        // removal needs no directory fsync.
        UnmountShm(id); // (gone at the exit already) it lives in the record's directory, deleted next
        Store.Delete(id, durable: !(entry.Record.HostConfig.AutoRemove && entry.Record.State.Status == "exited"));
        lock (_indexLock)
        {
            _byId.Remove(id);
            if (_idByName.TryGetValue(entry.Record.Name, out string? holder) && holder == id) _idByName.Remove(entry.Record.Name);
        }
        await CleanupRuntimeLeftoversAsync(id, unmountRootfs: false);
        ReleaseVolumes(id, entry.Record.Volumes, removeVolumes);
        lock (entry.ExecIds)
            foreach (string exec in entry.ExecIds) _execs.TryRemove(exec, out _); // exec instances go with their container
        PublishEvent(entry.Record, "destroy");
        // `wait?condition=removed` (run --rm) is answered before the rootfs is unmounted and the
        // layer and the bundle directory are deleted: nothing can reach them any more (the record
        // and the name are gone, the container's processes and its runtime state too), and a crash
        // from here leaves a layer without a record, which the next start unmounts and deletes
        // (RestoreAsync). The caller's lock is still held, so DELETE answers after all of it.
        entry.RemovedSignal.TrySetResult();
        UnmountRootfs(id);
        TryRemoveSnapshot(id);
        TryDeleteDirectory(BundleDirectory(id));
    }

    /// <summary>
    /// What a container that does not run may still have, after a crash in the middle of its start
    /// or its removal: runtime state (an init waiting at its exec fifo), the rootfs mount, a
    /// shareable /dev/shm, volume subpath mounts, the monitor's directory.
    /// </summary>
    /// <param name="unmountRootfs">false: the caller unmounts it later itself.</param>
    private async Task CleanupRuntimeLeftoversAsync(string id, int monitorPid = 0, bool unmountRootfs = true)
    {
        string monitorDir = MonitorDirectory(id);
        // No PID recorded (the kill fell between the monitor's launch and the record's save, or
        // the record is gone): find a monitor still serving the directory, before the delete
        // below makes it write its exit file.
        if (monitorPid <= 0 && Directory.Exists(monitorDir)) monitorPid = Monitor.MonitorProcess.FindByStateDir(monitorDir);
        await DeleteFromRuntimesAsync(id);
        // A monitor still alive writes its exit file once the delete has killed the init; deleting
        // its directory before then races that write and leaves the directory behind. A monitor
        // whose runtime `create` was still running when berthd went (so the delete above found no
        // state) only goes once that create has finished and a later delete kills the new init:
        // without the repeat, that init waited at its exec fifo for good and its state remained.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (monitorPid > 0 && Monitor.MonitorProcess.IsAlive(monitorPid, monitorDir) && DateTime.UtcNow < deadline)
        {
            await WaitForMonitorAsync(monitorPid, TimeSpan.FromMilliseconds(200));
            await DeleteFromRuntimesAsync(id);
        }
        if (monitorPid > 0 && Monitor.MonitorProcess.IsAlive(monitorPid, monitorDir))
            LogWarning(_logger, $"container {id}: its monitor (pid {monitorPid}) is still running after the cleanup of an interrupted start");
        if (unmountRootfs) UnmountRootfs(id);
        UnmountShm(id);
        ReleaseSubpaths(id);
        TryDeleteDirectory(monitorDir);
    }

    /// <summary>`delete --force` in every runtime that has state for the container.</summary>
    private async Task DeleteFromRuntimesAsync(string id)
    {
        string runtimeRoot = Path.Combine(Options.ExecRoot, "runtime");
        if (!Directory.Exists(runtimeRoot)) return;
        foreach (string dir in Directory.EnumerateDirectories(runtimeRoot))
        {
            if (!Directory.Exists(Path.Combine(dir, id))) continue;
            string name = Path.GetFileName(dir);
            if (Options.RuntimePath(name) is { } runtime)
                await RunRuntimeAsync(runtime, RuntimeGlobalArgs(name), ["delete", "--force", id], throwOnError: false);
        }
    }

    private bool HasRuntimeState(string id)
    {
        string runtimeRoot = Path.Combine(Options.ExecRoot, "runtime");
        return Directory.Exists(runtimeRoot) && Directory.EnumerateDirectories(runtimeRoot).Any(d => Directory.Exists(Path.Combine(d, id)));
    }

    private bool HasLayer(string id)
    {
        try
        {
            Snapshotter.Stat(SnapshotKey(id));
            return true;
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            return false;
        }
    }

    private void TryRemoveSnapshot(string id)
    {
        try
        {
            Snapshotter.Remove(SnapshotKey(id));
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
        }
        catch (Exception e) when (e is ImagesException or IOException)
        {
            LogWarning(_logger, $"container {id}: removing its layer: {e.Message}");
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _shutdown.Cancel();
        // An exit being recorded finishes first: an auto-remove container's removal cut off half
        // way would leave its layer half deleted under a data root that may be removed next.
        SpinWait.SpinUntil(() => Volatile.Read(ref _exitsBeingRecorded) == 0, TimeSpan.FromSeconds(10));
        _shutdown.Dispose();
        ContainerStats.RemoveDefaultParentIfUnused();
    }

    private bool _disposed;
    private int _exitsBeingRecorded; // exit watchers past their monitor's exit (Watch)

    internal static string Rfc3339(DateTimeOffset time)
        => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "{Message}")]
    private static partial void LogWarning(ILogger logger, string message);
}

/// <summary>One container in memory: its record and what callers wait on.</summary>
public sealed class ContainerEntry(ContainerRecord record)
{
    public ContainerRecord Record { get; } = record;

    /// <summary>Serialises create/start/stop/exit/remove of this container.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>Completed (and replaced) at each exit, with the exit's wait response.</summary>
    public TaskCompletionSource<WaitResponse> NextExit { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource RemovedSignal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The monitor's state dir between the monitor's launch and the end of start (guarded by <see cref="PendingAttaches"/>).</summary>
    public string? StartingMonitorDir { get; set; }

    /// <summary>Completed with the monitor's state dir at the next start, for attaches that came before it.</summary>
    public TaskCompletionSource<string> NextStart { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Attach requests that wait for the next start; start waits for them to connect.</summary>
    public List<TaskCompletionSource> PendingAttaches { get; } = [];

    public bool Removed { get; set; }

    public HashSet<string> ExecIds { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The hosts lines of the container's links as last written (alias first): its DNS server answers
    /// the aliases from them, on its own threads, so the list is replaced whole, never changed.
    /// </summary>
    public IReadOnlyList<Berth.Network.HostsEntry> LinkNames { get; set; } = [];

    /// <summary>Restart back-off steps taken since the container last ran for 10 s.</summary>
    public int Backoff { get; set; }

    /// <summary>Cancels the running health monitor (null when none runs); guarded by <see cref="HealthLock"/>.</summary>
    public CancellationTokenSource? HealthMonitor { get; set; }

    public Lock HealthLock { get; } = new();
}
