namespace Berth.Cgroups.V2;

/// <summary>
/// cgroup v2 freezer: write 1 to cgroup.freeze, then wait for "frozen 1" in cgroup.events (the
/// kernel freezes asynchronously). Works in any non-root cgroup2 group, so a hybrid host
/// without a v1 freezer can use its controller-less cgroup2 tree.
/// </summary>
internal static class FreezerController
{
    internal const string Freeze = "cgroup.freeze";
    internal const string Events = "cgroup.events";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static void Set(string path, bool frozen)
    {
        CgroupFs.WriteRequired(path, Freeze, frozen ? "1" : "0", frozen ? "pause (cgroup.freeze)" : "resume (cgroup.freeze)");
        var deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
        var delay = 1;
        while (IsFrozen(path) != frozen)
        {
            if (Environment.TickCount64 > deadline)
            {
                if (frozen)
                {
                    CgroupFs.Write(path, Freeze, "0");
                }
                throw new CgroupException($"{(frozen ? "freeze" : "thaw")} {path}: {Events} did not report frozen {(frozen ? 1 : 0)} within {Timeout.TotalSeconds}s",
                    path: Path.Combine(path, Events));
            }
            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 50);
        }
    }

    public static FreezerState GetState(string path)
    {
        var requested = CgroupFs.TryRead(Path.Combine(path, Freeze))?.Trim();
        return requested switch
        {
            "0" => FreezerState.Thawed,
            "1" => IsFrozen(path) ? FreezerState.Frozen : FreezerState.Freezing,
            _ => FreezerState.Undefined,
        };
    }

    private static bool IsFrozen(string path) => CgroupFs.ReadFlatKeyed(path, Events).GetValueOrDefault("frozen") == 1;
}
