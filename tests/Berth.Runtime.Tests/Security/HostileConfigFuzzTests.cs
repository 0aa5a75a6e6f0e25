using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// Hostile config.json: a few hundred malformed and adversarial configs from a fixed seed
/// (BERTH_FUZZ_SEED overrides it, BERTH_FUZZ_COUNT the count), each given to the real
/// `berth-runtime create`. Every one must end with a clear error (a "berth-runtime: " line
/// naming a field or a problem, no "Unhandled exception", no stack trace) and a non-zero exit
/// — or, for the ones the spec allows (unknown fields, odd-but-legal values), a container that
/// deletes cleanly; and nothing may be left on the host: state directory, cgroup, mount,
/// process, or a file at the host paths the tricks aim at.
/// </summary>
public sealed class HostileConfigFuzzTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    enum Expect { Fail, Either }

    sealed record Case(int Index, string Name, string Json, Expect Expect);

    const int DefaultSeed = 20240131;
    const string Canary = "berth-fuzz-canary";

    [IntegrationFact]
    public void Hostile_configs_fail_clearly_and_leave_nothing_behind()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("BERTH_FUZZ_SEED"), out var s) ? s : DefaultSeed;
        var count = int.TryParse(Environment.GetEnvironmentVariable("BERTH_FUZZ_COUNT"), out var c) ? c : 300;
        var canaryDir = _h.NewDir(Canary); // the host directory the path tricks aim at
        var shared = _h.NewBundle("true"); // one rootfs for every case
        var cases = Generate(seed, count, shared.Rootfs, canaryDir);
        var violations = new List<string>();
        var accepted = 0;
        var watch = Stopwatch.StartNew();
        var hostMounts = SecurityHelpers.HostMountPoints();
        foreach (var fuzz in cases)
        {
            var dir = _h.NewDir($"fuzz{fuzz.Index}");
            File.WriteAllText(Path.Combine(dir, "config.json"), fuzz.Json);
            var id = _h.NewId($"fz{fuzz.Index}");
            RuntimeResult result;
            try { result = _h.Runtime(["create", "--bundle", dir, id], timeoutMs: 15_000); }
            catch (Exception e) { violations.Add(Report(seed, fuzz, $"hung or crashed the harness: {e.Message}")); continue; }
            var output = result.Stdout + result.Stderr;
            if (output.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase) || output.Contains("   at ", StringComparison.Ordinal)
                || output.Contains("System.", StringComparison.Ordinal) && output.Contains("Exception", StringComparison.Ordinal))
                violations.Add(Report(seed, fuzz, "a crash or a stack trace instead of an error message", result));
            if (result.Code == 0)
            {
                accepted++;
                if (fuzz.Expect == Expect.Fail) violations.Add(Report(seed, fuzz, "accepted a config that must be refused", result));
                var deleted = _h.Runtime("delete", "--force", id);
                if (deleted.Code != 0) violations.Add(Report(seed, fuzz, "the accepted container did not delete cleanly", deleted));
            }
            else
            {
                var error = result.Stderr.Split('\n').LastOrDefault(l => l.StartsWith("berth-runtime: ", StringComparison.Ordinal));
                if (error is null || error.Trim().Length < "berth-runtime: ".Length + 8)
                    violations.Add(Report(seed, fuzz, "no clear error line (\"berth-runtime: <field or problem>\")", result));
                if (result.Code < 0 || result.Code > 125) violations.Add(Report(seed, fuzz, $"exit code {result.Code} (a signal?)", result));
            }
            // Nothing left on the host.
            if (Directory.Exists(Path.Combine(_h.Root, id))) violations.Add(Report(seed, fuzz, "state directory left behind", result));
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
                if (Directory.Exists(Path.Combine(hierarchy, "berth", id))) violations.Add(Report(seed, fuzz, $"cgroup {hierarchy}/berth/{id} left behind", result));
            // Other tests run beside this one and make host mounts in their own directories
            // (the propagation tests): only this test's directory and everything outside the
            // tests' directories count.
            var otherTests = Path.GetDirectoryName(_h.Dir.TrimEnd('/'))! + "/";
            var newMounts = SecurityHelpers.HostMountPoints().Except(hostMounts)
                .Where(m => m.StartsWith(_h.Dir, StringComparison.Ordinal) || !m.StartsWith(otherTests, StringComparison.Ordinal))
                .ToList();
            if (newMounts.Count > 0)
            {
                violations.Add(Report(seed, fuzz, $"host mounts left behind: {string.Join(", ", newMounts)}", result));
                foreach (var m in newMounts.OrderByDescending(m => m.Length)) TestEnvironment.Sh($"umount -l '{m}'");
            }
            if (Directory.EnumerateFileSystemEntries(canaryDir).Any())
            {
                violations.Add(Report(seed, fuzz, $"wrote outside the rootfs: {string.Join(", ", Directory.EnumerateFileSystemEntries(canaryDir))}", result));
                TestEnvironment.Sh($"rm -rf '{canaryDir}'/*");
            }
        }
        var summary = $"seed {seed}: {cases.Count} configs in {watch.Elapsed.TotalSeconds:0.0} s, {accepted} accepted, {violations.Count} violations";
        Console.WriteLine(summary);
        Assert.True(violations.Count == 0, summary + "\n\n" + string.Join("\n\n", violations.Take(40)));
    }

    static string Report(int seed, Case fuzz, string problem, RuntimeResult? result = null)
    {
        var json = fuzz.Json.Length > 600 ? fuzz.Json[..600] + "…" : fuzz.Json;
        var stderr = result is null ? "" : string.Join('\n', result.Stderr.Split('\n').Where(l => !l.StartsWith("T ", StringComparison.Ordinal)).Take(8));
        return $"[seed {seed} case {fuzz.Index} {fuzz.Name}] {problem}\n  exit {result?.Code}; stderr: {stderr.Trim()}\n  config: {json}";
    }

    // ---- generation ----

    static JsonObject BaseConfig(string rootfs)
    {
        var spec = SpecTemplate.Default();
        spec.Process!.Terminal = false;
        spec.Process.Args = ["true"];
        spec.Root!.Path = rootfs;
        return JsonNode.Parse(JsonSerializer.Serialize(spec, SpecJsonContext.Default.Spec))!.AsObject();
    }

    static List<Case> Generate(int seed, int count, string rootfs, string canaryDir)
    {
        var random = new Random(seed);
        var cases = new List<Case>();
        var generators = new List<(string Name, Func<Random, JsonObject, (string Json, Expect Expect)?> Make)>
        {
            ("wrong-type", (r, c) => WrongType(r, c)),
            ("huge-number", (r, c) => HugeNumber(r, c)),
            ("nul-byte", (r, c) => NulByte(r, c)),
            ("mount-path-trick", (r, c) => { ((JsonArray)c["mounts"]!).Add((JsonNode)new JsonObject { ["destination"] = PathTrick(r, canaryDir), ["type"] = Pick(r, "tmpfs", "bind", "proc", "sysfs"), ["source"] = Pick(r, "tmpfs", canaryDir, "/", "relative/src", "/nonexistent-src"), ["options"] = new JsonArray((JsonNode)Pick(r, "rbind", "ro", "nosuid", "bogus-option", "size=-1", "mode=99999999")) }); return (c.ToJsonString(), Expect.Either); }),
            ("cwd-path-trick", (r, c) => { c["process"]!["cwd"] = PathTrick(r, canaryDir); return (c.ToJsonString(), Expect.Either); }),
            ("device-path-trick", (r, c) => { c["linux"]!["devices"] = new JsonArray((JsonNode)new JsonObject { ["path"] = PathTrick(r, canaryDir), ["type"] = Pick(r, "c", "b", "p", "u", "x", ""), ["major"] = r.Next(-2, 300), ["minor"] = r.Next(-2, 300) }); return (c.ToJsonString(), Expect.Either); }),
            ("hook-path-trick", (r, c) => { c["hooks"] = new JsonObject { [Pick(r, "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", "bogusHook")] = new JsonArray((JsonNode)new JsonObject { ["path"] = Pick(r, "../../bin/true", "bin/true", "", "/nonexistent/hook", "/" + new string('h', 5000), canaryDir + "/hook", "/bin/true\u0000x"), ["args"] = new JsonArray("x"), ["timeout"] = r.Next(-5, 3) }) }; return (c.ToJsonString(), Expect.Either); }),
            ("unknown-field", (r, c) => { var target = RandomObject(r, c); target["x-berth-unknown-" + r.Next(1000)] = Pick<JsonNode>(r, 1, "s", true); return (c.ToJsonString(), Expect.Either); }),
            ("duplicate-namespace", (r, c) => { var ns = (JsonArray)c["linux"]!["namespaces"]!; var t = Pick(r, "pid", "network", "ipc", "uts", "mount"); ns.Add((JsonNode)new JsonObject { ["type"] = t }); return (c.ToJsonString(), Expect.Fail); }),
            ("bogus-namespace", (r, c) => { ((JsonArray)c["linux"]!["namespaces"]!).Add((JsonNode)new JsonObject { ["type"] = Pick(r, "bogus", "", "PID", "time2"), ["path"] = Pick<string?>(r, null, "/proc/1/ns/bogus", "relative") }); return (c.ToJsonString(), Expect.Fail); }),
            ("missing-section", (r, c) => MissingSection(r, c)),
            ("bad-capability", (r, c) => { c["process"]!["capabilities"]![Pick(r, "bounding", "effective", "permitted", "inheritable", "ambient")] = new JsonArray(Pick(r, "CAP_BOGUS", "cap_chown", "", "CAP_", "CAP_CHOWN\u0000")); return (c.ToJsonString(), Expect.Fail); }),
            ("bad-rlimit", (r, c) => { c["process"]!["rlimits"] = new JsonArray((JsonNode)new JsonObject { ["type"] = Pick(r, "RLIMIT_BOGUS", "rlimit_nofile", "", "RLIMIT_NOFILE"), ["soft"] = Pick<JsonNode>(r, 10, -1, 1e30, "x"), ["hard"] = Pick<JsonNode>(r, 5, -1, 1e30) }); return (c.ToJsonString(), Expect.Fail); }),
            ("sysctl-outside-namespace", (r, c) => SysctlOutside(r, c)),
            ("bad-seccomp", (r, c) => { c["linux"]!["seccomp"] = BadSeccomp(r); return (c.ToJsonString(), Expect.Fail); }),
            ("raw-json", (r, c) => RawJson(r, c)),
        };
        for (var i = 0; i < count; i++)
        {
            var (name, make) = generators[i % generators.Count];
            var made = make(random, BaseConfig(rootfs));
            if (made is { } m) cases.Add(new Case(i, name, m.Json, m.Expect));
        }
        return cases;
    }

    static T Pick<T>(Random r, params T[] values) => values[r.Next(values.Length)];

    static string PathTrick(Random r, string canaryDir) => Pick(r,
        "../../../../../../.." + canaryDir + "/escaped",
        canaryDir + "/escaped",
        "/proc/self/root" + canaryDir + "/escaped",
        "/proc/self/cwd/../../../" + canaryDir + "/escaped",
        "/" + string.Concat(Enumerable.Repeat("a/", 2100)),
        "/" + new string('x', 300),
        "relative/../../" + canaryDir.TrimStart('/') + "/escaped",
        "//..//..//.." + canaryDir + "/./escaped",
        "/dev/../../.." + canaryDir + "/escaped",
        "",
        "/",
        "/proc/self/fd/3");

    /// <summary>All (path, node) pairs of the tree, to mutate one at random.</summary>
    static List<(JsonNode Parent, string? Key, int Index, JsonNode? Node)> Slots(JsonNode root)
    {
        var slots = new List<(JsonNode, string?, int, JsonNode?)>();
        void Walk(JsonNode node)
        {
            if (node is JsonObject o)
                foreach (var (k, v) in o.ToList()) { slots.Add((o, k, -1, v)); if (v is not null) Walk(v); }
            else if (node is JsonArray a)
                for (var i = 0; i < a.Count; i++) { slots.Add((a, null, i, a[i])); if (a[i] is { } v) Walk(v); }
        }
        Walk(root);
        return slots;
    }

    static void Set((JsonNode Parent, string? Key, int Index, JsonNode? Node) slot, JsonNode? value)
    {
        if (slot.Parent is JsonObject o) o[slot.Key!] = value;
        else ((JsonArray)slot.Parent)[slot.Index] = value;
    }

    static JsonObject RandomObject(Random r, JsonObject c)
    {
        var objects = Slots(c).Select(s => s.Node).OfType<JsonObject>().Prepend(c).ToList();
        return objects[r.Next(objects.Count)];
    }

    static (string, Expect)? WrongType(Random r, JsonObject c)
    {
        var slots = Slots(c);
        var slot = slots[r.Next(slots.Count)];
        JsonNode wrong = slot.Node switch
        {
            JsonValue v when v.TryGetValue<string>(out _) => Pick<JsonNode>(r, 42, true, new JsonArray(), new JsonObject()),
            JsonValue v when v.TryGetValue<bool>(out _) => Pick<JsonNode>(r, "true", 1, new JsonArray()),
            JsonValue => Pick<JsonNode>(r, "12", true, new JsonObject(), 1.5),
            JsonArray => Pick<JsonNode>(r, "[]", 7, new JsonObject { ["0"] = "x" }),
            JsonObject => Pick<JsonNode>(r, "{}", 3, new JsonArray(1, 2), false),
            _ => "x",
        };
        Set(slot, wrong);
        return (c.ToJsonString(), Expect.Fail);
    }

    static (string, Expect)? HugeNumber(Random r, JsonObject c)
    {
        var targets = new Func<JsonObject, JsonObject>[]
        {
            x => (JsonObject)(x["linux"]!["resources"]!["memory"] ??= new JsonObject()),
            x => (JsonObject)(x["linux"]!["resources"]!["pids"] ??= new JsonObject()),
            x => (JsonObject)(x["linux"]!["resources"]!["cpu"] ??= new JsonObject()),
            x => (JsonObject)x["process"]!["user"]!,
            x => (JsonObject)(x["process"]!["consoleSize"] ??= new JsonObject()),
        };
        var fields = new[] { new[] { "limit", "reservation", "swap", "kernel", "swappiness" }, ["limit"], ["shares", "quota", "period", "realtimeRuntime"], ["uid", "gid", "umask"], ["height", "width"] };
        var t = r.Next(targets.Length);
        var obj = targets[t](c);
        obj[Pick(r, fields[t])] = JsonNode.Parse(Pick(r, "9223372036854775808", "18446744073709551616", "-9223372036854775809", "-1", "-2", "1e300", "1.5", "0", "4294967296", "99999999999999999999999999"));
        if (r.Next(4) == 0) c["process"]!["oomScoreAdj"] = JsonNode.Parse(Pick(r, "-1001", "1001", "2147483648"));
        return (c.ToJsonString(), Expect.Either);
    }

    static (string, Expect)? NulByte(Random r, JsonObject c)
    {
        var strings = Slots(c).Where(s => s.Node is JsonValue v && v.TryGetValue<string>(out var str) && str.Length > 0).ToList();
        var slot = strings[r.Next(strings.Count)];
        var text = slot.Node!.GetValue<string>();
        var at = r.Next(text.Length + 1);
        Set(slot, text[..at] + "\u0000" + text[at..]);
        // A NUL cannot reach a syscall without cutting the string: refusing is the only safe answer —
        // except in a field the runtime never hands to the kernel (annotations, ociVersion is checked anyway).
        return (c.ToJsonString(), Expect.Fail);
    }

    static (string, Expect)? MissingSection(Random r, JsonObject c)
    {
        switch (r.Next(7))
        {
            case 0: c.Remove("root"); break;
            case 1: c.Remove("process"); break;
            case 2: ((JsonObject)c["process"]!).Remove("args"); break;
            case 3: c["process"]!["args"] = new JsonArray(); break;
            case 4: c.Remove("ociVersion"); break;
            case 5: ((JsonObject)c["root"]!).Remove("path"); break;
            default: ((JsonObject)c["process"]!).Remove("cwd"); break;
        }
        return (c.ToJsonString(), Expect.Fail);
    }

    static (string, Expect)? SysctlOutside(Random r, JsonObject c)
    {
        var (ns, key) = Pick(r, ("network", "net.ipv4.ip_forward"), ("ipc", "kernel.shm_rmid_forced"), ("ipc", "fs.mqueue.msg_max"),
            ("uts", "kernel.domainname"), ("network", "net.core.somaxconn"), ("", "vm.swappiness"), ("", "kernel.panic"), ("", "kernel/../../x"));
        var namespaces = (JsonArray)c["linux"]!["namespaces"]!;
        foreach (var n in namespaces.Where(n => (string?)n!["type"] == ns).ToList()) namespaces.Remove(n);
        c["linux"]!["sysctl"] = new JsonObject { [key] = "1" };
        return (c.ToJsonString(), Expect.Fail);
    }

    static JsonObject BadSeccomp(Random r) => r.Next(5) switch
    {
        0 => new JsonObject { ["defaultAction"] = Pick(r, "SCMP_ACT_BOGUS", "", "allow", "SCMP_ACT_ERRNO\u0000") },
        1 => new JsonObject { ["defaultAction"] = "SCMP_ACT_ALLOW", ["architectures"] = new JsonArray(Pick(r, "SCMP_ARCH_BOGUS", "x86_64", "")) },
        2 => new JsonObject { ["defaultAction"] = "SCMP_ACT_ALLOW", ["syscalls"] = new JsonArray((JsonNode)new JsonObject { ["names"] = new JsonArray("getpid"), ["action"] = Pick(r, "SCMP_ACT_NOPE", "", "SCMP_ACT_ERRNO "), }) },
        3 => new JsonObject { ["defaultAction"] = "SCMP_ACT_ALLOW", ["syscalls"] = new JsonArray((JsonNode)new JsonObject { ["names"] = new JsonArray("getpid"), ["action"] = "SCMP_ACT_ERRNO", ["args"] = new JsonArray((JsonNode)new JsonObject { ["index"] = Pick(r, 6, 99, -1), ["value"] = 1, ["op"] = Pick(r, "SCMP_CMP_BOGUS", "SCMP_CMP_EQ") }) }) },
        _ => new JsonObject { ["defaultAction"] = "SCMP_ACT_ALLOW", ["flags"] = new JsonArray(Pick(r, "SECCOMP_FILTER_FLAG_BOGUS", "")) },
    };

    static (string, Expect)? RawJson(Random r, JsonObject c)
    {
        var text = c.ToJsonString();
        var raw = r.Next(9) switch
        {
            0 => text[..r.Next(1, text.Length - 1)],                             // truncated
            1 => text.Replace("]", ",]"),                                        // trailing commas
            2 => "",                                                             // empty
            3 => Pick(r, "null", "[]", "42", "\"config\"", "true"),              // not an object
            4 => string.Concat(Enumerable.Repeat("[", 100_000)),                 // deep nesting
            5 => "\uFEFF" + text.Replace("\"ociVersion\"", "\"ociVersion\": \"1.0.0\", \"ociVersion\""), // BOM + duplicate key
            6 => text.Replace("\"args\":[\"true\"]", "\"args\":[\"" + new string('A', 2_000_000) + "\"]"), // a 2 MB argument
            7 => text.Replace("\"cwd\":\"/\"", "\"cwd\":\"/\\ud800\""),          // a lone surrogate
            _ => text.Replace("{", "{/*c*/"),                                    // comments
        };
        if (raw.Length == 0 && r.Next(2) == 0)
            return (Encoding.Latin1.GetString([0xff, 0xfe, 0x00, 0x7b]), Expect.Fail); // invalid UTF-8
        return (raw, raw.Contains(new string('A', 1000)) ? Expect.Either : Expect.Fail);
    }
}
