using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Berth.Daemon.Api;
using Berth.Network;

namespace Berth.Daemon.Containers;

/// <summary>
/// Legacy links (<c>--link NAME[:ALIAS]</c>, HostConfig.Links), as dockerd keeps them: recorded at
/// create as <c>/name:/me/alias</c>; at start the linked container must be running on a network
/// this one joins. Then this container's /etc/hosts names it (alias, its hostname, its name) and,
/// on the default bridge, its environment carries dockerd's link variables (ALIAS_PORT_80_TCP…,
/// ALIAS_NAME, ALIAS_ENV_…). A link is a snapshot taken at start: a linked container that
/// restarts elsewhere is not followed (dockerd updates the hosts entry; berthd does not).
/// </summary>
public sealed partial class ContainerService
{
    /// <summary>A link's alias: a container name's characters, and one is enough (dockerd takes <c>--link db:x</c>).</summary>
    private static readonly Regex ValidAlias = new("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant);

    /// <summary><c>name</c>, <c>name:alias</c>, or dockerd's stored form <c>/name:/parent/alias</c>.</summary>
    internal static (string Name, string Alias) ParseLink(string link)
    {
        string[] parts = link.Split(':');
        if (parts.Length > 2 || parts[0].Trim('/').Length == 0)
            throw ApiException.BadRequest($"invalid link `{link}`: want NAME[:ALIAS]");
        string name = parts[0].TrimStart('/');
        string alias = parts.Length == 2 ? parts[1][(parts[1].LastIndexOf('/') + 1)..] : name;
        if (!ValidAlias.IsMatch(alias) || !ValidName.IsMatch(name))
            throw ApiException.BadRequest($"invalid link `{link}`: names are [a-zA-Z0-9][a-zA-Z0-9_.-]+, aliases [a-zA-Z0-9][a-zA-Z0-9_.-]*");
        return (name, alias);
    }

    /// <summary>
    /// Create: every link names another existing container. Returns the links in dockerd's stored
    /// form and the linked containers' IDs by alias (a link follows its container through a rename).
    /// </summary>
    private (List<string>? Links, Dictionary<string, string>? Targets) CheckLinks(HostConfigJson h, string ownName)
    {
        if (h.Links is not { Count: > 0 } links) return (null, null);
        // dockerd's checks: host and container: modes refuse links, "none" keeps them unused (see ResolveLinks).
        string mode = EffectiveNetworkMode(h);
        if (mode == "host")
            throw ApiException.BadRequest("conflicting options: host type networking can't be used with links. This would result in undefined behavior");
        if (mode.StartsWith("container:", StringComparison.Ordinal))
            throw ApiException.BadRequest("conflicting options: container type network can't be used with links. This would result in undefined behavior");
        var stored = new List<string>();
        var targets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string link in links)
        {
            var (_, alias, target) = CheckLinkTarget(link, ownName);
            if (!targets.TryAdd(alias, target.Record.Id)) throw ApiException.BadRequest($"invalid link `{link}`: alias {alias} is given twice");
            stored.Add($"{target.Record.Name}:{ownName}/{alias}");
        }
        return (stored, targets);
    }

    /// <summary>A link's name, alias and the existing container it names, which is not <paramref name="ownName"/>.</summary>
    private (string Name, string Alias, ContainerEntry Target) CheckLinkTarget(string link, string ownName)
    {
        var (name, alias) = ParseLink(link);
        ContainerEntry target;
        try
        {
            target = Find(name);
        }
        catch (ApiException e) when (e.StatusCode == 404)
        {
            // A 400, as dockerd's (an invalid parameter): clients take a 404 from create for a missing image and pull.
            throw ApiException.BadRequest($"could not get container for {name}: No such container: {name}");
        }
        if (target.Record.Name == ownName) throw ApiException.BadRequest($"invalid link `{link}`: a container cannot link to itself");
        return (name, alias, target);
    }

    /// <summary>
    /// <c>network connect --link NAME:ALIAS</c>: endpoint links, as libnetwork's (CreateOptionAlias) on a
    /// user-defined network only. NAME must exist; it need not run or be on the network yet.
    /// </summary>
    private List<string>? CheckEndpointLinks(NetworkInfo network, IReadOnlyList<string> links, string ownName)
    {
        if (links.Count == 0) return null;
        if (network.Name == NetworkController.DefaultNetworkName) throw ApiException.BadRequest("links are only supported for user-defined networks");
        var result = new List<string>();
        var aliases = new HashSet<string>(StringComparer.Ordinal);
        foreach (string link in links)
        {
            var (name, alias, _) = CheckLinkTarget(link, ownName);
            if (!aliases.Add(alias)) throw ApiException.BadRequest($"invalid link `{link}`: alias {alias} is given twice");
            result.Add($"{name}:{alias}");
        }
        return result;
    }

