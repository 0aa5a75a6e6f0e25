using System.Text;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// The json-file driver's options beyond rotation, through berthd and the real docker CLIs: <c>compress</c>
/// (rotated files gzip'ed, still read by <c>logs</c>), <c>labels</c>/<c>labels-regex</c>/<c>env</c>/<c>env-regex</c>
/// (dockerd's "attrs" in every entry, shown by <c>logs --details</c>), <c>tag</c> (taken, unused, as by dockerd), and
/// dockerd's errors. Each test's daemon force-removes its containers at the end.
/// </summary>
public sealed class JsonFileLogOptionsTests : DockerCliTestBase
{
    protected override string BusyboxChange => "ENV IMAGE_VAR=from-image";

    private string[] LogFiles(string id)
        => Directory.GetFiles(Path.Combine(Daemon.Options.DataRoot, "containers", id)).Select(Path.GetFileName)
            .Where(n => n!.Contains("-json.log", StringComparison.Ordinal)).Select(n => n![id.Length..]).Order().ToArray()!;

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Attributes_go_into_every_entry_and_details_shows_them(string binary)
    {
        var docker = Docker(binary);
        string id = docker.Ok("run", "-d", "-l", "app=web", "-l", "team=a b", "-l", "other=x", "-e", "MODE=prod", "-e", "XA=1", "-e", "XB=2",
            "--log-opt", "labels=app,nosuch", "--log-opt", "labels-regex=^te", "--log-opt", "env=MODE,IMAGE_VAR", "--log-opt", "env-regex=^XB$",
            "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", "echo one; echo two >&2").Trim();
        Assert.Equal("0\n", docker.Ok("wait", id));
        string raw = File.ReadAllText(Path.Combine(Daemon.Options.DataRoot, "containers", id, id + "-json.log"));
        Assert.Contains("\"stream\":\"stdout\",\"attrs\":{\"IMAGE_VAR\":\"from-image\",\"MODE\":\"prod\",\"XB\":\"2\",\"app\":\"web\",\"team\":\"a b\"},\"time\":", raw);

        var (exit, output, error) = docker.Run("logs", "--details", id);
        Assert.True(exit == 0, error);
        const string attrs = "IMAGE_VAR=from-image,MODE=prod,XB=2,app=web,team=a+b";
        Assert.Equal($"{attrs} one\n", output);
        Assert.Equal($"{attrs} two\n", error);
        Assert.Matches($@"^\d{{4}}-\d\d-\d\dT[0-9:.]+Z {System.Text.RegularExpressions.Regex.Escape(attrs)} one\n$", docker.Run("logs", "--details", "-t", id).Out);
        Assert.Equal("one\n", docker.Ok("logs", id));

        // Without attributes, --details still writes dockerd's separating space.
        string plain = docker.Ok("run", "-d", "busybox", "echo", "bare").Trim();
        docker.Ok("wait", plain);
        Assert.Equal(" bare\n", docker.Ok("logs", "--details", plain));
        Assert.DoesNotContain("attrs", File.ReadAllText(Path.Combine(Daemon.Options.DataRoot, "containers", plain, plain + "-json.log")));
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public async Task Compress_gzips_the_rotated_files_and_logs_still_reads_them(string binary)
    {
        var docker = Docker(binary);
        string id = docker.Ok("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "--log-opt", "compress=true", "busybox", "sh", "-c",
            "i=1; while [ $i -le 400 ]; do echo \"line $i\"; i=$((i+1)); done").Trim();
        Assert.Equal("0\n", docker.Ok("wait", id));
        string[] want = ["-json.log", "-json.log.1.gz", "-json.log.2.gz"];
        for (int i = 0; i < 100 && !LogFiles(id).SequenceEqual(want); i++) await Task.Delay(50);
        Assert.Equal(want, LogFiles(id));
        string output = docker.Ok("logs", id);
        Assert.EndsWith("line 399\nline 400\n", output);
        var numbers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l[5..])).ToList();
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers); // the .gz files' lines, in order, then the current file's
        Assert.True(numbers.Count > 60, $"only {numbers.Count} lines: the compressed files were not read");
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Bad_options_get_dockerds_errors_and_create_nothing(string binary)
    {
        var docker = Docker(binary);
        foreach (var (opts, message) in new (string[], string)[]
        {
            (["compress=yes"], "invalid boolean value for compress: strconv.ParseBool: parsing \"yes\": invalid syntax"),
            (["compress=true", "max-file=1"], "compress cannot be true when max-file is less than 2 or max-size is not set"),
            (["labels-regex=("], "invalid log opt labels-regex `(`"),
            (["nosuch=1"], "unknown log opt 'nosuch' for json-file log driver"),
            (["mode=fast"], "logger: logging mode not supported: fast"),
            (["max-buffer-size=4m"], "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
        })
        {
            var (exit, _, error) = docker.Run(["create", .. opts.SelectMany(o => new[] { "--log-opt", o }), "busybox", "true"]);
            Assert.True(exit != 0 && error.Contains(message, StringComparison.Ordinal), $"{string.Join(' ', opts)}: {error}");
        }
        Assert.Equal("", docker.Ok("ps", "-aq"));
        docker.Ok("rm", docker.Ok("create", "--log-opt", "mode=blocking", "--log-opt", "max-file=2", "busybox", "true").Trim());
    }
}
