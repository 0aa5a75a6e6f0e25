using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Containers;
using Berth.Daemon.Engine;
using Berth.Network;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>/networks/…</c>: the default bridge, user-defined bridge, macvlan and ipvlan networks
/// (Berth.Network), and the predefined <c>host</c> and <c>none</c>, as dockerd lists them.
/// </summary>
public static class NetworksApi
{
    private static readonly string[] Predefined = ["host", "none"];

    // The bridge driver's options berthd takes (network create -o), as dockerd names them.
    private const string NameOption = "com.docker.network.bridge.name", MtuOption = "com.docker.network.driver.mtu",
        IccOption = "com.docker.network.bridge.enable_icc", HostBindingOption = "com.docker.network.bridge.host_binding_ipv4";

    // The macvlan and ipvlan drivers' options. dockerd keeps every other option of theirs as given, unread.
    private const string ParentOption = "parent", MacvlanModeOption = "macvlan_mode", IpvlanModeOption = "ipvlan_mode", IpvlanFlagOption = "ipvlan_flag";

    /// <summary>Go's strconv.ParseBool, which dockerd parses these options with; null when it would fail.</summary>
    private static bool? GoBool(string text) => text switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };

    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        string method = context.Request.Method;
        bool get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        bool post = HttpMethods.IsPost(method);
        if (get && rest == "") return List(context);
        if (post && rest == "create") return Create(context);
        if (post && rest == "prune") return Prune(context);
        string[] parts = rest.Split('/');
        if (parts.Length == 1 && get) return Inspect(context, parts[0]);
        if (parts.Length == 1 && HttpMethods.IsDelete(method)) return Remove(context, parts[0]);
        if (parts.Length == 2 && post && parts[1] == "connect") return Connect(context, parts[0]);
        if (parts.Length == 2 && post && parts[1] == "disconnect") return Disconnect(context, parts[0]);
        throw ApiException.NotFound("page not found");
    }

    private static BerthEngine Engine(HttpContext context) => SystemApi.Engine(context);

    /// <summary>All networks: the default bridge (made on first use), user networks, host and none.</summary>
    private static List<NetworkJson> All(BerthEngine engine)
    {
        var result = new List<NetworkJson>();
        if (engine.Network is { } network)
        {
            network.EnsureDefaultNetwork();
            foreach (NetworkInfo n in network.Networks) result.Add(ToJson(n, engine.Containers));
        }
        foreach (string name in Predefined)
            result.Add(new NetworkJson { Name = name, Id = PredefinedId(engine.Id, name), Driver = name == "host" ? "host" : "null", Created = ContainerService.Rfc3339(engine.Started) });
        return result;
    }

    /// <summary>Stable IDs for host and none (dockerd stores random ones; these never change for one engine).</summary>
    internal static string PredefinedId(string engineId, string name)
        => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(engineId + "/" + name)));

    private static NetworkJson ToJson(NetworkInfo n, ContainerService containers)
    {
        var members = new Dictionary<string, NetworkContainerJson>(StringComparer.Ordinal);
        foreach (ContainerEntry e in containers.Snapshot())
            foreach (ContainerNetworkState s in e.Record.Networks ?? [])
                if (s.Connected && s.NetworkId == n.Id)
                    members[e.Record.Id] = new NetworkContainerJson(e.Record.Name.TrimStart('/'), s.EndpointId, s.MacAddress, $"{s.IPAddress}/{s.IPPrefixLen}",
                        s.GlobalIPv6Address.Length > 0 ? $"{s.GlobalIPv6Address}/{s.GlobalIPv6PrefixLen}" : "");
        // User networks show the options they were created with (compose compares them with its file);
        // the default bridge shows what dockerd shows for docker0, from the daemon's options.
        var options = n.Name == NetworkController.DefaultNetworkName
            ? new Dictionary<string, string>
            {
                ["com.docker.network.bridge.default_bridge"] = "true",
                [IccOption] = n.EnableIcc ? "true" : "false",
                ["com.docker.network.bridge.enable_ip_masquerade"] = "true",
                [HostBindingOption] = n.HostBindingIpv4?.ToString() ?? "0.0.0.0",
                [NameOption] = n.Bridge,
                [MtuOption] = n.Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }
            : new Dictionary<string, string>(n.DriverOptions, StringComparer.Ordinal);
        // dockerd shows a macvlan/ipvlan network's gateway only when it chose the subnet or was given the gateway.
        bool showGateway = n.Driver == NetworkDrivers.Bridge || !n.ConfiguredSubnet || n.ConfiguredGateway;
        bool showGateway6 = n.Driver == NetworkDrivers.Bridge || !n.ConfiguredSubnet6 || n.ConfiguredGateway6;
        var v4 = new IpamPoolJson(n.Subnet.ToString(), showGateway ? n.Gateway.ToString() : null, n.IpRange?.ToString(),
            n.AuxAddresses.Count > 0 ? new Dictionary<string, string>(n.AuxAddresses, StringComparer.Ordinal) : null);
        return new NetworkJson
        {
            Name = n.Name,
            Id = n.Id,
            Created = ContainerService.Rfc3339(n.Created),
            Driver = n.Driver,
            Internal = n.Internal,
            EnableIPv6 = n.EnableIpv6,
            IPAM = new NetworkIpamJson
            {
                Options = n.IpamOptions is { } ipamOptions ? new Dictionary<string, string>(ipamOptions, StringComparer.Ordinal) : null,
                Config = n.Subnet6 is { } s6
                    ? [v4, new IpamPoolJson(s6.ToString(), showGateway6 ? n.Gateway6?.ToString() ?? "" : null, n.IpRange6?.ToString(),
                        n.AuxAddresses6.Count > 0 ? new Dictionary<string, string>(n.AuxAddresses6, StringComparer.Ordinal) : null)]
                    : [v4],
            },
            Containers = members,
            Options = options,
            Labels = new Dictionary<string, string>(n.Labels, StringComparer.Ordinal),
            Attachable = n.Attachable,
        };
    }

    private static NetworkJson Find(BerthEngine engine, string idOrName)
    {
        List<NetworkJson> all = All(engine);
        NetworkJson? match = all.FirstOrDefault(n => n.Name == idOrName) ?? all.FirstOrDefault(n => n.Id == idOrName);
        if (match is not null) return match;
        NetworkJson[] prefixed = all.Where(n => idOrName.Length > 0 && n.Id.StartsWith(idOrName, StringComparison.Ordinal)).ToArray();
        if (prefixed.Length == 1) return prefixed[0];
        if (prefixed.Length > 1) throw ApiException.BadRequest($"network {idOrName} is ambiguous ({prefixed.Length} matches found based on ID prefix)");
        throw ApiException.NotFound($"network {idOrName} not found");
    }

    private static Task List(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "name", "id", "driver", "type", "label", "scope", "dangling");
        IEnumerable<NetworkJson> list = All(Engine(context));
        if (filters.TryGetValue("name", out var names)) list = list.Where(n => names.Any(v => n.Name.Contains(v, StringComparison.Ordinal)));
        if (filters.TryGetValue("id", out var ids)) list = list.Where(n => ids.Any(v => n.Id.StartsWith(v, StringComparison.Ordinal)));
        if (filters.TryGetValue("driver", out var drivers)) list = list.Where(n => drivers.Contains(n.Driver));
        if (filters.TryGetValue("type", out var types))
            list = list.Where(n => types.Any(t => t == "custom" ? !IsPredefined(n.Name) : t == "builtin" && IsPredefined(n.Name)));
        if (filters.TryGetValue("label", out var labels)) list = list.Where(n => labels.All(l => ContainerFilters.LabelMatches(l, n.Labels)));
        if (filters.TryGetValue("scope", out var scopes)) list = list.Where(n => scopes.Contains(n.Scope));
        if (filters.TryGetValue("dangling", out var dangling) && dangling.Count > 0 && dangling[0] is "1" or "true")
            list = list.Where(n => !IsPredefined(n.Name) && n.Containers.Count == 0);
        // The list leaves out who is attached (API ≥ 1.28, moby's documented smaller representation): {} as dockerd sends.
        return JsonResults.WriteAsync(context, list.Select(n => n with { Containers = [] }).ToList(), ApiJson.Context.ListNetworkJson);
    }

    private static bool IsPredefined(string name) => name is "bridge" or "host" or "none";

    private static Task Inspect(HttpContext context, string idOrName)
        => JsonResults.WriteAsync(context, Find(Engine(context), idOrName), ApiJson.Context.NetworkJson);

    private static async Task Create(HttpContext context)
    {
        NetworkCreateBody? body = await JsonResults.ReadAsync(context, ApiJson.Context.NetworkCreateBody);
        if (body is null || string.IsNullOrEmpty(body.Name)) throw ApiException.BadRequest("network name cannot be empty");
        BerthEngine engine = Engine(context);
        NetworkController network = engine.Network ?? throw ApiException.BadRequest("this berthd runs without bridge networking (--bridge none): networks cannot be created");
        // dockerd's answers: host and null are its built-in single-instance drivers; any other is a plugin it looks for.
        if (body.Driver is "host" or "null") throw ApiException.Forbidden($"only one instance of \"{body.Driver}\" network is allowed");
        if (body.Driver is not (null or "" or NetworkDrivers.Bridge or NetworkDrivers.Macvlan or NetworkDrivers.Ipvlan))
            throw ApiException.NotFound($"plugin \"{body.Driver}\" not found");
        string driver = string.IsNullOrEmpty(body.Driver) ? NetworkDrivers.Bridge : body.Driver;
        if (body.IPAM?.Driver is not (null or "" or "default")) throw ApiException.NotFound($"plugin \"{body.IPAM.Driver}\" not found");
        if (IsPredefined(body.Name)) throw ApiException.Forbidden($"{body.Name} is a pre-defined network and cannot be created");
        if (driver == NetworkDrivers.Bridge && body.Options is { Count: > 0 } opts && opts.Keys.FirstOrDefault(k => k is not (NameOption or MtuOption or IccOption or HostBindingOption)) is { } unknown)
            throw ApiException.BadRequest($"network option `{unknown}` is not supported by this version of berthd");
        if (driver != NetworkDrivers.Bridge)
        {
            await CreateLan(context, engine, network, body, driver);
            return;
        }
        var (pool, pool6) = Pools(body);
        if (All(engine).Any(n => n.Name == body.Name)) throw ApiException.Conflict($"network with name {body.Name} already exists");
        int? mtu = body.Options?.GetValueOrDefault(MtuOption) is { } m
            ? (int.TryParse(m, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v
                : throw ApiException.BadRequest($"failed to parse {MtuOption} value: {m} (strconv.Atoi: parsing \"{m}\": invalid syntax)"))
            : null;
        bool icc = body.Options?.GetValueOrDefault(IccOption) is not { } iccText || (GoBool(iccText)
            ?? throw ApiException.BadRequest($"failed to parse {IccOption} value: {iccText} (strconv.ParseBool: parsing \"{iccText}\": invalid syntax)"));
        string? hostBinding = body.Options?.GetValueOrDefault(HostBindingOption) is { } bindingText
            ? (System.Net.IPAddress.TryParse(bindingText, out System.Net.IPAddress? binding) && binding.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
                ? binding.ToString() : throw ApiException.BadRequest($"failed to parse {HostBindingOption} value: {bindingText} (an IPv4 address)"))
            : null;
        NetworkInfo created;
        try
        {
            created = network.CreateNetwork(new NetworkCreateOptions
            {
                Name = body.Name, Subnet = pool?.Subnet, Gateway = pool?.Gateway, Internal = body.Internal, Mtu = mtu,
                Labels = body.Labels, DriverOptions = body.Options, Attachable = body.Attachable, IpamOptions = body.IPAM?.Options,
                EnableIpv6 = body.EnableIPv6 == true, Subnet6 = pool6?.Subnet, Gateway6 = pool6?.Gateway,
                IpRange = string.IsNullOrEmpty(pool?.IPRange) ? null : pool.IPRange, AuxAddresses = pool?.AuxiliaryAddresses,
                IpRange6 = string.IsNullOrEmpty(pool6?.IPRange) ? null : pool6.IPRange, AuxAddresses6 = pool6?.AuxiliaryAddresses,
                EnableIcc = icc, HostBindingIpv4 = hostBinding,
            });
        }
        catch (NetworkException e)
        {
            throw new ApiException(ContainerService.StatusOf(e.Kind), e.Message);
        }
        PublishEvent(engine, "create", created.Id, created.Name, NetworkDrivers.Bridge);
        await JsonResults.WriteAsync(context, new NetworkCreateResponse(created.Id, ""), ApiJson.Context.NetworkCreateResponse, 201);
    }

    /// <summary>
    /// A macvlan or ipvlan network: the parent and mode options go to the network layer, which checks them
    /// in dockerd's words; the others are kept as given (dockerd reads none of them: the bridge's MTU, ICC and
    /// binding options mean nothing here).
    /// </summary>
    private static async Task CreateLan(HttpContext context, BerthEngine engine, NetworkController network, NetworkCreateBody body, string driver)
    {
        var (pool, pool6) = Pools(body);
        if (All(engine).Any(n => n.Name == body.Name)) throw ApiException.Conflict($"network with name {body.Name} already exists");
        string? Option(string key) => body.Options?.GetValueOrDefault(key);
        NetworkInfo created;
        try
        {
            created = network.CreateNetwork(new NetworkCreateOptions
            {
                Name = body.Name, Driver = driver, Parent = Option(ParentOption),
                Mode = Option(driver == NetworkDrivers.Macvlan ? MacvlanModeOption : IpvlanModeOption),
                IpvlanFlag = driver == NetworkDrivers.Ipvlan ? Option(IpvlanFlagOption) : null,
                Subnet = pool?.Subnet, Gateway = pool?.Gateway, Internal = body.Internal,
                Labels = body.Labels, DriverOptions = body.Options, Attachable = body.Attachable, IpamOptions = body.IPAM?.Options,
                EnableIpv6 = body.EnableIPv6 == true, Subnet6 = pool6?.Subnet, Gateway6 = pool6?.Gateway,
                IpRange = string.IsNullOrEmpty(pool?.IPRange) ? null : pool.IPRange, AuxAddresses = pool?.AuxiliaryAddresses,
                IpRange6 = string.IsNullOrEmpty(pool6?.IPRange) ? null : pool6.IPRange, AuxAddresses6 = pool6?.AuxiliaryAddresses,
            });
        }
        catch (NetworkException e)
        {
            throw new ApiException(ContainerService.StatusOf(e.Kind), e.Message);
        }
        PublishEvent(engine, "create", created.Id, created.Name, driver);
        await JsonResults.WriteAsync(context, new NetworkCreateResponse(created.Id, ""), ApiJson.Context.NetworkCreateResponse, 201);
    }

    /// <summary>
    /// IPAM.Config split by family (moby's ValidateIPAM): at most one IPv4 and one IPv6 pool (berthd's
    /// limit: one subnet per family), each gateway of its subnet's family, an IPv6 pool only with
    /// EnableIPv6 (an IPv6 subnet without it would silently make an IPv4-only network).
    /// </summary>
    private static (NetworkCreatePool? V4, NetworkCreatePool? V6) Pools(NetworkCreateBody body)
    {
        NetworkCreatePool? v4 = null, v6 = null;
        foreach (NetworkCreatePool pool in body.IPAM?.Config ?? [])
        {
            string subnet = pool.Subnet ?? "";
            if (subnet.Length == 0 && pool.Gateway is { Length: > 0 } g) throw ApiException.BadRequest($"invalid gateway {g}: a gateway needs a subnet");
            if (subnet.Length == 0 && (pool.IPRange is { Length: > 0 } || pool.AuxiliaryAddresses is { Count: > 0 }))
                throw ApiException.BadRequest("every ip-range or auxiliary address must have a corresponding subnet");
            if (subnet.Length == 0) continue;
            if (RangeAndAuxErrors(pool) is { Count: > 0 } errors) throw ApiException.BadRequest("invalid network config:\n" + string.Join('\n', errors));
            // The family by its text; the subnet itself is parsed (and refused with its reason) by the network layer.
            bool six = Ipv6Subnet.LooksLikeIpv6(subnet);
            if (pool.Gateway is { Length: > 0 } gateway && (!System.Net.IPAddress.TryParse(gateway, out System.Net.IPAddress? gw) || (gw.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) != six))
                throw ApiException.BadRequest($"invalid network config:\ninvalid gateway {gateway}: parent subnet is an {(six ? "IPv6" : "IPv4")} block");
            if (six && body.EnableIPv6 != true)
                throw ApiException.BadRequest($"invalid network config:\nIPv6 subnet {subnet} given but IPv6 is not enabled (--ipv6)");
            if ((six ? v6 : v4) is not null)
                throw ApiException.BadRequest($"only one IPv{(six ? 6 : 4)} pool per network is supported by this version of berthd");
            if (six) v6 = pool;
            else v4 = pool;
        }
        return (v4, v6);
    }

    /// <summary>
    /// moby's ValidateIPAM for an entry's IPRange and AuxiliaryAddresses, in its words: each a valid
    /// CIDR block or address of the subnet's family, the range normalised and inside the subnet, each
    /// auxiliary address inside it. Subnets that do not parse are left to the network layer's message.
    /// </summary>
    private static List<string> RangeAndAuxErrors(NetworkCreatePool pool)
    {
        var errors = new List<string>();
        string subnetText = pool.Subnet!;
        int slash = subnetText.IndexOf('/');
        if (slash < 0 || !System.Net.IPAddress.TryParse(subnetText[..slash], out System.Net.IPAddress? subnetIp)
            || !int.TryParse(subnetText[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int bits))
            return errors;
        string family = subnetIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";
        int maxBits = family == "IPv6" ? 128 : 32;
        if (bits > maxBits) return errors;
        var subnet = new System.Net.IPNetwork(Masked(subnetIp, bits), bits);
        if (pool.IPRange is { Length: > 0 } rangeText)
        {
            int rs = rangeText.IndexOf('/');
            if (rs < 0 || !System.Net.IPAddress.TryParse(rangeText[..rs], out System.Net.IPAddress? rangeIp)
                || !int.TryParse(rangeText[(rs + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int rangeBits)
                || rangeBits > (rangeIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32))
                errors.Add($"invalid ip-range {rangeText}: invalid CIDR block notation");
            else if (rangeIp.AddressFamily != subnetIp.AddressFamily)
                errors.Add($"invalid ip-range {rangeText}: parent subnet is an {family} block");
            else
            {
                System.Net.IPAddress rangeNetwork = Masked(rangeIp, rangeBits);
                if (rangeBits < bits) errors.Add($"invalid ip-range {rangeText}: CIDR block is bigger than its parent subnet {subnet}");
                if (!rangeNetwork.Equals(rangeIp)) errors.Add($"invalid ip-range {rangeText}: it should be {rangeNetwork}/{rangeBits}");
                if (!subnet.Contains(rangeNetwork) && !new System.Net.IPNetwork(rangeNetwork, rangeBits).Contains(subnet.BaseAddress))
                    errors.Add($"invalid ip-range {rangeText}: parent subnet {subnet} doesn't contain ip-range");
            }
        }
        foreach (var (name, text) in (pool.AuxiliaryAddresses ?? []).OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (!System.Net.IPAddress.TryParse(text, out System.Net.IPAddress? aux) || text.Contains('/'))
                errors.Add($"invalid auxiliary address {name}: invalid address");
            else if (aux.AddressFamily != subnetIp.AddressFamily)
                errors.Add($"invalid auxiliary address {name}: parent subnet is an {family} block");
            else if (!subnet.Contains(aux))
                errors.Add($"invalid auxiliary address {name}: parent subnet {subnet} doesn't contain this address");
        }
        return errors;
    }

    /// <summary><paramref name="ip"/> with every bit past the first <paramref name="bits"/> cleared.</summary>
    private static System.Net.IPAddress Masked(System.Net.IPAddress ip, int bits)
    {
        byte[] bytes = ip.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(bits - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }
        return new System.Net.IPAddress(bytes);
    }

    /// <summary>
    /// POST /networks/{id}/connect: the container is looked up first (dockerd's order), then the
    /// network; aliases, --ip, --ip6 and MacAddress are served, any other endpoint setting is a 400 naming it.
    /// </summary>
    private static async Task Connect(HttpContext context, string idOrName)
    {
        NetworkConnectBody body = await JsonResults.ReadAsync(context, ApiJson.Context.NetworkConnectBody) ?? new NetworkConnectBody();
        BerthEngine engine = Engine(context);
        engine.Containers.Find(body.Container);
        NetworkJson n = Find(engine, idOrName);
        EndpointConfigBody ep = body.EndpointConfig ?? new EndpointConfigBody();
        string? unsupported = ep.DriverOpts is { Count: > 0 } ? "DriverOpts (--driver-opt)"
            : ep.IPAMConfig?.LinkLocalIPs is { Count: > 0 } ? "IPAMConfig.LinkLocalIPs (--link-local-ip)"
            : ep.Unknown?.FirstOrDefault(u => ContainerRequestCheck.IsSet(u.Value)).Key;
        if (unsupported is not null) throw ApiException.BadRequest($"network connect: EndpointConfig.{unsupported} is not supported by this version of berthd");
        string? address = string.IsNullOrEmpty(ep.IPAMConfig?.IPv4Address) ? null : ep.IPAMConfig!.IPv4Address;
        string? address6 = string.IsNullOrEmpty(ep.IPAMConfig?.IPv6Address) ? null : ep.IPAMConfig!.IPv6Address;
        // EndpointConfig.MacAddress (API 1.44; compose sets it per network), checked as at create.
        string? mac = string.IsNullOrEmpty(ep.MacAddress) ? null : ContainerRequestCheck.CheckMacAddress(ep.MacAddress);
        await engine.Containers.ConnectAsync(body.Container, n.Name, ep.Aliases ?? [], address, address6, context.RequestAborted, mac, ep.Links ?? []);
        context.Response.StatusCode = 200;
    }

    /// <summary>POST /networks/{id}/disconnect: with Force, a network that no longer exists is still forgotten by a container.</summary>
    private static async Task Disconnect(HttpContext context, string idOrName)
    {
        NetworkDisconnectBody body = await JsonResults.ReadAsync(context, ApiJson.Context.NetworkDisconnectBody) ?? new NetworkDisconnectBody();
        BerthEngine engine = Engine(context);
        engine.Containers.Find(body.Container);
        NetworkJson? n;
        try
        {
            n = Find(engine, idOrName);
        }
        catch (ApiException e) when (e.StatusCode == 404 && body.Force)
        {
            n = null;
        }
        await engine.Containers.DisconnectAsync(body.Container, n?.Name ?? idOrName, exists: n is not null, body.Force, context.RequestAborted);
        context.Response.StatusCode = 200;
    }

    private static Task Remove(HttpContext context, string idOrName)
    {
        BerthEngine engine = Engine(context);
        NetworkJson n = Find(engine, idOrName);
        if (IsPredefined(n.Name)) throw ApiException.Forbidden($"{n.Name} is a pre-defined network and cannot be removed");
        if (n.Containers.Count > 0) throw ApiException.Forbidden($"error while removing network: network {n.Name} id {n.Id} has active endpoints");
        try
        {
            engine.Network!.RemoveNetwork(n.Id);
        }
        catch (NetworkException e)
        {
            throw new ApiException(e.Kind == NetworkErrorKind.Conflict ? 403 : ContainerService.StatusOf(e.Kind), e.Message);
        }
        PublishEvent(engine, "destroy", n.Id, n.Name, n.Driver);
        context.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    private static Task Prune(HttpContext context)
    {
        BerthEngine engine = Engine(context);
        // dockerd's network prune filters: until (created before), label, label!.
        var filters = QueryArgs.Filters(context, "until", "label", "label!");
        DateTimeOffset now = engine.Time.GetUtcNow();
        List<DateTimeOffset> until = [.. (filters.GetValueOrDefault("until") ?? []).Select(v => DockerTime.Parse(v, now, "until") ?? DateTimeOffset.MaxValue)];
        List<string> labels = filters.GetValueOrDefault("label") ?? [], notLabels = filters.GetValueOrDefault("label!") ?? [];
        var deleted = new List<string>();
        foreach (NetworkJson n in All(engine))
        {
            if (IsPredefined(n.Name) || n.Containers.Count > 0) continue;
            if (until.Count > 0 && !until.All(u => DateTimeOffset.TryParse(n.Created, System.Globalization.CultureInfo.InvariantCulture, out DateTimeOffset c) && c < u)) continue;
            if (!labels.All(l => ContainerFilters.LabelMatches(l, n.Labels)) || notLabels.Any(l => ContainerFilters.LabelMatches(l, n.Labels))) continue;
            try
            {
                engine.Network!.RemoveNetwork(n.Id);
                deleted.Add(n.Name);
                PublishEvent(engine, "destroy", n.Id, n.Name, n.Driver);
            }
            catch (NetworkException)
            {
                // in use meanwhile
            }
        }
        engine.Events.Publish("network", "prune", "", new Dictionary<string, string> { ["reclaimed"] = "0" });
        return JsonResults.WriteAsync(context, new NetworksPruneReport(deleted.Count > 0 ? deleted : null), ApiJson.Context.NetworksPruneReport);
    }

    /// <summary>dockerd's network events: the network is the actor, with its name and driver.</summary>
    private static void PublishEvent(BerthEngine engine, string action, string id, string name, string driver)
        => engine.Events.Publish("network", action, id, new Dictionary<string, string> { ["name"] = name, ["type"] = driver });
}
