using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// The published berthd killed with SIGKILL at random instants in the middle of a burst of
/// concurrent state changes (create with names, create+start, rm -f, rm of a container whose
/// create is still in flight, rename, a create and a rename racing for one name, start of a
/// `true` container, image tag and rmi), then restarted on the same data root. After each kill:
/// <list type="bullet">
/// <item>the daemon starts (every record readable, no crash on load);</item>
/// <item>every listed container inspects fine, names are unique and each resolves to its container;</item>
/// <item>on disk: exactly one record directory per listed container and no other, no temp files,
/// exactly one <c>container-&lt;id&gt;</c> snapshot per listed container and no other, no snapshot
/// directory that the snapshotter's metadata does not name;</item>
/// <item>no mount under the test directory and no runtime container state other than those of
/// containers the restarted daemon reports as running;</item>
/// <item>every operation acknowledged (2xx received) before the kill is reflected; operations that
/// got no answer may have happened or not, but nothing else changed;</item>
/// <item>every image name listed before the round (but those removed by rmi) is still listed.</item>
/// </list>
/// BERTH_CRASH_ROUNDS sets the number of rounds, BERTH_CRASH_SEED the seed (printed); the kill
/// instant depends on timing, so a seed reproduces the choices of operations and delays, not
/// the exact interleaving.
/// </summary>
public sealed class CrashConsistencyTests(ITestOutputHelper output)
{
    private const string NeverStarted = "0001-01-01T00:00:00Z";
    /// <summary>
    /// The runtime's per-container state directories: every directory of its root except its
    /// compiled-seccomp store, which belongs to no container (its name is no valid container id).
    /// </summary>
    private static IEnumerable<string> RuntimeStateDirectories(string runtimeRoot) =>
        Directory.EnumerateDirectories(runtimeRoot).Where(d => Path.GetFileName(d) != Berth.Runtime.Container.ContainerRuntime.SeccompStoreDirectory);

    private static string Berthd => Path.Combine(DaemonScope.ArtifactsBin, "berthd");

