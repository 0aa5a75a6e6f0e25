using System.Globalization;
using System.Net;
using System.Text.Json;
using Berth.Daemon.Api;
using Berth.Network;

namespace Berth.Daemon.Containers;

/// <summary>
/// Containers on bridge networks (Berth.Network): the endpoint is made after the runtime's
/// <c>create</c> (the network namespace exists, the process still waits at its exec fifo) and
/// before <c>start</c>, so the process never runs without its network; it goes when the container
/// exits. Names on user networks resolve through the hosts files, which are rewritten in place
/// (they are bind mounts) whenever a peer joins or leaves.
/// </summary>
public sealed partial class ContainerService
{
    public NetworkController? Network { get; }

    /// <summary>The mode a container runs with: "" and "default" mean the default bridge, or none when berthd has no bridge.</summary>
    public string EffectiveNetworkMode(HostConfigJson h)
        => h.NetworkMode is "" or "default" ? (Network is null ? "none" : NetworkController.DefaultNetworkName) : h.NetworkMode;

    private static bool IsBridged(string mode) => mode is not ("none" or "host") && !mode.StartsWith("container:", StringComparison.Ordinal);

    /// <summary>Checks the network settings of a create request (before anything is made).</summary>
    private void CheckNetwork(ContainerCreateBody body, HostConfigJson h, List<string> warnings)
    {
        string mode = EffectiveNetworkMode(h);
        bool publishes = PortBindingsOf(h).Count > 0 || h.PublishAllPorts;
        if (mode.StartsWith("container:", StringComparison.Ordinal))
        {
            Find(mode["container:".Length..]);
            if (publishes) throw ApiException.BadRequest("conflicting options: port publishing and the container type network mode");
            if (!string.IsNullOrEmpty(body.Hostname)) throw ApiException.BadRequest("conflicting options: hostname and the network mode");
            return;
        }
        if (mode is "none" or "host")
        {
            if (publishes && mode == "host") warnings.Add("Published ports are discarded when using host network mode");
            if (publishes && mode == "none") throw ApiException.BadRequest("conflicting options: port publishing and network mode none");
            return;
        }
        if (Network is null)
            throw ApiException.BadRequest($"network {mode} is not available: this berthd runs without bridge networking (--bridge none); use --network none or host");
        if (mode != NetworkController.DefaultNetworkName)
        {
            try
            {
                Network.GetNetwork(mode);
            }
            catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound)
            {
                throw ApiException.NotFound($"network {mode} not found");
            }
        }
        PortMappings(body, h); // parses: a bad binding is a 400 now, not at start
    }

    /// <summary>HostConfig.PortBindings, "80/tcp": [{"HostIp": "", "HostPort": "8080"}].</summary>
    private static Dictionary<string, List<(string? HostIp, string HostPort)>> PortBindingsOf(HostConfigJson h)
    {
        var result = new Dictionary<string, List<(string?, string)>>(StringComparer.Ordinal);
        if (h.PortBindings is not { ValueKind: JsonValueKind.Object } bindings) return result;
        foreach (JsonProperty port in bindings.EnumerateObject())
        {
            var list = new List<(string?, string)>();
            if (port.Value.ValueKind == JsonValueKind.Array)
                foreach (JsonElement b in port.Value.EnumerateArray())
                {
                    string? ip = Prop(b, "HostIp") is { ValueKind: JsonValueKind.String } i ? i.GetString() : null;
                    string hostPort = Prop(b, "HostPort") is { ValueKind: JsonValueKind.String } hp ? hp.GetString()! : "";
                    list.Add((string.IsNullOrEmpty(ip) ? null : ip, hostPort));
                }
            else if (port.Value.ValueKind != JsonValueKind.Null) throw ApiException.BadRequest($"invalid port binding for {port.Name}");
            if (list.Count == 0) list.Add((null, ""));
            result[port.Name] = list;
        }
        return result;
    }

    /// <summary>The ports to publish: PortBindings, plus every exposed port on an ephemeral host port with PublishAllPorts (-P).</summary>
    private static List<PortMapping> PortMappings(ContainerConfigJson config, HostConfigJson h)
    {
        var result = new List<PortMapping>();
        var bindings = PortBindingsOf(h);
        if (h.PublishAllPorts)
            foreach (string exposed in config.ExposedPorts?.Keys ?? Enumerable.Empty<string>())
                if (!bindings.ContainsKey(exposed)) bindings[exposed] = [(null, "")];
        foreach (var (key, list) in bindings)
        {
            string[] parts = key.Split('/');
            string protocol = parts.Length > 1 ? parts[1].ToLowerInvariant() : "tcp";
            if (protocol is not ("tcp" or "udp")) throw ApiException.BadRequest($"invalid protocol in port {key}: only tcp and udp are served");
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int containerPort) || containerPort is < 1 or > 65535)
                throw ApiException.BadRequest($"invalid container port {key}");
            foreach (var (ip, hostPortText) in list)
            {
                int hostPort = 0;
                if (hostPortText.Length > 0 && (!int.TryParse(hostPortText, NumberStyles.None, CultureInfo.InvariantCulture, out hostPort) || hostPort is < 1 or > 65535))
                    throw ApiException.BadRequest($"invalid host port `{hostPortText}` for {key}");
                if (ip is not null && (!IPAddress.TryParse(ip, out IPAddress? parsed) || parsed.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
                    throw ApiException.BadRequest($"invalid host IP `{ip}` for {key}: IPv4 only");
                result.Add(new PortMapping { Protocol = protocol, HostIp = ip, HostPort = hostPort, ContainerPort = containerPort });
            }
        }
        return result;
    }

    /// <summary>NetworkingConfig.EndpointsConfig[network]: --ip and --network-alias.</summary>
    private static (string? Address, List<string> Aliases) EndpointRequest(ContainerRecord r, string network)
    {
        var aliases = new List<string>();
        string? address = null;
        if (r.NetworkingConfig is { ValueKind: JsonValueKind.Object } nc && Prop(nc, "EndpointsConfig") is { ValueKind: JsonValueKind.Object } endpoints
            && Prop(endpoints, network) is { ValueKind: JsonValueKind.Object } ep)
        {
            if (Prop(ep, "Aliases") is { ValueKind: JsonValueKind.Array } a)
                aliases.AddRange(a.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!));
            if (Prop(ep, "IPAMConfig") is { ValueKind: JsonValueKind.Object } ipam
                && Prop(ipam, "IPv4Address") is { ValueKind: JsonValueKind.String } ip && ip.GetString() is { Length: > 0 } v)
                address = v;
        }
        return (address, aliases);
    }

    /// <summary>A property by name, ignoring case as Go's encoding/json does (network names are matched exactly).</summary>
    private static JsonElement? Prop(JsonElement obj, string name)
    {
        if (obj.TryGetProperty(name, out JsonElement exact)) return exact;
        foreach (JsonProperty p in obj.EnumerateObject())
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value;
        return null;
    }

    /// <summary>Joins the container (its init waits at the exec fifo) to its network. Caller holds the lock.</summary>
    private void ConnectLocked(ContainerEntry entry, int containerPid)
    {
        ContainerRecord r = entry.Record;
        string mode = EffectiveNetworkMode(r.HostConfig);
        if (Network is null || !IsBridged(mode)) return;
        NetworkInfo network = mode == NetworkController.DefaultNetworkName ? Network.EnsureDefaultNetwork() : Network.GetNetwork(mode);
        var (address, aliases) = EndpointRequest(r, mode);
        bool userNetwork = network.Name != NetworkController.DefaultNetworkName;
        string hostname = string.IsNullOrEmpty(r.Config.Hostname) ? r.Id[..12] : r.Config.Hostname;
        // On user networks peers find a container by its name, short ID, hostname and aliases (Docker's DNS names).
        var names = userNetwork ? new List<string> { r.Name.TrimStart('/'), r.Id[..12], hostname } : [];
        names.AddRange(aliases);
        EndpointInfo endpoint;
        try
        {
            endpoint = Network.CreateEndpoint(new EndpointCreateOptions
            {
                Network = network.Id,
                ContainerId = r.Id,
                NetnsPath = $"/proc/{containerPid}/ns/net",
                Address = address,
                MacAddress = string.IsNullOrEmpty(r.Config.MacAddress) ? null : r.Config.MacAddress,
                Ports = PortMappings(r.Config, r.HostConfig),
                Aliases = names.Distinct(StringComparer.Ordinal).ToList(),
                Hostname = hostname,
            });
        }
        catch (NetworkException e)
        {
            throw new ApiException(StatusOf(e.Kind), $"failed to set up the network of container {r.Id[..12]}: {e.Message}");
        }
        r.Network = new ContainerNetworkState
        {
            NetworkName = network.Name,
            NetworkId = network.Id,
            EndpointId = endpoint.Id,
            IPAddress = endpoint.Address.ToString(),
            IPPrefixLen = endpoint.PrefixLength,
            Gateway = endpoint.Gateway?.ToString() ?? "",
            MacAddress = endpoint.MacAddress,
            Aliases = userNetwork ? names : null,
            Ports = endpoint.Ports.Select(p => new PublishedPort(p.Protocol, p.HostIp ?? "0.0.0.0", p.HostPort, p.ContainerPort)).ToList(),
        };
        WriteHosts(entry);
        if (userNetwork) RefreshPeersHosts(network.Id, except: r.Id);
        PublishNetworkEvent("connect", r.Network, r.Id);
    }

    /// <summary>Leaves the network (the endpoint, its address and its published ports go). Caller holds the lock.</summary>
    private void DisconnectLocked(ContainerEntry entry, bool publish = true)
    {
        ContainerNetworkState? state = entry.Record.Network;
        if (state is null || Network is null) return;
        try
        {
            Network.DeleteEndpoint(state.EndpointId);
        }
        catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound)
        {
        }
        catch (NetworkException e)
        {
            LogWarning(_logger, $"container {entry.Record.Id}: removing its endpoint: {e.Message}");
        }
        entry.Record.Network = null;
        if (state.NetworkName != NetworkController.DefaultNetworkName) RefreshPeersHosts(state.NetworkId, except: entry.Record.Id);
        if (publish) PublishNetworkEvent("disconnect", state, entry.Record.Id);
    }

    /// <summary>dockerd's network connect/disconnect: the network is the actor, the container an attribute.</summary>
    private void PublishNetworkEvent(string action, ContainerNetworkState state, string containerId)
        => Events.Publish("network", action, state.NetworkId, new Dictionary<string, string>
        {
            ["container"] = containerId,
            ["name"] = state.NetworkName,
            ["type"] = "bridge",
        });

    /// <summary>The container's /etc/hosts: its own address and name, its peers on a user network, --add-host entries.</summary>
    private void WriteHosts(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        if (r.Network is not { } state || Network is null) return;
        List<HostsEntry> extra = ContainerSpecFactory.ExtraHosts(r.HostConfig);
        IReadOnlyList<HostsEntry> peers = state.NetworkName == NetworkController.DefaultNetworkName ? [] : Network.PeersOf(state.EndpointId);
        string hostname = string.IsNullOrEmpty(r.Config.Hostname) ? r.Id[..12] : r.Config.Hostname;
        string path = Path.Combine(Store.DirectoryOf(r.Id), "hosts");
        try
        {
            HostsFile.WriteInPlace(path, HostsFile.Render(hostname, IPAddress.Parse(state.IPAddress), peers, extra));
        }
        catch (IOException e)
        {
            LogWarning(_logger, $"container {r.Id}: writing {path}: {e.Message}");
        }
    }

    private void RefreshPeersHosts(string networkId, string except)
    {
        foreach (ContainerEntry peer in Snapshot())
            if (peer.Record.Id != except && peer.Record.Network?.NetworkId == networkId && peer.Record.State.Running)
                WriteHosts(peer);
    }

    /// <summary>At daemon start: endpoints of containers that no longer run, and links and rules a crash left, go.</summary>
    private void ReconcileNetwork()
    {
        if (Network is null) return;
        var live = Snapshot().Where(e => e.Record.State.Running && e.Record.Network is not null).Select(e => e.Record.Network!.EndpointId).ToList();
        try
        {
            Network.Reconcile(live);
        }
        catch (NetworkException e)
        {
            LogWarning(_logger, $"reconciling networks at start: {e.Message}");
        }
    }

    internal static int StatusOf(NetworkErrorKind kind) => kind switch
    {
        NetworkErrorKind.InvalidArgument => 400,
        NetworkErrorKind.NotFound => 404,
        NetworkErrorKind.Conflict => 409,
        NetworkErrorKind.Exhausted => 503,
        _ => 500,
    };
}
