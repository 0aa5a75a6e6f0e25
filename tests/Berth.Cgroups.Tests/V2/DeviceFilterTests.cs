using Berth.Cgroups.Tests.Support;
using Berth.Cgroups.V2;

namespace Berth.Cgroups.Tests.V2;

/// <summary>The eBPF device program generator, checked instruction by instruction; and the program for real on a cgroup2 tree.</summary>
public class DeviceFilterTests
{
    private static readonly BpfInstruction[] Prologue =
    [
        new(0x61, 2, 1, 0, 0), new(0x54, 2, 0, 0, 0xFFFF), new(0x61, 3, 1, 0, 0),
        new(0x74, 3, 0, 0, 16), new(0x61, 4, 1, 4, 0), new(0x61, 5, 1, 8, 0),
    ];

    private static BpfInstruction Ret(int v) => new(0xb4, 0, 0, 0, v);
    private static readonly BpfInstruction Exit = new(0x95, 0, 0, 0, 0);

    [Fact]
    public void NoRules_DeniesEverything()
    {
        Assert.Equal([.. Prologue, Ret(0), Exit], DeviceFilter.Compile([]));
    }

    [Fact]
    public void Rules_AreTestedLastFirst_EachCheckJumpsToTheNextRule()
    {
        var program = DeviceFilter.Compile(
        [
            new DeviceRule(false),                                  // deny all
            new DeviceRule(true, 'c', 1, 3, "rwm"),                 // /dev/null
            new DeviceRule(true, 'b', 8, null, "r"),                // any sd* read
        ]);

        Assert.Equal(
        [
            .. Prologue,
            // b 8:* r: type, access subset (3 insns), major; verdict
            new(0x55, 2, 0, 6, 1),
            new(0xbc, 1, 3, 0, 0), new(0x54, 1, 0, 0, 2), new(0x5d, 1, 3, 3, 0),
            new(0x55, 4, 0, 2, 8),
            Ret(1), Exit,
            // c 1:3 rwm: type, major, minor (no access check for rwm)
            new(0x55, 2, 0, 4, 2), new(0x55, 4, 0, 3, 1), new(0x55, 5, 0, 2, 3),
            Ret(1), Exit,
            // the leading "deny all" is the default
            Ret(0), Exit,
        ], program);
    }

    [Fact]
    public void AllowAll_ThenDeny_DefaultsToAllow_AndDropsUnreachableRules()
    {
        var program = DeviceFilter.Compile([new DeviceRule(true, 'c', 5, 1), new DeviceRule(true), new DeviceRule(false, 'c', 1, 3, "w")]);
        Assert.Equal(
        [
            .. Prologue,
            new(0x55, 2, 0, 7, 2),
            new(0xbc, 1, 3, 0, 0), new(0x54, 1, 0, 0, 4), new(0x5d, 1, 3, 4, 0),
            new(0x55, 4, 0, 3, 1), new(0x55, 5, 0, 2, 3),
            Ret(0), Exit,
            Ret(1), Exit,
        ], program);
    }

    [Fact]
    public void Encode_IsStructBpfInsn()
    {
        var bytes = DeviceFilter.Encode([new BpfInstruction(0x61, 4, 1, 4, 0), new BpfInstruction(0x55, 2, 0, -2, 0x12345678)]);
        Assert.Equal(new byte[] { 0x61, 0x14, 4, 0, 0, 0, 0, 0, 0x55, 0x02, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12 }, bytes);
    }

    [Fact]
    public void V1RuleStrings_UseStarForWildcards()
    {
        Assert.Equal("c 1:3 rwm", new DeviceRule(true, 'c', 1, 3).ToV1Rule());
        Assert.Equal("b *:* r", new DeviceRule(true, 'b', -1, null, "r").ToV1Rule());
        Assert.Equal("a *:* rwm", new DeviceRule(false, Access: null).ToV1Rule());
    }

    [Fact]
    public void InvalidRules_AreRefusedNamingTheIndex()
    {
        var e = Assert.Throws<CgroupException>(() => new CgroupResources { Devices = [new DeviceRule(true), new DeviceRule(true, 'x')] }.Validate());
        Assert.Equal("devices[1]: type must be a, c or b, got 'x'", e.Message);
        e = Assert.Throws<CgroupException>(() => new CgroupResources { Devices = [new DeviceRule(true, 'c', 1, 3, "rx")] }.Validate());
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
    }

    /// <summary>
    /// Loads and attaches the program to a real cgroup2 group (the unified mount of a hybrid host
    /// accepts device programs even with v1 devices mounted: the kernel checks both), then a
    /// process in the group is refused /dev/null and still gets /dev/zero.
    /// </summary>
    [RealCgroup2TreeFact]
    public void RealProgram_DeniesDevNull_ForAProcessInTheGroup()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();
        var unified = manager.Paths[CgroupManager.UnifiedKey];
        var sh = scope.StartShell("read go; if cat /dev/null; then echo null-open; else echo null-denied; fi; if head -c 0 /dev/zero; then echo zero-open; else echo zero-denied; fi; read again; if cat /dev/null; then echo null-open; else echo null-denied; fi");
        manager.AddProcess(sh.Id);

        var controller = new DevicesController();
        controller.Apply(unified, new CgroupResources { Devices = [new DeviceRule(false), new DeviceRule(true, 'c', 1, 5, "rwm"), new DeviceRule(true, 'c', 136, null, "rw")] });
        sh.StandardInput.WriteLine("go");
        Assert.Equal("null-denied", sh.StandardOutput.ReadLine());
        Assert.Equal("zero-open", sh.StandardOutput.ReadLine());

        // An update replaces the program (old one detached): /dev/null allowed now.
        controller.Apply(unified, new CgroupResources { Devices = [new DeviceRule(true, 'c', 1, 3, "r"), new DeviceRule(true, 'c', 1, 5)] });
        sh.StandardInput.WriteLine("again");
        Assert.Equal("null-open", sh.StandardOutput.ReadLine());
    }
}
