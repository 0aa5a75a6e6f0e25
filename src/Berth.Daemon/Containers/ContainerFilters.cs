using System.Globalization;
using System.Text.RegularExpressions;
using Berth.Daemon.Api;
using Berth.Images;

namespace Berth.Daemon.Containers;

/// <summary>The filters of GET /containers/json and POST /containers/prune, as dockerd applies them.</summary>
public static class ContainerFilters
{
    /// <summary>Whether <paramref name="r"/> passes every filter; the name filter also tries <paramref name="linkNames"/>, the names its links give it.</summary>
    public static bool Matches(ContainerRecord r, Dictionary<string, List<string>> filters, ContainerService service, IReadOnlyList<string>? linkNames = null)
    {
        if (!PortsMatch(r, filters)) return false;
        foreach (var (name, values) in filters)
        {
            if (values.Count == 0) continue;
            bool ok = name switch
            {
                "id" => values.Any(v => r.Id.StartsWith(v, StringComparison.Ordinal)),
                "name" => values.Any(v => NameMatches(v, r.Name) || (linkNames ?? []).Any(n => NameMatches(v, n))),
                "status" => values.Any(v => StatusMatches(v, r.State)),
                "label" => values.All(v => LabelMatches(v, r.Config.Labels)),
                "ancestor" => values.Any(v => AncestorMatches(v, r, service)),
                "exited" => values.Any(v => int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int code)
                    ? r.State.Status == "exited" && r.State.ExitCode == code
                    : throw ApiException.BadRequest($"invalid filter 'exited={v}'")),
                "before" => values.All(v => string.CompareOrdinal(r.Created, service.Find(v).Record.Created) < 0),
                "since" => values.All(v => string.CompareOrdinal(r.Created, service.Find(v).Record.Created) > 0),
                "until" => values.All(v => Until(v, r.Created, service.Time.GetUtcNow())),
                "isolation" => values.Any(v => v is "default" or ""),
                "is-task" => values.All(v => v is "false" or "0"),
                // dockerd: a mount whose volume name, source or destination is the value.
                "volume" => values.Any(v => (r.Volumes ?? []).Any(m => m.Name == v || m.Source == v || m.Destination == v)
                    || (r.HostConfig.Binds ?? []).Any(b => b.Split(':') is { Length: >= 2 } p && (p[0] == v || p[1] == v))
                    || (r.HostConfig.Mounts ?? []).Any(m => m.Source == v || m.Target == v)
                    || (r.InheritedBinds ?? []).Any(b => b.Source == v || b.Destination == v)),
                "health" => HealthMatches(values, r.State.Health),
                // dockerd: a network the container belongs to, by name or ID (prefix).
                "network" => values.Any(v => (r.Networks ?? []).Any(n => n.NetworkName == v || (n.NetworkId.Length > 0 && n.NetworkId.StartsWith(v, StringComparison.Ordinal)))),
                "publish" or "expose" => true, // PortsMatch
                _ => throw ApiException.BadRequest($"invalid filter '{name}'"),
            };
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>
    /// The values dockerd refuses before it looks at any container (status, health, exited): with no container
    /// to try them on, a bad value would otherwise pass as an empty list.
    /// </summary>
    public static void CheckValues(Dictionary<string, List<string>> filters)
    {
        var none = new ContainerStateJson();
        foreach (string v in filters.GetValueOrDefault("status") ?? []) StatusMatches(v, none);
        if (filters.GetValueOrDefault("health") is { Count: > 0 } health) HealthMatches(health, null);
        foreach (string v in filters.GetValueOrDefault("exited") ?? [])
            if (!int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) throw ApiException.BadRequest($"invalid filter 'exited={v}'");
        PortRanges(filters, "publish");
        PortRanges(filters, "expose");
    }

    /// <summary>
    /// dockerd's publish and expose filters, one test for the two: a container passes when one of the
    /// ports its list entry shows (those of a running container: a stopped one has none) has a
    /// public port and protocol that a publish value names, or a private port and protocol that an
    /// expose value names.
    /// </summary>
    private static bool PortsMatch(ContainerRecord r, Dictionary<string, List<string>> filters)
    {
        List<PortRange> publish = PortRanges(filters, "publish"), expose = PortRanges(filters, "expose");
        if (publish.Count == 0 && expose.Count == 0) return true;
        if (!r.State.Running) return false;
        return ContainersApi.SummaryPorts(r).Any(p => publish.Any(f => f.Contains(p.PublicPort, p.Type)) || expose.Any(f => f.Contains(p.PrivatePort, p.Type)));
    }

    private readonly record struct PortRange(int Start, int End, string Protocol)
    {
        public bool Contains(int port, string protocol) => port >= Start && port <= End && protocol == Protocol;
    }

    /// <summary>
    /// The values of a publish or expose filter as dockerd reads them (nat.SplitProtoPort, nat.ParsePortRange):
    /// PORT or START-END, then /PROTOCOL (tcp when absent or empty; compared as written).
    /// </summary>
    private static List<PortRange> PortRanges(Dictionary<string, List<string>> filters, string key)
    {
        var ranges = new List<PortRange>();
        foreach (string value in filters.GetValueOrDefault(key) ?? [])
        {
            if (value.Contains(':')) throw ApiException.BadRequest($"filter for '{key}' should not contain ':': {value}");
            string[] parts = value.Split('/');
            (string protocol, string port) = parts[0].Length == 0 ? ("", "") : parts.Length == 1 || parts[1].Length == 0 ? ("tcp", parts[0]) : (parts[1], parts[0]);
            string Fail(string why) => throw ApiException.BadRequest($"error while looking up for {key} {value}: {why}");
            if (port.Length == 0) Fail("Empty string specified for ports.");
            string[] bounds = port.Split('-');
            int start = ParsePort(bounds[0], Fail), end = bounds.Length == 1 ? start : ParsePort(bounds[1], Fail);
            if (end < start) Fail($"Invalid range specified for the Port: {port}");
            ranges.Add(new PortRange(start, end, protocol));
        }
        return ranges;
    }

    /// <summary>Go's strconv.ParseUint(text, 10, 16), with its error text.</summary>
    private static int ParsePort(string text, Func<string, string> fail)
    {
        if (text.Length == 0 || !text.All(char.IsAsciiDigit)) fail($"strconv.ParseUint: parsing \"{text}\": invalid syntax");
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > ushort.MaxValue)
            fail($"strconv.ParseUint: parsing \"{text}\": value out of range");
        return port;
    }

