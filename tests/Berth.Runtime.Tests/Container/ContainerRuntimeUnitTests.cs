using Berth.Runtime.Container;

namespace Berth.Runtime.Tests.Container;

public sealed class ContainerRuntimeUnitTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-store-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("KILL", 9)]
    [InlineData("SIGKILL", 9)]
    [InlineData("sigterm", 15)]
    [InlineData("9", 9)]
    [InlineData("USR1", 10)]
    [InlineData("SIGRTMIN+2", 36)]
    [InlineData("RTMAX-1", 63)]
    [InlineData("64", 64)]
    public void Signals_parse_by_name_and_number(string text, int expected) => Assert.Equal(expected, ContainerRuntime.ParseSignal(text));

    [Theory]
    [InlineData("0")]
    [InlineData("65")]
    [InlineData("SIGBOGUS")]
    [InlineData("")]
    public void Unknown_signals_are_refused(string text)
    {
        var e = Assert.Throws<RuntimeException>(() => ContainerRuntime.ParseSignal(text));
        Assert.Contains("signal", e.Message);
    }

    [Theory]
    [InlineData("ok-id_1.2+3", true)]
    [InlineData("..", false)]
    [InlineData(".", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    [InlineData("with space", false)]
    public void Ids_follow_runc_rules(string id, bool valid)
    {
        if (valid) Assert.Equal(id, StateStore.ValidateId(id));
        else Assert.Throws<RuntimeException>(() => StateStore.ValidateId(id));
    }

    [Fact]
    public void A_duplicate_id_is_refused_by_the_store()
    {
        var store = new StateStore(_dir);
        store.CreateDirectory("dup");
        var e = Assert.Throws<RuntimeException>(() => store.CreateDirectory("dup"));
        Assert.Contains("already exists", e.Message);
    }

    [Fact]
    public void Process_info_reads_state_and_start_time_and_tells_a_recycled_pid()
    {
        var self = ProcessInfo.Read(Environment.ProcessId);
        Assert.NotNull(self);
        Assert.True(ProcessInfo.IsAlive(Environment.ProcessId, self.Value.StartTime));
        Assert.False(ProcessInfo.IsAlive(Environment.ProcessId, self.Value.StartTime + 1));
        Assert.Null(ProcessInfo.Read(int.MaxValue));
    }

    [Fact]
    public void A_record_survives_the_store_with_every_field()
    {
        var store = new StateStore(_dir);
        store.CreateDirectory("rec");
        var record = new ContainerRecord
        {
            Id = "rec", InitPid = 4242, InitStartTime = ulong.MaxValue, Bundle = "/b \"q\"", Rootfs = "/b/rootfs",
            Created = new DateTimeOffset(2026, 12, 5, 1, 2, 3, 456, TimeSpan.Zero), Owner = "root",
            CgroupPaths = new() { ["memory"] = "/sys/fs/cgroup/memory/x", ["pids"] = "/sys/fs/cgroup/pids/x" },
            Annotations = new() { ["a.b"] = "c" },
            Hooks = new Berth.Oci.Hooks
            {
                Poststop = [new Berth.Oci.Hook { Path = "/bin/true", Args = ["true", "x"], Env = ["A=1"], Timeout = 5 }],
                CreateRuntime = [new Berth.Oci.Hook { Path = "/bin/false" }],
            },
            Creating = true, CgroupParentToPrune = "/berth",
        };

        store.Save(record);
        var read = store.Load("rec");

        Assert.Equal(System.Text.Encoding.UTF8.GetString(ContainerRecordJson.Write(record)), System.Text.Encoding.UTF8.GetString(ContainerRecordJson.Write(read)));
        Assert.Equal((4242, ulong.MaxValue, "/b \"q\"", record.Created, true, "/berth"), (read.InitPid, read.InitStartTime, read.Bundle, read.Created, read.Creating, read.CgroupParentToPrune));
        Assert.Equal(record.CgroupPaths, read.CgroupPaths);
        Assert.Equal("c", read.Annotations!["a.b"]);
        Assert.Equal((5, "A=1", "x"), (read.Hooks!.Poststop![0].Timeout, read.Hooks.Poststop[0].Env![0], read.Hooks.Poststop[0].Args![1]));
        Assert.Equal("/bin/false", read.Hooks.CreateRuntime![0].Path);
        Assert.Null(read.Hooks.Prestart);
    }

    [Fact]
    public void A_state_file_written_by_earlier_versions_still_reads()
    {
        // What the source-generated serializer wrote before state.json was written by hand.
        var dir = Path.Combine(_dir, "old");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, StateStore.StateFile), """
            {"id":"old","initPid":77,"initStartTime":123,"bundle":"/b","rootfs":"/b/rootfs","created":"2026-12-04T20:00:00.1234567+00:00","owner":"",
             "cgroupPaths":{"cpu":"/sys/fs/cgroup/cpu/old"},"hooks":{"poststop":[{"path":"/p","args":["p"]}]},"creating":false}
            """);

        var read = new StateStore(_dir).Load("old");

        Assert.Equal((77, 123ul, "/b/rootfs"), (read.InitPid, read.InitStartTime, read.Rootfs));
        Assert.Equal(new DateTimeOffset(2026, 12, 4, 20, 0, 0, TimeSpan.Zero).AddTicks(1234567), read.Created);
        Assert.Equal("/p", read.Hooks!.Poststop![0].Path);
        Assert.Null(read.Annotations);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"id\":\"x\",")]
    [InlineData("{\"id\":\"x\",\"initPid\":\"7\"}")]
    [InlineData("[]")]
    public void A_corrupt_state_file_is_named(string content)
    {
        var dir = Path.Combine(_dir, "bad");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, StateStore.StateFile), content);

        var e = Assert.Throws<RuntimeException>(() => new StateStore(_dir).Load("bad"));

        Assert.Contains("corrupt state", e.Message);
        Assert.Contains(Path.Combine(dir, StateStore.StateFile), e.Message);
    }
}
