using System.CommandLine;
using System.Net.Http.Headers;
using Berth.Cli.Client;
using Berth.Images.References;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker save [-o FILE] IMAGE…</c>: <c>GET /images/get?names=…</c> to the file (written aside and renamed) or stdout.</summary>
    private static Command Save(string name)
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "write to a file, instead of STDOUT" };
        var command = new Command(name, "Save one or more images to a tar archive (streamed to STDOUT by default)") { images, output };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string? path = parse.GetValue(output);
            if (path is null && !Console.IsOutputRedirected)
                throw new UsageException("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            var query = new Query();
            foreach (string n in parse.GetValue(images)!) query.Add("names", n);
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Get, "/images/get", query, ct: ct, completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await WriteOutputAsync(body, path, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>Streams to a file (temp beside it, renamed at the end: a failure leaves no truncated file) or to stdout.</summary>
    internal static async Task WriteOutputAsync(Stream body, string? path, CancellationToken ct)
    {
        if (path is null)
        {
            await using Stream stdout = Console.OpenStandardOutput();
            await body.CopyToAsync(stdout, ct).ConfigureAwait(false);
            return;
        }
        string temp = path + ".berth-tmp-" + Environment.ProcessId;
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                await body.CopyToAsync(file, ct).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary><c>docker load [-i FILE] [-q]</c>: the archive is the body of <c>POST /images/load</c>.</summary>
    private static Command Load(string name)
    {
        var input = new Option<string?>("--input", "-i") { Description = "read from tar archive file, instead of STDIN" };
        var quiet = QuietOption("suppress the load output");
        var command = new Command(name, "Load an image from a tar archive or STDIN") { input, quiet };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string? path = parse.GetValue(input);
            if (path is null && !Console.IsInputRedirected)
                throw new UsageException("requested load from stdin, but stdin is empty");
            await using Stream source = path is not null ? File.OpenRead(path) : Console.OpenStandardInput();
            var content = new StreamContent(source, 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
            bool q = parse.GetValue(quiet);
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Post, "/images/load", new Query().Add("quiet", q || !StdoutIsTerminal, always: true),
                content, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await new JsonMessageDisplay(Console.Out, StdoutIsTerminal).DisplayAsync(stream, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary><c>docker import [-c CHANGE] [-m MSG] [--platform P] FILE|- [REPOSITORY[:TAG]]</c>: <c>POST /images/create?fromSrc=-</c> with the tar as body.</summary>
    private static Command Import(string name)
    {
        var file = new Argument<string>("file|-");
        var reference = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var change = new Option<string[]>("--change", "-c") { Description = "apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)" };
        var message = new Option<string?>("--message", "-m") { Description = "set commit message for imported image" };
        var platform = new Option<string?>("--platform") { Description = "set platform (os[/arch[/variant]])" };
        var command = new Command(name, "Import the contents from a tarball to create a filesystem image") { file, reference, change, message, platform };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var query = new Query().Add("fromSrc", "-");
            if (parse.GetValue(reference) is { } target)
            {
                ImageReference r = ImageReference.ParseNormalized(target); // a bad name fails before reading the input
                query.Add("repo", Repo(r)).Add("tag", r.Tag);
            }
            query.Add("message", parse.GetValue(message)).Add("platform", parse.GetValue(platform));
            foreach (string c in parse.GetValue(change) ?? []) query.Add("changes", c);
            string path = parse.GetValue(file)!;
            await using Stream source = path == "-" ? Console.OpenStandardInput() : File.OpenRead(path);
            var content = new StreamContent(source, 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Post, "/images/create", query, content, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await new JsonMessageDisplay(Console.Out, false).DisplayAsync(stream, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