    /// <summary>starting, healthy, unhealthy, or none for a container without a health check (dockerd checks every value first).</summary>
    private static bool HealthMatches(List<string> values, HealthJson? health)
    {
        foreach (string v in values)
            if (v is not (HealthStatus.Starting or HealthStatus.Healthy or HealthStatus.Unhealthy or HealthStatus.None))
                throw ApiException.BadRequest($"Unrecognised filter value for health: {v}");
        return values.Contains(health?.Status ?? HealthStatus.None);
    }

    private static bool NameMatches(string pattern, string name)
    {
        try
        {
            return Regex.IsMatch(name.TrimStart('/'), pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException)
        {
            throw ApiException.BadRequest($"invalid filter 'name={pattern}'");
        }
    }

    private static bool StatusMatches(string status, ContainerStateJson s) => status switch
    {
        "running" => s.Running && !s.Paused,
        "paused" => s.Paused,
        "exited" => s.Status == "exited",
        "created" => s.Status == "created",
        "restarting" => s.Restarting,
        "dead" => s.Dead,
        "removing" => false,
        _ => throw ApiException.BadRequest($"Invalid filter 'status={status}'"),
    };

    internal static bool LabelMatches(string filter, IReadOnlyDictionary<string, string>? labels)
    {
        labels ??= new Dictionary<string, string>();
        int eq = filter.IndexOf('=');
        if (eq < 0) return labels.ContainsKey(filter);
        if (filter[..eq].EndsWith('!')) return !labels.TryGetValue(filter[..(eq - 1)], out string? v1) || v1 != filter[(eq + 1)..];
        return labels.TryGetValue(filter[..eq], out string? v) && v == filter[(eq + 1)..];
    }

    private static bool AncestorMatches(string image, ContainerRecord r, ContainerService service)
    {
        if (r.Config.Image == image) return true;
        try
        {
            return service.Images.Get(image).Id.Value == r.ImageId;
        }
        catch (ImagesException)
        {
            return false;
        }
    }

    private static bool Until(string value, string created, DateTimeOffset now)
    {
        // Durations and dates too: the CLI passes prune's until filter through as typed ("24h").
        DateTimeOffset limit = DockerTime.Parse(value, now, "until") ?? DateTimeOffset.MaxValue;
        return DateTimeOffset.Parse(created, CultureInfo.InvariantCulture) < limit;
    }
}