    /// <summary>
    /// /etc/hosts lines of the endpoint links: on each network, ALIAS is the linked container's address
    /// there. Where libnetwork answers the alias from its DNS while the container is on the network,
    /// berthd writes it when the hosts file is written (at start, and whenever a peer joins or leaves);
    /// a linked container that is not on the network gets no line, as the alias does not resolve there.
    /// </summary>
    private List<HostsEntry> EndpointLinkEntries(IEnumerable<ContainerNetworkState> connected)
    {
        var entries = new List<HostsEntry>();
        foreach (ContainerNetworkState network in connected)
            foreach (string link in network.Links ?? [])
            {
                var (name, alias) = ParseLink(link);
                ContainerRecord? target;
                try
                {
                    target = Find(name).Record;
                }
                catch (ApiException)
                {
                    continue;
                }
                if (target.State.Running && NetworksOf(target).FirstOrDefault(t => t.Connected && t.NetworkId == network.NetworkId) is { } there
                    && IPAddress.TryParse(there.IPAddress, out IPAddress? address))
                    entries.Add(new HostsEntry(address, [alias]));
            }
        return entries;
    }

    /// <summary>Rename: the container's own links are stored under its name (<c>/target:/me/alias</c>).</summary>
    private static void RenameLinks(ContainerRecord r, string oldName, string newName)
    {
        if (r.HostConfig.Links is not { } links) return;
        for (int i = 0; i < links.Count; i++)
            links[i] = links[i].Replace($":{oldName}/", $":{newName}/", StringComparison.Ordinal);
    }

    /// <summary>
    /// DELETE /containers/{parent}/{alias}?link=1 (<c>docker rm --link</c>), as dockerd's rmLink:
    /// the name is the link's own, <c>/parent/alias</c>; the link leaves the parent's HostConfig.Links
    /// (saved: dockerd forgets it only until it restarts, berthd for good) and the linked container
    /// stays. A running parent's /etc/hosts is written again without the link's line, as dockerd's
    /// sandbox refresh does; its environment keeps the link's variables until it is started again.
    /// dockerd's answers: 404 for a name that is no link (parent and alias both checked), and its
    /// untyped error, a 500, for a container's own name.
    /// </summary>
    public async Task RemoveLinkAsync(string name)
    {
        string full = "/" + name.TrimStart('/');
        int slash = full.LastIndexOf('/');
        if (slash == 0)
        {
            Find(name);
            throw new ApiException(500, "Conflict, cannot remove the default link name of the container");
        }
        string parentName = full[..slash], alias = full[(slash + 1)..];
        ContainerEntry? parent = null;
        lock (_indexLock)
        {
            if (_idByName.TryGetValue(parentName, out string? id)) parent = _byId.GetValueOrDefault(id);
        }
        if (parent is null) throw ApiException.NotFound($"No such container: {name}");
        await parent.Lock.WaitAsync();
        try
        {
            ContainerRecord r = parent.Record;
            // Looked at again under the lock: the parent may have been removed or renamed meanwhile.
            List<string> links = r.HostConfig.Links ?? [];
            int index = parent.Removed || r.Name != parentName ? -1 : links.FindIndex(l => ParseLink(l).Alias == alias);
            if (index < 0) throw ApiException.NotFound($"No such container: {name}");
            string link = links[index];
            string? target = null;
            // Under the index lock too: Find and ps read a parent's links to resolve link names.
            lock (_indexLock)
            {
                links.RemoveAt(index);
                r.LinkTargets?.Remove(alias, out target);
                // dockerd's inspect shows null, not [], once the last link is gone.
                if (links.Count == 0) r.HostConfig.Links = null;
            }
            try
            {
                Store.Save(r);
            }
            catch
            {
                lock (_indexLock)
                {
                    links.Insert(index, link);
                    r.HostConfig.Links = links;
                    if (target is not null) r.LinkTargets![alias] = target;
                }
                throw;
            }
            if (r.State.Running) WriteHosts(parent);
        }
        finally
        {
            parent.Lock.Release();
        }
    }

