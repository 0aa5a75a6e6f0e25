using System.Text;
using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime;
using Berth.Runtime.Container;

namespace Berth.Daemon.Containers;

/// <summary>
/// start, kill, pause, resume and delete of containers run by the berth-runtime installed next
/// to berthd, done inside berthd with the library code the berth-runtime CLI runs, instead of
/// a process start each (a NativeAOT start costs about 4 ms, and `berth run --rm` needs a start
/// and a delete). The state under <c>--root</c> is the CLI's, so both can act on the same
/// container. Operations that make processes (create, exec) stay CLI invocations from the
/// monitor: a container's init must be the monitor's child, and no managed code may run in a
/// child forked from berthd. Any other runtime (runc, crun, an added one) is always a process.
/// </summary>
internal sealed class InProcessRuntime(string berthRuntimePath)
{
    /// <summary>The berth-runtime binary whose operations this stands in for.</summary>
    public string BerthRuntimePath { get; } = Path.GetFullPath(berthRuntimePath);

    /// <summary>
    /// Runs the runtime command in-process when it can, with the CLI's results (exit code 1 and
    /// "berth-runtime: message" on stderr on failure); null when the command needs the binary.
    /// </summary>
    public Task<(int Code, string Stdout, string Stderr)>? TryRun(string runtime, IReadOnlyList<string> globals, IReadOnlyList<string> args)
    {
        if (!string.Equals(Path.GetFullPath(runtime), BerthRuntimePath, StringComparison.Ordinal)) return null;
        if (globals is not ["--root", string root]) return null;
        Action<ContainerRuntime>? operation = args switch
        {
            ["start", string id] => r => r.Start(id),
            ["delete", "--force", string id] => r => r.Delete(id, force: true),
            ["delete", string id] => r => r.Delete(id),
            ["kill", string id, string signal] => r => r.Kill(id, ContainerRuntime.ParseSignal(signal)),
            ["pause", string id] => r => r.Pause(id),
            ["resume", string id] => r => r.Resume(id),
            _ => null,
        };
        if (operation is null) return null;
        // Off the caller's thread: delete --force waits for the container's processes to die.
        return Task.Run(() => Run(root, operation));
    }

    private static (int Code, string Stdout, string Stderr) Run(string root, Action<ContainerRuntime> operation)
    {
        var stderr = new StringBuilder();
        var runtime = new ContainerRuntime(root) { Warn = message => stderr.AppendLine(message) };
        try
        {
            operation(runtime);
            return (0, "", stderr.ToString());
        }
        catch (Exception e) when (e is RuntimeException or SpecException or CgroupException or IOException or UnauthorizedAccessException)
        {
            stderr.Append("berth-runtime: ").AppendLine(e.Message);
            return (1, "", stderr.ToString());
        }
    }
}
