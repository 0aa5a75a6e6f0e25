using System.Text.RegularExpressions;

namespace Berth.Builder.Context;

/// <summary>
/// Which build contexts are URLs, as dockerd's (and the docker CLI's) urlutil tells them apart: the
/// daemon fetches them for <c>POST /build?remote=</c>, the CLI sends them there.
/// </summary>
public static partial class RemoteUrl
{
    [GeneratedRegex(@".git(?:#.+)?$")]
    private static partial Regex GitPathWithFragment();

    /// <summary>An http(s) URL (urlutil.IsURL).</summary>
    public static bool IsUrl(string text)
        => text.StartsWith("http://", StringComparison.Ordinal) || text.StartsWith("https://", StringComparison.Ordinal);

    /// <summary>A Git URL (urlutil.IsGitURL): git://, git@, github.com/, or an http(s) URL ending in .git (before a #fragment).</summary>
    public static bool IsGitUrl(string text)
        => IsUrl(text) && GitPathWithFragment().IsMatch(text)
            || text.StartsWith("git://", StringComparison.Ordinal) || text.StartsWith("github.com/", StringComparison.Ordinal) || text.StartsWith("git@", StringComparison.Ordinal);
}
