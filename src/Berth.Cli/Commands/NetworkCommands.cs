using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary><c>berth network create|ls|inspect|rm|connect|disconnect|prune</c>: clients of the /networks endpoints, printed as docker prints them.</summary>
internal static partial class NetworkCommands
{
    private static readonly Dictionary<string, string> Titles = new(StringComparer.Ordinal)
    {
        ["ID"] = "NETWORK ID", ["Name"] = "NAME", ["Driver"] = "DRIVER", ["Scope"] = "SCOPE", ["IPv6"] = "IPV6", ["Internal"] = "INTERNAL",
        ["Labels"] = "LABELS", ["CreatedAt"] = "CREATED AT",
    };

    public static Command NetworkGroup() => new("network", "Manage networks")
    {
        Create(), Ls(), Inspect(), Rm(), Connect(), Disconnect(), Prune(),
    };

    /// <summary>
    /// <c>docker network create [-d DRIVER] [--subnet] [--gateway] [--ip-range] [--aux-address] [--internal] [--attachable]
    /// [--ipv6] [--label K=V] [-o K=V] NAME</c>: <c>POST /networks/create</c>, prints the network's ID.
    /// </summary>
    private static Command Create()
    {
        var name = new Argument<string>("NETWORK");
        var driver = new Option<string?>("--driver", "-d") { Description = "driver to manage the network", DefaultValueFactory = _ => "bridge" };
        var subnets = new Option<string[]>("--subnet") { Description = "subnet in CIDR format that represents a network segment" };
        var gateways = new Option<string[]>("--gateway") { Description = "IPv4 gateway for the master subnet" };
        var ranges = new Option<string[]>("--ip-range") { Description = "allocate container IPs from a sub-range" };
        var auxAddresses = new Option<string[]>("--aux-address") { Description = "auxiliary IPv4 or IPv6 addresses used by Network driver (name=ip)" };
        var isInternal = new Option<bool>("--internal") { Description = "restrict external access to the network" };
        var attachable = new Option<bool>("--attachable") { Description = "enable manual container attachment" };
        var ipv6 = new Option<bool>("--ipv6") { Description = "enable IPv6 networking" };
        var labels = new Option<string[]>("--label") { Description = "set metadata on a network" };
        var opts = new Option<string[]>("--opt", "-o") { Description = "set driver specific options" };
        var command = new Command("create", "Create a network") { name, driver, subnets, gateways, ranges, auxAddresses, isInternal, attachable, ipv6, labels, opts };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var body = new JsonObject
            {
                ["Name"] = parse.GetValue(name),
                ["CheckDuplicate"] = true,
                ["Driver"] = parse.GetValue(driver) ?? "bridge",
                ["Internal"] = parse.GetValue(isInternal),
                ["Attachable"] = parse.GetValue(attachable),
                ["EnableIPv6"] = parse.GetValue(ipv6),
                ["IPAM"] = Ipam(parse.GetValue(subnets) ?? [], parse.GetValue(gateways) ?? [], parse.GetValue(ranges) ?? [], parse.GetValue(auxAddresses) ?? []),
                ["Options"] = VolumeCommands.Pairs(parse.GetValue(opts), "--opt"),
                ["Labels"] = VolumeCommands.Pairs(parse.GetValue(labels), "--label"),
            };
            JsonNode? created = await client.PostJsonAsync("/networks/create", body: body, ct: ct).ConfigureAwait(false);
            if (created?["Warning"]?.GetValue<string>() is { Length: > 0 } warning) Console.Error.WriteLine(warning);
            Console.Out.WriteLine(created?["Id"]?.GetValue<string>() ?? "");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// docker's IPAM from the flags: one pool per --subnet, each --gateway and --ip-range inside exactly one
    /// of them, each --aux-address name=ip in the pools whose subnet holds it.
    /// </summary>
    private static JsonObject Ipam(string[] subnets, string[] gateways, string[] ranges, string[] auxAddresses)
    {
        var pools = subnets.Select(s => new JsonObject { ["Subnet"] = s }).ToList();
        void Place(string value, string key, string flag)
        {
            JsonObject? pool = pools.FirstOrDefault(p => Contains((string)p["Subnet"]!, value));
            if (pool is null) throw new UsageException($"no matching subnet for {(flag == "--gateway" ? "gateway" : "range")} {value}");
            if (pool[key] is not null) throw new UsageException($"cannot configure multiple {(flag == "--gateway" ? "gateways" : "ranges")} ({value}, {pool[key]}) on the same subnet ({pool["Subnet"]})");
            pool[key] = value;
        }
        if (subnets.Length == 0 && (gateways.Length > 0 || ranges.Length > 0))
            throw new UsageException("every ip-range or gateway must have a corresponding subnet");
        foreach (string g in gateways) Place(g, "Gateway", "--gateway");
        foreach (string r in ranges) Place(r, "IPRange", "--ip-range");
        foreach (string aux in auxAddresses)
        {
            int eq = aux.IndexOf('=');
            if (eq <= 0) throw new UsageException($"invalid argument \"{aux}\" for \"--aux-address\" flag: give name=ip");
            string key = aux[..eq], address = aux[(eq + 1)..];
            var matching = pools.Where(p => Contains((string)p["Subnet"]!, address)).ToList();
            if (matching.Count == 0) throw new UsageException($"no matching subnet for aux-address {address}");
            foreach (JsonObject pool in matching)
                ((JsonObject)(pool["AuxiliaryAddresses"] ??= new JsonObject()))[key] = address;
        }
        return new JsonObject { ["Driver"] = "default", ["Config"] = new JsonArray([.. pools]), ["Options"] = new JsonObject() };
    }

    /// <summary>Whether the address or subnet <paramref name="value"/> lies inside <paramref name="subnet"/> (addr/n, IPv4 or IPv6; another family: no).</summary>
    private static bool Contains(string subnet, string value)
    {
        string[] s = subnet.Split('/');
        string[] v = value.Split('/');
        if (s.Length != 2 || !IPAddress.TryParse(s[0], out IPAddress? net) || !int.TryParse(s[1], NumberStyles.None, CultureInfo.InvariantCulture, out int bits)
            || bits > net.GetAddressBytes().Length * 8 || !IPAddress.TryParse(v[0], out IPAddress? address))
            throw new UsageException($"invalid CIDR address: {subnet}");
        byte[] n = net.GetAddressBytes(), a = address.GetAddressBytes();
        if (n.Length != a.Length) return false;
        for (int i = 0; i < n.Length; i++)
        {
            int keep = Math.Clamp(bits - i * 8, 0, 8);
            byte mask = (byte)(0xFF << (8 - keep));
            if ((n[i] & mask) != (a[i] & mask)) return false;
        }
        return true;
    }

    /// <summary><c>docker network ls [-q] [-f F] [--format F] [--no-trunc]</c>: <c>GET /networks</c>, sorted by name.</summary>
    private static Command Ls()
    {
        var quiet = ImageCommands.QuietOption("only display network IDs");
        var filters = new Option<string[]>("--filter", "-f") { Description = "provide filter values (e.g. 'driver=bridge')" };
        var format = ImageCommands.FormatOption("{{.ID}}, {{.Name}}, {{.Driver}}, {{.Scope}}, {{.IPv6}}, {{.Internal}}, {{.Labels}}, {{.CreatedAt}}, {{json .}}");
        var noTrunc = new Option<bool>("--no-trunc") { Description = "do not truncate the output" };
        var command = new Command("ls", "List networks") { quiet, filters, format, noTrunc };
        command.Aliases.Add("list");
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var query = new Query().Add("filters", Filters.Json(parse.GetValue(filters) ?? []));
            JsonNode? response = await client.GetJsonAsync("/networks", query, ct).ConfigureAwait(false);
            bool trunc = !parse.GetValue(noTrunc);
            var rows = (response as JsonArray ?? []).OfType<JsonObject>()
                .OrderBy(n => n["Name"]?.GetValue<string>(), StringComparer.Ordinal)
                .Select(n => Row(n, trunc)).ToList();
            return ListOutput.Write(rows, parse.GetValue(quiet), "ID", parse.GetValue(format), "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", Titles);
        });
        return command;
    }

    /// <summary>One row as docker's network formatter renders it.</summary>
    private static JsonObject Row(JsonObject n, bool trunc)
    {
        string id = n["Id"]?.GetValue<string>() ?? "";
        var labels = n["Labels"] as JsonObject ?? [];
        DateTimeOffset? created = DateTimeOffset.TryParse(n["Created"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset c) ? c : null;
        var row = new JsonObject
        {
            ["CreatedAt"] = Units.GoTime(created),
            ["Driver"] = n["Driver"]?.GetValue<string>() ?? "",
            ["ID"] = trunc ? Units.ShortId(id) : id,
            ["IPv4"] = "true",
            ["IPv6"] = (n["EnableIPv6"]?.GetValue<bool>() ?? false) ? "true" : "false",
            ["Internal"] = (n["Internal"]?.GetValue<bool>() ?? false) ? "true" : "false",
            ["Labels"] = "", // below: the text, and {{.Label "k"}}
            ["Name"] = n["Name"]?.GetValue<string>() ?? "",
            ["Scope"] = n["Scope"]?.GetValue<string>() ?? "",
        };
        row["Labels"] = GoTemplate.Labels(row, labels);
        return row;
    }

    /// <summary><c>docker network inspect [-f F] NETWORK…</c>: the daemon's JSON; an error line per network not found (exit 1).</summary>
    private static Command Inspect()
    {
        var names = new Argument<string[]>("NETWORK") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "verbose output for diagnostics" };
        var command = new Command("inspect", "Display detailed information on one or more networks") { names, format, verbose };
        Runner.SetClientAction(command, (parse, client, ct)
            => InspectCommand.InspectObjectsAsync(client, parse.GetValue(names)!, name => $"/networks/{name}", parse.GetValue(format), ct));
        return command;
    }

    /// <summary><c>docker network rm [-f] NETWORK…</c>: <c>DELETE /networks/{id}</c>, prints each name; with -f a missing network is no error.</summary>
    private static Command Rm()
    {
        var names = new Argument<string[]>("NETWORK") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "do not error if the network does not exist" };
        var command = new Command("rm", "Remove one or more networks") { names, force };
        command.Aliases.Add("remove");
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(names)!, async name =>
        {
            try
            {
                using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Delete, $"/networks/{Uri.EscapeDataString(name)}", ct: ct).ConfigureAwait(false);
                return name;
            }
            catch (DaemonException e) when (parse.GetValue(force) && e.Status == HttpStatusCode.NotFound)
            {
                return null; // docker network rm -f says nothing of a network that is not there
            }
        }));
        return command;
    }

    /// <summary><c>docker network connect [--alias A] [--ip IP] [--ip6 IP] [--link NAME:ALIAS] NETWORK CONTAINER</c>: <c>POST /networks/{id}/connect</c>.</summary>
    private static Command Connect()
    {
        var network = new Argument<string>("NETWORK");
        var container = new Argument<string>("CONTAINER");
        var aliases = new Option<string[]>("--alias") { Description = "add network-scoped alias for the container" };
        var ip = new Option<string?>("--ip") { Description = "IPv4 address (e.g., \"172.30.100.104\")" };
        var ip6 = new Option<string?>("--ip6") { Description = "IPv6 address (e.g., \"2001:db8::33\")" };
        var links = new Option<string[]>("--link") { Description = "add link to another container" };
        var command = new Command("connect", "Connect a container to a network") { network, container, aliases, ip, ip6, links };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var endpoint = new JsonObject { ["Aliases"] = new JsonArray([.. (parse.GetValue(aliases) ?? []).Select(a => (JsonNode)a)]) };
            var ipam = new JsonObject();
            if (parse.GetValue(ip) is { Length: > 0 } address) ipam["IPv4Address"] = address;
            if (parse.GetValue(ip6) is { Length: > 0 } address6) ipam["IPv6Address"] = address6;
            if (ipam.Count > 0) endpoint["IPAMConfig"] = ipam;
            if (parse.GetValue(links) is { Length: > 0 } linked) endpoint["Links"] = new JsonArray([.. linked.Select(l => (JsonNode)l)]);
            var body = new JsonObject { ["Container"] = parse.GetValue(container), ["EndpointConfig"] = endpoint };
            await client.PostJsonAsync($"/networks/{Uri.EscapeDataString(parse.GetValue(network)!)}/connect", body: body, ct: ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary><c>docker network disconnect [-f] NETWORK CONTAINER</c>: <c>POST /networks/{id}/disconnect</c>.</summary>
    private static Command Disconnect()
    {
        var network = new Argument<string>("NETWORK");
        var container = new Argument<string>("CONTAINER");
        var force = new Option<bool>("--force", "-f") { Description = "force the container to disconnect from a network" };
        var command = new Command("disconnect", "Disconnect a container from a network") { network, container, force };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var body = new JsonObject { ["Container"] = parse.GetValue(container), ["Force"] = parse.GetValue(force) };
            await client.PostJsonAsync($"/networks/{Uri.EscapeDataString(parse.GetValue(network)!)}/disconnect", body: body, ct: ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
