using System.Globalization;
using System.Text.Json;
using Berth.Oci;

namespace Berth.Seccomp;

/// <summary>
/// A seccomp profile in Docker's format (<c>docker run --security-opt seccomp=profile.json</c>; moby
/// <c>profiles/seccomp</c>, the format of its <c>default.json</c>): the OCI fields (<c>defaultAction</c>,
/// <c>defaultErrnoRet</c>, <c>architectures</c>, <c>flags</c>, <c>listenerPath</c>,
/// <c>listenerMetadata</c>), or <c>archMap</c> instead of <c>architectures</c>, and syscall rules
/// that name one syscall (<c>name</c>) or several (<c>names</c>) and may hold only for some
/// architectures, capabilities or kernels (<c>includes</c>/<c>excludes</c>). Unknown fields are
/// ignored, as Go's decoder does (profiles carry <c>comment</c>s); a field of the wrong type, both
/// <c>name</c> and <c>names</c>, or both <c>architectures</c> and <c>archMap</c> is an error naming it.
/// </summary>
public sealed class DockerSeccompProfile
{
    private readonly LinuxSeccomp _common;
    private readonly (string Arch, string[] SubArches)[] _archMap;
    private readonly ProfileRule[] _rules;

    private DockerSeccompProfile(LinuxSeccomp common, (string, string[])[] archMap, ProfileRule[] rules)
        => (_common, _archMap, _rules) = (common, archMap, rules);