    [Fact]
    public async Task State_survives_kill_9_at_random_instants_of_concurrent_operations()
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("BERTH_CRASH_ROUNDS"), out int n) && n > 0 ? n : 30;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("BERTH_CRASH_SEED"), out int s) ? s : Random.Shared.Next();
        output.WriteLine($"BERTH_CRASH_SEED={seed} BERTH_CRASH_ROUNDS={rounds}");
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();

        var dir = new TempDirectory("crash");
        string socket = dir.Combine("exec", "berth.sock");
        string data = dir.Combine("data");
        var daemon = new Daemon(dir, socket);
        int unanswered = 0, answered = 0, killedBeforeAnyAnswer = 0;
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<string>();
        try
        {
            await daemon.StartAsync();
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                using var tar = new ByteArrayContent(TestRootfs.BusyboxTar());
                tar.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
                using HttpResponseMessage imported = await client.PostAsync("/images/create?fromSrc=-&repo=busybox&tag=latest", tar);
                Assert.True(imported.IsSuccessStatusCode, await imported.Content.ReadAsStringAsync());
                // A few containers to rename, remove and start in the first round.
                for (int i = 0; i < 4; i++)
                    await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "true" } }, $"seed{i}");
            }

            for (int round = 1; round <= rounds; round++)
            {
                State before;
                using (HttpClient client = DaemonScope.CreateClient(socket))
                    before = await ReadStateAsync(client);
                var burst = new Burst(round, random, before);
                int delayMs = random.Next(0, 51);

                using (HttpClient client = DaemonScope.CreateClient(socket))
                {
                    Task all = burst.RunAsync(client);
                    await Task.Delay(delayMs);
                    await daemon.KillAsync();
                    // In-flight requests now fail (connection reset) or, if they had finished, hold their answers.
                    await all.WaitAsync(TimeSpan.FromSeconds(30));
                }
                int acked = burst.Ops.Count(o => o.Acknowledged);
                answered += acked;
                unanswered += burst.Ops.Count(o => o.Status is null);
                if (burst.Ops.All(o => o.Status is null)) killedBeforeAnyAnswer++;

                string log = $"round {round} (seed {seed}, kill after {delayMs} ms):\n" + string.Join("\n", burst.Ops.Select(o => "  " + o));
                try
                {
                    await daemon.StartAsync();
                }
                catch (Exception e)
                {
                    Assert.Fail($"berthd did not start again after the kill: {e.Message}\n{daemon.Stderr}\n{log}");
                }
                using (HttpClient client = DaemonScope.CreateClient(socket))
                {
                    var violations = new List<string>();
                    State after = await ReadStateAsync(client, violations);
                    await CheckDiskAsync(client, dir, data, violations);
                    burst.Check(before, after, violations);
                    // A broken invariant is reported once (a stray mount stays until its container goes), and
                    // the rounds go on, so that one run shows every kind of breakage it met.
                    List<string> fresh = violations.Where(reported.Add).ToList();
                    if (fresh.Count > 0)
                    {
                        string text = $"{string.Join("\n", fresh)}\n{log}\ndaemon stderr:\n{daemon.Stderr}";
                        failures.Add(text);
                        output.WriteLine("VIOLATION " + text);
                    }
                }
                output.WriteLine($"round {round}: kill at {delayMs} ms, {acked}/{burst.Ops.Count} acknowledged");
                if (Environment.GetEnvironmentVariable("BERTH_CRASH_VERBOSE") == "1") output.WriteLine(log);
            }
            output.WriteLine($"{rounds} rounds in {clock.Elapsed.TotalSeconds:F1} s; {answered} operations acknowledged before a kill, "
                + $"{unanswered} cut by one; {killedBeforeAnyAnswer} rounds killed before any answer");

            // The end: the daemon still does its work, and everything removed through the API leaves no
            // container, no container layer and no mount.
            var end = new List<string>();
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                string probe = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "exit 7" } }, "probe");
                using (HttpResponseMessage started = await client.PostAsync($"/containers/{probe}/start", null))
                    if (!started.IsSuccessStatusCode) end.Add($"start of a new container: {await started.Content.ReadAsStringAsync()}");
                using (HttpResponseMessage waited = await client.PostAsync($"/containers/{probe}/wait", null))
                {
                    string body = await waited.Content.ReadAsStringAsync();
                    if (!waited.IsSuccessStatusCode || JsonDocument.Parse(body).RootElement.GetProperty("StatusCode").GetInt32() != 7) end.Add($"wait: {body}");
                }
                foreach (Container c in (await ReadStateAsync(client)).Containers.Values)
                    using (HttpResponseMessage rm = await client.DeleteAsync($"/containers/{c.Id}?force=1"))
                        if (!rm.IsSuccessStatusCode) end.Add($"rm {c.Id}: {await rm.Content.ReadAsStringAsync()}");
                if ((await ReadStateAsync(client)).Containers.Count is int left and > 0) end.Add($"{left} containers remain after removing all");
            }
            end.AddRange(Directory.EnumerateFileSystemEntries(Path.Combine(data, "containers")).Select(e => $"{e} remains after removing all"));
            end.AddRange(SnapshotKeys(data).Where(k => k.StartsWith("container-", StringComparison.Ordinal)).Select(k => $"snapshot {k} remains after removing all"));
            end.AddRange(MountsUnder(dir.Path).Select(m => $"mount {m} remains after removing all"));
            string runtimeRoot = dir.Combine("exec", "runtime", "berth-runtime");
            if (Directory.Exists(runtimeRoot))
                end.AddRange(RuntimeStateDirectories(runtimeRoot).Select(d => $"runtime state {d} remains after removing all"));
            if (end.Count > 0) failures.Add("at the end:\n" + string.Join("\n", end));
            Assert.True(failures.Count == 0, $"{failures.Count} broken invariants (BERTH_CRASH_SEED={seed}):\n\n" + string.Join("\n\n", failures));
        }
        finally
        {
            daemon.Stop();
            Leftovers.Clean(dir.Path);
            try
            {
                dir.Dispose();
            }
            catch (IOException e)
            {
                output.WriteLine($"could not delete {dir.Path}: {e.Message}");
            }
        }
    }

    // ---- the burst -----------------------------------------------------------------------------

    private sealed class Op(string kind, string target, string? arg = null)
    {
        public string Kind { get; } = kind;
        public string Target { get; } = target;
        public string? Arg { get; } = arg;
        public int? Status { get; set; }
        public string? Body { get; set; }
        public string? Error { get; set; }
        public double SentMs { get; set; }
        public double AnsweredMs { get; set; }
        public bool Sent { get; set; }
        public int Attempts { get; set; }
        public bool Acknowledged => Status is >= 200 and < 300;

        public override string ToString()
            => $"{Kind} {Target}{(Arg is null ? "" : " " + Arg)}{(Attempts > 0 ? $" (after {Attempts} answers 404)" : "")}: " + (!Sent ? "not sent"
                : Status is { } st ? $"{st} at {AnsweredMs:F1} ms (sent at {SentMs:F1}){(st >= 300 ? " " + Body?.Trim() : "")}"
                : $"no answer (sent at {SentMs:F1} ms): {Error}");
    }

    /// <summary>One round's operations, chosen from the state before it, and what their answers imply.</summary>
    private sealed class Burst
    {
        private readonly int _round;
        private readonly Random _random;
        private readonly Stopwatch _clock = new();
        private readonly List<(Op Create, Op? Start, Op? Remove, int RemoveDelayMs)> _creates = [];
        private readonly List<Op> _renames = [], _removes = [], _starts = [];
        private Op? _contendCreate, _contendRename, _tag, _rmi;

        public Burst(int round, Random random, State before)
        {
            _round = round;
            _random = random;
            List<Container> existing = before.Containers.Values.OrderBy(c => c.Id, StringComparer.Ordinal).ToList();
            Shuffle(existing);
            int next = 0;
            Container? Take(Func<Container, bool>? where = null)
            {
                for (int i = next; i < existing.Count; i++)
                    if (where is null || where(existing[i]))
                    {
                        (existing[next], existing[i]) = (existing[i], existing[next]);
                        return existing[next++];
                    }
                return null;
            }
            // Disjoint targets, so that each container sees at most one operation of the burst.
            int removes = existing.Count > 12 ? 4 : existing.Count > 6 ? 2 : 1;
            for (int i = 0; i < 2; i++)
                if (Take(c => c.Status == "created") is { } c) _starts.Add(new Op("start", c.Id));
            for (int i = 0; i < 2; i++)
                if (Take() is { } c) _renames.Add(new Op("rename", c.Id, $"r{round}-{i}"));
            for (int i = 0; i < removes; i++)
                if (Take() is { } c) _removes.Add(new Op("rm", c.Id));
            if (Take() is { } contended)
            {
                _contendCreate = new Op("create", $"x{round}");
                _contendRename = new Op("rename", contended.Id, $"x{round}");
            }
            for (int i = 0; i < 4; i++)
            {
                var create = new Op("create", $"c{round}-{i}");
                Op? start = i == 1 ? new Op("start", $"c{round}-{i}") : null;
                Op? remove = i == 2 ? new Op("rm", $"c{round}-{i}") : null; // races the create itself
                _creates.Add((create, start, remove, random.Next(0, 12)));
            }
            _tag = new Op("tag", "busybox:latest", $"crash/copy{round}:latest");
            string? old = before.Tags.Where(t => t.StartsWith("crash/copy", StringComparison.Ordinal)).OrderBy(t => t, StringComparer.Ordinal).FirstOrDefault();
            if (old is not null) _rmi = new Op("rmi", old);
        }

        public List<Op> Ops
            => [.. _creates.SelectMany(c => new[] { c.Create, c.Start, c.Remove }).OfType<Op>(), .. _renames, .. _removes, .. _starts,
                .. new[] { _contendCreate, _contendRename, _tag, _rmi }.OfType<Op>()];

        private void Shuffle<T>(List<T> list)
        {
            for (int i = list.Count - 1; i > 0; i--)
            {
                int j = _random.Next(i + 1);
                (list[i], list[j]) = (list[j], list[i]);
            }
        }

        public Task RunAsync(HttpClient client)
        {
            _clock.Start();
            var tasks = new List<Task>();
            foreach (var (create, start, remove, delay) in _creates)
            {
                tasks.Add(Task.Run(async () =>
                {
                    await SendAsync(client, create, () => client.PostAsJsonAsync($"/containers/create?name={create.Target}", new { Image = "busybox", Cmd = new[] { "true" } }));
                    if (start is not null && create.Acknowledged)
                        await SendAsync(client, start, () => client.PostAsync($"/containers/{IdOf(create)}/start", null));
                }));
                if (remove is not null)
                    tasks.Add(Task.Run(async () =>
                    {
                        // Aim at the window between the name's reservation and the record's first save:
                        // try again while the create is unanswered and the name unknown.
                        await Task.Delay(delay);
                        for (int attempt = 0; attempt < 400; attempt++)
                        {
                            await SendAsync(client, remove, () => client.DeleteAsync($"/containers/{remove.Target}?force=1"));
                            if (remove.Status != 404 || create.Status is not null) break;
                            remove.Attempts++;
                        }
                    }));
            }
            foreach (Op op in _renames.Append(_contendRename).OfType<Op>())
                tasks.Add(Task.Run(() => SendAsync(client, op, () => client.PostAsync($"/containers/{op.Target}/rename?name={op.Arg}", null))));
            foreach (Op op in _removes)
                tasks.Add(Task.Run(() => SendAsync(client, op, () => client.DeleteAsync($"/containers/{op.Target}?force=1"))));
            foreach (Op op in _starts)
                tasks.Add(Task.Run(() => SendAsync(client, op, () => client.PostAsync($"/containers/{op.Target}/start", null))));
            if (_contendCreate is { } cc)
                tasks.Add(Task.Run(() => SendAsync(client, cc, () => client.PostAsJsonAsync($"/containers/create?name={cc.Target}", new { Image = "busybox", Cmd = new[] { "true" } }))));
            if (_tag is { } tag)
            {
                int colon = tag.Arg!.LastIndexOf(':');
                tasks.Add(Task.Run(() => SendAsync(client, tag, () => client.PostAsync($"/images/{tag.Target}/tag?repo={tag.Arg[..colon]}&tag={tag.Arg[(colon + 1)..]}", null))));
            }
            if (_rmi is { } rmi)
                tasks.Add(Task.Run(() => SendAsync(client, rmi, () => client.DeleteAsync($"/images/{rmi.Target}"))));
            return Task.WhenAll(tasks);
        }

        private async Task SendAsync(HttpClient client, Op op, Func<Task<HttpResponseMessage>> send)
        {
            op.Sent = true;
            op.Status = null;
            op.Body = op.Error = null;
            op.SentMs = _clock.Elapsed.TotalMilliseconds;
            try
            {
                using HttpResponseMessage response = await send();
                // The status line is the acknowledgement; the body may be cut by the kill.
                op.Status = (int)response.StatusCode;
                op.AnsweredMs = _clock.Elapsed.TotalMilliseconds;
                try
                {
                    op.Body = await response.Content.ReadAsStringAsync();
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    op.Body = null;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                op.Error = e.GetBaseException().Message;
            }
            _ = client;
        }

        private static string? IdOf(Op create)
        {
            if (!create.Acknowledged || create.Body is null) return null;
            try
            {
                return JsonDocument.Parse(create.Body).RootElement.GetProperty("Id").GetString();
            }
            catch (JsonException)
            {
                return null;
            }
        }

        /// <summary>What the answers imply for the state after the restart.</summary>
        public void Check(State before, State after, List<string> violations)
        {
            var touched = new HashSet<string>(StringComparer.Ordinal);
            void Expect(bool ok, string what)
            {
                if (!ok) violations.Add("acknowledged but not reflected: " + what);
            }

            // Containers that existed before: untouched ones keep their name and state; touched ones follow their operation.
            foreach (Op op in _renames)
            {
                touched.Add(op.Target);
                string oldName = before.Containers[op.Target].Name, newName = "/" + op.Arg;
                if (!after.Containers.TryGetValue(op.Target, out Container? c)) violations.Add($"renamed container {op.Target} vanished");
                else if (op.Acknowledged) Expect(c.Name == newName, $"rename {op.Target} to {newName} (it is {c.Name})");
                else if (c.Name != oldName && c.Name != newName) violations.Add($"container {op.Target} is named {c.Name}, neither {oldName} nor {newName}");
            }
            foreach (Op op in _removes)
            {
                touched.Add(op.Target);
                if (op.Acknowledged) Expect(!after.Containers.ContainsKey(op.Target), $"rm {op.Target}");
                else if (after.Containers.TryGetValue(op.Target, out Container? c) && c.Name != before.Containers[op.Target].Name)
                    violations.Add($"container {op.Target} survived an unanswered rm with another name {c.Name}");
            }
            foreach (Op op in _starts)
            {
                touched.Add(op.Target);
                if (!after.Containers.TryGetValue(op.Target, out Container? c)) violations.Add($"started container {op.Target} vanished");
                else if (op.Acknowledged) Expect(c.StartedAt != NeverStarted && c.Status != "created", $"start {op.Target} (status {c.Status}, started {c.StartedAt})");
            }
            if (_contendRename is { } cr)
            {
                touched.Add(cr.Target);
                string oldName = before.Containers[cr.Target].Name, newName = "/" + cr.Arg;
                if (!after.Containers.TryGetValue(cr.Target, out Container? c)) violations.Add($"renamed container {cr.Target} vanished");
                else if (cr.Acknowledged) Expect(c.Name == newName, $"rename {cr.Target} to {newName} (it is {c.Name})");
                else if (c.Name != oldName && c.Name != newName) violations.Add($"container {cr.Target} is named {c.Name}, neither {oldName} nor {newName}");
                if (cr.Acknowledged && _contendCreate!.Acknowledged)
                    violations.Add($"both the rename of {cr.Target} and a create took the name {newName}");
            }
            foreach (Container old in before.Containers.Values.Where(c => !touched.Contains(c.Id)))
            {
                if (!after.Containers.TryGetValue(old.Id, out Container? c)) violations.Add($"container {old.Id} ({old.Name}), which no operation touched, is gone");
                else if (c.Name != old.Name) violations.Add($"container {old.Id} changed its name from {old.Name} to {c.Name} untouched");
            }

            // New containers: only the creates of this burst, each under its own name.
            var newNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (create, start, remove, _) in _creates)
            {
                string name = "/" + create.Target;
                newNames.Add(name);
                Container? c = after.Containers.Values.FirstOrDefault(x => x.Name == name);
                string? id = IdOf(create);
                if (create.Acknowledged && id is not null && c is not null && c.Id != id)
                    violations.Add($"{name} names {c.Id}, not the container {id} its create returned");
                bool removedForSure = remove?.Acknowledged == true;
                bool maybeRemoved = remove is not null && remove.Status is null && remove.Sent;
                if (removedForSure)
                {
                    Expect(c is null, $"rm {name} (answered {remove!.Status} at {remove.AnsweredMs:F1} ms) while its create was in flight: {c?.Id} is there after the restart");
                    if (id is not null) Expect(!after.Containers.ContainsKey(id), $"rm {name}: {id} is still there");
                }
                else if (create.Acknowledged && !maybeRemoved)
                    Expect(c is not null && (id is null || after.Containers.ContainsKey(id)), $"create {name} ({id})");
                if (start?.Acknowledged == true && c is not null)
                    Expect(c.StartedAt != NeverStarted && c.Status != "created", $"start {name} (status {c.Status})");
            }
            if (_contendCreate is { } cc)
            {
                newNames.Add("/" + cc.Target);
                Container? c = after.Containers.Values.FirstOrDefault(x => x.Name == "/" + cc.Target);
                string? id = IdOf(cc);
                if (cc.Acknowledged) Expect(c is not null && c.Id == id, $"create /{cc.Target} ({id}); the name is held by {c?.Id}");
            }
            foreach (Container c in after.Containers.Values.Where(c => !before.Containers.ContainsKey(c.Id)))
                if (!newNames.Contains(c.Name))
                    violations.Add($"container {c.Id} appeared under the name {c.Name}, which no create of this round used");

            // Images: nothing lost but what rmi removed.
            if (_tag is { } tag)
            {
                if (tag.Acknowledged) Expect(after.Tags.Contains(tag.Arg!), $"tag {tag.Arg}");
            }
            foreach (string t in before.Tags)
            {
                if (_rmi is { } r && r.Target == t)
                {
                    if (r.Acknowledged) Expect(!after.Tags.Contains(t), $"rmi {t}");
                    continue;
                }
                if (!after.Tags.Contains(t)) violations.Add($"image name {t} was lost");
            }
            foreach (string image in before.ImageIds)
                if (!after.ImageIds.Contains(image)) violations.Add($"image {image} was lost");
            _ = _round;
        }
    }

    // ---- reading the state ---------------------------------------------------------------------

    private sealed record Container(string Id, string Name, string Status, bool Running, string StartedAt);

    private sealed record State(Dictionary<string, Container> Containers, HashSet<string> Tags, HashSet<string> ImageIds);

    /// <summary>Lists and inspects everything; <paramref name="violations"/> collects what is inconsistent (or the read throws when null).</summary>
    private static async Task<State> ReadStateAsync(HttpClient client, List<string>? violations = null)
    {
        void Fail(string what)
        {
            if (violations is null) throw new InvalidOperationException(what);
            violations.Add(what);
        }
        var containers = new Dictionary<string, Container>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonElement list = JsonDocument.Parse(await client.GetStringAsync("/containers/json?all=1")).RootElement;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string id = item.GetProperty("Id").GetString()!;
            string listed = item.GetProperty("Names")[0].GetString()!;
            using HttpResponseMessage inspect = await client.GetAsync($"/containers/{id}/json");
            string body = await inspect.Content.ReadAsStringAsync();
            if (!inspect.IsSuccessStatusCode)
            {
                Fail($"container {id} ({listed}) is listed but inspect says {(int)inspect.StatusCode} {body}");
                continue;
            }
            JsonElement c = JsonDocument.Parse(body).RootElement;
            JsonElement state = c.GetProperty("State");
            var container = new Container(id, c.GetProperty("Name").GetString()!, state.GetProperty("Status").GetString()!,
                state.GetProperty("Running").GetBoolean(), state.GetProperty("StartedAt").GetString()!);
            if (container.Name != listed) Fail($"container {id} is listed as {listed} but inspects as {container.Name}");
            if (c.GetProperty("Image").GetString() is not { Length: > 0 }) Fail($"container {id} has no image");
            if (!names.TryAdd(container.Name, id)) Fail($"name {container.Name} is held by both {names[container.Name]} and {id}");
            containers[id] = container;
        }
        foreach (var (name, id) in names)
        {
            using HttpResponseMessage byName = await client.GetAsync($"/containers/{name.TrimStart('/')}/json");
            string body = await byName.Content.ReadAsStringAsync();
            if (!byName.IsSuccessStatusCode) Fail($"name {name} of {id} does not resolve: {(int)byName.StatusCode} {body}");
            else if (JsonDocument.Parse(body).RootElement.GetProperty("Id").GetString() != id) Fail($"name {name} resolves to another container than {id}");
        }
        var tags = new HashSet<string>(StringComparer.Ordinal);
        var imageIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonElement image in JsonDocument.Parse(await client.GetStringAsync("/images/json")).RootElement.EnumerateArray())
        {
            imageIds.Add(image.GetProperty("Id").GetString()!);
            if (image.TryGetProperty("RepoTags", out JsonElement repoTags) && repoTags.ValueKind == JsonValueKind.Array)
                foreach (JsonElement t in repoTags.EnumerateArray()) tags.Add(t.GetString()!);
        }
        return new State(containers, tags, imageIds);
    }

    /// <summary>The data root and the mounts agree with what the restarted daemon reports.</summary>
    private static async Task CheckDiskAsync(HttpClient client, TempDirectory dir, string data, List<string> violations)
    {
        State state = await ReadStateAsync(client);
        var ids = state.Containers.Keys.ToHashSet(StringComparer.Ordinal);

        string records = Path.Combine(data, "containers");
        var dirs = Directory.EnumerateDirectories(records).Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        foreach (string d in dirs!)
        {
            if (!ids.Contains(d)) violations.Add($"container directory {d} remains without a container");
            else if (!File.Exists(Path.Combine(records, d, "config.v2.json"))) violations.Add($"container directory {d} has no record");
        }
        foreach (string id in ids.Where(i => !dirs.Contains(i))) violations.Add($"container {id} has no directory");
        foreach (string f in Directory.EnumerateFiles(data, "*.tmp", SearchOption.AllDirectories).Where(f => !f.Contains("/snapshots/snapshots/", StringComparison.Ordinal)))
            violations.Add($"temp file {f} remains");

        List<string> keys = SnapshotKeys(data);
        foreach (string key in keys.Where(k => k.StartsWith("container-", StringComparison.Ordinal)))
            if (!ids.Contains(key["container-".Length..])) violations.Add($"snapshot {key} remains without a container");
        foreach (string id in ids.Where(i => !keys.Contains("container-" + i)))
            violations.Add($"container {id} ({state.Containers[id].Name}, {state.Containers[id].Status}) has no snapshot container-{id}: it cannot start");
        HashSet<string> known = SnapshotDirectoryIds(data);
        foreach (string d in Directory.EnumerateDirectories(Path.Combine(data, "snapshots", "snapshots")).Select(Path.GetFileName).OfType<string>())
            if (!known.Contains(d)) violations.Add($"snapshot directory {d} is named by no snapshot");

        // Mounts and runtime state: only those of running containers. A `true` container that the
        // daemon found running may be ending right now, so give its exit a moment to be recorded.
        string runtimeRoot = dir.Combine("exec", "runtime", "berth-runtime");
        List<string> strays = [];
        for (int attempt = 0; attempt < 10; attempt++)
        {
            state = await ReadStateAsync(client);
            var running = state.Containers.Values.Where(c => c.Running).Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
            strays = [];
            foreach (string mount in MountsUnder(dir.Path))
            {
                string? id = RootfsOwner(dir, mount);
                if (id is null || !running.Contains(id))
                    strays.Add($"mount {mount} remains, but {(id is null ? "it is no container's rootfs" : state.Containers.TryGetValue(id, out Container? c) ? $"container {id} is {c.Status}" : $"container {id} does not exist")}");
            }
            if (Directory.Exists(runtimeRoot))
                foreach (string id in RuntimeStateDirectories(runtimeRoot).Select(Path.GetFileName).OfType<string>())
                    if (!running.Contains(id))
                        strays.Add($"runtime state {id} remains, but {(state.Containers.TryGetValue(id, out Container? c) ? $"container {id} is {c.Status}" : $"container {id} does not exist")}");
            if (strays.Count == 0) break;
            await Task.Delay(100);
        }
        violations.AddRange(strays);
    }

    private static string? RootfsOwner(TempDirectory dir, string mount)
    {
        string prefix = dir.Combine("exec", "containers") + "/";
        if (!mount.StartsWith(prefix, StringComparison.Ordinal) || !mount.EndsWith("/rootfs", StringComparison.Ordinal)) return null;
        string id = mount[prefix.Length..^"/rootfs".Length];
        return id.Contains('/') ? null : id;
    }

    private static List<string> SnapshotKeys(string data)
    {
        string path = Path.Combine(data, "snapshots", "metadata.json");
        if (!File.Exists(path)) return [];
        return JsonDocument.Parse(File.ReadAllBytes(path)).RootElement.GetProperty("snapshots").EnumerateObject().Select(p => p.Name).ToList();
    }

    private static HashSet<string> SnapshotDirectoryIds(string data)
    {
        string path = Path.Combine(data, "snapshots", "metadata.json");
        if (!File.Exists(path)) return [];
        return JsonDocument.Parse(File.ReadAllBytes(path)).RootElement.GetProperty("snapshots").EnumerateObject()
            .Select(p => p.Value.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture)).ToHashSet(StringComparer.Ordinal);
    }

    private static List<string> MountsUnder(string root)
        => File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(t => t.StartsWith(root + "/", StringComparison.Ordinal)).ToList();

    // ---- the daemon ----------------------------------------------------------------------------

    /// <summary>berthd as a process of its own, so that it can be killed with SIGKILL.</summary>
    private sealed class Daemon(TempDirectory dir, string socket)
    {
        private Process? _process;
        private readonly ConcurrentQueue<string> _stderr = new();

        public string Stderr => string.Join("\n", _stderr.TakeLast(40));

        public async Task StartAsync()
        {
            _stderr.Clear();
            var start = new ProcessStartInfo(Berthd) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "--data-root", dir.Combine("data"), "--exec-root", dir.Combine("exec"), "-H", "unix://" + socket, "--log-level", "warn", "--bridge", "none" })
                start.ArgumentList.Add(a);
            Process p = Process.Start(start)!;
            _process = p;
            p.OutputDataReceived += (_, e) => { if (e.Data is not null) _stderr.Enqueue(e.Data); };
            p.ErrorDataReceived += (_, e) => { if (e.Data is not null) _stderr.Enqueue(e.Data); };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline && !p.HasExited)
            {
                try
                {
                    using HttpClient client = DaemonScope.CreateClient(socket);
                    if (await client.GetStringAsync("/_ping") == "OK") return;
                }
                catch (HttpRequestException)
                {
                }
                await Task.Delay(20);
            }
            string why = p.HasExited ? $"it exited with {p.ExitCode}" : "it did not answer /_ping within 20 s";
            Stop();
            throw new InvalidOperationException($"berthd did not start: {why}");
        }

        /// <summary>SIGKILL: no shutdown code runs.</summary>
        public async Task KillAsync()
        {
            Process p = _process!;
            p.Kill();
            await p.WaitForExitAsync();
            p.Dispose();
            _process = null;
        }

        public void Stop()
        {
            if (_process is null) return;
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
            _process.Dispose();
            _process = null;
        }
    }
}