    /// <summary>
    /// The ID of the container that <paramref name="parent"/>'s link <paramref name="alias"/> names, or null.
    /// The caller holds <c>_indexLock</c>.
    /// </summary>
    private string? LinkTargetId(ContainerRecord parent, string alias)
    {
        if (parent.LinkTargets?.GetValueOrDefault(alias) is { } id) return id;
        // A record written before links kept their targets' IDs names the target only.
        foreach (string link in parent.HostConfig.Links ?? [])
            if (TryParseLink(link) is { } parsed && parsed.Alias == alias) return _idByName.GetValueOrDefault("/" + parsed.Name);
        return null;
    }

    /// <summary><see cref="ParseLink"/> for links read back from records: one that no longer parses (an older rule) is skipped, not an error of every lookup.</summary>
    private static (string Name, string Alias)? TryParseLink(string link)
    {
        try
        {
            return ParseLink(link);
        }
        catch (ApiException)
        {
            return null;
        }
    }

    /// <summary>
    /// A link's name, <c>/parent/alias</c>, names the linked container: dockerd reserves it at create, so
    /// every command takes it (<c>docker inspect app/db</c>, <c>stop</c>, <c>rm</c>…). Here it is looked up
    /// through the parent's current name and links, so it follows renames and goes with the link or the
    /// parent. The caller holds <c>_indexLock</c>.
    /// </summary>
    private ContainerEntry? FindByLinkName(string fullName)
    {
        int slash = fullName.LastIndexOf('/');
        if (slash <= 0 || !_idByName.TryGetValue(fullName[..slash], out string? parentId) || !_byId.TryGetValue(parentId, out ContainerEntry? parent))
            return null;
        return LinkTargetId(parent.Record, fullName[(slash + 1)..]) is { } id ? _byId.GetValueOrDefault(id) : null;
    }

