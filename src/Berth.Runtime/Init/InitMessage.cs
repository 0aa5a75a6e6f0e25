namespace Berth.Runtime.Init;

/// <summary>
/// The records the child writes to the report socket (16 bytes: kind, op index, value),
/// mirrored by struct berth_report in native/executor/berth_exec.c.
/// </summary>
public enum InitMessage
{
    /// <summary>An op failed: value is the errno. Written by the executor itself.</summary>
    Failure = 1,
    /// <summary>The child waits for the parent to write id maps, join the cgroup, set oom_score_adj.</summary>
    ParentSetup = 2,
    /// <summary>The intermediate process forked the container init: value is its pid.</summary>
    InitPid = 3,
    /// <summary>The mounts are done, pivot_root is next: the parent runs createRuntime/createContainer hooks.</summary>
    CreateHooks = 4,
    /// <summary>The container is set up and waits for start.</summary>
    Ready = 5,
}
