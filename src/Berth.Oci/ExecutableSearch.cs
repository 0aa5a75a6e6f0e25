namespace Berth.Oci;

/// <summary>
/// Finds a program the way a shell does, the first <c>dir/name</c> that exists along PATH, then
/// in the standard system directories (a caller with a narrow PATH still finds newuidmap or a
/// credential helper there). Shared by the runtime (newuidmap/newgidmap), the image layer
/// (docker-credential-* helpers) and the daemon (runtimes, docker-init).
/// </summary>
public static class ExecutableSearch
{
    public const string SystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The full path of <paramref name="name"/>: in <paramref name="firstDirectory"/> when given and there, else along PATH and the system directories; null when nowhere.</summary>
    public static string? Find(string name, string? firstDirectory = null)
    {
        IEnumerable<string> dirs = $"{Environment.GetEnvironmentVariable("PATH")}:{SystemPath}".Split(':', StringSplitOptions.RemoveEmptyEntries);
        if (firstDirectory is not null) dirs = dirs.Prepend(firstDirectory);
        return dirs.Distinct(StringComparer.Ordinal).Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
    }
}
