using Berth.Images.References;

namespace Berth.Daemon.Events;

/// <summary>
/// The filters of <c>GET /events</c>, as dockerd's daemon/events/filter.go applies them: every key
/// given must match (and within a key, any value). <c>container</c>, <c>network</c>,
/// <c>volume</c>, <c>daemon</c> match the actor's ID or its <c>name</c> attribute by prefix;
/// <c>image</c> the ID or image name, with or without its tag; <c>event</c> the action
/// (<c>exec_create</c>, <c>exec_start</c> and <c>health_status</c> by prefix, since those actions
/// carry a suffix); <c>label</c> the attributes (<c>key</c> or <c>key=value</c>, all must hold).
/// </summary>
public sealed class EventFilter
{
    public static readonly string[] Keys = ["container", "image", "type", "event", "label", "network", "volume", "daemon", "scope", "plugin", "node", "service", "secret", "config"];

    private static readonly HashSet<string> PrefixActions = new(StringComparer.Ordinal) { "exec_create", "exec_start", "health_status" };

    private readonly IReadOnlyDictionary<string, List<string>> _filters;

    public EventFilter(IReadOnlyDictionary<string, List<string>> filters) => _filters = filters;

    public bool Matches(EventMessage e)
        => MatchAction(e)
        && Exact("type", e.Type)
        && Exact("scope", e.Scope)
        && ByName(e, "container")
        && ByName(e, "network")
        && ByName(e, "volume")
        && ByName(e, "daemon")
        && ByName(e, "plugin")
        && ByName(e, "node")
        && ByName(e, "service")
        && ByName(e, "secret")
        && ByName(e, "config")
        && MatchImage(e)
        && MatchLabels(e.Actor.Attributes);

    private bool Values(string key, out List<string> values)
    {
        if (_filters.TryGetValue(key, out List<string>? v) && v.Count > 0)
        {
            values = v;
            return true;
        }
        values = [];
        return false;
    }

    private bool Exact(string key, string value) => !Values(key, out List<string> values) || values.Contains(value);

    private bool Fuzzy(string key, string value) => !Values(key, out List<string> values) || values.Any(v => value.StartsWith(v, StringComparison.Ordinal));

    private bool MatchAction(EventMessage e)
    {
        if (!Values("event", out List<string> values)) return true;
        // dockerd: when the filter names one of the suffixed actions bare, every value matches by prefix.
        return values.Any(PrefixActions.Contains)
            ? values.Any(v => e.Action.StartsWith(v, StringComparison.Ordinal))
            : values.Contains(e.Action);
    }

    /// <summary>The filter <paramref name="type"/> matches its own type's events by ID or name (and excludes every other event).</summary>
    private bool ByName(EventMessage e, string type)
    {
        if (!Values(type, out _)) return true;
        return Fuzzy(type, e.Actor.Id) || (e.Actor.Attributes.TryGetValue("name", out string? name) && Fuzzy(type, name));
    }

    private bool MatchImage(EventMessage e)
    {
        if (!Values("image", out List<string> values)) return true;
        string id = e.Actor.Id;
        string name = e.Actor.Attributes.TryGetValue(e.Type == "image" ? "name" : "image", out string? n) ? n : "";
        return values.Contains(id) || values.Contains(name) || values.Contains(StripTag(id)) || values.Contains(StripTag(name));
    }

    private bool MatchLabels(IReadOnlyDictionary<string, string> attributes)
    {
        if (!Values("label", out List<string> values)) return true;
        foreach (string l in values)
        {
            int eq = l.IndexOf('=');
            if (eq < 0 ? !attributes.ContainsKey(l) : !(attributes.TryGetValue(l[..eq], out string? v) && v == l[(eq + 1)..])) return false;
        }
        return true;
    }

    /// <summary>dockerd's stripTag: the familiar name without tag or digest (<c>busybox:latest</c> → <c>busybox</c>).</summary>
    internal static string StripTag(string image)
    {
        if (string.IsNullOrEmpty(image) || image.StartsWith("sha256:", StringComparison.Ordinal)) return image;
        try
        {
            ImageReference r = ImageReference.ParseNormalized(image);
            string familiar = r.FamiliarName;
            if (r.Digest is { } d) familiar = familiar[..^(d.Value.Length + 1)];
            if (r.Tag is { } t) familiar = familiar[..^(t.Length + 1)];
            return familiar;
        }
        catch (Berth.Images.ImagesException)
        {
            return image;
        }
    }
}
