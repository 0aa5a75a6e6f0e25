namespace Berth.Cgroups.V1;

/// <summary>
/// cgroup v1 freezer: freezer.state FROZEN / THAWED. Freezing is asynchronous: the state reads
/// FREEZING until every task has stopped, and a task stuck in the kernel (vfork, D state) can
/// hold it there. As runc, the write is repeated while polling, and every 50 attempts the group
/// is thawed briefly to shake stuck tasks loose; a group still FREEZING after all attempts is
/// thawed again and reported, so a failed pause never leaves a half-frozen container.
/// </summary>
internal static class FreezerController
{
    internal const string State = "freezer.state";
    private const int Attempts = 1000;

    public static void Freeze(string path)
    {
        for (var i = 0; i < Attempts; i++)
        {
            if (i % 50 == 49)
            {
                CgroupFs.Write(path, State, "THAWED");
                Thread.Sleep(10);
            }
            CgroupFs.Write(path, State, "FROZEN");
            var state = CgroupFs.Read(path, State).Trim();
            if (state == "FROZEN")
            {
                return;
            }
            if (state != "FREEZING")
            {
                throw new CgroupException($"freeze {path}: unexpected {State} \"{state}\"", path: Path.Combine(path, State));
            }
            Thread.Sleep(i < 25 ? 1 : 10);
        }
        CgroupFs.Write(path, State, "THAWED");
        throw new CgroupException($"freeze {path}: tasks still FREEZING after {Attempts} attempts (thawed again)", path: Path.Combine(path, State));
    }

    public static void Thaw(string path) => CgroupFs.Write(path, State, "THAWED");

    public static FreezerState GetState(string path) =>
        (CgroupFs.TryRead(Path.Combine(path, State))?.Trim()) switch
        {
            "FROZEN" => FreezerState.Frozen,
            "FREEZING" => FreezerState.Freezing,
            "THAWED" => FreezerState.Thawed,
            _ => FreezerState.Undefined,
        };
}
