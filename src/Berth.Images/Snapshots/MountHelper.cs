namespace Berth.Images.Snapshots;

/// <summary>Performs the mounts a snapshotter returns, with mount(2), and undoes them.</summary>
public static class MountHelper
{
    /// <summary>Mounts <paramref name="mounts"/> on <paramref name="target"/>, in order.</summary>
    public static void MountAll(IReadOnlyList<Mount> mounts, string target)
    {
        foreach (Mount m in mounts) MountOne(m, target);
    }

    /// <summary>Unmounts <paramref name="target"/>; with <paramref name="detach"/> a busy mount is detached lazily.</summary>
    public static void Unmount(string target, bool detach = false)
    {
        if (Interop.umount2(target, Interop.UMOUNT_NOFOLLOW | (detach ? Interop.MNT_DETACH : 0)) < 0)
            throw Interop.Error("umount2", target);
    }

    /// <summary>
    /// The directory a layer is unpacked into, or a diff taken from, for an active snapshot:
    /// the overlay's upperdir, or the source of a writable bind mount.
    /// </summary>
    public static string WritableDirectory(IReadOnlyList<Mount> mounts)
    {
        if (mounts.Count == 1)
        {
            Mount m = mounts[0];
            if (m.Type == "overlay" && m.Options.FirstOrDefault(o => o.StartsWith("upperdir=", StringComparison.Ordinal)) is { } upper)
                return upper["upperdir=".Length..];
            if (m.Type == "bind" && !m.Options.Contains("ro")) return m.Source;
        }
        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"no writable directory in mounts [{string.Join("; ", mounts)}]");
    }

    private static void MountOne(Mount m, string target)
    {
        ulong flags = 0;
        var data = new List<string>();
        foreach (string option in m.Options)
        {
            switch (option)
            {
                case "ro": flags |= Interop.MS_RDONLY; break;
                case "rw": break;
                case "bind": flags |= Interop.MS_BIND; break;
                case "rbind": flags |= Interop.MS_BIND | Interop.MS_REC; break;
                case "nosuid": flags |= Interop.MS_NOSUID; break;
                case "nodev": flags |= Interop.MS_NODEV; break;
                case "noexec": flags |= Interop.MS_NOEXEC; break;
                default: data.Add(option); break;
            }
        }
        if (m.Type == "bind") flags |= Interop.MS_BIND;

        if ((flags & Interop.MS_BIND) != 0)
        {
            if (Interop.mount(m.Source, target, null, flags & ~Interop.MS_RDONLY, null) < 0)
                throw Interop.Error("mount (bind)", target, $"mount {m.Source}");
            // A bind mount ignores MS_RDONLY on creation; read-only takes a remount.
            if ((flags & Interop.MS_RDONLY) != 0
                && Interop.mount("", target, null, Interop.MS_BIND | Interop.MS_REMOUNT | Interop.MS_RDONLY | (flags & (Interop.MS_NOSUID | Interop.MS_NODEV | Interop.MS_NOEXEC)), null) < 0)
            {
                var error = Interop.Error("mount (remount read-only)", target);
                Interop.umount2(target, Interop.MNT_DETACH);
                throw error;
            }
            return;
        }

        string options = string.Join(',', data);
        if (options.Length < Environment.SystemPageSize - 1)
        {
            if (Interop.mount(m.Source, target, m.Type, flags, options) < 0)
                throw Interop.Error($"mount ({m.Type})", target, $"mount -o {Shorten(options)}");
            return;
        }
        MountWithRelativePaths(m, target, flags, data);
    }

    /// <summary>
    /// mount(2) takes at most one page of options, which a long lowerdir list exceeds. As
    /// containerd does, the directories are given relative to their common parent, and the mount
    /// is made from that working directory. The working directory is per process, so the chdir
    /// happens on a thread of our own that first unshares its filesystem context (CLONE_FS):
    /// no other thread of this process sees it, and the thread ends right after.
    /// </summary>
    private static void MountWithRelativePaths(Mount m, string target, ulong flags, List<string> data)
    {
        var paths = new List<string>();
        foreach (string option in data)
        {
            if (option.StartsWith("lowerdir=", StringComparison.Ordinal)) paths.AddRange(option["lowerdir=".Length..].Split(':'));
            else if (option.StartsWith("upperdir=", StringComparison.Ordinal)) paths.Add(option["upperdir=".Length..]);
            else if (option.StartsWith("workdir=", StringComparison.Ordinal)) paths.Add(option["workdir=".Length..]);
        }
        string common = CommonDirectory(paths);
        string Relative(string p) => p[(common.Length + 1)..];
        string options = string.Join(',', data.Select(o =>
        {
            int eq = o.IndexOf('=');
            if (eq < 0) return o;
            string key = o[..eq];
            return key switch
            {
                "lowerdir" => "lowerdir=" + string.Join(':', o[(eq + 1)..].Split(':').Select(Relative)),
                "upperdir" or "workdir" => key + "=" + Relative(o[(eq + 1)..]),
                _ => o,
            };
        }));
        if (options.Length >= Environment.SystemPageSize - 1)
            throw new ImagesException(ImagesErrorKind.InvalidArgument,
                $"overlay options for `{target}` are {options.Length} bytes even relative to `{common}`: more than mount(2) accepts");

        string absoluteTarget = Path.GetFullPath(target);
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Interop.unshare(Interop.CLONE_FS) < 0) throw Interop.Error("unshare(CLONE_FS)", common);
                if (Interop.chdir(common) < 0) throw Interop.Error("chdir", common);
                if (Interop.mount(m.Source, absoluteTarget, m.Type, flags, options) < 0)
                    throw Interop.Error($"mount ({m.Type})", absoluteTarget, $"mount -o {Shorten(options)} from `{common}`");
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "berth-mount" };
        thread.Start();
        thread.Join();
        if (failure is not null) throw failure;
    }

    private static string CommonDirectory(List<string> paths)
    {
        if (paths.Count == 0 || paths.Any(p => !p.StartsWith('/')))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, "overlay directories must be absolute paths");
        string common = paths[0][..paths[0].LastIndexOf('/')];
        foreach (string p in paths)
            while (common.Length > 0 && !p.StartsWith(common + "/", StringComparison.Ordinal))
                common = common[..common.LastIndexOf('/')];
        if (common.Length == 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, "overlay directories have no common parent");
        return common;
    }

    private static string Shorten(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
