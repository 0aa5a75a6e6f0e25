using System.Text.RegularExpressions;
using Berth.Images.Content;

namespace Berth.Images.References;

/// <summary>
/// A normalised image reference, as Docker's reference package (distribution/reference) parses
/// and normalises them: <c>busybox</c> → <c>docker.io/library/busybox:latest</c>,
/// <c>localhost:5000/x/y:tag</c>, <c>name@sha256:…</c>, <c>name:tag@sha256:…</c>.
/// </summary>
public sealed partial record ImageReference
{
    public const string DefaultDomain = "docker.io";
    public const string DefaultTag = "latest";
    private const string LegacyDefaultDomain = "index.docker.io";
    private const int MaxNameLength = 255;

    private ImageReference(string domain, string path, string? tag, Digest? digest)
    {
        Domain = domain;
        Path = path;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host (and port): <c>docker.io</c>, <c>localhost:5000</c>.</summary>
    public string Domain { get; }

    /// <summary>The repository path inside the registry: <c>library/busybox</c>.</summary>
    public string Path { get; }

    public string? Tag { get; }
    public Digest? Digest { get; }

    /// <summary>Domain and path: <c>docker.io/library/busybox</c>.</summary>
    public string Repository => Domain + "/" + Path;

    /// <summary>What a registry is asked for: the digest when there is one, else the tag.</summary>
    public string Reference => Digest?.Value ?? Tag ?? DefaultTag;

    /// <summary>The short form Docker shows: <c>busybox:latest</c>, <c>localhost:5000/x/y:tag</c>.</summary>
    public string FamiliarName
    {
        get
        {
            string name = Domain == DefaultDomain
                ? (Path.StartsWith("library/", StringComparison.Ordinal) && Path.IndexOf('/', 8) < 0 ? Path[8..] : Path)
                : Repository;
            return name + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest.Value);
        }
    }

    public override string ToString() => Repository + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest.Value);

    /// <summary>Parses and normalises; a reference with neither tag nor digest gets <c>:latest</c>.</summary>
    public static ImageReference Parse(string text) => ParseNormalized(text).WithDefaultTag();

    /// <summary>Parses and normalises without adding a default tag.</summary>
    public static ImageReference ParseNormalized(string text)
    {
        if (string.IsNullOrEmpty(text)) throw Invalid(text, "empty reference");
        if (AnchoredHex64().IsMatch(text))
            throw Invalid(text, "cannot specify 64-byte hexadecimal strings as a repository name");

        string rest = text;
        Digest? digest = null;
        int at = rest.IndexOf('@');
        if (at >= 0)
        {
            if (!Content.Digest.TryParse(rest[(at + 1)..], out Digest d)) throw Invalid(text, $"invalid digest `{rest[(at + 1)..]}`");
            digest = d;
            rest = rest[..at];
        }

        string? tag = null;
        int colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/'))
        {
            tag = rest[(colon + 1)..];
            if (!TagPattern().IsMatch(tag)) throw Invalid(text, $"invalid tag `{tag}`");
            rest = rest[..colon];
        }

        string domain, path;
        int slash = rest.IndexOf('/');
        string first = slash < 0 ? "" : rest[..slash];
        if (slash < 0 || (!first.Contains('.') && !first.Contains(':') && first != "localhost" && first.ToLowerInvariant() == first))
        {
            domain = DefaultDomain;
            path = rest;
        }
        else
        {
            domain = first;
            path = rest[(slash + 1)..];
        }
        if (domain == LegacyDefaultDomain) domain = DefaultDomain;
        if (domain == DefaultDomain && !path.Contains('/')) path = "library/" + path;

        if (!DomainPattern().IsMatch(domain)) throw Invalid(text, $"invalid registry `{domain}`");
        if (path.Any(char.IsUpper)) throw Invalid(text, "repository name must be lowercase");
        foreach (string component in path.Split('/'))
            if (!ComponentPattern().IsMatch(component)) throw Invalid(text, $"invalid repository name component `{component}`");
        if (domain.Length + 1 + path.Length > MaxNameLength) throw Invalid(text, $"repository name longer than {MaxNameLength} characters");
        return new ImageReference(domain, path, tag, digest);
    }

    public static bool TryParse(string text, out ImageReference? reference)
    {
        try
        {
            reference = Parse(text);
            return true;
        }
        catch (ImagesException)
        {
            reference = null;
            return false;
        }
    }

    public ImageReference WithDefaultTag() => Tag is null && Digest is null ? new(Domain, Path, DefaultTag, null) : this;
    public ImageReference WithTag(string tag) => new(Domain, Path, TagPattern().IsMatch(tag) ? tag : throw Invalid(tag, $"invalid tag `{tag}`"), null);
    public ImageReference WithDigest(Digest digest) => new(Domain, Path, null, digest);

    /// <summary>The same repository, tag and digest on another registry (a mirror's <c>host[:port]</c>).</summary>
    public ImageReference WithDomain(string domain)
        => DomainPattern().IsMatch(domain) ? new(domain, Path, Tag, Digest) : throw Invalid(domain, $"invalid registry `{domain}`");

    private static ImagesException Invalid(string text, string why) =>
        new(ImagesErrorKind.InvalidArgument, $"invalid reference format `{(text.Length > 300 ? text[..300] + "..." : text)}`: {why}");

    [GeneratedRegex("^[a-f0-9]{64}$")]
    private static partial Regex AnchoredHex64();

    [GeneratedRegex(@"^[\w][\w.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")]
    private static partial Regex ComponentPattern();

    // A host name (labels of letters, digits and dashes), an IPv4 address, or a bracketed IPv6 one, with an optional port.
    [GeneratedRegex(@"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")]
    private static partial Regex DomainPattern();
}
