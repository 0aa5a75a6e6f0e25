using System.CommandLine;
using Berth.Cli.Client;
using Berth.Images.References;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker pull [--platform P] [-q] NAME[:TAG|@DIGEST]</c>: <c>POST /images/create?fromImage=</c>, progress drawn as docker does.</summary>
    private static Command Pull(string name)
    {
        var image = new Argument<string>("NAME[:TAG|@DIGEST]");
        var platform = new Option<string?>("--platform") { Description = "set platform if server is multi-platform capable (os[/arch[/variant]])" };
        var quiet = QuietOption("suppress verbose output");
        var allTags = new Option<bool>("--all-tags", "-a") { Description = "download all tagged images in the repository" };
        var command = new Command(name, "Download an image from a registry") { image, platform, quiet, allTags };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string text = parse.GetValue(image)!;
            ImageReference normalized = ImageReference.ParseNormalized(text);
            bool all = parse.GetValue(allTags);
            if (all && (normalized.Tag is not null || normalized.Digest is not null))
                throw new UsageException("tag can't be used with --all-tags/-a");
            ImageReference reference = all ? normalized : normalized.WithDefaultTag();
            bool q = parse.GetValue(quiet);
            if (!q && !all && normalized.Tag is null && normalized.Digest is null) Console.Out.WriteLine($"Using default tag: {ImageReference.DefaultTag}");
            await PullAsync(client, reference, parse.GetValue(platform), q ? TextWriter.Null : Console.Out, !q && StdoutIsTerminal, ct).ConfigureAwait(false);
            Console.Out.WriteLine(all ? reference.Repository : reference.ToString());
            return 0;
        });
        return command;
    }

    /// <summary>Pulls through the daemon, showing its progress stream on <paramref name="output"/>.</summary>
    internal static async Task PullAsync(DaemonClient client, ImageReference reference, string? platform, TextWriter output, bool terminal, CancellationToken ct)
    {
        var query = new Query().Add("fromImage", reference.Repository)
            .Add("tag", reference.Digest?.Value ?? reference.Tag)
            .Add("platform", platform);
        using HttpResponseMessage response = await client.SendAsync(HttpMethod.Post, "/images/create", query, ct: ct,
            completion: HttpCompletionOption.ResponseHeadersRead,
            headers: [new("X-Registry-Auth", RegistryAuth(reference.ToString()))]).ConfigureAwait(false);
        await using Stream stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await new JsonMessageDisplay(output, terminal).DisplayAsync(stream, ct).ConfigureAwait(false);
    }

    /// <summary><c>docker push [-q] NAME[:TAG]</c>: <c>POST /images/{name}/push?tag=</c>.</summary>
    private static Command Push(string name)
    {
        var image = new Argument<string>("NAME[:TAG]");
        var quiet = QuietOption("suppress verbose output");
        var allTags = new Option<bool>("--all-tags", "-a") { Description = "push all tags of an image to the repository" };
        var command = new Command(name, "Upload an image to a registry") { image, quiet, allTags };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            ImageReference normalized = ImageReference.ParseNormalized(parse.GetValue(image)!);
            bool all = parse.GetValue(allTags);
            if (all && normalized.Tag is not null) throw new UsageException("tag can't be used with --all-tags/-a");
            ImageReference reference = all ? normalized : normalized.WithDefaultTag();
            if (!all && normalized.Tag is null) Console.Out.WriteLine($"Using default tag: {ImageReference.DefaultTag}");
            bool q = parse.GetValue(quiet);
            var query = new Query().Add("tag", all ? null : reference.Tag);
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Post, $"/images/{Repo(reference)}/push", query, ct: ct,
                completion: HttpCompletionOption.ResponseHeadersRead,
                headers: [new("X-Registry-Auth", RegistryAuth(reference.ToString()))]).ConfigureAwait(false);
            await using Stream stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await new JsonMessageDisplay(q ? TextWriter.Null : Console.Out, !q && StdoutIsTerminal).DisplayAsync(stream, ct).ConfigureAwait(false);
            if (q) Console.Out.WriteLine(reference.ToString());
            return 0;
        });
        return command;
    }

    /// <summary>The repository part of a familiar name (<c>127.0.0.1:5000/a/b</c>, <c>busybox</c>).</summary>
    internal static string Repo(ImageReference r)
    {
        string familiar = r.WithDefaultTag().FamiliarName;
        return r.Digest is null ? familiar[..familiar.LastIndexOf(':')] : familiar[..familiar.LastIndexOf('@')];
    }
}
