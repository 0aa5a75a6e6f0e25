namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth volume …</c> and <c>run -v / --mount</c> end to end: the published binary against a
/// daemon of its own. BerthCli.Dispose removes the containers, detaches mounts and removes the
/// daemon's directory (volumes included), even when an assertion failed.
/// </summary>
public sealed class VolumeTests
{
    [Fact]
    public void VolumeCreateLsInspectRunRmPrune()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "volumes"), "busybox:latest");

        Assert.Equal("data\n", cli.Ok("volume", "create", "--label", "team=a", "data"));
        Assert.Equal("other\n", cli.Ok("volume", "create", "--name", "other", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m"));
        Assert.Equal("data\nother\n", cli.Ok("volume", "ls", "-q"));
        Assert.Equal("data a\nother \n", cli.Ok("volume", "ls", "--format", "{{.Name}} {{.Label \"team\"}}"));
        string table = cli.Ok("volume", "ls");
        Assert.Matches(@"^DRIVER\s+VOLUME NAME\nlocal\s+data\nlocal\s+other\n$", table);
        Assert.Equal("data\n", cli.Ok("volume", "ls", "-q", "-f", "label=team=a"));
        Assert.Equal("data local a\n", cli.Ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.team}}", "data"));
        Assert.Contains("\"Mountpoint\":", cli.Ok("volume", "inspect", "data"));
        CliResult missing = cli.Run("volume", "inspect", "nosuch");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no such volume", missing.Stderr);

        cli.Ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo saved > /data/f");
        Assert.Equal("saved\n", cli.Ok("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,ro", "busybox", "cat", "/mnt/f"));
        CliResult readOnly = cli.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,readonly", "busybox", "touch", "/mnt/g");
        Assert.NotEqual(0, readOnly.ExitCode);
        Assert.Contains("tmpfs /t tmpfs", cli.Ok("run", "--rm", "-v", "other:/t", "busybox", "busybox", "grep", " /t ", "/proc/mounts"));
        CliResult badMount = cli.Run("run", "--rm", "--mount", "type=volume,dst=/x,bogus=1", "busybox", "true");
        Assert.Equal(125, badMount.ExitCode);

        cli.Ok("create", "--name", "holder", "-v", "data:/data", "busybox", "true");
        CliResult inUse = cli.Run("volume", "rm", "data");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains("volume is in use", inUse.Stderr);
        cli.Ok("rm", "holder");
        Assert.Equal("data\n", cli.Ok("volume", "rm", "data"));
        Assert.Equal("gone\n", cli.Ok("volume", "rm", "-f", "gone")); // -f: a missing volume is no error
        Assert.Equal(1, cli.Run("volume", "rm", "gone").ExitCode);

        // An anonymous volume (-v /path) left by a plain rm; prune takes it, -a takes the named ones too.
        cli.Ok("create", "--name", "anon", "-v", "/cache", "busybox", "true");
        cli.Ok("rm", "anon");
        Assert.Equal(2, cli.Ok("volume", "ls", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        string pruned = cli.Ok("volume", "prune", "-f");
        Assert.StartsWith("Deleted Volumes:\n", pruned);
        Assert.Contains("Total reclaimed space:", pruned);
        Assert.Equal("other\n", cli.Ok("volume", "ls", "-q"));
        Assert.Contains("other", cli.Ok("volume", "prune", "-f", "-a"));
        Assert.Equal("", cli.Ok("volume", "ls", "-q"));
    }

    /// <summary>
    /// <c>--mount …,volume-subpath=</c>: only that part of the volume, read-only with ro; an absolute
    /// subpath is refused at create, a missing one at start, with dockerd's messages.
    /// </summary>
    [Fact]
    public void MountVolumeSubpath()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "subpath"), "busybox:latest");
        cli.Ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "mkdir -p /data/sub/dir && echo in > /data/sub/dir/f && echo out > /data/top");

        Assert.Equal("f\nin\n", cli.Ok("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=sub/dir", "busybox", "sh", "-c", "ls -A /mnt; cat /mnt/f"));
        CliResult readOnly = cli.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=sub,ro", "busybox", "sh", "-c", "echo x > /mnt/g");
        Assert.NotEqual(0, readOnly.ExitCode);
        Assert.Contains("Read-only file system", readOnly.Stderr);

        string id = cli.Ok("create", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=sub", "busybox", "true").Trim();
        Assert.Equal("sub\n", cli.Ok("inspect", "-f", "{{(index .HostConfig.Mounts 0).VolumeOptions.Subpath}}", id));
        cli.Ok("rm", id);

        CliResult absolute = cli.Run("create", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=/etc", "busybox", "true");
        Assert.Equal(125, absolute.ExitCode);
        Assert.Contains("subpath must be a relative path within the volume", absolute.Stderr);
        CliResult missing = cli.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=nope", "busybox", "true");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("cannot access path ", missing.Stderr);
        Assert.Contains("/nope: no such file or directory", missing.Stderr);
        CliResult onBind = cli.Run("run", "--rm", "--mount", "type=bind,src=/tmp,dst=/mnt,volume-subpath=x", "busybox", "true");
        Assert.Equal(125, onBind.ExitCode);
    }

    /// <summary>
    /// --volumes-from: another container's volumes (named and anonymous) and binds, read-only with
    /// :ro, its own mounts winning; the lender's anonymous volume outlives the lender's rm -v while borrowed.
    /// </summary>
    [Fact]
    public void VolumesFromAnotherContainer()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "volumes-from"), "busybox:latest");
        string hostDir = Path.Combine(cli.Work, "shared");
        Directory.CreateDirectory(hostDir);
        File.WriteAllText(Path.Combine(hostDir, "h"), "from the host\n");
        cli.Ok("run", "--name", "lender", "-v", "named:/named", "-v", "/anon", "-v", hostDir + ":/host", "busybox", "sh", "-c", "echo n > /named/f; echo a > /anon/f");

        Assert.Equal("n\na\nfrom the host\n", cli.Ok("run", "--rm", "--volumes-from", "lender", "busybox", "cat", "/named/f", "/anon/f", "/host/h"));
        cli.Ok("run", "--rm", "--volumes-from", "lender", "busybox", "sh", "-c", "echo again >> /anon/f");
        CliResult readOnly = cli.Run("run", "--rm", "--volumes-from", "lender:ro", "busybox", "sh", "-c", "cat /anon/f; touch /anon/g");
        Assert.NotEqual(0, readOnly.ExitCode);
        Assert.Equal("a\nagain\n", readOnly.Stdout);
        Assert.Contains("Read-only file system", readOnly.Stderr);
        // Its own mount at the same place wins over the lender's.
        Assert.Equal("mine\n", cli.Ok("run", "--rm", "--volumes-from", "lender", "-v", "mine:/named", "busybox", "sh", "-c", "echo mine > /named/f; cat /named/f"));

        string id = cli.Ok("create", "--name", "borrower", "--volumes-from", "lender", "busybox", "true").Trim();
        Assert.Equal("[\"lender\"]\n", cli.Ok("inspect", "-f", "{{json .HostConfig.VolumesFrom}}", id));
        using (var mounts = System.Text.Json.JsonDocument.Parse(cli.Ok("inspect", "-f", "{{json .Mounts}}", id)))
            Assert.Equal(["/anon", "/host", "/named"], mounts.RootElement.EnumerateArray().Select(m => m.GetProperty("Destination").GetString()).Order(StringComparer.Ordinal));
        // The lender goes with -v; its anonymous volume stays, in use by the borrower, whose own
        // borrower (volumes-from chains) still sees it.
        cli.Ok("rm", "-v", "lender");
        Assert.Equal("a\nagain\n", cli.Ok("run", "--rm", "--volumes-from", "borrower", "busybox", "cat", "/anon/f"));

        CliResult missing = cli.Run("run", "--rm", "--volumes-from", "nosuch", "busybox", "true");
        Assert.Equal(125, missing.ExitCode);
        Assert.Contains("No such container: nosuch", missing.Stderr);
    }
}
