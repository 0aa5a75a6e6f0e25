using System.Text;
using Berth.Images.Engine;

namespace Berth.Images.Tests.Engine;

public sealed class UserResolverTests
{
    private const string Passwd = """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        alice:x:1000:1000:Alice:/home/alice:/bin/sh
        bob:x:1001:1001::/home/bob:/bin/sh
        123:x:4242:4242:numeric name:/n:/bin/sh

        """;

    private const string Group = """
        root:x:0:
        daemon:x:1:
        wheel:x:10:alice,root
        audio:x:29:alice
        alice:x:1000:
        bob:x:1001:
        staff:x:50:bob,alice
        """;

    private static ResolvedUser R(string? spec, string? passwd = Passwd, string? group = Group, IReadOnlyList<string>? extra = null)
        => UserResolver.Resolve(spec, passwd is null ? null : Encoding.UTF8.GetBytes(passwd), group is null ? null : Encoding.UTF8.GetBytes(group), extra);

    [Theory]
    // spec,        uid,  gid,  additional gids, name
    [InlineData("", 0u, 0u, "10", "root")]
    [InlineData(null, 0u, 0u, "10", "root")]
    [InlineData("root", 0u, 0u, "10", "root")]
    [InlineData("alice", 1000u, 1000u, "10,29,50", "alice")]
    [InlineData("1000", 1000u, 1000u, "10,29,50", "alice")]
    [InlineData("bob", 1001u, 1001u, "50", "bob")]
    [InlineData("alice:staff", 1000u, 50u, "", "alice")]       // a group given: no membership groups
    [InlineData("alice:29", 1000u, 29u, "", "alice")]
    [InlineData("alice:777", 1000u, 777u, "", "alice")]        // a numeric gid not in /etc/group is allowed
    [InlineData("1000:1001", 1000u, 1001u, "", "alice")]
    [InlineData("5555", 5555u, 0u, "", null)]                  // a numeric uid not in /etc/passwd is allowed, gid 0
    [InlineData("5555:6666", 5555u, 6666u, "", null)]
    [InlineData("5555:staff", 5555u, 50u, "", null)]
    [InlineData("123", 4242u, 4242u, "", "123")]                // a number matches by uid first: uid 123 is not in passwd…
    [InlineData(":wheel", 0u, 10u, "", "root")]                 // no user: root, with the group given
    public void Resolves_like_runc(string? spec, uint uid, uint gid, string sgids, string? name)
    {
        if (spec == "123")
        {
            // runc matches a numeric spec only by uid; uid 123 has no entry, so it is taken as is.
            ResolvedUser numeric = R(spec);
            Assert.Equal(123u, numeric.Uid);
            Assert.Equal(0u, numeric.Gid);
            Assert.Null(numeric.Name);
            return;
        }
        ResolvedUser u = R(spec);
        Assert.Equal(uid, u.Uid);
        Assert.Equal(gid, u.Gid);
        Assert.Equal(sgids, string.Join(',', u.AdditionalGids));
        Assert.Equal(name, u.Name);
    }

    [Fact]
    public void Home_comes_from_the_passwd_entry()
    {
        Assert.Equal("/home/alice", R("alice").Home);
        Assert.Equal("/", R("5555").Home);
    }

