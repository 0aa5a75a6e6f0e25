using System.CommandLine;
using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Berth.Builder.Context;
using Berth.Cli.Client;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary>
    /// <c>docker build [OPTIONS] PATH | -</c> with the classic builder: the context directory is
    /// sent as a tar (what <c>.dockerignore</c> excludes left out, the Dockerfile and
    /// .dockerignore always in) to <c>POST /build</c>; the daemon's <c>Step N/M</c> stream is shown
    /// as it comes; a failed step's exit code is berth's exit code.
    /// </summary>
    private static Command Build(string name)
    {
        var path = new Argument<string>("PATH") { Description = "the build context: a directory, a Git or http(s) URL (fetched by the daemon), or - for a context archive or a Dockerfile alone on STDIN" };
        var tags = new Option<string[]>("--tag", "-t") { Description = "name and optionally a tag in the 'name:tag' format", AllowMultipleArgumentsPerToken = false };
        var file = new Option<string?>("--file", "-f") { Description = "name of the Dockerfile (default: 'PATH/Dockerfile'); - reads it from STDIN" };
        var buildArgs = new Option<string[]>("--build-arg") { Description = "set build-time variables (KEY=VALUE, or KEY to take it from the environment)" };
        var labels = new Option<string[]>("--label") { Description = "set metadata for an image" };
        var noCache = new Option<bool>("--no-cache") { Description = "do not use cache when building the image" };
        var target = new Option<string?>("--target") { Description = "set the target build stage to build" };
        var pull = new Option<bool>("--pull") { Description = "always attempt to pull a newer version of the image" };
        var quiet = QuietOption("suppress the build output and print image ID on success");
        var iidFile = new Option<string?>("--iidfile") { Description = "write the image ID to the file" };
        var network = new Option<string?>("--network") { Description = "set the networking mode for the RUN instructions during build" };
        var platform = new Option<string?>("--platform") { Description = "set platform if server is multi-platform capable" };
        var rm = new Option<bool>("--rm") { Description = "remove intermediate containers after a successful build (default true)", DefaultValueFactory = _ => true };
        var forceRm = new Option<bool>("--force-rm") { Description = "always remove intermediate containers" };
        var cacheFrom = new Option<string[]>("--cache-from") { Description = "images to consider as cache sources" };
        var command = new Command(name, "Build an image from a Dockerfile")
        {
            path, tags, file, buildArgs, labels, noCache, target, pull, quiet, iidFile, network, platform, rm, forceRm, cacheFrom,
        };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string contextPath = parse.GetValue(path)!;
            string? dockerfileOption = parse.GetValue(file);
            var query = new Query();
            foreach (string t in parse.GetValue(tags) ?? []) query.Add("t", t);
            query.Add("q", parse.GetValue(quiet));
            query.Add("nocache", parse.GetValue(noCache));
            query.Add("pull", parse.GetValue(pull));
            query.Add("rm", parse.GetValue(rm), always: true);
            query.Add("forcerm", parse.GetValue(forceRm));
            query.Add("target", parse.GetValue(target));
            query.Add("networkmode", parse.GetValue(network));
            query.Add("platform", parse.GetValue(platform));
            var args = new JsonObject();
            foreach (string a in parse.GetValue(buildArgs) ?? [])
            {
                int eq = a.IndexOf('=');
                // KEY alone: the value from berth's environment; unset stays unset (null), as docker does.
                args[eq < 0 ? a : a[..eq]] = eq < 0 ? Environment.GetEnvironmentVariable(a) : a[(eq + 1)..];
            }
            if (args.Count > 0) query.Add("buildargs", args.ToJsonString());
            var labelMap = new JsonObject();
            foreach (string l in parse.GetValue(labels) ?? [])
            {
                int eq = l.IndexOf('=');
                labelMap[eq < 0 ? l : l[..eq]] = eq < 0 ? "" : l[(eq + 1)..];
            }
            if (labelMap.Count > 0) query.Add("labels", labelMap.ToJsonString());
            if (parse.GetValue(cacheFrom) is { Length: > 0 } sources) query.Add("cachefrom", new JsonArray([.. sources.Select(c => JsonValue.Create(c))]).ToJsonString());

            HttpContent content;
            if (contextPath == "-")
            {
                if (dockerfileOption == "-") throw new UsageException("invalid argument: can't use stdin for both build context and dockerfile");
                (content, bool isArchive) = await StdinContextAsync(Console.OpenStandardInput(), ct).ConfigureAwait(false);
                query.Add("dockerfile", isArchive ? dockerfileOption : "Dockerfile");
            }
            else if (!Directory.Exists(contextPath) && (RemoteUrl.IsGitUrl(contextPath) || RemoteUrl.IsUrl(contextPath)))
            {
                // As docker-py (and docker's BuildKit path) send it: the daemon clones or downloads the context itself.
                if (dockerfileOption == "-") throw new UsageException("invalid argument: can't use stdin for the dockerfile with a remote build context");
                query.Add("remote", contextPath);
                query.Add("dockerfile", dockerfileOption);
                content = new ByteArrayContent([]);
            }
            else
            {
                if (!Directory.Exists(contextPath)) throw new UsageException($"unable to prepare context: path \"{contextPath}\" not found");
                var context = new ContextTar(contextPath, dockerfileOption);
                query.Add("dockerfile", context.DockerfileName);
                content = context;
            }
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");

            string? imageId = null;
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Post, "/build", query, content, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var display = new JsonMessageDisplay(Console.Out, StdoutIsTerminal) { Aux = aux => imageId = aux["ID"]?.GetValue<string>() ?? imageId };
            await display.DisplayAsync(stream, ct).ConfigureAwait(false);
            if (parse.GetValue(iidFile) is { } iid && imageId is not null) await File.WriteAllTextAsync(iid, imageId, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The build context as a tar written straight into the request (chunked): files relative to
    /// the context root, owners 0:0 as docker's CLI sends them. A Dockerfile outside the context
    /// (or from STDIN) is added under a name of its own, as docker does.
    /// </summary>
    /// <summary>
    /// <c>build -</c>: STDIN is either the context as an archive (tar, or tar compressed with gzip,
    /// bzip2, xz or zstd: the daemon unpacks it) or, as docker has it, a Dockerfile alone, sent as a
    /// context holding only that file. The first bytes decide; an archive is streamed on.
    /// </summary>
    internal static async Task<(HttpContent Content, bool IsArchive)> StdinContextAsync(Stream stdin, CancellationToken ct)
    {
        byte[] head = new byte[512];
        int n = 0, read;
        while (n < head.Length && (read = await stdin.ReadAsync(head.AsMemory(n), ct).ConfigureAwait(false)) > 0) n += read;
        ReadOnlySpan<byte> h = head.AsSpan(0, n);
        bool archive = Berth.Images.Layers.LayerDecompression.IsCompressed(h) || n >= 262 && h.Slice(257, 5).SequenceEqual("ustar"u8);
        if (archive) return (new StreamContent(new Berth.Images.PrefixedStream(head.AsMemory(0, n), stdin), 1 << 16), true);

        const int MaxDockerfile = 16 << 20;
        var dockerfile = new MemoryStream();
        dockerfile.Write(h);
        byte[] buffer = new byte[1 << 16];
        while ((read = await stdin.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            dockerfile.Write(buffer, 0, read);
            if (dockerfile.Length > MaxDockerfile) throw new UsageException($"the Dockerfile on STDIN is larger than {MaxDockerfile >> 20} MiB (a context archive must be a tar, gzip, bzip2, xz or zstd stream)");
        }
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            dockerfile.Position = 0;
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "Dockerfile")
            {
                DataStream = dockerfile,
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                ModificationTime = DateTimeOffset.UtcNow,
            });
        }
        return (new ByteArrayContent(tar.ToArray()), false);
    }

    private sealed class ContextTar : HttpContent
    {
        private readonly string _root;
        private readonly DockerIgnore _ignore;
        private readonly byte[]? _extraDockerfile;

        public ContextTar(string root, string? dockerfileOption)
        {
            _root = Path.GetFullPath(root);
            string ignorePath = Path.Combine(_root, ".dockerignore");
            _ignore = File.Exists(ignorePath) ? DockerIgnore.Parse(File.ReadAllText(ignorePath)) : DockerIgnore.Empty;
            if (dockerfileOption == "-")
            {
                using var stdin = Console.OpenStandardInput();
                using var buffer = new MemoryStream();
                stdin.CopyTo(buffer);
                _extraDockerfile = buffer.ToArray();
                DockerfileName = ExtraName(_extraDockerfile);
                return;
            }
            string dockerfile = dockerfileOption is null ? Path.Combine(_root, "Dockerfile") : Path.GetFullPath(dockerfileOption);
            if (!File.Exists(dockerfile)) throw new UsageException($"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {dockerfile}: no such file or directory");
            string relative = Path.GetRelativePath(_root, dockerfile);
            if (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
            {
                _extraDockerfile = File.ReadAllBytes(dockerfile);
                DockerfileName = ExtraName(_extraDockerfile);
            }
            else
            {
                DockerfileName = relative.Replace('\\', '/');
            }
        }

        public string DockerfileName { get; }

        // docker's CLI names an added Dockerfile .dockerfile.<random> and lists it in .dockerignore
        // (the daemon reads it, COPY never sees it). Named after its content here, so that the
        // .dockerignore it changes, and with it a `COPY . …` step's cache key, stays the same
        // from one build to the next.
        private static string ExtraName(byte[] content)
            => ".dockerfile." + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content))[..20];

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await using var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true);
            await AddDirectoryAsync(writer, _root, "", cancellationToken).ConfigureAwait(false);
            if (_extraDockerfile is not null)
            {
                string ignorePath = Path.Combine(_root, ".dockerignore");
                byte[] ignore = [.. File.Exists(ignorePath) ? File.ReadAllBytes(ignorePath) : [], .. System.Text.Encoding.UTF8.GetBytes($"\n{DockerfileName}\n")];
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, ".dockerignore")
                {
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                    DataStream = new MemoryStream(ignore),
                }, cancellationToken).ConfigureAwait(false);
                var entry = new PaxTarEntry(TarEntryType.RegularFile, DockerfileName)
                {
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    ModificationTime = DateTimeOffset.UtcNow,
                    DataStream = new MemoryStream(_extraDockerfile),
                };
                await writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        private async Task AddDirectoryAsync(TarWriter writer, string directory, string prefix, CancellationToken ct)
        {
            var entries = new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal);
            foreach (FileSystemInfo info in entries)
            {
                string relative = prefix.Length == 0 ? info.Name : prefix + "/" + info.Name;
                bool isDirectory = info is DirectoryInfo && info.LinkTarget is null;
                // With a Dockerfile from outside, .dockerignore is written at the end, amended.
                if (relative == ".dockerignore" && _extraDockerfile is not null) continue;
                bool always = relative == DockerfileName || relative == ".dockerignore";
                if (!always && _ignore.IsExcluded(relative))
                {
                    if (isDirectory && _ignore.MayIncludeUnder(relative)) await AddDirectoryAsync(writer, info.FullName, relative, ct).ConfigureAwait(false);
                    continue;
                }
                UnixFileMode mode = info.UnixFileMode;
                if (info.LinkTarget is { } link)
                {
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, relative) { LinkName = link, Mode = mode, ModificationTime = info.LastWriteTimeUtc }, ct).ConfigureAwait(false);
                }
                else if (isDirectory)
                {
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, relative + "/") { Mode = mode, ModificationTime = info.LastWriteTimeUtc }, ct).ConfigureAwait(false);
                    await AddDirectoryAsync(writer, info.FullName, relative, ct).ConfigureAwait(false);
                }
                else if (info is FileInfo)
                {
                    await using FileStream data = File.OpenRead(info.FullName);
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, relative) { Mode = mode, ModificationTime = info.LastWriteTimeUtc, DataStream = data }, ct).ConfigureAwait(false);
                }
                // Sockets, FIFOs and devices are not part of a build context.
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
