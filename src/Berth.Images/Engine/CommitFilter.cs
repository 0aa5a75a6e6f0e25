using Berth.Images.Layers;

namespace Berth.Images.Engine;

/// <summary>
/// Rewrites a layer tar without the given paths (and without whiteouts for them): how commit
/// leaves out the files the engine put in the container (/etc/hosts, …). A directory that is an
/// ancestor of a left-out path is kept only if something else under it is kept (it was copied up
/// only because of the engine's file); so is each of the given mount-point directories. A hardlink
/// to a left-out file becomes a regular file.
/// </summary>
internal static class CommitFilter
{
    private const int InMemoryLimit = 4 * 1024 * 1024;

    /// <summary>Whether any of <paramref name="excluded"/> (or a whiteout for it) is in <paramref name="upperDir"/>.</summary>
    public static bool Touches(string upperDir, IReadOnlyList<string> excluded)
    {
        foreach (string path in excluded)
        {
            string clean = RootedDirectory.CleanPath(path, path);
            if (clean.Length == 0) continue;
            try
            {
                Interop.LStat(Path.Combine(upperDir, clean));
                return true;
            }
            catch (NativeCallException)
            {
            }
        }
        return false;
    }

    public static (LayerDiffResult Result, int Entries) Filter(Stream input, Stream output, IReadOnlyList<string> excludedPaths, string spoolDir,
        CancellationToken cancellationToken, IReadOnlyList<string>? mountPointDirectories = null)
    {
        var excluded = excludedPaths.Select(p => RootedDirectory.CleanPath(p, p)).Where(p => p.Length > 0).ToHashSet(StringComparer.Ordinal);
        // Directories written only if something under them is: the ancestors of what is left
        // out (copied up only because of it) and the mount points the runtime made.
        var ancestors = new HashSet<string>(StringComparer.Ordinal);
        foreach (string p in excluded)
            for (int slash = p.LastIndexOf('/'); slash > 0; slash = p.LastIndexOf('/', slash - 1))
                ancestors.Add(p[..slash]);
        foreach (string p in mountPointDirectories ?? [])
            if (RootedDirectory.CleanPath(p, p) is { Length: > 0 } clean)
                ancestors.Add(clean);

        var reader = new LayerTarReader(input);
        using var hashing = new HashingStream(output, leaveOpen: true);
        var writer = new LayerTarWriter(hashing);
        var pending = new List<TarHeader>();              // ancestor directories not written yet
        var dropped = new Dictionary<string, (TarHeader Header, byte[] Data)>(StringComparer.Ordinal); // left-out regular files, for hardlinks
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        int entries = 0;

        while (reader.Next() is { } header)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = header.Name.TrimEnd('/');
            header.Name = name;
            pending.RemoveAll(d => !name.StartsWith(d.Name + "/", StringComparison.Ordinal));

            if (IsExcluded(name, excluded))
            {
                if (header.Kind == TarEntryKind.File)
                {
                    var data = new MemoryStream();
                    reader.CopyData(data);
                    dropped[name] = (header, data.ToArray());
                }
                continue;
            }
            if (header.Kind == TarEntryKind.Directory && ancestors.Contains(name))
            {
                pending.Add(header);
                continue;
            }

            foreach (TarHeader dir in pending) writer.WriteEntry(dir);
            entries += pending.Count;
            pending.Clear();

            if (header.Kind == TarEntryKind.Hardlink)
            {
                string link = header.LinkName.TrimEnd('/');
                if (renamed.TryGetValue(link, out string? target))
                {
                    header.LinkName = target;
                }
                else if (dropped.TryGetValue(link, out var first))
                {
                    // The first name of the inode was left out: this one carries the data now.
                    header.Kind = TarEntryKind.File;
                    header.Size = first.Data.Length;
                    header.LinkName = "";
                    writer.WriteEntry(header, new MemoryStream(first.Data));
                    renamed[link] = name;
                    entries++;
                    continue;
                }
            }

            if (header.Kind == TarEntryKind.File && header.Size > 0)
            {
                if (header.Size <= InMemoryLimit)
                {
                    var data = new MemoryStream((int)header.Size);
                    reader.CopyData(data);
                    data.Position = 0;
                    writer.WriteEntry(header, data);
                }
                else
                {
                    string temp = Path.Combine(spoolDir, $"commit-entry-{Guid.NewGuid():N}");
                    try
                    {
                        using var data = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
                        reader.CopyData(data);
                        data.Position = 0;
                        writer.WriteEntry(header, data);
                    }
                    finally
                    {
                        File.Delete(temp);
                    }
                }
            }
            else
            {
                writer.WriteEntry(header, header.Kind == TarEntryKind.File ? Stream.Null : null);
            }
            entries++;
        }
        writer.Finish();
        hashing.Flush();
        return (new LayerDiffResult(hashing.GetDigest(), hashing.BytesHashed), entries);
    }

    private static bool IsExcluded(string name, HashSet<string> excluded)
    {
        if (excluded.Contains(name)) return true;
        (string parent, string leaf) = RootedDirectory.Split(name);
        if (leaf.StartsWith(".wh.", StringComparison.Ordinal) && leaf != ".wh..wh..opq")
            return excluded.Contains(parent.Length == 0 ? leaf[4..] : parent + "/" + leaf[4..]);
        return excluded.Contains(parent) || excluded.Any(e => name.StartsWith(e + "/", StringComparison.Ordinal));
    }
}
