using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Build;

/// <summary>
/// <c>POST /build?remote=URL</c>, as dockerd's remotecontext: tars of every compression dockerd sniffs and a
/// Dockerfile alone, served by an HTTP server of the test's own on 127.0.0.1; Git repositories served over
/// HTTP's dumb protocol (a ref, a subdirectory, a submodule); the errors in dockerd's words and statuses;
/// the docker clients' own <c>docker build URL</c>; nothing left in the build's temp directory.
/// </summary>
public sealed class RemoteContextTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private TempDirectory _work = null!;
    private TempDirectory _config = null!;
    private HttpListener _listener = null!;
    private Task _server = null!;
    private int _port;
    private readonly Dictionary<string, (int Status, string? ContentType, byte[] Body)> _routes = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        _work = new TempDirectory("remote-context");
        _config = new TempDirectory("docker-config");
        _listener = LoopbackListener.Start(out _port);
        _server = LoopbackListener.ServeAsync(_listener, ServeAsync);
        _daemon = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        // Each step whatever the others did: the temp directories go even when the daemon or the listener fails to stop.
        try
        {
            if (_daemon is not null) await _daemon.DisposeAsync();
        }
        finally
        {
            try
            {
                await LoopbackListener.StopAsync(_listener, _server);
            }
            finally
            {
                _work.Dispose();
                _config.Dispose();
            }
        }
    }

    private string Url(string path) => $"http://127.0.0.1:{_port}{path}";

    /// <summary>The routes, and below /git/ the files of the served repositories (git's dumb HTTP protocol).</summary>
    private async Task ServeAsync(HttpListenerContext context)
    {
        string path = context.Request.Url!.AbsolutePath;
        if (path.StartsWith("/git/", StringComparison.Ordinal))
        {
            string file = Path.Combine(_work.Path, "served", path["/git/".Length..]);
            if (!File.Exists(file) || Path.GetFullPath(file) != file)
            {
                context.Response.StatusCode = 404;
                return;
            }
            context.Response.ContentType = "application/octet-stream";
            byte[] bytes = await File.ReadAllBytesAsync(file);
            await context.Response.OutputStream.WriteAsync(bytes);
            return;
        }
        if (!_routes.TryGetValue(path, out var route))
        {
            context.Response.StatusCode = 404;
            await context.Response.OutputStream.WriteAsync("no such thing here\n"u8.ToArray());
            return;
        }
        context.Response.StatusCode = route.Status;
        if (route.ContentType is not null) context.Response.ContentType = route.ContentType;
        await context.Response.OutputStream.WriteAsync(route.Body);
    }

    private static byte[] Tar(params (string Path, string Content)[] files)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            foreach ((string path, string content) in files)
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)0x1A4, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
        return tar.ToArray();
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(data);
        return output.ToArray();
    }

    private async Task<(int Status, string Body)> PostRemoteBuildAsync(string remote, string query = "")
    {
        using var content = new ByteArrayContent([]);
        using HttpResponseMessage response = await _daemon.Client.PostAsync($"/build?remote={Uri.EscapeDataString(remote)}{query}", content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task<string> BuildOkAsync(string remote, string query = "")
    {
        (int status, string body) = await PostRemoteBuildAsync(remote, query);
        Assert.True(status == 200 && !body.Contains("\"errorDetail\"", StringComparison.Ordinal), $"{status}: {body}");
        return body;
    }

    private async Task<JsonElement> LabelsAsync(string image)
        => (await _daemon.GetJsonAsync($"/images/{image}/json")).GetProperty("Config").GetProperty("Labels");

    /// <summary>What a build leaves in berthd's temp directory for builds: nothing, once it is over.</summary>
    private string[] BuildLeftovers()
    {
        string temp = Path.Combine(_daemon.Options.DataRoot, "tmp", "build");
        return Directory.Exists(temp) ? Directory.GetFileSystemEntries(temp) : [];
    }

    private static string ErrorMessage(string body) => JsonDocument.Parse(body).RootElement.GetProperty("message").GetString()!;

    private const string CheckingDockerfile = """
        FROM busybox
        COPY greeting.txt /greeting.txt
        RUN test "$(cat /greeting.txt)" = hello
        LABEL built=from-url
        """;

    /// <summary>
    /// A tar context by URL, plain and compressed as dockerd sniffs it; `dockerfile=` inside it; the download's
    /// progress in the stream (dockerd reports every 512 kB, so the context is larger than that).
    /// </summary>
    [Fact]
    public async Task Tar_context_from_a_url_in_every_compression()
    {
        string noise = string.Create(1_500_000, Random.Shared, (chars, random) =>
        {
            for (int i = 0; i < chars.Length; i++) chars[i] = (char)('a' + random.Next(26));
        });
        byte[] tar = Tar(("greeting.txt", "hello"), ("build/Custom.dockerfile", CheckingDockerfile), ("noise.txt", noise));
        _routes["/ctx.tar"] = (200, "application/x-tar", tar);
        _routes["/ctx.tar.gz"] = (200, "application/gzip", Gzip(tar));
        // Served as octet-stream or with no type at all: sniffed, then decompressed by their magic.
        _routes["/ctx.tar.bz2"] = (200, "application/octet-stream", CompressTool.Compress("bzip2", tar));
        _routes["/ctx.tar.xz"] = (200, null, CompressTool.Compress("xz", tar));

        foreach (string name in (string[])["ctx.tar", "ctx.tar.gz", "ctx.tar.bz2", "ctx.tar.xz"])
        {
            string tag = "fromurl:" + name.Replace('.', '-');
            string body = await BuildOkAsync(Url("/" + name), $"&dockerfile=build/Custom.dockerfile&t={tag}");
            JsonElement progress = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .First(m => m.TryGetProperty("id", out JsonElement id) && id.GetString() == "Downloading context");
            Assert.Equal(Url("/" + name), progress.GetProperty("status").GetString());
            Assert.Contains("Successfully tagged " + tag, body);
            Assert.Equal("from-url", (await LabelsAsync(tag)).GetProperty("built").GetString());
        }
        Assert.Empty(BuildLeftovers());
    }

    /// <summary>A URL answered as text/plain (or sniffed as text) is a Dockerfile alone, as dockerd takes it.</summary>
    [Fact]
    public async Task Dockerfile_alone_from_a_url()
    {
        const string dockerfile = "FROM busybox\nRUN echo built > /marker\nLABEL alone=yes\n";
        _routes["/Dockerfile"] = (200, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(dockerfile));
        _routes["/noext"] = (200, "application/octet-stream", Encoding.UTF8.GetBytes(dockerfile.Replace("yes", "sniffed")));

        string body = await BuildOkAsync(Url("/Dockerfile"), "&t=alone:1");
        // Read to its end, the Dockerfile gets dockerd's one progress report of the download.
        Assert.Contains($"\"status\":\"{Url("/Dockerfile")}\",\"progressDetail\":{{\"current\":{dockerfile.Length}}}", body);
        Assert.Equal("yes", (await LabelsAsync("alone:1")).GetProperty("alone").GetString());
        await BuildOkAsync(Url("/noext"), "&t=alone:2");
        Assert.Equal("sniffed", (await LabelsAsync("alone:2")).GetProperty("alone").GetString());
        Assert.Empty(BuildLeftovers());
    }

    /// <summary>dockerd's errors for a URL that cannot serve a context: its words, its status, before any output; nothing left behind.</summary>
    [Fact]
    public async Task Unusable_urls_are_refused_in_dockerds_words()
    {
        _routes["/page.html"] = (200, "text/html", "<html><body>hi</body></html>"u8.ToArray());
        _routes["/empty"] = (200, "application/x-tar", []);
        _routes["/broken"] = (500, "text/plain", "it broke\n"u8.ToArray());
        _routes["/nodockerfile.tar"] = (200, "application/x-tar", Tar(("greeting.txt", "hello")));

        (int status, string body) = await PostRemoteBuildAsync(Url("/missing.tar"));
        Assert.Equal(404, status);
        Assert.Equal($"error downloading remote context {Url("/missing.tar")}: failed to GET {Url("/missing.tar")} with status 404 Not Found: no such thing here", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync(Url("/broken"));
        Assert.Equal(500, status);
        Assert.Equal($"error downloading remote context {Url("/broken")}: failed to GET {Url("/broken")} with status 500 Internal Server Error: it broke", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync(Url("/page.html"));
        Assert.Equal(500, status);
        Assert.Equal($"error detecting content type for remote {Url("/page.html")}: unsupported Content-Type \"text/html\"", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync(Url("/empty"));
        Assert.Equal(500, status);
        Assert.Equal($"error detecting content type for remote {Url("/empty")}: empty response", ErrorMessage(body));

        int closed = RegistryProcess.FreePort();
        (status, body) = await PostRemoteBuildAsync($"http://127.0.0.1:{closed}/ctx.tar");
        Assert.Equal(500, status);
        Assert.Equal($"error downloading remote context http://127.0.0.1:{closed}/ctx.tar: Get \"http://127.0.0.1:{closed}/ctx.tar\": dial tcp 127.0.0.1:{closed}: connect: connection refused", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync("ftp://example.invalid/ctx.tar");
        Assert.Equal(500, status);
        Assert.Equal("remoteURL (ftp://example.invalid/ctx.tar) could not be recognized as URL", ErrorMessage(body));

        // Downloaded (too small for a progress report), then no Dockerfile in it: dockerd's words, before any output.
        (status, body) = await PostRemoteBuildAsync(Url("/nodockerfile.tar"));
        Assert.Equal(500, status);
        Assert.Equal("Cannot locate specified Dockerfile: Dockerfile", ErrorMessage(body));

        Assert.Empty(BuildLeftovers());
    }

    private static void Git(string directory, params string[] args)
    {
        var start = new ProcessStartInfo("git") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=master", "-c", "protocol.file.allow=always", .. args])
            start.ArgumentList.Add(a);
        start.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        start.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        using Process p = Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"git {string.Join(' ', args)}: {stdout.Result}{stderr.Result}");
    }

    /// <summary>A working repository made into a bare one under served/NAME.git, ready for the dumb HTTP protocol.</summary>
    private string Publish(string work, string name)
    {
        string bare = Path.Combine(_work.Path, "served", name + ".git");
        if (Directory.Exists(bare)) Directory.Delete(bare, recursive: true);
        Directory.CreateDirectory(Path.GetDirectoryName(bare)!);
        Git(_work.Path, "clone", "--quiet", "--bare", work, bare);
        Git(bare, "update-server-info");
        return Url($"/git/{name}.git");
    }

    private string Repository(string name, params (string Path, string Content)[] files)
    {
        string work = _work.CreateSubdirectory("work-" + name);
        Git(work, "init", "--quiet");
        foreach ((string path, string content) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(work, path))!);
            File.WriteAllText(Path.Combine(work, path), content);
        }
        Git(work, "add", "-A");
        Git(work, "commit", "--quiet", "-m", "first");
        return work;
    }

    /// <summary>
    /// A Git URL (http, ending in .git): the default branch, a branch and a tag by `#ref`, a subdirectory by
    /// `#ref:dir`, a submodule checked out; the clone removed afterwards, also when the ref does not exist.
    /// </summary>
    [Fact]
    public async Task Git_context_with_ref_subdirectory_and_submodule()
    {
        // The submodule over git:// (git daemon): dockerd fetches submodules with --depth=1, which git's dumb HTTP cannot serve.
        string module = Repository("module", ("inner.txt", "from the submodule"));
        Publish(module, "module");
        using GitDaemon daemon = GitDaemon.Start(Path.Combine(_work.Path, "served"));
        string moduleUrl = $"git://127.0.0.1:{daemon.Port}/module.git";

        string work = Repository("app",
            ("Dockerfile", "FROM busybox\nCOPY greeting.txt /greeting.txt\nCOPY vendor/inner.txt /inner.txt\nRUN test \"$(cat /greeting.txt)\" = hello && test \"$(cat /inner.txt)\" = 'from the submodule'\nLABEL ref=master\n"),
            ("greeting.txt", "hello"),
            ("docs/Dockerfile", "FROM busybox\nCOPY page.txt /page.txt\nRUN test \"$(cat /page.txt)\" = page && test ! -e /greeting.txt\nLABEL sub=docs\n"),
            ("docs/page.txt", "page"),
            ("ci/Alt.dockerfile", "FROM busybox\nCOPY greeting.txt /greeting.txt\nLABEL file=alt\n"));
        Git(work, "submodule", "--quiet", "add", moduleUrl, "vendor");
        Git(work, "commit", "--quiet", "-m", "submodule");
        Git(work, "tag", "v1");
        Git(work, "checkout", "--quiet", "-b", "feature");
        File.WriteAllText(Path.Combine(work, "Dockerfile"), "FROM busybox\nLABEL ref=feature\n");
        Git(work, "commit", "--quiet", "-am", "feature");
        Git(work, "checkout", "--quiet", "master");
        string url = Publish(work, "app");

        await BuildOkAsync(url, "&t=git:master");
        Assert.Equal("master", (await LabelsAsync("git:master")).GetProperty("ref").GetString());
        await BuildOkAsync(url + "#feature", "&t=git:feature");
        Assert.Equal("feature", (await LabelsAsync("git:feature")).GetProperty("ref").GetString());
        await BuildOkAsync(url + "#v1", "&t=git:tag");
        Assert.Equal("master", (await LabelsAsync("git:tag")).GetProperty("ref").GetString());
        await BuildOkAsync(url + "#:docs", "&t=git:docs");
        Assert.Equal("docs", (await LabelsAsync("git:docs")).GetProperty("sub").GetString());
        // `dockerfile=` inside the clone.
        await BuildOkAsync(url + "#master", "&t=git:file&dockerfile=ci/Alt.dockerfile");
        Assert.Equal("alt", (await LabelsAsync("git:file")).GetProperty("file").GetString());

        (int status, string body) = await PostRemoteBuildAsync(url + "#no-such-branch");
        Assert.Equal(500, status);
        Assert.Equal("error fetching: fatal: couldn't find remote ref no-such-branch\n: exit status 128", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync(url + "#master:nowhere");
        Assert.Equal(500, status);
        Assert.Matches("^stat /.*/git-[0-9a-f]+/nowhere: no such file or directory$", ErrorMessage(body));

        (status, body) = await PostRemoteBuildAsync(url + "#-u");
        Assert.Equal(500, status);
        Assert.Equal("invalid refspec: -u", ErrorMessage(body));

        Assert.Empty(BuildLeftovers());
    }

    /// <summary>
    /// The docker clients' classic builder with a URL as the context: both fetch it themselves (the 20.10 and
    /// 28 CLIs download a URL and clone a Git URL locally, then send a tar) and build against berthd.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Docker_build_url_with_the_docker_client(string binary)
    {
        _routes["/client.tar.gz"] = (200, "application/gzip", Gzip(Tar(("greeting.txt", "hello"), ("Dockerfile", CheckingDockerfile))));
        string repo = Publish(Repository("client", ("greeting.txt", "hello"), ("Dockerfile", CheckingDockerfile)), "client");
        var docker = new DockerCli(binary, _daemon.DockerHost, _config.Path);

        var (exit, output, error) = docker.Shell($"DOCKER_BUILDKIT=0 $DOCKER build -t client:tar {Url("/client.tar.gz")} 2>&1");
        Assert.True(exit == 0, $"{output}{error}");
        Assert.Contains("Successfully tagged client:tar", output);
        (exit, output, error) = docker.Shell($"DOCKER_BUILDKIT=0 $DOCKER build -t client:git {repo} 2>&1");
        Assert.True(exit == 0, $"{output}{error}");
        Assert.Contains("Successfully tagged client:git", output);
    }

    /// <summary><c>git daemon</c> on 127.0.0.1 serving a directory's bare repositories; stopped (by its process) on Dispose.</summary>
    private sealed class GitDaemon : IDisposable
    {
        private readonly Process _process;

        private GitDaemon(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }

        public static GitDaemon Start(string basePath)
        {
            int port = RegistryProcess.FreePort();
            var start = new ProcessStartInfo("git") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in (string[])["daemon", "--reuseaddr", "--export-all", "--base-path=" + basePath, "--listen=127.0.0.1", "--port=" + port, basePath])
                start.ArgumentList.Add(a);
            var daemon = new GitDaemon(Process.Start(start)!, port);
            for (int i = 0; i < 100; i++)
            {
                try
                {
                    using var probe = new System.Net.Sockets.TcpClient();
                    probe.Connect(IPAddress.Loopback, port);
                    return daemon;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    Thread.Sleep(50);
                }
            }
            daemon.Dispose();
            throw new TimeoutException("git daemon did not listen");
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }
}