    /// <summary>Reads a profile; <see cref="SeccompException"/> names what is wrong in it.</summary>
    public static DockerSeccompProfile Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new SeccompException($"not valid JSON: {e.Message}");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new SeccompException("a profile is a JSON object");
            var common = new LinuxSeccomp
            {
                DefaultAction = String(root, "defaultAction", "") ?? "",
                DefaultErrnoRet = UInt(root, "defaultErrnoRet", ""),
                Architectures = Strings(root, "architectures", "") is { Length: > 0 } arches ? [.. arches] : null,
                Flags = Strings(root, "flags", "") is { Length: > 0 } flags ? [.. flags] : null,
                ListenerPath = String(root, "listenerPath", ""),
                ListenerMetadata = String(root, "listenerMetadata", ""),
            };
            var archMap = Items(root, "archMap", "").Select((a, i) => (
                String(a, "architecture", $"archMap[{i}].") ?? "",
                Strings(a, "subArchitectures", $"archMap[{i}].") ?? [])).ToArray();
            if (common.Architectures is not null && archMap.Length > 0)
                throw new SeccompException("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
            var rules = Items(root, "syscalls", "").Select((r, i) => Rule(r, $"syscalls[{i}]")).ToArray();
            if (common.DefaultAction.Length == 0 && rules.Length > 0) throw new SeccompException("defaultAction: missing");
            return new DockerSeccompProfile(common, archMap, rules);
        }
    }

    /// <summary>
    /// The OCI section for a container holding <paramref name="capabilities"/> (its bounding set) on
    /// <paramref name="arch"/>: the rules that hold for it, and from <c>archMap</c> the entry of
    /// <paramref name="arch"/> with its sub-architectures. Null for a profile without a default
    /// action and without rules, which dockerd takes as no filter at all.
    /// </summary>
    public LinuxSeccomp? For(IReadOnlyCollection<string> capabilities, SeccompArch arch, Version? kernel = null)
    {
        ArgumentNullException.ThrowIfNull(capabilities);
        return _common.DefaultAction.Length == 0 && _rules.Length == 0 ? null
            : Section(ProfileRule.Select(_rules, capabilities, arch, kernel ?? ProfileRule.HostKernel.Value), arch);
    }

    /// <summary>Every rule whatever its conditions: for checking a profile when it is given, before any container holds it.</summary>
    public LinuxSeccomp AllRules(SeccompArch arch) => Section([.. _rules.Select(r => r.ToSyscall())], arch);

    private LinuxSeccomp Section(List<LinuxSyscall> syscalls, SeccompArch arch)
    {
        string native = ProfileRule.SeccompArchName(arch);
        List<string>? architectures = _common.Architectures is { } listed ? [.. listed]
            : _archMap.Where(a => a.Arch == native).SelectMany(a => a.SubArches.Prepend(a.Arch)).ToList() is { Count: > 0 } mapped ? mapped
            : null;
        return new LinuxSeccomp
        {
            DefaultAction = _common.DefaultAction,
            DefaultErrnoRet = _common.DefaultErrnoRet,
            Architectures = architectures,
            Flags = _common.Flags is { } flags ? [.. flags] : null,
            ListenerPath = _common.ListenerPath,
            ListenerMetadata = _common.ListenerMetadata,
            Syscalls = syscalls,
        };
    }

    private static ProfileRule Rule(JsonElement rule, string at)
    {
        if (rule.ValueKind != JsonValueKind.Object) throw new SeccompException($"{at}: expected an object");
        string? name = String(rule, "name", at + ".");
        string[] names = Strings(rule, "names", at + ".") ?? [];
        if (name is { Length: > 0 })
        {
            if (names.Length > 0) throw new SeccompException($"{at}: use either 'name' or 'names'");
            names = [name];
        }
        JsonElement includes = Object(rule, "includes", at + "."), excludes = Object(rule, "excludes", at + ".");
        return new ProfileRule(names, String(rule, "action", at + ".") ?? "")
        {
            ErrnoRet = UInt(rule, "errnoRet", at + "."),
            Args = [.. Items(rule, "args", at + ".").Select((a, j) => Arg(a, $"{at}.args[{j}]"))],
            IncludeCaps = Strings(includes, "caps", at + ".includes.") ?? [],
            IncludeArches = Strings(includes, "arches", at + ".includes.") ?? [],
            IncludeMinKernel = Kernel(includes, at + ".includes."),
            ExcludeCaps = Strings(excludes, "caps", at + ".excludes.") ?? [],
            ExcludeArches = Strings(excludes, "arches", at + ".excludes.") ?? [],
            ExcludeMinKernel = Kernel(excludes, at + ".excludes."),
        };
    }

    private static (uint, ulong, ulong?, string) Arg(JsonElement arg, string at)
    {
        if (arg.ValueKind != JsonValueKind.Object) throw new SeccompException($"{at}: expected an object");
        return (UInt(arg, "index", at + ".") ?? 0, ULong(arg, "value", at + ".") ?? 0, ULong(arg, "valueTwo", at + "."), String(arg, "op", at + ".") ?? "");
    }

    /// <summary>moby's KernelVersion: "major.minor" (as "4.8"); the patch level is not part of it.</summary>
    private static Version? Kernel(JsonElement conditions, string at)
    {
        if (String(conditions, "minKernel", at) is not { Length: > 0 } text) return null;
        string[] parts = text.Split('.');
        if (parts.Length == 2 && uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint major)
            && uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out uint minor))
            return new Version((int)major, (int)minor);
        throw new SeccompException($"{at}minKernel: invalid kernel version \"{text}\", expected \"<kernel>.<major>\"");
    }

    // Readers of one field: absent or null is the zero value, as in Go; another type is an error naming the field.

    private static bool TryGet(JsonElement obj, string name, out JsonElement value)
    {
        value = default;
        return obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;
    }

    private static string? String(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw new SeccompException($"{at}{name}: expected a string");

    private static string[]? Strings(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? null
            : v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) ? [.. v.EnumerateArray().Select(e => e.GetString()!)]
            : throw new SeccompException($"{at}{name}: expected an array of strings");

    private static IEnumerable<JsonElement> Items(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? []
            : v.ValueKind == JsonValueKind.Array ? [.. v.EnumerateArray()]
            : throw new SeccompException($"{at}{name}: expected an array");

    private static JsonElement Object(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? default
            : v.ValueKind == JsonValueKind.Object ? v
            : throw new SeccompException($"{at}{name}: expected an object");

    private static uint? UInt(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetUInt32(out uint n) ? n
            : throw new SeccompException($"{at}{name}: expected a number from 0 to {uint.MaxValue}");

    private static ulong? ULong(JsonElement obj, string name, string at)
        => !TryGet(obj, name, out JsonElement v) ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong n) ? n
            : throw new SeccompException($"{at}{name}: expected a number from 0 to {ulong.MaxValue}");
}
