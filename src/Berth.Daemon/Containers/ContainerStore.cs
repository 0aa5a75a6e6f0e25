using Berth.Daemon.Engine;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Daemon.Containers;

/// <summary>
/// The containers' persistent records: one directory per container under
/// <c>&lt;data-root&gt;/containers</c>, its record in <c>config.v2.json</c>.
/// <para>
/// Crash safety: every save writes <c>config.v2.json.tmp</c>, fsyncs it, renames it over the
/// record and fsyncs the directory, so a kill -9 at any instant leaves either the old record or
/// the new one, never a torn one. A directory without a record (a create cut short before its
/// first save) is removed at load, and so are leftover temp files. Saves with <c>durable: false</c>
/// skip the fsyncs: atomic against a kill -9, not against a machine crash. Names are not stored apart:
/// the name index is rebuilt from the records at load, so a rename is one atomic save.
/// </para>
/// </summary>
public sealed class ContainerStore
{
    public const string RecordFile = "config.v2.json";

    public ContainerStore(string root)
    {
        Root = root;
        Directory.CreateDirectory(root);
    }

    public string Root { get; }

    public string DirectoryOf(string id) => Path.Combine(Root, id);

    /// <summary>Reads every record; cleans directories that a crash left without one.</summary>
    public List<ContainerRecord> LoadAll(Action<string>? warn = null)
    {
        var result = new List<ContainerRecord>();
        foreach (string dir in Directory.EnumerateDirectories(Root))
        {
            string id = Path.GetFileName(dir);
            string record = Path.Combine(dir, RecordFile);
            try
            {
                // Temp files of atomic writes cut short (the record, hosts, resolv.conf, hostname).
                foreach (string temp in Directory.EnumerateFiles(dir, "*.tmp")) File.Delete(temp);
                if (!File.Exists(record) || new FileInfo(record).Length == 0)
                {
                    // The create that made this directory never saved: nothing refers to it. An
                    // empty record is the same: a durable save fsyncs before its rename, so only a
                    // machine crash after a non-durable first save (`run --rm`) leaves one.
                    Directory.Delete(dir, recursive: true);
                    continue;
                }
                ContainerRecord? r = JsonSerializer.Deserialize(File.ReadAllBytes(record), ContainerStoreJson.Default.ContainerRecord);
                if (r is null || r.Id != id) throw new JsonException("record does not name its own container");
                result.Add(r);
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                warn?.Invoke($"container {id}: unreadable record {record}: {e.Message}; left in place");
            }
        }
        return result;
    }

    /// <summary>Writes the record atomically (temp file, fsync, rename, fsync of the directory; no fsyncs when not <paramref name="durable"/>).</summary>
    public void Save(ContainerRecord record, bool durable = true)
    {
        string dir = DirectoryOf(record.Id);
        Directory.CreateDirectory(dir);
        DurableFile.Write(Path.Combine(dir, RecordFile), JsonSerializer.SerializeToUtf8Bytes(record, ContainerStoreJson.Default.ContainerRecord), durable);
    }

    /// <summary>
    /// Removes the container's directory: the record goes first (renamed away, so a crash midway
    /// leaves a directory without a record, which the next load removes), then the rest.
    /// </summary>
    public void Delete(string id, bool durable = true) => DurableFile.DeleteRecordDirectory(DirectoryOf(id), RecordFile, durable);
}

[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ContainerRecord))]
internal sealed partial class ContainerStoreJson : JsonSerializerContext;
