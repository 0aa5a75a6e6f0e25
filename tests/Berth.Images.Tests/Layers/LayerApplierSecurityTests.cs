using Berth.Images.Layers;

namespace Berth.Images.Tests.Layers;

/// <summary>
/// Hostile layers: each must be refused with an error naming the entry, and nothing outside the
/// target may change (the canary directory and file are checked after every test).
/// </summary>
public sealed class LayerApplierSecurityTests : IDisposable
{
    private readonly TempDirectory _target = new("apply");
    private readonly Canary _canary = new();

    public void Dispose()
    {
        try
        {
            _canary.AssertUntouched();
        }
        finally
        {
            _canary.Dispose();
            _target.Dispose();
        }
    }

    private string P(string relative) => _target.Combine(relative);

    private ImagesException Refused(TarBuilder tar, string entry, LayerApplyOptions? options = null)
    {
        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(tar.ToStream(), _target.Path, options));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"`{entry}`", e.Message);
        _canary.AssertUntouched();
        return e;
    }

    /// <summary>How to reach the canary directory from the target with `..`.</summary>
    private string UpToCanary => string.Concat(Enumerable.Repeat("../", 10)) + _canary.Directory.TrimStart('/');

    [Fact]
    public void Dot_dot_escaping_the_target_is_refused()
    {
        var e = Refused(new TarBuilder().File("../" + Path.GetFileName(_canary.Directory) + "/canary", "pwned"), "../" + Path.GetFileName(_canary.Directory) + "/canary");
        Assert.Contains("outside the target", e.Message);
    }

    [Fact]
    public void Dot_dot_in_the_middle_escaping_is_refused()
        => Refused(new TarBuilder().File("a/b/../../../x", "pwned"), "a/b/../../../x");

    [Fact]
    public void A_deep_dot_dot_path_to_the_canary_is_refused()
        => Refused(new TarBuilder().File(UpToCanary + "/canary", "pwned"), UpToCanary + "/canary");

    [Fact]
    public void Pax_path_with_dot_dot_is_refused()
    {
        // System.Formats.Tar will not write a `path` record of our choosing; ours does for long names.
        string name = string.Concat(Enumerable.Repeat("../", 100)) + _canary.Directory.TrimStart('/') + "/canary";
        var tar = new MemoryStream();
        var writer = new LayerTarWriter(tar);
        writer.WriteEntry(new TarHeader { Name = name, Kind = TarEntryKind.File, Size = 5, Mode = 0x1A4 }, new MemoryStream("pwned"u8.ToArray()));
        writer.Finish();
        tar.Position = 0;
        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(tar, _target.Path));
        Assert.Contains($"`{name}`", e.Message);
    }

    [Fact]
    public void Gnu_long_name_with_dot_dot_is_refused()
    {
        string name = string.Concat(Enumerable.Repeat("../", 60)) + _canary.Directory.TrimStart('/') + "/canary";
        Refused(new TarBuilder(System.Formats.Tar.TarEntryFormat.Gnu).File(name, "pwned"), name);
    }

    [Fact]
    public void Absolute_paths_land_inside_the_target()
    {
        LayerApplier.Apply(new TarBuilder().File(_canary.FilePath, "pwned").ToStream(), _target.Path);
        Assert.Equal("pwned", File.ReadAllText(P(_canary.FilePath.TrimStart('/'))));
    }

    [Fact]
    public void Writing_through_an_absolute_symlink_is_refused()
    {
        var e = Refused(new TarBuilder().Symlink("link", _canary.Directory).File("link/canary", "pwned"), "link/canary");
        Assert.Contains("outside the target", e.Message);
    }

    [Fact]
    public void Writing_through_a_relative_symlink_climbing_out_is_refused()
        => Refused(new TarBuilder().Symlink("link", UpToCanary).File("link/canary", "pwned"), "link/canary");

    [Fact]
    public void Writing_through_a_chain_of_symlinks_is_refused()
        => Refused(new TarBuilder().Symlink("a", "b").Symlink("b", "c/d").Dir("c").Symlink("c/d", _canary.Directory).File("a/new", "pwned"), "a/new");

    // The applier keeps the last parent directory open for the next entries: a directory written
    // into, then replaced by a symlink (itself, one above it, or after a whiteout), must be resolved
    // again, not reached through a kept fd (which keeping several directories open would do).
    [Fact]
    public void A_directory_replaced_by_a_symlink_outside_between_two_entries_is_not_written_through()
        => Refused(new TarBuilder().Dir("d").File("d/a", "fine").Symlink("d", _canary.Directory).File("d/canary", "pwned"), "d/canary");

    [Fact]
    public void A_directory_whose_parent_is_replaced_by_a_symlink_between_two_entries_is_not_written_through()
    {
        // p/<canary's name> inside the target first; then p points at the canary's parent, so the
        // same path names the canary directory.
        string name = Path.GetFileName(_canary.Directory), outside = Path.GetDirectoryName(_canary.Directory)!;
        Refused(new TarBuilder().Dir("p").Dir($"p/{name}").File($"p/{name}/a", "fine").Symlink("p", outside).File($"p/{name}/canary", "pwned"), $"p/{name}/canary");
    }

    [Fact]
    public void A_directory_whited_out_and_replaced_by_a_symlink_between_two_entries_is_not_written_through()
        => Refused(new TarBuilder().Dir("d").File("d/a", "fine").File(".wh.d", "").Symlink("d", _canary.Directory).File("d/canary", "pwned"), "d/canary");

    [Fact]
    public void Writing_through_a_symlink_to_root_is_refused()
        => Refused(new TarBuilder().Symlink("root", "/").File("root" + _canary.FilePath, "pwned"), "root" + _canary.FilePath);

    [Fact]
    public void Writing_through_proc_magic_links_is_refused()
        => Refused(new TarBuilder().Symlink("p", "/proc/self/root").File("p" + _canary.FilePath, "pwned"), "p" + _canary.FilePath);

    [Fact]
    public void A_file_entry_over_a_symlink_replaces_the_symlink_and_does_not_follow_it()
    {
        LayerApplier.Apply(new TarBuilder().Symlink("evil", _canary.FilePath).File("evil", "pwned", mode: 0x1FF).ToStream(), _target.Path);
        Assert.Null(new FileInfo(P("evil")).LinkTarget);
        Assert.Equal("pwned", File.ReadAllText(P("evil")));
    }

    [Fact]
    public void A_directory_entry_over_a_symlink_replaces_it_and_does_not_chmod_the_target()
    {
        LayerApplier.Apply(new TarBuilder().Symlink("d", _canary.Directory).Dir("d", mode: 0x1FF).ToStream(), _target.Path);
        Assert.True(Interop.LStat(P("d")).IsDirectory);
    }

    [Fact]
    public void Device_fifo_and_hardlink_entries_over_a_symlink_replace_it()
    {
        LayerApplier.Apply(new TarBuilder()
            .File("real", "x")
            .Symlink("s1", _canary.FilePath).Device("s1", block: false, 1, 3, mode: 0x1FF)
            .Symlink("s2", _canary.FilePath).Fifo("s2", mode: 0x1FF)
            .Symlink("s3", _canary.FilePath).Hardlink("s3", "real")
            .ToStream(), _target.Path);
        Assert.Equal(Interop.S_IFCHR, Interop.LStat(P("s1")).Type);
        Assert.Equal(Interop.S_IFIFO, Interop.LStat(P("s2")).Type);
        Assert.Equal(Interop.LStat(P("real")).Ino, Interop.LStat(P("s3")).Ino);
    }

    [Fact]
    public void Hardlink_to_a_dot_dot_path_outside_is_refused()
        => Refused(new TarBuilder().Hardlink("hl", UpToCanary + "/canary"), "hl");

    [Fact]
    public void Hardlink_to_an_absolute_host_path_does_not_link_the_host_file()
    {
        var e = Refused(new TarBuilder().Hardlink("hl", _canary.FilePath), "hl");
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Hardlink_through_a_symlinked_directory_outside_is_refused()
    {
        var e = Refused(new TarBuilder().Symlink("out", _canary.Directory).Hardlink("hl", "out/canary"), "hl");
        Assert.Contains("outside the target", e.Message);
    }

    [Fact]
    public void Hardlink_to_a_symlink_links_the_symlink_itself()
    {
        LayerApplier.Apply(new TarBuilder().Symlink("s", _canary.FilePath).Hardlink("hl", "s").ToStream(), _target.Path);
        Assert.Equal(_canary.FilePath, new FileInfo(P("hl")).LinkTarget);
    }

    [Fact]
    public void Hardlink_to_a_directory_is_refused()
        => Refused(new TarBuilder().Dir("d").Hardlink("hl", "d"), "hl");

    [Fact]
    public void Device_nodes_are_refused_when_the_caller_disallows_them()
    {
        var options = new LayerApplyOptions { AllowDeviceNodes = false };
        var e = Refused(new TarBuilder().Device("dev/sda", block: true, 8, 0), "dev/sda", options);
        Assert.Contains("device nodes are not allowed", e.Message);
        Refused(new TarBuilder().Device("dev/mem", block: false, 1, 1), "dev/mem", options);
        Assert.False(File.Exists(P("dev/sda")));
    }

    [Fact]
    public void Whiteout_devices_are_allowed_even_without_device_nodes()
    {
        LayerApplier.Apply(new TarBuilder().Device("gone", block: false, 0, 0).ToStream(), _target.Path, new LayerApplyOptions { AllowDeviceNodes = false });
        Assert.Equal(Interop.S_IFCHR, Interop.LStat(P("gone")).Type);
    }

    [Fact]
    public void Whiteout_through_a_symlink_outside_is_refused()
        => Refused(new TarBuilder().Symlink("out", _canary.Directory).File("out/.wh.canary", ""), "out/.wh.canary");

    [Fact]
    public void Opaque_marker_through_a_symlink_outside_is_refused()
        => Refused(new TarBuilder().Symlink("out", _canary.Directory).File("out/.wh..wh..opq", ""), "out/.wh..wh..opq");

    [Fact]
    public void Whiteout_of_dot_dot_is_refused()
        => Refused(new TarBuilder().Dir("d").File("d/.wh...", ""), "d/.wh...");

    [Fact]
    public void A_target_that_is_itself_reached_through_a_symlink_still_confines_entries()
    {
        // The caller's own path may contain symlinks; confinement is relative to the opened directory.
        string link = _target.Path + "-link";
        File.CreateSymbolicLink(link, _target.Path);
        try
        {
            Assert.Throws<ImagesException>(() => LayerApplier.Apply(new TarBuilder().Symlink("x", "..").File("x/escaped", "pwned").ToStream(), link));
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(_target.Path)!, "escaped")));
        }
        finally
        {
            File.Delete(link);
        }
    }
}
