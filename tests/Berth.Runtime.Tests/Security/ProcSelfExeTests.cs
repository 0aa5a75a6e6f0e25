using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// CVE-2019-5736: a container process opened the runtime's binary through /proc/[runc pid]/exe
/// (or its own /proc/self/exe while runc was exec-ing into it) and wrote to it once runc exited,
/// replacing runc on the host. Berth's init execs the user's command directly and the runtime
/// process lives outside the container's pid namespace: nothing inside may reach the binary.
/// </summary>
public sealed class ProcSelfExeTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static readonly string[] AllCaps = HostCapabilities.All;

    /// <summary>
    /// Every /proc/*/exe a root container with every capability can see: none is the
    /// runtime binary (compared by device:inode, not by name), and the attack — writing to
    /// every exe it can open, through /proc/PID/exe and through an fd kept from it — leaves the
    /// runtime binary unchanged on the host.
    /// </summary>
    [IntegrationFact]
    public void No_proc_exe_inside_the_container_is_the_runtime_and_writing_them_leaves_it_unchanged()
    {
        var runtime = TestEnvironment.RuntimeBinary!;
        var before = SecurityHelpers.Sha256(runtime);
        var runtimeId = SecurityHelpers.DevIno(runtime);
        // The attack of CVE-2019-5736, as far as a shell can do it: open each exe (O_PATH is not
        // available to sh, so read-write and append), and try again from a second process once the
        // first opener has gone.
        var script = """
            for p in /proc/[0-9]*; do
              id=$(stat -L -c '%d:%i' $p/exe 2>/dev/null) && echo "exe $p $id $(readlink $p/exe)"
            done
            echo "self $(stat -L -c '%d:%i' /proc/self/exe) $(readlink /proc/self/exe)"
            for e in /proc/[0-9]*/exe /proc/self/exe; do
              (exec 3<>$e && echo "opened-rw $e") 2>/dev/null
              (echo '#!/bin/sh' >> $e && echo "appended $e") 2>/dev/null
            done
            true
            """;
        var bundle = _h.NewBundle().Script(script);
        bundle.Process.Capabilities = new LinuxCapabilities { Bounding = [.. AllCaps], Effective = [.. AllCaps], Permitted = [.. AllCaps] };
        var output = _h.Run(bundle).ShouldSucceed().Stdout;

        Assert.Contains("exe /proc/1 ", output);
        foreach (var line in output.Split('\n').Where(l => l.StartsWith("exe ", StringComparison.Ordinal) || l.StartsWith("self ", StringComparison.Ordinal)))
        {
            Assert.False(line.Contains($" {runtimeId} ", StringComparison.Ordinal), $"the runtime binary ({runtimeId}) is reachable inside the container: {line}\n{output}");
            Assert.DoesNotContain("berth-runtime", line);
        }
        // PID 1 is the user's command, exec'd by the init: the rootfs's busybox.
        var pid1 = output.Split('\n').First(l => l.StartsWith("exe /proc/1 ", StringComparison.Ordinal));
        Assert.Contains(SecurityHelpers.DevIno(Path.Combine(bundle.Rootfs, "bin/busybox")), pid1);
        Assert.Equal(before, SecurityHelpers.Sha256(runtime));
    }

    /// <summary>
    /// The same attack against a container that joins another one's pid namespace (`--pid
    /// container:&lt;id&gt;`, OCI namespaces[pid].path) — and, by the same mechanism, against `exec`:
    /// a process forked from the runtime that setns()es into the container is visible there, and
    /// until it execs, its /proc/PID/exe is the runtime binary. A created container's init waits on
    /// the exec fifo for as long as its owner likes, so the window is not a race but unbounded.
    /// Fails today (see docs/security.md, CVE-2019-5736): the fix is to run the child from a sealed
    /// memfd copy or a read-only bind of the binary, as runc does.
    /// </summary>
    [IntegrationFact]
    public void A_container_scanning_proc_during_start_never_sees_the_runtime_binary()
    {
        var runtime = TestEnvironment.RuntimeBinary!;
        var runtimeId = SecurityHelpers.DevIno(runtime);
        var before = SecurityHelpers.Sha256(runtime);
        // Container A keeps scanning its pid namespace; the host starts container B in the SAME pid
        // namespace (linux.namespaces[pid].path), so B's init is visible to A from its first instant.
        var scanner = _h.NewBundle().Writable().Script($$"""
            end=$(( $(date +%s) + 60 ))
            while [ $(date +%s) -lt $end ] && [ ! -e /tmp/stop ]; do
              for p in /proc/[0-9]*; do
                id=$(stat -L -c '%d:%i' $p/exe 2>/dev/null) || continue
                [ "$id" = "{{runtimeId}}" ] && { echo "FOUND $p $(readlink $p/exe)"; (echo x >> $p/exe) 2>/dev/null && echo "WROTE $p"; }
              done
            done
            echo scan-done
            """);
        // The strongest attacker: root with every capability (CAP_SYS_PTRACE lets it read the
        // /proc/PID/exe of a process holding more capabilities than itself).
        scanner.Process.Capabilities = new LinuxCapabilities { Bounding = [.. AllCaps], Effective = [.. AllCaps], Permitted = [.. AllCaps] };
        var scannerId = _h.NewId("scan");
        var created = _h.CreateAndStart(scannerId, scanner);
        var scannerPid = _h.State(scannerId).GetProperty("pid").GetInt32();

        for (var i = 0; i < 5; i++)
        {
            var joiner = _h.NewBundle("true");
            joiner.Linux.Namespaces = [.. joiner.Linux.Namespaces!.Where(n => n.Type != NamespaceType.Pid),
                new LinuxNamespace { Type = NamespaceType.Pid, Path = $"/proc/{scannerPid}/ns/pid" }];
            // The host's view while created: the init is still the executor (a runtime process).
            var id = _h.NewId("join");
            joiner.Save();
            _h.Runtime("create", "--bundle", joiner.Dir, id).ShouldSucceed();
            Thread.Sleep(300); // a created container may wait for start as long as its owner likes
            _h.Runtime("start", id).ShouldSucceed();
            _h.Runtime("delete", "--force", id);
        }
        File.WriteAllText(Path.Combine(scanner.Rootfs, "tmp/stop"), "");
        var output = RuntimeHarness.WaitForOutput(created, "scan-done", 20_000);
        Assert.False(output.Contains("FOUND", StringComparison.Ordinal),
            $"a process in the container reached the runtime binary {runtime} ({runtimeId}) through /proc/PID/exe of a joining container's init:\n{output}");
        Assert.Equal(before, SecurityHelpers.Sha256(runtime));
    }
}
