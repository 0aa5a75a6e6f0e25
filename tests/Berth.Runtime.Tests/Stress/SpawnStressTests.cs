using System.Diagnostics;
using Berth.Runtime.Container;
using Xunit;
using Xunit.Abstractions;

namespace Berth.Runtime.Tests.Stress;

/// <summary>
/// The rule the runtime stands on: the child between clone and execve runs no managed
/// code, so no GC or runtime lock held by another thread at the moment of the clone can
/// hang it. This creates, starts, waits for and deletes real containers from this
/// (multi-threaded, JIT-compiled) test process while other threads allocate hard, and
/// fails on the first container that does not finish in time.
/// BERTH_STRESS_COUNT sets the number (CI runs a short version; bench/stress.sh runs 2,000+).
/// </summary>
[Trait("Category", "Stress")]
[Collection(SpawnStressCollection.Name)]
public sealed class SpawnStressTests(ITestOutputHelper output) : IDisposable
{
    readonly string _work = Directory.CreateTempSubdirectory("berth-stress-").FullName;
    readonly string _cgroupParent = $"/berth-stress-{Guid.NewGuid():N}";

    [Fact]
    public async Task ContainersNeverHangWhileOtherThreadsAllocate()
    {
        Assert.True(Berth.Runtime.Native.LibC.getuid() == 0, "the runtime tests create real containers: run them as root");
        var count = int.TryParse(Environment.GetEnvironmentVariable("BERTH_STRESS_COUNT"), out var n) ? n : 200;
        var bundle = Path.Combine(_work, "bundle");
        MakeBundle(bundle);
        var runtime = new ContainerRuntime(Path.Combine(_work, "state")) { CgroupParent = _cgroupParent };

        using var stop = new CancellationTokenSource();
        var allocators = Enumerable.Range(0, 3).Select(_ => Task.Factory.StartNew(() => Allocate(stop.Token), TaskCreationOptions.LongRunning)).ToList();
        var hangs = 0;
        var failures = new List<string>();
        var timings = new List<double>();
        var spawners = Enumerable.Range(0, 2).Select(worker => Task.Factory.StartNew(() =>
        {
            for (var i = worker; i < count; i += 2)
            {
                var id = $"stress-{worker}-{i}";
                var clock = Stopwatch.StartNew();
                try
                {
                    var record = runtime.Create(id, new CreateOptions { Bundle = bundle, SetupTimeout = TimeSpan.FromSeconds(20) });
                    runtime.Start(id);
                    var code = ContainerRuntime.WaitForExit(record.InitPid, TimeSpan.FromSeconds(20));
                    if (code is null) { Interlocked.Increment(ref hangs); lock (failures) failures.Add($"{id}: did not exit within 20 s"); }
                    else if (code != 0) lock (failures) failures.Add($"{id}: exit code {code}");
                }
                catch (RuntimeException e) when (e.Message.Contains("within"))
                {
                    Interlocked.Increment(ref hangs);
                    lock (failures) failures.Add($"{id}: {e.Message}");
                }
                catch (RuntimeException e) { lock (failures) failures.Add($"{id}: {e.Message}"); }
                finally
                {
                    try { runtime.Delete(id, force: true); } catch (RuntimeException) { }
                }
                lock (timings) timings.Add(clock.Elapsed.TotalMilliseconds);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(spawners);
        stop.Cancel();
        await Task.WhenAll(allocators);

        timings.Sort();
        output.WriteLine($"{count} containers, {hangs} hangs, {failures.Count} failures, median {timings[timings.Count / 2]:0.0} ms, " +
                         $"p99 {timings[(int)(timings.Count * 0.99)]:0.0} ms, gen0 collections {GC.CollectionCount(0)}");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.Equal(0, hangs);
    }

    /// <summary>Garbage at full speed, so that collections (and their suspensions) overlap the clones.</summary>
    static void Allocate(CancellationToken stop)
    {
        var keep = new object[1024];
        var i = 0;
        while (!stop.IsCancellationRequested)
        {
            keep[i++ % keep.Length] = new byte[(i % 64) * 128];
            if (i % 100_000 == 0) GC.Collect(0, GCCollectionMode.Forced, blocking: false);
        }
    }

    static void MakeBundle(string bundle)
    {
        var repo = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(repo, "Berth.slnx"))) repo = Path.GetDirectoryName(repo) ?? throw new InvalidOperationException("repository root not found");
        var script = Process.Start(new ProcessStartInfo(Path.Combine(repo, "scripts", "make-busybox-bundle.sh"), [bundle, "/bin/true"]) { RedirectStandardError = true })!;
        var error = script.StandardError.ReadToEnd();
        script.WaitForExit();
        Assert.True(script.ExitCode == 0, $"make-busybox-bundle.sh failed: {error}");
    }

    public void Dispose()
    {
        Directory.Delete(_work, recursive: true);
        Berth.Cgroups.CgroupManager.Create(Berth.Cgroups.CgroupLayout.Detect(), _cgroupParent).Destroy();
    }
}

/// <summary>
/// The stress test saturates both cores of a CI machine: it runs on its own (xUnit runs a
/// non-parallel collection after the parallel ones), so it neither starves the other classes'
/// timing-sensitive tests nor is starved by them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SpawnStressCollection
{
    public const string Name = "spawn-stress";
}
