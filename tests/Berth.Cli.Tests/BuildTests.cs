namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth build</c> end to end: the context tar made by the CLI (with .dockerignore applied and a
/// Dockerfile from outside the context), build args, --iidfile, -q, and a failing step's exit code.
/// </summary>
public sealed class BuildTests
{
    [Fact]
    public void BuildTagRunAndFail()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "build"), "busybox:latest");
        string context = Path.Combine(cli.Work, "ctx");
        Directory.CreateDirectory(Path.Combine(context, "skip"));
        File.WriteAllText(Path.Combine(context, "hello.txt"), "hello from the context\n");
        File.WriteAllText(Path.Combine(context, "skip", "secret.txt"), "secret\n");
        File.WriteAllText(Path.Combine(context, ".dockerignore"), "skip\n");
        string dockerfile = Path.Combine(cli.Work, "outside.Dockerfile");
        File.WriteAllText(dockerfile, """
            FROM busybox
            ARG WHO=nobody
            COPY . /ctx/
            RUN echo "built by $WHO" > /who
            CMD cat /ctx/hello.txt /who; ls /ctx
            """);

        string iid = Path.Combine(cli.Work, "iid");
        string output = cli.Ok("build", "-t", "cli-built:1", "-t", "cli-built:latest", "-f", dockerfile, "--build-arg", "WHO=berth", "--iidfile", iid, context);
        Assert.Contains("Step 1/5 : FROM busybox", output);
        Assert.Contains("Successfully tagged cli-built:1", output);
        Assert.StartsWith("sha256:", File.ReadAllText(iid));
        string ran = cli.Ok("run", "--rm", "cli-built:1");
        Assert.StartsWith("hello from the context\nbuilt by berth\n", ran);
        Assert.DoesNotContain("skip", ran);
        Assert.DoesNotContain("outside.Dockerfile", ran);

        // -q prints only the image ID; the cache makes it the same one.
        string quiet = cli.Ok("build", "-q", "-f", dockerfile, "--build-arg", "WHO=berth", context).Trim();
        Assert.Equal(File.ReadAllText(iid).Trim(), quiet);

        // A failing step: its output, docker's message, and its exit code as berth's.
        File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM busybox\nRUN echo about-to-fail; exit 7\n");
        CliResult failed = cli.Run("build", context);
        Assert.Equal(7, failed.ExitCode);
        Assert.Contains("about-to-fail", failed.Stdout);
        Assert.Contains("returned a non-zero code: 7", failed.Stderr);

        CliResult missing = cli.Run("build", Path.Combine(cli.Work, "no-such-dir"));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("not found", missing.Stderr);
    }

    [Fact]
    public void Build_from_stdin_takes_a_dockerfile_alone_or_a_compressed_context()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "build-stdin"), "busybox:latest");

        // `docker build - < Dockerfile`: no context, the Dockerfile alone.
        CliResult alone = cli.RunWith("FROM busybox\nRUN echo from-stdin > /f\nCMD cat /f\n"u8.ToArray(), "build", "-t", "stdin-df", "-");
        Assert.True(alone.ExitCode == 0, alone.Stderr);
        Assert.Equal("from-stdin\n", cli.Ok("run", "--rm", "stdin-df"));

        // `docker build - < context.tar.gz`: a gzip'd tar context, streamed to the daemon as it is.
        string context = Path.Combine(cli.Work, "ctx");
        Directory.CreateDirectory(context);
        File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM busybox\nCOPY hello.txt /\nCMD cat /hello.txt\n");
        File.WriteAllText(Path.Combine(context, "hello.txt"), "hello from a gzip'd context\n");
        var tgz = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(tgz, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            System.Formats.Tar.TarFile.CreateFromDirectory(context, gzip, includeBaseDirectory: false);
        CliResult compressed = cli.RunWith(tgz.ToArray(), "build", "-t", "stdin-tgz", "-");
        Assert.True(compressed.ExitCode == 0, compressed.Stderr);
        Assert.Equal("hello from a gzip'd context\n", cli.Ok("run", "--rm", "stdin-tgz"));
    }

    /// <summary>
    /// <c>berth build URL</c>: the daemon fetches the context (a tar, or a Dockerfile alone served as text);
    /// <c>--cache-from</c> names the images whose steps the build may take.
    /// </summary>
    [Fact]
    public async Task Build_from_a_url_and_with_cache_from()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "build-url"), "busybox:latest");
        string context = Path.Combine(cli.Work, "ctx");
        Directory.CreateDirectory(context);
        File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt > /copy\nCMD cat /copy\n");
        File.WriteAllText(Path.Combine(context, "hello.txt"), "hello from a URL\n");
        var tar = new MemoryStream();
        System.Formats.Tar.TarFile.CreateFromDirectory(context, tar, includeBaseDirectory: false);
        var served = new Dictionary<string, (string Type, byte[] Body)>
        {
            ["/ctx.tar"] = ("application/x-tar", tar.ToArray()),
            ["/Dockerfile"] = ("text/plain", "FROM busybox\nCMD echo a Dockerfile alone\n"u8.ToArray()),
        };
        using System.Net.HttpListener listener = LoopbackListener.Start(out int port);
        Task server = LoopbackListener.ServeAsync(listener, async http =>
        {
            if (!served.TryGetValue(http.Request.Url!.AbsolutePath, out var file))
            {
                http.Response.StatusCode = 404;
                return;
            }
            http.Response.ContentType = file.Type;
            await http.Response.OutputStream.WriteAsync(file.Body);
        });
        try
        {
            string output = cli.Ok("build", "-t", "from-url:1", $"http://127.0.0.1:{port}/ctx.tar");
            Assert.Contains("Successfully tagged from-url:1", output);
            Assert.Equal("hello from a URL\n", cli.Ok("run", "--rm", "from-url:1"));
            cli.Ok("build", "-t", "from-url:2", $"http://127.0.0.1:{port}/Dockerfile");
            Assert.Equal("a Dockerfile alone\n", cli.Ok("run", "--rm", "from-url:2"));

            CliResult missing = cli.Run("build", $"http://127.0.0.1:{port}/nothing.tar");
            Assert.NotEqual(0, missing.ExitCode);
            Assert.Contains("status 404", missing.Stderr);

            // --cache-from the image just built: its steps hit, and the build ends on it.
            string cached = cli.Ok("build", "-q", "--cache-from", "from-url:1", context).Trim();
            Assert.Equal(cli.Ok("inspect", "-f", "{{.Id}}", "from-url:1").Trim(), cached);
            Assert.Contains("Using cache", cli.Ok("build", "--cache-from", "from-url:1", context));
        }
        finally
        {
            listener.Stop();
            try
            {
                listener.Close();
            }
            catch (System.Net.HttpListenerException)
            {
            }
            await server;
        }
    }
}
