using Berth.Images.Engine;
using Berth.Oci;

namespace Berth.Images.Tests.Engine;

/// <summary><c>--device</c> paths and <c>--device-cgroup-rule</c> strings, read and refused as dockerd does.</summary>
public sealed class HostDevicesTests
{
    [Fact]
    public void A_device_node_keeps_its_numbers_and_mode_at_the_path_asked_for_and_a_symlink_to_one_is_followed()
    {
        LinuxDevice zero = Assert.Single(HostDevices.FromPath("/dev/zero", "/dev/myzero"));
        Assert.Equal(("/dev/myzero", "c", 1L, 5L), (zero.Path, zero.Type, zero.Major, zero.Minor));
        Assert.Equal(0x1B6u, zero.FileMode); // 0666

        using var dir = new TempDirectory("devices");
        string link = dir.Combine("zero-link");
        File.CreateSymbolicLink(link, "/dev/zero");
        Assert.Equal(5L, Assert.Single(HostDevices.FromPath(link, "/dev/z")).Minor);
    }

    [Fact]
    public void A_directory_gives_every_node_below_it_under_the_container_path()
    {
        using var dir = new TempDirectory("devices");
        Directory.CreateDirectory(dir.Combine("sub"));
        File.CreateSymbolicLink(dir.Combine("null"), "/dev/null");   // a link inside is not a node: skipped, as a walk does
        File.WriteAllText(dir.Combine("plain"), "not a device");
        Mknod(dir.Combine("sub", "zero"), 1, 5);
        Mknod(dir.Combine("full"), 1, 7);
        IReadOnlyList<LinuxDevice> devices = HostDevices.FromPath(dir.Path, "/dev/set/");
        Assert.Equal(["/dev/set/full", "/dev/set/sub/zero"], devices.Select(d => d.Path));
        Assert.Equal([7L, 5L], devices.Select(d => d.Minor!.Value));
    }

    [Fact]
    public void What_is_not_a_device_is_refused_with_dockerds_message()
    {
        using var dir = new TempDirectory("devices");
        File.WriteAllText(dir.Combine("plain"), "x");
        var e = Assert.Throws<ImagesException>(() => HostDevices.FromPath(dir.Combine("plain"), "/dev/x"));
        Assert.Equal($"error gathering device information while adding custom device \"{dir.Combine("plain")}\": not a device node", e.Message);
        e = Assert.Throws<ImagesException>(() => HostDevices.FromPath("/dev/no-such-device", "/dev/x"));
        Assert.Equal("error gathering device information while adding custom device \"/dev/no-such-device\": no such file or directory", e.Message);
        Assert.Throws<ImagesException>(() => HostDevices.FromPath("dev/zero", "/dev/x"));
        Assert.Throws<ImagesException>(() => HostDevices.FromPath("/dev/zero", "dev/x"));
    }

    [Theory]
    [InlineData("c 42:* rmw", "c", 42L, null, "rmw")]
    [InlineData("b 8:0 r", "b", 8L, 0L, "r")]
    [InlineData("a *:* m", "a", null, null, "m")]
    public void Cgroup_rules_become_allow_rules(string rule, string type, long? major, long? minor, string access)
    {
        LinuxDeviceCgroup r = HostDevices.ParseCgroupRule(rule);
        Assert.Equal((true, type, major, minor, access), (r.Allow, r.Type, r.Major, r.Minor, r.Access));
    }

    [Theory]
    [InlineData("x 1:2 r")]
    [InlineData("c 1:2")]
    [InlineData("c 1 r")]
    [InlineData("c 1:2 rx")]
    [InlineData("c 1:2 rr")]
    [InlineData("c -1:2 r")]
    [InlineData("c 1:2  r")]
    [InlineData("c 99999999999999999999:1 r")]
    public void Malformed_cgroup_rules_are_refused(string rule)
    {
        var e = Assert.Throws<ImagesException>(() => HostDevices.ParseCgroupRule(rule));
        Assert.Equal($"invalid device cgroup format '{rule}'", e.Message);
    }

    private static void Mknod(string path, int major, int minor)
    {
        var p = System.Diagnostics.Process.Start("mknod", [path, "c", major.ToString(System.Globalization.CultureInfo.InvariantCulture), minor.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
