using Berth.Oci;

namespace Berth.Images.Engine;

/// <summary>The host's device nodes under /dev, for privileged containers (moby's devices.HostDevices).</summary>
public static class HostDevices
{
    private static readonly string[] s_skip = ["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev", "/dev/fd"];

    public static IReadOnlyList<LinuxDevice> Scan() => Scan("/dev");

    public static IReadOnlyList<LinuxDevice> Scan(string root)
    {
        var result = new List<LinuxDevice>();
        Walk(root, result);
        result.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return result;
    }

    /// <summary>
    /// <c>docker run --device HOST[:CONTAINER]</c>: the device node at <paramref name="pathOnHost"/>
    /// (symlinks followed, as /dev/disk/by-id/… are), or every device node below it when it is a
    /// directory, each placed at the same place below <paramref name="pathInContainer"/> (moby's
    /// oci.DevicesFromPath). Anything else is refused with dockerd's message.
    /// </summary>
    public static IReadOnlyList<LinuxDevice> FromPath(string pathOnHost, string pathInContainer)
    {
        string Refusal(string why) => $"error gathering device information while adding custom device \"{pathOnHost}\": {why}";
        if (!Path.IsPathRooted(pathOnHost)) throw new ImagesException(ImagesErrorKind.InvalidArgument, Refusal("not an absolute path"));
        if (!Path.IsPathRooted(pathInContainer))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid device path in container \"{pathInContainer}\": not an absolute path");
        string resolved;
        Interop.Statx st;
        try
        {
            resolved = pathOnHost;
            st = Interop.LStat(resolved);
            if (st.Type == Interop.S_IFLNK)
            {
                resolved = File.ResolveLinkTarget(pathOnHost, returnFinalTarget: true)?.FullName ?? pathOnHost;
                st = Interop.LStat(resolved);
            }
        }
        catch (NativeCallException e)
        {
            // Go's wording, as dockerd prints it: "no such file or directory".
            throw new ImagesException(ImagesErrorKind.InvalidArgument, Refusal(System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.Errno).ToLowerInvariant()));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, Refusal(e.Message));
        }
        if (st.Type is Interop.S_IFCHR or Interop.S_IFBLK)
            return [Device(pathInContainer, st)];
        if (st.Type != Interop.S_IFDIR) throw new ImagesException(ImagesErrorKind.InvalidArgument, Refusal("not a device node"));
        var below = new List<LinuxDevice>();
        Walk(resolved, below);
        string prefix = Path.TrimEndingDirectorySeparator(resolved);
        foreach (LinuxDevice d in below) d.Path = Path.TrimEndingDirectorySeparator(pathInContainer) + d.Path[prefix.Length..];
        below.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return below;
    }

    /// <summary>
    /// The major and minor numbers of the block device at <paramref name="path"/> (symlinks
    /// followed), for the per-device blkio limits; an InvalidArgument naming why otherwise.
    /// </summary>
    public static (long Major, long Minor) BlockDeviceNumbers(string path)
    {
        Interop.Statx st;
        try
        {
            st = Interop.Stat(path);
        }
        catch (NativeCallException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{path}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.Errno).ToLowerInvariant()}");
        }
        if (st.Type != Interop.S_IFBLK) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{path}: not a block device");
        return (st.RdevMajor, st.RdevMinor);
    }

    /// <summary>
    /// <c>--device-cgroup-rule 'c 42:* rmw'</c> (type a, b or c; major and minor numbers or *; access
    /// of r, w and m) as an allow rule, with dockerd's message for anything else.
    /// </summary>
    public static LinuxDeviceCgroup ParseCgroupRule(string rule)
    {
        ImagesException Invalid() => new(ImagesErrorKind.InvalidArgument, $"invalid device cgroup format '{rule}'");
        string[] parts = rule.Split(' ');
        if (parts.Length != 3 || parts[0] is not ("a" or "b" or "c")) throw Invalid();
        string[] numbers = parts[1].Split(':');
        if (numbers.Length != 2) throw Invalid();
        long? Number(string text) => text == "*" ? null
            : text.Length > 0 && text.All(char.IsAsciiDigit) && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n
            : throw Invalid();
        string access = parts[2];
        if (access.Length is 0 or > 3 || access.Any(ch => ch is not ('r' or 'w' or 'm')) || access.Distinct().Count() != access.Length) throw Invalid();
        return new LinuxDeviceCgroup { Allow = true, Type = parts[0], Major = Number(numbers[0]), Minor = Number(numbers[1]), Access = access };
    }

    private static LinuxDevice Device(string path, Interop.Statx st) => new()
    {
        Path = path,
        Type = st.Type == Interop.S_IFCHR ? "c" : "b",
        Major = st.RdevMajor,
        Minor = st.RdevMinor,
        FileMode = st.Permissions,
        Uid = st.Uid,
        Gid = st.Gid,
    };

    private static void Walk(string dir, List<LinuxDevice> result)
    {
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(dir).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (string path in entries)
        {
            if (s_skip.Contains(path)) continue;
            Interop.Statx st;
            try
            {
                st = Interop.LStat(path);
            }
            catch (NativeCallException)
            {
                continue;
            }
            switch (st.Type)
            {
                case Interop.S_IFDIR:
                    Walk(path, result);
                    break;
                case Interop.S_IFCHR or Interop.S_IFBLK:
                    // /dev/console is the container's own terminal.
                    if (path == "/dev/console") break;
                    result.Add(Device(path, st));
                    break;
            }
        }
    }
}
