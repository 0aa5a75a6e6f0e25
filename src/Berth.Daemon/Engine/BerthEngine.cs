using Berth.Daemon.Configuration;
using Berth.Images.Content;
using Berth.Images.Snapshots;
using Berth.Images.Store;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Engine;

/// <summary>
/// The engine berthd serves: the libraries composed over one data root. The API layer only talks
/// to the services here (today <see cref="Images"/>; the container service comes next and plugs
/// in as <see cref="IImageUsage"/> so that images in use are neither removed nor collected).
/// <code>
/// &lt;data-root&gt;/content     blobs (Berth.Images FileContentStore)
/// &lt;data-root&gt;/snapshots   overlay snapshots (layers, later container layers)
/// &lt;data-root&gt;/images      image names
/// &lt;data-root&gt;/containers  container records and logs (ContainerService)
/// &lt;data-root&gt;/volumes     volumes: &lt;name&gt;/_data and &lt;name&gt;/volume.json (VolumeService)
/// &lt;data-root&gt;/builder/cache the build cache: step key → image (BuildService)
/// &lt;data-root&gt;/tmp/build   build contexts and mount points of builds in progress
/// &lt;data-root&gt;/berthd.lock held (flock) while a daemon runs on this data root
/// </code>
/// </summary>
public sealed class BerthEngine : IDisposable
{
    public const string Version = "0.1.0";

    private readonly OverlaySnapshotter _snapshotter;

    public BerthEngine(DaemonOptions options, ILoggerFactory loggers, TimeProvider? time = null)
    {
        Options = options;
        Time = time ?? TimeProvider.System;
        Host = HostInfo.Detect();
        Id = LoadOrCreateId(Path.Combine(options.DataRoot, "engine-id"));
        Events = new Events.EventLog(Time);
        var content = new FileContentStore(Path.Combine(options.DataRoot, "content"));
        _snapshotter = new OverlaySnapshotter(Path.Combine(options.DataRoot, "snapshots"), Time);
        Usage = new ContainerUsage();
        Store = new ImageStore(Path.Combine(options.DataRoot, "images"), content, _snapshotter, Usage, Time);
        Images = new ImageService(Store, options, loggers.CreateLogger<ImageService>(), Events);
        Network = options.Bridge == "none" ? null : Berth.Network.NetworkController.Open(new Berth.Network.NetworkControllerOptions
        {
            StateDirectory = Path.Combine(options.DataRoot, "network"),
            HostNetnsPath = options.BridgeNetns,
            DefaultBridge = options.Bridge,
            DefaultSubnet = options.BridgeSubnet,
            DefaultAddressPools = options.DefaultAddressPools,
            DefaultIpRange = options.FixedCidr,
            DefaultMtu = options.Mtu,
            DefaultIcc = options.InterContainerCommunication,
            DefaultHostBindingIpv4 = options.DefaultBindIp,
            DefaultEnableIpv6 = options.Ipv6,
            DefaultSubnet6 = options.FixedCidrV6,
            UserlandProxy = options.UserlandProxy,
        });
        Volumes = new Volumes.VolumeService(Path.Combine(options.DataRoot, "volumes"), loggers.CreateLogger("Berth.Daemon.Volumes"), Time, Events,
            options.Remap is { } remap ? (remap.RootUid, remap.RootGid) : null);
        Volumes.Load();
        Containers = new Containers.ContainerService(options, Store, _snapshotter, Network, loggers.CreateLogger("Berth.Daemon.Containers"), Time, Events, Volumes);
        Usage.Source = Containers.ImagesInUse;
        Usage.Users = Containers.UsersOf;
        Builds = new Build.BuildService(options.DataRoot, Images, Containers);
        Started = Time.GetUtcNow();
    }

    public DaemonOptions Options { get; }
    public TimeProvider Time { get; }
    public HostInfo Host { get; }
    public string Id { get; }

    /// <summary>The event log (GET /events): every service publishes its events here.</summary>
    public Events.EventLog Events { get; }
    public DateTimeOffset Started { get; }
    public ImageStore Store { get; }
    public ImageService Images { get; }
    public ISnapshotter Snapshotter => _snapshotter;
    public Containers.ContainerService Containers { get; }

    /// <summary>Dockerfile builds (POST /build) and their layer cache: <c>&lt;data-root&gt;/builder/cache</c>.</summary>
    public Build.BuildService Builds { get; }

    /// <summary>Volumes (the local driver): <c>&lt;data-root&gt;/volumes</c>.</summary>
    public Volumes.VolumeService Volumes { get; }

    /// <summary>Bridge networks; null when berthd runs with --bridge none.</summary>
    public Berth.Network.NetworkController? Network { get; }

    /// <summary>Which images containers use; empty until the container service exists.</summary>
    internal ContainerUsage Usage { get; }

    public void Dispose()
    {
        Containers.Dispose();
        Network?.Dispose();
        _snapshotter.Dispose();
    }

    /// <summary>A stable engine ID (dockerd's <c>ID</c> in /info), written once atomically.</summary>
    private static string LoadOrCreateId(string path)
    {
        try
        {
            string existing = File.ReadAllText(path).Trim();
            if (Guid.TryParse(existing, out _)) return existing;
        }
        catch (FileNotFoundException)
        {
        }
        string id = Guid.NewGuid().ToString();
        DurableFile.Write(path, System.Text.Encoding.ASCII.GetBytes(id + "\n"));
        return id;
    }
}

/// <summary>
/// The seam where containers slot in: the container service will report the image IDs of its
/// containers here, so that <c>rmi</c> refuses (409) and GC keeps them.
/// </summary>
internal sealed class ContainerUsage : IImageUsage
{
    public Func<IReadOnlyCollection<Digest>>? Source { get; set; }
    public Func<Digest, IReadOnlyList<ImageUser>>? Users { get; set; }

    public IReadOnlyCollection<Digest> ImagesInUse() => Source?.Invoke() ?? [];
    public IReadOnlyList<ImageUser> UsersOf(Digest image) => Users?.Invoke(image) ?? [];
}
