using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests;

public class BlockIoSupportTests
{
    [Fact]
    public void V1_with_throttles_and_no_weight_files_offers_throttles_only()
    {
        // This VM's blkio: mq-deadline has no blkio.weight, the throttle files are there.
        using var tree = FakeCgroupTree.V1("blkio", "memory");
        foreach (string f in new[] { "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device" })
            tree.Write("blkio/" + f, "");
        Assert.Equal(new BlockIoSupport(Weight: false, Throttle: true), BlockIoSupport.Probe(new CgroupLayout(tree.Root)));
    }

    [Theory]
    [InlineData("blkio.weight")]
    [InlineData("blkio.bfq.weight")]
    public void V1_weight_comes_from_CFQ_or_BFQ(string file)
    {
        using var tree = FakeCgroupTree.V1("blkio");
        tree.Write("blkio/" + file, "100");
        Assert.Equal(new BlockIoSupport(Weight: true, Throttle: false), BlockIoSupport.Probe(new CgroupLayout(tree.Root)));
    }

    [Fact]
    public void V1_without_a_blkio_hierarchy_offers_nothing()
    {
        using var tree = FakeCgroupTree.V1("memory", "pids");
        Assert.Equal(new BlockIoSupport(false, false), BlockIoSupport.Probe(new CgroupLayout(tree.Root)));
    }

    [Fact]
    public void V2_offers_both_with_the_io_controller_and_neither_without()
    {
        using (var withIo = FakeCgroupTree.V2("cpu", "io", "memory", "pids"))
            Assert.Equal(new BlockIoSupport(true, true), BlockIoSupport.Probe(new CgroupLayout(withIo.Root)));
        using (var withoutIo = FakeCgroupTree.V2("cpu", "memory", "pids"))
            Assert.Equal(new BlockIoSupport(false, false), BlockIoSupport.Probe(new CgroupLayout(withoutIo.Root)));
    }
}
