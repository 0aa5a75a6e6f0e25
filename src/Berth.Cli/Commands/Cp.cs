using System.CommandLine;
using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Interop;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    /// <summary>
    /// <c>docker cp [-a] [-L] [-q] CONTAINER:SRC DEST|-</c> and <c>docker cp SRC|- CONTAINER:DEST</c>:
    /// a tar over <c>GET/PUT /containers/{id}/archive?path=</c>. Docker's naming rule: copying to an
    /// existing directory puts SRC's last element inside it; to a path that does not exist, SRC
    /// takes that name. Extraction on the host refuses entries that would land outside DEST.
    /// </summary>
    private static Command Cp()
    {
        var source = new Argument<string>("SRC_PATH");
        var dest = new Argument<string>("DEST_PATH");
        var archive = new Option<bool>("--archive", "-a") { Description = "archive mode (copy all uid/gid information)" };
        var follow = new Option<bool>("--follow-link", "-L") { Description = "always follow symbol link in SRC_PATH" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "suppress progress output during copy" };
        var command = new Command("cp", "Copy files/folders between a container and the local filesystem") { source, dest, archive, follow, quiet };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string src = parse.GetValue(source)!, dst = parse.GetValue(dest)!;
            (string? srcContainer, string srcPath) = SplitCopyPath(src);
            (string? dstContainer, string dstPath) = SplitCopyPath(dst);
            if (srcContainer is not null && dstContainer is not null) throw new UsageException("copying between containers is not supported");
            if (srcContainer is null && dstContainer is null) throw new UsageException("must specify at least one container source");
            bool report = !parse.GetValue(quiet) && Libc.IsTerminal(2);
            long copied;
            if (srcContainer is not null)
                copied = await CopyFromAsync(client, srcContainer, srcPath, dstPath, parse.GetValue(follow), ct).ConfigureAwait(false);
            else
                copied = await CopyToAsync(client, srcPath, dstContainer!, dstPath, parse.GetValue(follow), parse.GetValue(archive), ct).ConfigureAwait(false);
            if (report && dstPath != "-") Console.Error.WriteLine($"Successfully copied {Units.HumanSize(copied)} to {dst}");
            return 0;
        });
        return command;
    }

    private static (string? Container, string Path) SplitCopyPath(string arg)
    {
        if (arg.StartsWith('/') || arg.StartsWith('.') || arg == "-") return (null, arg);
        int colon = arg.IndexOf(':');
        return colon > 0 ? (arg[..colon], arg[(colon + 1)..]) : (null, arg);
    }

    private static async Task<long> CopyFromAsync(DaemonClient client, string container, string srcPath, string dst, bool follow, CancellationToken ct)
    {
        if (follow) srcPath = srcPath.TrimEnd('/');
        using HttpResponseMessage response = await client.SendAsync(HttpMethod.Get, $"/containers/{container}/archive", new Query().Add("path", srcPath), ct: ct,
            completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        if (dst == "-")
        {
            await using Stream stdout = Console.OpenStandardOutput();
            await body.CopyToAsync(stdout, ct).ConfigureAwait(false);
            return 0;
        }
        string target = Path.GetFullPath(dst);
        bool intoDirectory = Directory.Exists(target);
        if (!intoDirectory && dst.EndsWith('/')) throw new IOException($"destination directory \"{dst}\" must exist");
        string baseDir = intoDirectory ? target : Path.GetDirectoryName(target)!;
        if (!Directory.Exists(baseDir)) throw new DirectoryNotFoundException($"destination directory \"{baseDir}\" does not exist");
        string? rename = intoDirectory ? null : Path.GetFileName(target);
        long total = 0;
        using var reader = new TarReader(body);
        string? root = null;
        while (await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false) is { } entry)
        {
            string name = entry.Name.TrimEnd('/');
            if (name.Length == 0) continue;
            string[] parts = name.Split('/');
            if (parts.Any(p => p == "..") || name.StartsWith('/')) throw new IOException($"archive entry \"{entry.Name}\" escapes the destination");
            root ??= parts[0];
            if (rename is not null && parts[0] == root) parts[0] = rename;
            string path = Path.Combine(baseDir, Path.Combine(parts));
            // Never write through a symlink the archive itself made.
            string parent = Path.GetDirectoryName(path)!;
            for (string p = parent; p.Length > baseDir.Length; p = Path.GetDirectoryName(p)!)
                if (new FileInfo(p).LinkTarget is not null) throw new IOException($"archive entry \"{entry.Name}\" would be written through a symlink");
            Directory.CreateDirectory(parent);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Directory.CreateDirectory(path);
                    File.SetUnixFileMode(path, entry.Mode);
                    break;
                case TarEntryType.SymbolicLink:
                    if (File.Exists(path) || Directory.Exists(path)) File.Delete(path);
                    File.CreateSymbolicLink(path, entry.LinkName);
                    break;
                case TarEntryType.HardLink:
                    string linkParts = entry.LinkName.TrimEnd('/');
                    string[] lp = linkParts.Split('/');
                    if (rename is not null && lp[0] == root) lp[0] = rename;
                    File.Copy(Path.Combine(baseDir, Path.Combine(lp)), path, overwrite: true);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write))
                    {
                        if (entry.DataStream is { } data) await data.CopyToAsync(file, ct).ConfigureAwait(false);
                    }
                    File.SetUnixFileMode(path, entry.Mode);
                    total += entry.Length;
                    break;
                default:
                    continue;
            }
            try
            {
                if (entry.EntryType != TarEntryType.SymbolicLink) File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
            }
            catch (IOException)
            {
            }
        }
        return total;
    }

    private static async Task<long> CopyToAsync(DaemonClient client, string src, string container, string dstPath, bool follow, bool archive, CancellationToken ct)
    {
        string uploadDir;
        Stream tar;
        long total = 0;
        if (src == "-")
        {
            uploadDir = dstPath;
            tar = Console.OpenStandardInput();
        }
        else
        {
            string full = Path.GetFullPath(src);
            if (!File.Exists(full) && !Directory.Exists(full) && new FileInfo(full).LinkTarget is null)
                throw new FileNotFoundException(null, full);
            JsonObject? stat = await StatAsync(client, container, dstPath, ct).ConfigureAwait(false);
            bool dstIsDir = stat is not null && ((stat["mode"]?.GetValue<long>() ?? 0) & (1L << 31)) != 0;
            if (stat is null && dstPath.EndsWith('/')) throw new IOException($"destination directory \"{dstPath}\" must exist");
            string rootName;
            if (dstIsDir)
            {
                uploadDir = dstPath;
                rootName = Path.GetFileName(full.TrimEnd('/'));
            }
            else
            {
                string trimmed = dstPath.TrimEnd('/');
                int slash = trimmed.LastIndexOf('/');
                uploadDir = slash < 0 ? "." : slash == 0 ? "/" : trimmed[..slash];
                rootName = trimmed[(slash + 1)..];
            }
            var buffer = new MemoryStream();
            await using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
                total = await AddToTarAsync(writer, full, rootName, follow, archive, ct).ConfigureAwait(false);
            buffer.Position = 0;
            tar = buffer;
        }
        await using (tar)
        {
            var content = new StreamContent(tar, 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
            using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Put, $"/containers/{container}/archive",
                new Query().Add("path", uploadDir).Add("noOverwriteDirNonDir", true).Add("copyUIDGID", archive), content, ct).ConfigureAwait(false);
        }
        return total;
    }

    private static async Task<long> AddToTarAsync(TarWriter writer, string path, string entryName, bool follow, bool archive, CancellationToken ct)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null && follow && info.ResolveLinkTarget(true) is { } resolved) path = resolved.FullName;
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null)
        {
            await writer.WriteEntryAsync(path, entryName + "/", ct).ConfigureAwait(false);
            long sum = 0;
            foreach (string child in Directory.EnumerateFileSystemEntries(path).Order(StringComparer.Ordinal))
                sum += await AddToTarAsync(writer, child, entryName + "/" + Path.GetFileName(child), false, archive, ct).ConfigureAwait(false);
            return sum;
        }
        await writer.WriteEntryAsync(path, entryName, ct).ConfigureAwait(false);
        return new FileInfo(path) is { LinkTarget: null, Exists: true } f ? f.Length : 0;
    }

    /// <summary><c>HEAD /containers/{id}/archive?path=</c>: the path's stat from <c>X-Docker-Container-Path-Stat</c>, or null when it does not exist.</summary>
    private static async Task<JsonObject?> StatAsync(DaemonClient client, string container, string path, CancellationToken ct)
    {
        try
        {
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Head, $"/containers/{container}/archive", new Query().Add("path", path), ct: ct).ConfigureAwait(false);
            if (!response.Headers.TryGetValues("X-Docker-Container-Path-Stat", out var values)) return null;
            return JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(values.First()))) as JsonObject;
        }
        catch (DaemonException e) when (e.Status == HttpStatusCode.NotFound && !e.Message.Contains("No such container", StringComparison.Ordinal))
        {
            return null;
        }
    }
}
