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
                    result.Add(new LinuxDevice
                    {
                        Path = path,
                        Type = st.Type == Interop.S_IFCHR ? "c" : "b",
                        Major = st.RdevMajor,
                        Minor = st.RdevMinor,
                        FileMode = st.Permissions,
                        Uid = st.Uid,
                        Gid = st.Gid,
                    });
                    break;
            }
        }
    }
}
