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
/// exits. Names on user networks resolve through the container's embedded DNS server at 127.0.0.11
/// (Berth.Network's EmbeddedDnsServer, started once it has joined them, stopped at its exit), and
/// through the hosts files, which are rewritten in place (they are bind mounts) whenever a peer
/// joins or leaves.
/// </summary>
public sealed partial class ContainerService
{
    public NetworkController? Network { get; }

    /// <summary>The mode a container runs with: "" and "default" mean the default bridge, or none when berthd has no bridge.</summary>
    public string EffectiveNetworkMode(HostConfigJson h)
        => h.NetworkMode is "" or "default" ? (Network is null ? "none" : NetworkController.DefaultNetworkName) : h.NetworkMode;

    /// <summary>Whether the container's network namespace is its own, with berthd's interfaces in it (bridge or user networks).</summary>
    public bool HasOwnNetwork(ContainerRecord r) => IsBridged(EffectiveNetworkMode(r.HostConfig));

    private static bool IsBridged(string mode) => mode is not ("none" or "host") && !mode.StartsWith("container:", StringComparison.Ordinal);

    /// <summary>
    /// A container a create request names (--network, --pid or --ipc container:X). A missing one is a 400, as
    /// dockerd answers: a 404 to a create tells docker clients that the image is missing, and they pull it.
    /// </summary>
    private ContainerEntry FindForCreate(string reference)
    {
        try
        {
            return Find(reference);
        }
        catch (ApiException e) when (e.StatusCode == 404)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    /// <summary>Checks the network settings of a create request (before anything is made); returns the networks it will join.</summary>
    private List<ContainerNetworkState> CheckNetwork(ContainerCreateBody body, HostConfigJson h, List<string> warnings)
    {
        string mode = EffectiveNetworkMode(h);
        bool publishes = PortBindingsOf(h).Count > 0 || h.PublishAllPorts;
        if (mode.StartsWith("container:", StringComparison.Ordinal))
        {
            FindForCreate(mode["container:".Length..]);
            if (publishes) throw ApiException.BadRequest("conflicting options: port publishing and the container type network mode");
            if (!string.IsNullOrEmpty(body.Hostname)) throw ApiException.BadRequest("conflicting options: hostname and the network mode");
            return [];
        }
        if (mode is "none" or "host")
        {
            if (publishes && mode == "host") warnings.Add("Published ports are discarded when using host network mode");
            if (publishes && mode == "none") throw ApiException.BadRequest("conflicting options: port publishing and network mode none");
            return [];
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
        return InitialNetworks(h, body.NetworkingConfig, check: true);
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
                IPAddress? parsed = null;
                if (ip is not null && (!IPAddress.TryParse(ip.StartsWith('[') && ip.EndsWith(']') ? ip[1..^1] : ip, out parsed) || (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && parsed.ScopeId != 0)))
                    throw ApiException.BadRequest($"invalid host IP `{ip}` for {key}");
                result.Add(new PortMapping { Protocol = protocol, HostIp = parsed?.ToString(), HostPort = hostPort, ContainerPort = containerPort });
            }
        }
        return result;
    }

