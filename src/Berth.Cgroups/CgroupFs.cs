using System.Runtime.InteropServices;
using System.Text;

namespace Berth.Cgroups;

/// <summary>
/// File operations on cgroupfs. Each write is one open(O_WRONLY|O_TRUNC, no O_CREAT), one
/// write, one close, as runc's <c>cgroups.WriteFile</c>: the kernel parses each write as a whole,
/// and never creating files means a missing controller file is an error even on a fake tree.
/// Every failure becomes a <see cref="CgroupException"/> naming the operation, path and errno.
/// </summary>
internal static class CgroupFs
{
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EACCES = 13;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int EINVAL = 22;

    public static void Write(string dir, string file, string value) => WritePath(Path.Combine(dir, file), value);

    public static void WritePath(string path, string value)
    {
        var errno = Interop.Libc.WriteWhole(path, Encoding.ASCII.GetBytes(value));
        if (errno != 0)
            throw new CgroupException($"write {value} to {path}: {Marshal.GetPInvokeErrorMessage(errno)}", CgroupErrorKind.Io, errno, path);
    }

    /// <summary>Writes each value with a write(2) of its own through one open file (the kernel still parses each alone).</summary>
    public static void WriteEach(string dir, string file, IReadOnlyList<string> values)
    {
        if (values.Count == 0) return;
        var path = Path.Combine(dir, file);
        var errno = Interop.Libc.WriteEach(path, values.Select(Encoding.ASCII.GetBytes).ToList(), out int failedAt);
        if (errno != 0)
            throw new CgroupException($"write {values[Math.Min(failedAt, values.Count - 1)]} to {path}: {Marshal.GetPInvokeErrorMessage(errno)}", CgroupErrorKind.Io, errno, path);
    }

    public static string Read(string dir, string file)
    {
        var path = Path.Combine(dir, file);
        return Interop.Libc.ReadWhole(path, out var errno)
            ?? throw new CgroupException($"read {path}: {Marshal.GetPInvokeErrorMessage(errno)}", CgroupErrorKind.Io, errno, path);
    }

    public static string? TryRead(string path) => Interop.Libc.ReadWhole(path, out _);

    public static bool FileExists(string dir, string file) => File.Exists(Path.Combine(dir, file));

    /// <summary>
    /// Writes <paramref name="file"/> when the kernel has it; otherwise a
    /// <see cref="CgroupErrorKind.Unavailable"/> error naming the OCI field and the missing file.
    /// </summary>
    public static void WriteRequired(string dir, string file, string value, string field)
    {
        RequireFile(dir, file, field);
        Write(dir, file, value);
    }

    public static void RequireFile(string dir, string file, string field)
    {
        if (!FileExists(dir, file))
        {
            throw MissingFile(dir, file, field);
        }
    }

    public static CgroupException MissingFile(string dir, string file, string field) =>
        new($"{field} requested but this kernel has no {file} (in {dir})", CgroupErrorKind.Unavailable, ENOENT, Path.Combine(dir, file));

    /// <summary>"key value" lines (memory.stat, cpu.stat, memory.events) as a dictionary; unparsable lines are skipped.</summary>
    public static Dictionary<string, ulong> ReadFlatKeyed(string dir, string file)
    {
        var result = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in Read(dir, file).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && ulong.TryParse(parts[1], out var v))
            {
                result[parts[0]] = v;
            }
        }
        return result;
    }

    /// <summary>Like <see cref="ReadUInt64"/> but 0 when the file does not exist.</summary>
    public static ulong ReadUInt64OrZero(string dir, string file) => FileExists(dir, file) ? ReadUInt64(dir, file) : 0;

    /// <summary>Reads a single unsigned number; "max" reads as <see cref="ulong.MaxValue"/>.</summary>
    public static ulong ReadUInt64(string dir, string file)
    {
        var text = Read(dir, file).Trim();
        if (text == "max")
        {
            return ulong.MaxValue;
        }
        if (!ulong.TryParse(text, out var value))
        {
            throw new CgroupException($"parse {Path.Combine(dir, file)}: unexpected content \"{text}\"", path: Path.Combine(dir, file));
        }
        return value;
    }

    /// <summary>
    /// mkdir -p; an existing directory is fine. Returns true when this call created it. A parent
    /// removed between the creation of its levels (an engine removing its empty parent group, see
    /// <see cref="RemoveIfEmpty"/>, while another container starts) is made again: ENOENT is retried.
    /// </summary>
    public static bool Mkdir(string path)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (Directory.Exists(path))
            {
                return false;
            }
            try
            {
                Directory.CreateDirectory(path);
                return true;
            }
            catch (Exception e) when (IsFileError(e))
            {
                if (Directory.Exists(path))
                {
                    return false;
                }
                if (ErrnoOf(e) != ENOENT || attempt == 3)
                {
                    throw Wrap($"mkdir {path}", path, e);
                }
            }
        }
    }

    /// <summary>
    /// rmdir of a group that holds no process and no child group; a group in use (EBUSY,
    /// ENOTEMPTY) or already gone is left as it is. Returns whether it was removed.
    /// </summary>
    public static bool RemoveIfEmpty(string path)
    {
        try
        {
            Directory.Delete(path, recursive: false);
            return true;
        }
        catch (Exception e) when (IsFileError(e))
        {
            return false;
        }
    }

    /// <summary>
    /// Removes a cgroup directory and every group below it, deepest first. A group that is
    /// already gone is fine. rmdir is retried on EBUSY for a short while: a just-killed task can
    /// take a moment to leave the group (runc <c>RemovePath</c> does the same).
    /// </summary>
    public static void RemoveTree(string path)
    {
        string[] children;
        try
        {
            children = Directory.GetDirectories(path);
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }
        catch (Exception e) when (IsFileError(e))
        {
            throw Wrap($"list {path}", path, e);
        }
        foreach (var child in children)
        {
            RemoveTree(child);
        }

        var delay = TimeSpan.FromMilliseconds(10);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: false);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (Exception e) when (IsFileError(e))
            {
                if (ErrnoOf(e) != EBUSY || attempt == 6)
                {
                    throw Wrap($"rmdir {path}", path, e);
                }
            }
            Thread.Sleep(delay);
            delay *= 2;
        }
    }

    internal static bool IsFileError(Exception e) => e is IOException or UnauthorizedAccessException;

    /// <summary>
    /// Recovers errno from a System.IO exception: on Unix, .NET stores the raw errno in the
    /// HResult of the plain IOExceptions it makes, and maps ENOENT and EACCES/EPERM to
    /// dedicated types (the latter keeps the errno on its inner exception).
    /// </summary>
    internal static int ErrnoOf(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => ENOENT,
        UnauthorizedAccessException { InnerException: { } inner } when ErrnoOf(inner) != 0 => ErrnoOf(inner),
        UnauthorizedAccessException => EACCES,
        IOException when e.HResult is > 0 and < 4096 => e.HResult,
        _ => 0,
    };

    internal static string Reason(int errno, Exception e) =>
        errno != 0 ? Marshal.GetPInvokeErrorMessage(errno) : e.Message;

    internal static CgroupException Wrap(string operation, string path, Exception e)
    {
        var errno = ErrnoOf(e);
        return new CgroupException($"{operation}: {Reason(errno, e)}", CgroupErrorKind.Io, errno, path, e);
    }
}