    /// <summary>
    /// Each linked container's link names (<c>/parent/alias</c>) by its ID: dockerd lists them among the
    /// container's Names in <c>ps</c> (shown with <c>--no-trunc</c>) and matches its name filter against them.
    /// </summary>
    public Dictionary<string, List<string>> LinkNamesByTarget()
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        lock (_indexLock)
        {
            foreach (ContainerEntry parent in _byId.Values)
                foreach (string link in parent.Record.HostConfig.Links ?? [])
                {
                    if (TryParseLink(link)?.Alias is not { } alias || LinkTargetId(parent.Record, alias) is not { } id || !_byId.ContainsKey(id)) continue;
                    if (!result.TryGetValue(id, out List<string>? names)) result[id] = names = [];
                    names.Add(parent.Record.Name + "/" + alias);
                }
        }
        return result;
    }

    /// <summary>A link resolved at start: the linked container, its address on the network both share, and whether that is the default bridge.</summary>
    private sealed record ResolvedLink(string Alias, ContainerRecord Target, IPAddress Address, bool DefaultBridge);

    /// <summary>
    /// Start: each link's container must run on one of this container's networks (dockerd refuses otherwise).
    /// A container without a network (<c>--network none</c>) has no use for its links: dockerd starts it
    /// without looking at them, and so does berthd.
    /// </summary>
    private List<ResolvedLink> ResolveLinks(ContainerRecord r, IReadOnlyList<ContainerNetworkState> networks)
    {
        var result = new List<ResolvedLink>();
        if (!IsBridged(EffectiveNetworkMode(r.HostConfig))) return result;
        foreach (string link in r.HostConfig.Links ?? [])
        {
            var (name, alias) = ParseLink(link);
            ContainerRecord? target = null;
            lock (_indexLock)
            {
                if (LinkTargetId(r, alias) is { } id && _byId.TryGetValue(id, out ContainerEntry? e)) target = e.Record;
            }
            if (target is not null) name = target.Name.TrimStart('/');
            if (target is null || !target.State.Running)
                throw ApiException.Conflict($"Cannot link to a non running container: /{name} AS {r.Name}/{alias}");
            ContainerNetworkState? shared = null;
            foreach (ContainerNetworkState mine in networks)
            {
                shared = NetworksOf(target).FirstOrDefault(t => t.Connected && (t.NetworkId == mine.NetworkId || t.NetworkName == mine.NetworkName));
                if (shared is not null) break;
            }
            if (shared is null || !IPAddress.TryParse(shared.IPAddress, out IPAddress? address))
                throw ApiException.BadRequest($"Cannot link to /{name}, as it does not belong to the network of {r.Name}");
            result.Add(new ResolvedLink(alias, target, address, shared.NetworkName == NetworkController.DefaultNetworkName));
        }
        return result;
    }

    /// <summary>dockerd's /etc/hosts line for a link: the alias, the linked container's hostname, and its name when that differs.</summary>
    private static HostsEntry LinkHostsEntry(ResolvedLink link)
    {
        string hostname = string.IsNullOrEmpty(link.Target.Config.Hostname) ? link.Target.Id[..12] : link.Target.Config.Hostname;
        string name = link.Target.Name.TrimStart('/');
        List<string> names = [link.Alias, hostname];
        if (name != link.Alias && name != hostname) names.Add(name);
        return new HostsEntry(link.Address, names);
    }

    /// <summary>
    /// dockerd's link environment (daemon/links): ALIAS_PORT (the lowest exposed port, tcp first),
    /// for a run of three or more contiguous ports ALIAS_PORT_N_PROTO_START/_END and their _ADDR,
    /// _PROTO, _PORT_START, _PORT_END, for every port ALIAS_PORT_N_PROTO with _ADDR, _PORT, _PROTO,
    /// then ALIAS_NAME and the linked container's environment as ALIAS_ENV_… (but HOME and PATH).
    /// </summary>
    internal static List<string> LinkEnvironment(string parentName, string alias, string address, IEnumerable<string> exposedPorts, IEnumerable<string> childEnv)
    {
        string prefix = alias.ToUpperInvariant().Replace('-', '_');
        var ports = new List<(int Number, string Proto)>();
        foreach (string p in exposedPorts)
        {
            string[] parts = p.Split('/');
            if (int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                ports.Add((n, parts.Length > 1 ? parts[1].ToLowerInvariant() : "tcp"));
        }
        ports.Sort((a, b) => a.Number != b.Number ? a.Number.CompareTo(b.Number) : (a.Proto == "tcp" ? -1 : b.Proto == "tcp" ? 1 : string.CompareOrdinal(a.Proto, b.Proto)));
        var env = new List<string>();
        if (ports.Count > 0) env.Add($"{prefix}_PORT={ports[0].Proto}://{address}:{ports[0].Number}");
        for (int i = 0; i < ports.Count;)
        {
            int j = i;
            while (j + 1 < ports.Count && ports[j + 1].Number == ports[j].Number + 1) j++;
            if (j > i + 1)
            {
                var (p, q) = (ports[i], ports[j]);
                string key = $"{prefix}_PORT_{p.Number}_{p.Proto.ToUpperInvariant()}";
                env.Add($"{key}_START={p.Proto}://{address}:{p.Number}");
                env.Add($"{key}_ADDR={address}");
                env.Add($"{key}_PROTO={p.Proto}");
                env.Add($"{key}_PORT_START={p.Number}");
                string endKey = $"{prefix}_PORT_{p.Number}_{q.Proto.ToUpperInvariant()}";
                env.Add($"{endKey}_END={q.Proto}://{address}:{q.Number}");
                env.Add($"{endKey}_PORT_END={q.Number}");
                i = j + 1;
            }
            else
            {
                i++;
            }
        }
        foreach (var (number, proto) in ports)
        {
            string key = $"{prefix}_PORT_{number}_{proto.ToUpperInvariant()}";
            env.Add($"{key}={proto}://{address}:{number}");
            env.Add($"{key}_ADDR={address}");
            env.Add($"{key}_PORT={number}");
            env.Add($"{key}_PROTO={proto}");
        }
        env.Add($"{prefix}_NAME={parentName}/{alias}");
        foreach (string v in childEnv)
        {
            int eq = v.IndexOf('=');
            if (eq <= 0 || v[..eq] is "HOME" or "PATH") continue;
            env.Add($"{prefix}_ENV_{v[..eq]}={v[(eq + 1)..]}");
        }
        return env;
    }

    /// <summary>The link variables of the default-bridge links, before the container's own (which win: a name already set is not added).</summary>
    private static List<string> WithLinkEnvironment(ContainerRecord r, IReadOnlyList<ResolvedLink> links, List<string> env)
    {
        var set = new HashSet<string>(env.Select(e => e.Split('=', 2)[0]), StringComparer.Ordinal);
        var added = new List<string>();
        foreach (ResolvedLink link in links.Where(l => l.DefaultBridge))
            foreach (string v in LinkEnvironment(r.Name, link.Alias, link.Address.ToString(), link.Target.Config.ExposedPorts?.Keys ?? Enumerable.Empty<string>(), link.Target.Config.Env ?? []))
                if (set.Add(v.Split('=', 2)[0])) added.Add(v);
        return [.. added, .. env];
    }
}
