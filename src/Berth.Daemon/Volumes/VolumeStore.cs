using Berth.Daemon.Engine;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Daemon.Volumes;

/// <summary>One volume as berthd persists it (<c>&lt;data-root&gt;/volumes/&lt;name&gt;/volume.json</c>).</summary>
public sealed class VolumeRecord
{
    public string Name { get; set; } = "";
    public string Driver { get; set; } = VolumeService.LocalDriver;
    /// <summary>RFC 3339, seconds, UTC (as dockerd's local driver shows it).</summary>
    public string CreatedAt { get; set; } = "";
    public Dictionary<string, string>? Labels { get; set; }
    /// <summary>The local driver's options (<c>type</c>, <c>device</c>, <c>o</c>) as given at create.</summary>
    public Dictionary<string, string>? Options { get; set; }

    [JsonIgnore] public bool IsAnonymous => Labels?.ContainsKey(VolumeService.AnonymousLabel) == true;
}

/// <summary>
/// The volumes on disk, laid out as dockerd's <c>local</c> driver lays them out:
/// <code>
/// &lt;data-root&gt;/volumes/&lt;name&gt;/_data         the content (the mountpoint; a mount target when the volume has a device)
/// &lt;data-root&gt;/volumes/&lt;name&gt;/volume.json   name, driver, created, labels, options
/// </code>
/// Crash safety: create makes <c>_data</c> first, then writes <c>volume.json</c> atomically (temp
/// file, fsync, rename, fsync of the directory); remove deletes <c>volume.json</c> first (and
/// fsyncs), then the rest. So the metadata file decides whether a volume exists: a directory
/// without one is a create or a remove cut short, and is removed at load, with leftover temp files.
/// </summary>
public sealed class VolumeStore
{
    public const string MetadataFile = "volume.json";
    public const string DataDirectory = "_data";

    /// <param name="dataOwner">Under --userns-remap, the remapped root: new volumes' _data are given to it, as dockerd's local driver does.</param>
    public VolumeStore(string root, (uint Uid, uint Gid)? dataOwner = null)
    {
        Root = root;
        DataOwner = dataOwner;
        Directory.CreateDirectory(root);
    }

    public (uint Uid, uint Gid)? DataOwner { get; }

    public string Root { get; }

    public string DirectoryOf(string name) => Path.Combine(Root, name);

    public string MountpointOf(string name) => Path.Combine(Root, name, DataDirectory);

    /// <summary>Reads every volume; removes what a crash left half made or half removed.</summary>
    /// <param name="isMounted">Whether something is mounted at or under a path: such a directory is never deleted.</param>
    public List<VolumeRecord> LoadAll(Func<string, bool> isMounted, Action<string>? warn = null)
    {
        var result = new List<VolumeRecord>();
        foreach (string dir in Directory.EnumerateDirectories(Root))
        {
            string name = Path.GetFileName(dir);
            string metadata = Path.Combine(dir, MetadataFile);
            try
            {
                foreach (string temp in Directory.EnumerateFiles(dir, "*.tmp")) File.Delete(temp);
                if (!File.Exists(metadata))
                {
                    if (isMounted(dir))
                    {
                        warn?.Invoke($"volume directory {dir} has no metadata but something is mounted in it; left in place");
                        continue;
                    }
                    Directory.Delete(dir, recursive: true);
                    continue;
                }
                VolumeRecord? r = JsonSerializer.Deserialize(File.ReadAllBytes(metadata), VolumeStoreJson.Default.VolumeRecord);
                if (r is null || r.Name != name) throw new JsonException("metadata does not name its own volume");
                result.Add(r);
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                warn?.Invoke($"volume {name}: unreadable metadata {metadata}: {e.Message}; left in place");
            }
        }
        return result;
    }

    /// <summary>Makes the volume's directories and writes its metadata atomically.</summary>
    public void Create(VolumeRecord record)
    {
        string dir = DirectoryOf(record.Name);
        Directory.CreateDirectory(dir);
        // dockerd's local driver: the volume's directory 0701 (traversable, not listable), _data 0755.
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherExecute);
        Directory.CreateDirectory(MountpointOf(record.Name));
        if (DataOwner is var (uid, gid)) Interop.Chown(MountpointOf(record.Name), uid, gid);
        DurableFile.Write(Path.Combine(dir, MetadataFile), JsonSerializer.SerializeToUtf8Bytes(record, VolumeStoreJson.Default.VolumeRecord));
        DurableFile.FsyncDirectory(Root);
    }

    /// <summary>
    /// Removes the volume: its metadata first (so a crash midway leaves a directory that the next
    /// load removes), then its content. The caller has made sure nothing is mounted in it: a
    /// recursive delete would otherwise go into the mounted filesystem (a bind-mounted host path).
    /// </summary>
    public void Delete(string name) => DurableFile.DeleteRecordDirectory(DirectoryOf(name), MetadataFile);
}

[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(VolumeRecord))]
internal sealed partial class VolumeStoreJson : JsonSerializerContext;
