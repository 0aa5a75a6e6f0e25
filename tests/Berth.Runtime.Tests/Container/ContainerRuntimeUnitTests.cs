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
}
