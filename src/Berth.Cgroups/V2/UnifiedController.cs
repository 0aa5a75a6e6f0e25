namespace Berth.Cgroups.V2;

/// <summary>
/// OCI <c>unified</c>: each key is a file of the group, written as given, one write per line
/// (runc <c>WriteFileByLine</c>), after every other controller so it can override them. Keys
/// are plain file names (checked in <see cref="CgroupResources.Validate"/>) of a controller
/// enabled for the group, or "cgroup.*".
/// </summary>
internal sealed class UnifiedController(Func<string, IReadOnlySet<string>> enabledControllers) : ICgroupController
{
    public string Name => "unified";

    public bool NeedsApply(CgroupResources resources) => resources.Unified is { Count: > 0 };

    public void Apply(string path, CgroupResources resources)
    {
        var enabled = enabledControllers(path);
        var entries = (resources.Unified ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        // Check every key before writing any.
        foreach (var (key, _) in entries)
        {
            var controller = key[..key.IndexOf('.', StringComparison.Ordinal)];
            if (controller != "cgroup" && !enabled.Contains(controller))
            {
                throw new CgroupException($"unified: key \"{key}\" can't be set: controller \"{controller}\" is not enabled for {path}",
                    CgroupErrorKind.Unavailable, path: Path.Combine(path, key));
            }
            CgroupFs.RequireFile(path, key, $"unified key \"{key}\"");
        }
        foreach (var (key, value) in entries)
        {
            foreach (var line in value.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                CgroupFs.Write(path, key, line);
            }
        }
    }
}