    /// <summary>
    /// NetworkingConfig.EndpointsConfig: network (as the client named it) → --ip, --ip6, --network-alias and
    /// --mac-address. What berthd cannot give an endpoint (--link-local-ip, driver options)
    /// is a 400 naming it, as network connect says. Links are not read here: docker 28's CLI puts
    /// --link both in HostConfig.Links, which berthd serves, and in the first network's endpoint.
    /// </summary>
    private static List<(string Network, string? Address, string? Address6, List<string> Aliases, string? Mac)> EndpointRequests(JsonElement? networkingConfig)
    {
        var result = new List<(string, string?, string?, List<string>, string?)>();
        if (networkingConfig is not { ValueKind: JsonValueKind.Object } nc || Prop(nc, "EndpointsConfig") is not { ValueKind: JsonValueKind.Object } endpoints)
            return result;
        foreach (JsonProperty network in endpoints.EnumerateObject())
        {
            var aliases = new List<string>();
            string? address = null, address6 = null, mac = null;
            if (network.Value.ValueKind == JsonValueKind.Object)
            {
                JsonElement ep = network.Value;
                if (Prop(ep, "Aliases") is { ValueKind: JsonValueKind.Array } a)
                    aliases.AddRange(a.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!));
                JsonElement? ipam = Prop(ep, "IPAMConfig") is { ValueKind: JsonValueKind.Object } i ? i : null;
                if (ipam is { } v4 && Prop(v4, "IPv4Address") is { ValueKind: JsonValueKind.String } ip && ip.GetString() is { Length: > 0 } v)
                    address = v;
                if (ipam is { } v6 && Prop(v6, "IPv6Address") is { ValueKind: JsonValueKind.String } ip6 && ip6.GetString() is { Length: > 0 } v6Text)
                    address6 = v6Text;
                if (Prop(ep, "MacAddress") is { ValueKind: JsonValueKind.String } m && m.GetString() is { Length: > 0 } macText)
                    mac = ContainerRequestCheck.CheckMacAddress(macText);
                string? unsupported = IsSetProp(ep, "DriverOpts") ? "DriverOpts (--driver-opt)"
                    : ipam is { } ll && IsSetProp(ll, "LinkLocalIPs") ? "IPAMConfig.LinkLocalIPs (--link-local-ip)"
                    : null;
                if (unsupported is not null)
                    throw ApiException.BadRequest($"NetworkingConfig.EndpointsConfig[{network.Name}].{unsupported} is not supported by this version of berthd");
            }
            result.Add((network.Name, address, address6, aliases, mac));
        }
        return result;
    }

    private static bool IsSetProp(JsonElement obj, string name) => Prop(obj, name) is { } value && ContainerRequestCheck.IsSet(value);

    /// <summary>A property by name, ignoring case as Go's encoding/json does (network names are matched exactly).</summary>
    private static JsonElement? Prop(JsonElement obj, string name)
    {
        if (obj.TryGetProperty(name, out JsonElement exact)) return exact;
        foreach (JsonProperty p in obj.EnumerateObject())
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value;
        return null;
    }

    /// <summary>A bridge network by id, name or id prefix ("bridge" is made on first use); null when there is none such.</summary>
    private NetworkInfo? TryGetNetwork(string idOrName)
    {
        if (Network is null) return null;
        if (idOrName == NetworkController.DefaultNetworkName) return Network.EnsureDefaultNetwork();
        try
        {
            return Network.GetNetwork(idOrName);
        }
        catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// The networks a new container joins (dockerd's updateContainerNetworkSettings): its network mode
    /// first, then the other networks of EndpointsConfig, each with its aliases and --ip; when
    /// EndpointsConfig names networks but not the mode's, those networks only. Checked
    /// here, before anything is made: every network exists and takes what is asked of it.
    /// </summary>
    private List<ContainerNetworkState> InitialNetworks(HostConfigJson h, JsonElement? networkingConfig, bool check)
    {
        string mode = EffectiveNetworkMode(h);
        var requests = EndpointRequests(networkingConfig);
        if (!IsBridged(mode) || Network is null) return [];
        var result = new List<ContainerNetworkState>();
        NetworkInfo? primary = TryGetNetwork(mode);
        void Add(string asked, NetworkInfo? n, string? address, string? address6, List<string> aliases, string? mac)
        {
            string name = n?.Name ?? asked;
            if (result.Any(x => x.NetworkName == name)) return;
            if (check)
            {
                if (n is null) throw ApiException.NotFound($"network {asked} not found");
                CheckEndpointSettings(n, address, aliases, address6);
            }
            result.Add(new ContainerNetworkState
            {
                NetworkName = name, NetworkId = n?.Id ?? "", Aliases = aliases.Count > 0 ? aliases : null, RequestedAddress = address,
                RequestedAddress6 = address6, RequestedMacAddress = mac,
            });
        }
        bool IsPrimary(string key) => key == mode || key == h.NetworkMode || (key is "default" && h.NetworkMode is "" or "default")
            || (primary is not null && (key == primary.Name || key == primary.Id));
        var own = requests.FirstOrDefault(q => IsPrimary(q.Network));
        // As dockerd's updateContainerNetworkSettings: endpoints given name the networks, the mode's
        // only among them (Testcontainers sends NetworkMode "" with its network's endpoint alone: the
        // container is on that network only, not on the default bridge too).
        if (requests.Count == 0 || own.Network is not null)
            Add(mode, primary, own.Network is null ? null : own.Address, own.Network is null ? null : own.Address6, own.Aliases ?? [], own.Network is null ? null : own.Mac);
        foreach (var (asked, address, address6, aliases, mac) in requests.Where(q => !IsPrimary(q.Network)))
            Add(asked, TryGetNetwork(asked), address, address6, aliases, mac);
        return result;
    }

    /// <summary>
    /// dockerd's validateEndpointSettings: aliases, --ip and --ip6 on user networks only, each address
    /// inside a subnet of its family that the user chose (an --ip6 on a network without IPv6, or whose
    /// IPv6 subnet came from the daemon's ULA prefix, is refused as dockerd refuses it).
    /// </summary>
    private static void CheckEndpointSettings(NetworkInfo n, string? address, IReadOnlyCollection<string> aliases, string? address6 = null)
    {
        var errors = new List<string>();
        bool user = n.Name != NetworkController.DefaultNetworkName;
        if (!user && (address is not null || address6 is not null)) errors.Add("user specified IP address is supported on user defined networks only");
        if (!user && aliases.Count > 0) errors.Add("network-scoped alias is supported only for containers in user defined networks");
        if (address is not null)
        {
            if (!IPAddress.TryParse(address, out IPAddress? ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || ip.Equals(IPAddress.Any))
                errors.Add($"invalid IPv4 address: {address}");
            else if (user && !n.ConfiguredSubnet)
                errors.Add("user specified IP address is supported only when connecting to networks with user configured subnets");
            else if (user && !n.Subnet.Contains(ip))
                errors.Add($"no configured subnet or ip-range contain the IP address {address}");
        }
        if (address6 is not null)
        {
            if (!IPAddress.TryParse(address6, out IPAddress? ip6) || ip6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || ip6.Equals(IPAddress.IPv6Any))
                errors.Add($"invalid IPv6 address: {address6}");
            else if (user && (n.Subnet6 is null || !n.ConfiguredSubnet6))
                errors.Add("user specified IP address is supported only when connecting to networks with user configured subnets");
            else if (user && !n.Subnet6!.Value.Contains(ip6))
                errors.Add($"no configured subnet or ip-range contain the IP address {address6}");
        }
        if (errors.Count > 0) throw ApiException.BadRequest("invalid endpoint settings:\n" + string.Join('\n', errors));
    }

    /// <summary>At daemon start: a record written before connect/disconnect existed gets its Networks (and its running endpoint) from the older fields.</summary>
    private void UpgradeNetworks(ContainerRecord r)
    {
        if (r.Networks is not null) return;
        r.Networks = InitialNetworks(r.HostConfig, r.NetworkingConfig, check: false);
        if (r.Network is { } old && r.Networks.FirstOrDefault(n => n.NetworkName == old.NetworkName || n.NetworkId == old.NetworkId) is { } state)
        {
            state.NetworkId = old.NetworkId;
            state.EndpointId = old.EndpointId;
            state.Interface = "eth0";
            state.IPAddress = old.IPAddress;
            state.IPPrefixLen = old.IPPrefixLen;
            state.Gateway = old.Gateway;
            state.MacAddress = old.MacAddress;
            state.DnsNames = old.Aliases;
            state.Ports = old.Ports;
        }
        r.Network = null;
    }

    /// <summary>The container's networks (none for the none, host and container: modes).</summary>
    private static List<ContainerNetworkState> NetworksOf(ContainerRecord r) => r.Networks ??= [];

    /// <summary>Joins the container (its init waits at the exec fifo) to each of its networks, in order. Caller holds the lock.</summary>
    private void ConnectLocked(ContainerEntry entry, int containerPid)
    {
        ContainerRecord r = entry.Record;
        if (Network is null || !IsBridged(EffectiveNetworkMode(r.HostConfig))) return;
        List<ContainerNetworkState> networks = NetworksOf(r);
        // The DNS server's redirect is an nft run in the namespace (~10 ms, most of it the kernel's commit):
        // made while the endpoints are, not after them, on a thread of its own: this start waits for it, and
        // a thread-pool item could wait behind others for as long as the pool is busy. The server looks names
        // up at each query.
        Task? dns = networks.Any(n => n.NetworkName != NetworkController.DefaultNetworkName)
            ? Engine.BlockingWork.RunAsync(() => StartDns(entry, containerPid), CancellationToken.None)
            : null;
        try
        {
            for (int i = 0; i < networks.Count; i++)
            {
                ContainerNetworkState state = networks[i];
                NetworkInfo network = (state.NetworkId.Length > 0 ? TryGetNetwork(state.NetworkId) : null) ?? TryGetNetwork(state.NetworkName)
                    ?? throw ApiException.NotFound($"network {state.NetworkName} not found");
                // The first network gets the published ports, as the primary one in Docker.
                JoinLocked(entry, state, network, containerPid, "eth" + i.ToString(CultureInfo.InvariantCulture), ports: i == 0);
            }
        }
        catch
        {
            // The start fails: its cleanup (DisconnectLocked) stops a server only once this has registered it.
            if (dns is not null) Task.WhenAny(dns).Wait(); // its own failure, if any, is not the one to report
            throw;
        }
        WriteHosts(entry);
        dns?.GetAwaiter().GetResult();
        foreach (ContainerNetworkState state in networks)
        {
            if (state.NetworkName != NetworkController.DefaultNetworkName) RefreshPeersHosts(state.NetworkId, except: r.Id);
            PublishNetworkEvent("connect", state, r.Id);
        }
    }

    /// <summary>
    /// Whether the container's resolv.conf names the embedded DNS server: it is on a user-defined network, as
    /// in dockerd (the default bridge keeps the host's servers), or shares the namespace of a container that is.
    /// </summary>
    private bool UsesEmbeddedDns(ContainerRecord r)
    {
        if (Network is null) return false;
        string mode = EffectiveNetworkMode(r.HostConfig);
        if (mode.StartsWith("container:", StringComparison.Ordinal))
        {
            ContainerEntry other;
            try
            {
                other = Find(mode["container:".Length..]);
            }
            catch (ApiException)
            {
                return false; // the start reports it
            }
            return other.Record.Id != r.Id && IsBridged(EffectiveNetworkMode(other.Record.HostConfig)) && UsesEmbeddedDns(other.Record);
        }
        return IsBridged(mode) && NetworksOf(r).Any(n => n.NetworkName != NetworkController.DefaultNetworkName);
    }

    /// <summary>Starts (or restarts, after berthd's own restart) the container's embedded DNS server in its namespace.</summary>
    private void StartDns(ContainerEntry entry, int containerPid)
    {
        ContainerRecord r = entry.Record;
        try
        {
            Network!.StartDns(r.Id, $"/proc/{containerPid}/ns/net", ContainerSpecFactory.UpstreamDns(r.HostConfig, Options), name => LinkAddresses(entry, name));
        }
        catch (NetworkException e)
        {
            throw new ApiException(StatusOf(e.Kind), $"failed to start the embedded DNS server of container {r.Id[..12]}: {e.Message}");
        }
    }

    /// <summary>Makes one endpoint in the container's namespace and records it in <paramref name="state"/>. Caller holds the lock.</summary>
    private void JoinLocked(ContainerEntry entry, ContainerNetworkState state, NetworkInfo network, int containerPid, string interfaceName, bool ports)
    {
        ContainerRecord r = entry.Record;
        bool userNetwork = network.Name != NetworkController.DefaultNetworkName;
        string hostname = string.IsNullOrEmpty(r.Config.Hostname) ? r.Id[..12] : r.Config.Hostname;
        // dockerd adds the short ID to the aliases on user networks; peers resolve the name, the
        // aliases, the short ID and the hostname (its DNSNames).
        if (userNetwork && !(state.Aliases ?? []).Contains(r.Id[..12])) state.Aliases = [.. state.Aliases ?? [], r.Id[..12]];
        List<string> names = userNetwork ? [r.Name.TrimStart('/'), .. state.Aliases ?? [], r.Id[..12], hostname] : [];
        names = names.Distinct(StringComparer.Ordinal).ToList();
        IReadOnlyList<PortMapping> portMappings = ports ? PortMappings(r.Config, r.HostConfig) : [];
        bool portsUnsupported = ports && network.Driver != NetworkDrivers.Bridge;
        if (portsUnsupported && portMappings.Count > 0)
        {
            // dockerd's macvlan and ipvlan drivers log this and go on: the containers are on the LAN, nothing is published.
            LogWarning(_logger, $"{network.Driver} driver does not support port mappings");
            portMappings = [];
        }
        EndpointInfo endpoint;
        try
        {
            endpoint = Network!.CreateEndpoint(new EndpointCreateOptions
            {
                Network = network.Id,
                ContainerId = r.Id,
                NetnsPath = $"/proc/{containerPid}/ns/net",
                InterfaceName = interfaceName,
                Address = state.RequestedAddress,
                Address6 = state.RequestedAddress6,
                MacAddress = state.RequestedMacAddress ?? (ports && !string.IsNullOrEmpty(r.Config.MacAddress) ? r.Config.MacAddress : null),
                Ports = portMappings,
                Aliases = names,
                Hostname = hostname,
            });
        }
        catch (NetworkException e)
        {
            throw new ApiException(StatusOf(e.Kind), $"failed to set up the network of container {r.Id[..12]}: {e.Message}");
        }
        state.NetworkName = network.Name;
        state.NetworkId = network.Id;
        state.Interface = endpoint.Interface;
        state.IPAddress = endpoint.Address.ToString();
        state.IPPrefixLen = endpoint.PrefixLength;
        state.Gateway = endpoint.Gateway?.ToString() ?? "";
        state.MacAddress = endpoint.MacAddress;
        state.GlobalIPv6Address = endpoint.Address6?.ToString() ?? "";
        state.GlobalIPv6PrefixLen = endpoint.PrefixLength6;
        state.IPv6Gateway = endpoint.Gateway6?.ToString() ?? "";
        state.DnsNames = userNetwork ? names : null;
        state.PortsUnsupported = portsUnsupported;
        // Last: Connected (a non-empty endpoint ID) tells peers, which read this without the lock, that the address is there.
        state.EndpointId = endpoint.Id;
        // A port bound to every address answers over IPv6 too (DNAT'd on a dual-stack network, else the proxy): listed twice, as dockerd lists it.
        state.Ports = endpoint.Ports.SelectMany(p => p.HostIp is null && (endpoint.Address6 is not null || endpoint.PortsOnIpv6Any)
            ? new[] { new PublishedPort(p.Protocol, "0.0.0.0", p.HostPort, p.ContainerPort), new PublishedPort(p.Protocol, "::", p.HostPort, p.ContainerPort) }
            : [new PublishedPort(p.Protocol, p.HostIp ?? "0.0.0.0", p.HostPort, p.ContainerPort)]).ToList();
    }

    /// <summary>
    /// Leaves every network (the endpoints, their addresses and published ports go; what was asked
    /// stays for the next start). Caller holds the lock. Returns the networks it left.
    /// </summary>
    private List<ContainerNetworkState> DisconnectLocked(ContainerEntry entry, bool publish = true, bool processesGone = false)
    {
        var left = new List<ContainerNetworkState>();
        if (Network is null) return left;
        Network.StopDns(entry.Record.Id);
        foreach (ContainerNetworkState state in NetworksOf(entry.Record).Where(s => s.Connected))
        {
            LeaveLocked(entry, state, processesGone);
            left.Add(state);
        }
        foreach (ContainerNetworkState state in left)
        {
            if (state.NetworkName != NetworkController.DefaultNetworkName) RefreshPeersHosts(state.NetworkId, except: entry.Record.Id);
            if (publish) PublishNetworkEvent("disconnect", state, entry.Record.Id);
        }
        return left;
    }

    private void LeaveLocked(ContainerEntry entry, ContainerNetworkState state, bool processesGone = false)
    {
        try
        {
            Network!.DeleteEndpoint(state.EndpointId, processesGone);
        }
        catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound)
        {
        }
        catch (NetworkException e)
        {
            LogWarning(_logger, $"container {entry.Record.Id}: removing its endpoint on {state.NetworkName}: {e.Message}");
        }
        state.ClearEndpoint();
    }

    // ---- network connect / disconnect ------------------------------------------------------------

    private const string SharedNamespaceError = "container sharing network namespace with another container or host cannot be connected to any other network";
    private const string NoneNetworkError = "container cannot be connected to multiple networks with one of the networks in private (none) mode";

    /// <summary>
    /// POST /networks/{id}/connect (dockerd's ConnectToNetwork): a running container gets a new
    /// interface (eth1, …) in its namespace at once, names on the network resolve both ways; a
    /// stopped one has the network recorded and joins it at its next start (connecting it twice
    /// changes nothing, as dockerd). <paramref name="network"/> is a network's name as listed.
    /// </summary>
    public async Task ConnectAsync(string containerRef, string network, IReadOnlyList<string> aliases, string? address, string? address6, CancellationToken cancellationToken,
        string? macAddress = null, IReadOnlyList<string>? links = null)
    {
        ContainerEntry entry = Find(containerRef);
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            ContainerRecord r = entry.Record;
            if (entry.Removed) throw ApiException.NotFound($"No such container: {containerRef}");
            string mode = EffectiveNetworkMode(r.HostConfig);
            if (mode.StartsWith("container:", StringComparison.Ordinal) || (mode == "host" && network != "host")) throw ApiException.BadRequest(SharedNamespaceError);
            if (network == "host" && mode != "host") throw ApiException.BadRequest("cannot connect container to host network - container must be created in host network mode");
            if (mode is "none" or "host")
            {
                if (mode == network)
                {
                    if (r.State.Running) throw ApiException.Forbidden($"endpoint with name {r.Name.TrimStart('/')} already exists in network {network}");
                    return;
                }
                throw ApiException.BadRequest(NoneNetworkError);
            }
            if (network == "none") throw ApiException.BadRequest(NoneNetworkError);
            NetworkInfo target = TryGetNetwork(network) ?? throw ApiException.NotFound($"network {network} not found");
            CheckEndpointSettings(target, address, aliases, address6);
            List<string>? endpointLinks = CheckEndpointLinks(target, links ?? [], r.Name);
            List<ContainerNetworkState> networks = NetworksOf(r);
            bool member = networks.Any(n => n.NetworkId == target.Id || n.NetworkName == target.Name);
            if (member && r.State.Running) throw ApiException.Forbidden($"endpoint with name {r.Name.TrimStart('/')} already exists in network {target.Name}");
            if (member) return;
            var state = new ContainerNetworkState
            {
                NetworkName = target.Name,
                NetworkId = target.Id,
                Aliases = aliases.Count > 0 ? [.. aliases] : null,
                RequestedAddress = address,
                RequestedAddress6 = address6,
                RequestedMacAddress = macAddress,
                Links = endpointLinks,
            };
            if (!r.State.Running)
            {
                if (target.Name != NetworkController.DefaultNetworkName && !(state.Aliases ?? []).Contains(r.Id[..12]))
                    state.Aliases = [.. state.Aliases ?? [], r.Id[..12]];
                networks.Add(state);
                Store.Save(r);
                return;
            }
            var taken = networks.Where(n => n.Connected).Select(n => n.Interface).ToHashSet(StringComparer.Ordinal);
            string interfaceName = Enumerable.Range(0, 1000).Select(i => "eth" + i.ToString(CultureInfo.InvariantCulture)).First(n => !taken.Contains(n));
            JoinLocked(entry, state, target, r.State.Pid, interfaceName, ports: false);
            networks.Add(state);
            try
            {
                Store.Save(r);
            }
            catch
            {
                LeaveLocked(entry, state);
                networks.Remove(state);
                throw;
            }
            WriteHosts(entry);
            if (target.Name != NetworkController.DefaultNetworkName)
            {
                // dockerd's rebuildDNS: a container that joins its first user-defined network asks 127.0.0.11 from now on.
                if (!Network!.HasDns(r.Id)) EnableDnsOfRunning(entry);
                RefreshPeersHosts(target.Id, except: r.Id);
            }
            PublishNetworkEvent("connect", state, r.Id);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>
    /// POST /networks/{id}/disconnect (dockerd's DisconnectFromNetwork): a running container's
    /// interface on that network goes (the default route moves to another network if it went with
    /// it); a stopped one forgets the network. <paramref name="network"/> is a network's name as
    /// listed, or as given when <paramref name="force"/> names one that no longer exists.
    /// </summary>
    public async Task DisconnectAsync(string containerRef, string network, bool exists, bool force, CancellationToken cancellationToken)
    {
        ContainerEntry entry = Find(containerRef);
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            ContainerRecord r = entry.Record;
            if (entry.Removed) throw ApiException.NotFound($"No such container: {containerRef}");
            string mode = EffectiveNetworkMode(r.HostConfig);
            if (network is "host" or "none" && mode == network)
                throw ApiException.BadRequest($"cannot disconnect container from {network} network - container was created in {network} network mode");
            List<ContainerNetworkState> networks = NetworksOf(r);
            NetworkInfo? target = exists ? TryGetNetwork(network) : null;
            ContainerNetworkState? state = networks.FirstOrDefault(n => n.NetworkName == network || (target is not null && n.NetworkId == target.Id));
            if (!r.State.Running || (!exists && force))
            {
                if (state is null) throw new ApiException(500, $"container {r.Id} is not connected to the network {network}");
                if (state.Connected) LeaveLocked(entry, state);
                networks.Remove(state);
                Store.Save(r);
                if (r.State.Running)
                {
                    WriteHosts(entry);
                    RefreshPeersHosts(state.NetworkId, except: r.Id);
                }
                return;
            }
            if (!exists) throw ApiException.NotFound($"network {network} not found");
            if (state is not { Connected: true }) throw new ApiException(500, $"container {r.Id} is not connected to network {network}");
            LeaveLocked(entry, state);
            networks.Remove(state);
            Store.Save(r);
            try
            {
                Network!.EnsureDefaultRoute(r.Id, $"/proc/{r.State.Pid}/ns/net");
            }
            catch (NetworkException e)
            {
                LogWarning(_logger, $"container {r.Id}: moving its default route after leaving {state.NetworkName}: {e.Message}");
            }
            WriteHosts(entry);
            if (state.NetworkName != NetworkController.DefaultNetworkName) RefreshPeersHosts(state.NetworkId, except: r.Id);
            PublishNetworkEvent("disconnect", state, r.Id);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>dockerd's network connect/disconnect: the network is the actor, the container an attribute.</summary>
    private void PublishNetworkEvent(string action, ContainerNetworkState state, string containerId)
        => Events.Publish("network", action, state.NetworkId, new Dictionary<string, string>
        {
            ["container"] = containerId,
            ["name"] = state.NetworkName,
            ["type"] = "bridge",
        });

    /// <summary>
    /// What --add-host NAME:host-gateway stands for: the default bridge's address, as dockerd's
    /// default --host-gateway-ip; null without a bridge (--bridge none).
    /// </summary>
    private System.Net.IPAddress? HostGatewayAddress()
        => Network?.Networks.FirstOrDefault(n => n.Name == Berth.Network.NetworkController.DefaultNetworkName)?.Gateway;

    /// <summary>
    /// The container's /etc/hosts: its own address (on its first network) and name, on each user
    /// network it is on its own name and aliases there and its peers, --add-host entries. Written in place: it is bind-mounted.
    /// </summary>
    private void WriteHosts(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        if (Network is null) return;
        List<ContainerNetworkState> connected = NetworksOf(r).Where(n => n.Connected).ToList();
        if (connected.Count == 0 && !r.State.Running) return;
        List<HostsEntry> extra = ContainerSpecFactory.ExtraHosts(r.HostConfig, HostGatewayAddress);
        List<HostsEntry> links = LinkEntries(r, connected);
        entry.LinkNames = links;
        extra.InsertRange(0, links);
        var peers = new List<HostsEntry>();
        foreach (ContainerNetworkState state in connected.Where(n => n.NetworkName != NetworkController.DefaultNetworkName))
        {
            try
            {
                peers.AddRange(Network.OwnEntriesOf(state.EndpointId));
                peers.AddRange(Network.PeersOf(state.EndpointId));
            }
            catch (NetworkException e) when (e.Kind == NetworkErrorKind.NotFound)
            {
            }
        }
        string hostname = string.IsNullOrEmpty(r.Config.Hostname) ? r.Id[..12] : r.Config.Hostname;
        string path = Path.Combine(Store.DirectoryOf(r.Id), "hosts");
        try
        {
            // A peer's refresh reads this record without its lock: an endpoint being joined or left
            // may lack its address for an instant (the join rewrites the file once it has one).
            IPAddress? own = connected.Count > 0 && IPAddress.TryParse(connected[0].IPAddress, out IPAddress? a) ? a : null;
            IPAddress? own6 = connected.Count > 0 && IPAddress.TryParse(connected[0].GlobalIPv6Address, out IPAddress? a6) ? a6 : null;
            HostsFile.WriteInPlace(path, HostsFile.Render(hostname, own, peers, extra, own6));
        }
        catch (IOException e)
        {
            LogWarning(_logger, $"container {r.Id}: writing {path}: {e.Message}");
        }
    }

    /// <summary>
    /// At berthd's start, for a container that ran on through it: its DNS server went with the old
    /// berthd (the redirect in its namespace now leads to a closed port) and starts again.
    /// </summary>
    private void RestartDns(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        if (Network is null || !NetworksOf(r).Any(n => n.Connected && n.NetworkName != NetworkController.DefaultNetworkName)) return;
        entry.LinkNames = LinkEntries(r, NetworksOf(r).Where(n => n.Connected).ToList());
        try
        {
            StartDns(entry, r.State.Pid);
        }
        catch (ApiException e)
        {
            LogWarning(_logger, $"container {r.Id}: {e.Message}");
        }
    }

    /// <summary>A running container that joined its first user-defined network: its DNS server starts and resolv.conf (a bind mount) is rewritten in place.</summary>
    private void EnableDnsOfRunning(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        try
        {
            StartDns(entry, r.State.Pid);
            string path = Path.Combine(Store.DirectoryOf(r.Id), "resolv.conf");
            HostsFile.WriteInPlace(path, ContainerSpecFactory.ResolvConfOf(r.HostConfig, Options, hostNetwork: false, embeddedDns: true));
        }
        catch (Exception e) when (e is ApiException or IOException)
        {
            // The endpoint is there and names resolve through the hosts file; the connect stands, as dockerd's does when its resolver fails.
            LogWarning(_logger, $"container {r.Id}: {e.Message}");
        }
    }

    /// <summary>
    /// The hosts lines of the container's links, legacy (HostConfig.Links) then endpoint ones, each
    /// beginning with its alias. Resolved again on every rewrite: a linked container that has stopped
    /// since drops out.
    /// </summary>
    private List<HostsEntry> LinkEntries(ContainerRecord r, IReadOnlyList<ContainerNetworkState> connected)
    {
        List<HostsEntry> entries = EndpointLinkEntries(connected);
        if (r.HostConfig.Links is { Count: > 0 })
        {
            try
            {
                entries.InsertRange(0, ResolveLinks(r, connected).Select(LinkHostsEntry));
            }
            catch (ApiException e)
            {
                LogWarning(_logger, $"container {r.Id}: links not written to /etc/hosts: {e.Message}");
            }
        }
        return entries;
    }

    /// <summary>
    /// What the container's DNS server answers for a link alias (dockerd's resolver answers them on
    /// user-defined networks): the address its hosts file gives the alias, from the snapshot taken
    /// when the file was last written. Called on the DNS server's threads.
    /// </summary>
    private static IReadOnlyList<IPAddress>? LinkAddresses(ContainerEntry entry, string name)
    {
        List<IPAddress> found = entry.LinkNames.Where(e => e.Names[0].Equals(name, StringComparison.OrdinalIgnoreCase)).Select(e => e.Address).ToList();
        return found.Count > 0 ? found : null;
    }

    private void RefreshPeersHosts(string networkId, string except)
    {
        foreach (ContainerEntry peer in Snapshot())
            if (peer.Record.Id != except && peer.Record.State.Running && (peer.Record.Networks ?? []).Any(n => n.Connected && n.NetworkId == networkId))
                WriteHosts(peer);
    }

    /// <summary>At daemon start: endpoints of containers that no longer run, and links and rules a crash left, go.</summary>
    private void ReconcileNetwork()
    {
        if (Network is null) return;
        var live = Snapshot().Where(e => e.Record.State.Running).SelectMany(e => e.Record.Networks ?? []).Where(n => n.Connected).Select(n => n.EndpointId).ToList();
        try
        {
            ReconcileReport report = Network.Reconcile(live);
            foreach (string port in report.UnboundPorts) LogWarning(_logger, $"published port {port}: the NAT rule stays, but the port is not reserved");
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