    [Theory]
    [InlineData("nobody", "unable to find user nobody")]
    [InlineData("alice:nogroup", "unable to find group nogroup")]
    [InlineData("-1", "out of range")]
    [InlineData("1:99999999999", "out of range")]
    public void Unknown_names_and_bad_numbers_are_clear_errors(string spec, string message)
    {
        var e = Assert.Throws<ImagesException>(() => R(spec));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Missing_files_allow_numbers_only()
    {
        ResolvedUser u = R("1000:1000", passwd: null, group: null);
        Assert.Equal((1000u, 1000u), (u.Uid, u.Gid));
        Assert.Equal((0u, 0u), (R("", null, null).Uid, R("", null, null).Gid));
        Assert.Contains("unable to find user alice", Assert.Throws<ImagesException>(() => R("alice", null, null)).Message);
    }

    [Fact]
    public void Group_add_appends_names_and_numbers()
    {
        ResolvedUser u = R("bob", extra: ["audio", "4000"]);
        Assert.Equal([50u, 29u, 4000u], u.AdditionalGids);
        Assert.Contains("unable to find group nope", Assert.Throws<ImagesException>(() => R("bob", extra: ["nope"])).Message);
    }

    /// <summary>
    /// The process's additionalGids start with the primary gid, as dockerd's getUser sets them since
    /// 20.10.18 (GHSA-rc4r-wh2q-q6c4), duplicates kept: <c>-u 0:7 --group-add 44 --group-add 7</c> is [7 44 7].
    /// </summary>
    [Fact]
    public void Process_groups_start_with_the_primary_gid()
    {
        Assert.Equal([1000u], R("1000:1000", passwd: null, group: null).ProcessAdditionalGids);
        Assert.Equal([7u, 44u, 7u], R("0:7", passwd: null, group: null, extra: ["44", "7"]).ProcessAdditionalGids);
        Assert.Equal([1001u, 50u, 29u, 4000u], R("bob", extra: ["audio", "4000"]).ProcessAdditionalGids);
    }

    [Fact]
    public void Reads_the_files_from_the_rootfs()
    {
        using var root = new TempDirectory("rootfs");
        Directory.CreateDirectory(root.Combine("etc"));
        File.WriteAllText(root.Combine("etc", "passwd"), Passwd);
        File.WriteAllText(root.Combine("etc", "group"), Group);
        ResolvedUser u = UserResolver.Resolve(root.Path, "alice");
        Assert.Equal((1000u, 1000u), (u.Uid, u.Gid));
        Assert.Equal([10u, 29u, 50u], u.AdditionalGids);
    }

    [Fact]
    public void An_absolute_symlink_to_a_host_file_is_resolved_inside_the_rootfs()
    {
        using var host = new TempDirectory("host");
        string secret = host.Combine("shadow");
        File.WriteAllText(secret, "evil:x:0:0::/:/bin/sh\n");
        using var root = new TempDirectory("rootfs");
        Directory.CreateDirectory(root.Combine("etc"));
        File.CreateSymbolicLink(root.Combine("etc", "passwd"), secret);            // absolute, pointing at the host
        File.CreateSymbolicLink(root.Combine("etc", "group"), "../../../../../../" + secret.TrimStart('/')); // climbing out

        // Resolved in the rootfs, both dangle: the files count as missing, the host's never read.
        Assert.Contains("unable to find user evil", Assert.Throws<ImagesException>(() => UserResolver.Resolve(root.Path, "evil")).Message);
        Assert.Contains("unable to find group evil", Assert.Throws<ImagesException>(() => UserResolver.Resolve(root.Path, "0:evil")).Message);
    }

    [Fact]
    public void A_symlink_to_etc_shadow_reads_the_images_own_file()
    {
        using var root = new TempDirectory("rootfs");
        Directory.CreateDirectory(root.Combine("etc"));
        File.WriteAllText(root.Combine("etc", "shadow"), "img:x:77:78::/:/bin/sh\n");
        File.CreateSymbolicLink(root.Combine("etc", "passwd"), "/etc/shadow");
        ResolvedUser u = UserResolver.Resolve(root.Path, "img");
        Assert.Equal((77u, 78u), (u.Uid, u.Gid));
    }

    [Fact]
    public void A_symlinked_etc_directory_pointing_out_is_confined()
    {
        using var host = new TempDirectory("host");
        File.WriteAllText(host.Combine("passwd"), "evil:x:0:0::/:/bin/sh\n");
        using var root = new TempDirectory("rootfs");
        File.CreateSymbolicLink(root.Combine("etc"), host.Path);
        Assert.Contains("unable to find user evil", Assert.Throws<ImagesException>(() => UserResolver.Resolve(root.Path, "evil")).Message);
    }

    [Fact]
    public void A_fifo_or_device_as_passwd_is_refused_without_blocking()
    {
        using var root = new TempDirectory("rootfs");
        Directory.CreateDirectory(root.Combine("etc"));
        Assert.Equal(0, Mkfifo(root.Combine("etc", "passwd"), 0x1A4));
        var e = Assert.Throws<ImagesException>(() => UserResolver.Resolve(root.Path, "alice"));
        Assert.Contains("not a regular file", e.Message);

        File.Delete(root.Combine("etc", "passwd"));
        File.CreateSymbolicLink(root.Combine("etc", "passwd"), "/proc/self/root/etc/passwd"); // a magic link
        Assert.ThrowsAny<ImagesException>(() => UserResolver.Resolve(root.Path, "root"));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int Mkfifo(string path, uint mode);
}
