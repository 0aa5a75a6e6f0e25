using System.Text.RegularExpressions;

namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's log tag template (loggerutils.ParseLogTag over logger.Info), as the syslog, gelf and fluentd drivers
/// render it: <c>{{.ID}}</c> (the default), <c>{{.FullID}}</c>, <c>{{.Name}}</c>, <c>{{.ImageID}}</c>,
/// <c>{{.ImageFullID}}</c>, <c>{{.ImageName}}</c>, <c>{{.DaemonName}}</c>; anything else is refused at create.
/// </summary>
internal static partial class LogTag
{
    public const string Default = "{{.ID}}";

    [GeneratedRegex(@"\{\{\s*\.(\w+)\s*\}\}")]
    private static partial Regex Field();

    private static readonly string[] Fields = ["ID", "FullID", "Name", "ImageID", "ImageFullID", "ImageName", "DaemonName"];

    /// <summary>Why dockerd's template would not render <paramref name="tag"/>, or null.</summary>
    public static string? Error(string tag)
    {
        foreach (Match m in Field().Matches(tag))
            if (!Fields.Contains(m.Groups[1].Value)) return $"template: log-tag:1: can't evaluate field {m.Groups[1].Value}";
        return Field().Replace(tag, "").Contains("{{", StringComparison.Ordinal)
            ? $"template: log-tag: berthd takes only {{{{.Field}}}} in a tag template (fields {string.Join(", ", Fields)})" : null;
    }

    /// <summary>The container's tag: the <c>tag</c> log option's template, <see cref="Default"/> when it has none.</summary>
    public static string Of(ContainerRecord r)
        => Render(r.HostConfig.LogConfig.Config?.GetValueOrDefault("tag") is { Length: > 0 } t ? t : Default, r);

    public static string Render(string tag, ContainerRecord r)
        => Field().Replace(tag, m => m.Groups[1].Value switch
        {
            "ID" => r.Id[..12],
            "FullID" => r.Id,
            "Name" => r.Name.TrimStart('/'),
            "ImageID" => ShortImageId(r.ImageId),
            "ImageFullID" => r.ImageId,
            "ImageName" => r.Config.Image ?? "",
            "DaemonName" => "docker",
            _ => m.Value,
        });

    private static string ShortImageId(string imageId) => (imageId.StartsWith("sha256:", StringComparison.Ordinal) ? imageId[7..] : imageId) is { Length: >= 12 } hex ? hex[..12] : imageId;
}
