using System.Buffers;
using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>What the runtime keeps about a container in &lt;root&gt;/&lt;id&gt;/state.json.</summary>
public sealed class ContainerRecord
{
    public string Id { get; set; } = "";
    public int InitPid { get; set; }
    /// <summary>The init's start time (field 22 of /proc/pid/stat): a recycled pid is not our init.</summary>
    public ulong InitStartTime { get; set; }
    public string Bundle { get; set; } = "";
    public string Rootfs { get; set; } = "";
    public DateTimeOffset Created { get; set; }
    public string Owner { get; set; } = "";
    public Dictionary<string, string> CgroupPaths { get; set; } = [];
    // Only the parts of config.json later operations need: a whole Spec here would make
    // every state.json read and write build the JSON metadata of the entire OCI model.
    public Dictionary<string, string>? Annotations { get; set; }
    public Berth.Oci.Hooks? Hooks { get; set; }
    /// <summary>Saved while create runs its hooks, so that `state` answers "creating" then.</summary>
    public bool Creating { get; set; }
    /// <summary>The runtime's default cgroup parent this container was placed under, removed on delete once empty.</summary>
    public string? CgroupParentToPrune { get; set; }
}

/// <summary>
/// state.json by hand (Utf8JsonWriter, <see cref="StrictJsonReader"/>): every runtime command
/// reads it and most write it, and System.Text.Json's metadata for it cost ~0.5 ms per process.
/// The format is what the source-generated serializer wrote before, so older files still read.
/// </summary>
internal static class ContainerRecordJson
{
    public static byte[] Write(ContainerRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, HandWrittenJson.Options()))
        {
            w.WriteStartObject();
            w.WriteString("id", record.Id);
            w.WriteNumber("initPid", record.InitPid);
            w.WriteNumber("initStartTime", record.InitStartTime);
            w.WriteString("bundle", record.Bundle);
            w.WriteString("rootfs", record.Rootfs);
            w.WriteString("created", record.Created);
            w.WriteString("owner", record.Owner);
            w.WriteStartObject("cgroupPaths");
            foreach (var (controller, path) in record.CgroupPaths) w.WriteString(controller, path);
            w.WriteEndObject();
            if (record.Annotations is { } annotations)
            {
                w.WriteStartObject("annotations");
                foreach (var (key, value) in annotations) w.WriteString(key, value);
                w.WriteEndObject();
            }
            if (record.Hooks is { } hooks)
            {
                w.WriteStartObject("hooks");
                foreach (var (name, list) in hooks.All())
                {
                    if (list is null) continue;
                    w.WriteStartArray(name);
                    foreach (var hook in list) WriteHook(w, hook);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteBoolean("creating", record.Creating);
            if (record.CgroupParentToPrune is { } parent) w.WriteString("cgroupParentToPrune", parent);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteHook(Utf8JsonWriter w, Hook hook)
    {
        w.WriteStartObject();
        w.WriteString("path", hook.Path);
        WriteStrings(w, "args", hook.Args);
        WriteStrings(w, "env", hook.Env);
        if (hook.Timeout is int timeout) w.WriteNumber("timeout", timeout);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, List<string>? values)
    {
        if (values is null) return;
        w.WriteStartArray(name);
        foreach (var value in values) w.WriteStringValue(value);
        w.WriteEndArray();
    }

    /// <exception cref="SpecException">The file is not a state.json (the message names the field).</exception>
    public static ContainerRecord Read(ReadOnlySpan<byte> json, string file)
    {
        var r = new StrictJsonReader(json, file);
        var record = new ContainerRecord();
        r.BeginObject();
        while (r.NextProperty(out var name))
        {
            switch (name)
            {
                case "id": record.Id = r.String(); break;
                case "initPid": record.InitPid = r.Int32(); break;
                case "initStartTime": record.InitStartTime = r.UInt64(); break;
                case "bundle": record.Bundle = r.String(); break;
                case "rootfs": record.Rootfs = r.String(); break;
                case "created": record.Created = r.Time(); break;
                case "owner": record.Owner = r.String(); break;
                case "cgroupPaths": record.CgroupPaths = r.NullableStringMap() ?? throw r.Error("must not be null"); break;
                case "annotations": record.Annotations = r.NullableStringMap(); break;
                case "hooks": record.Hooks = r.Nullable(SpecReader.ReadHooks); break;
                case "creating": record.Creating = r.Boolean(); break;
                case "cgroupParentToPrune": record.CgroupParentToPrune = r.NullableString(); break;
                default: r.Skip(); break;
            }
        }
        r.EndDocument();
        return record;
    }
}
