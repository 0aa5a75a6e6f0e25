using System.CommandLine;
using Berth.Cli.Output;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker pull [--platform P] [-q] NAME[:TAG|@DIGEST]</c>: download, verify, name and unpack.</summary>
    private static Command Pull(string name)
    {
        var image = new Argument<string>("NAME[:TAG|@DIGEST]");
        var platform = new Option<string?>("--platform") { Description = "set platform if server is multi-platform capable (os[/arch[/variant]])" };
        var quiet = QuietOption("suppress verbose output");
        var allTags = new Option<bool>("--all-tags", "-a") { Description = "download all tagged images in the repository (not supported)" };
        var command = new Command(name, "Download an image from a registry") { image, platform, quiet, allTags };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            if (parse.GetValue(allTags)) throw new UsageException("--all-tags is not supported");
            string text = parse.GetValue(image)!;
            ImageReference normalized = ImageReference.ParseNormalized(text);
            ImageReference reference = normalized.WithDefaultTag();
            Platform? wanted = parse.GetValue(platform) is { } p ? PlatformMatcher.Parse(p) : null;
            bool q = parse.GetValue(quiet);
            TextWriter output = Console.Out;

            if (!q && normalized.Tag is null && normalized.Digest is null) output.WriteLine($"Using default tag: {ImageReference.DefaultTag}");
            if (!q) output.WriteLine($"{reference.Reference}: Pulling from {reference.Path}");
            output.Flush();

            string? before = engine.Images.References().FirstOrDefault(r => r.Name == reference.ToString())?.Target.Digest;
            var view = new LayerProgressView(output, IsTerminal(output));
            var reporter = new PullReporter(view, engine.Images.Content.Exists);
            using var client = engine.CreateRegistryClient();
            Image pulled = await engine.Images.PullAsync(client, text, wanted, q ? null : reporter, ct).ConfigureAwait(false);

            // docker pull leaves the image ready to run: unpack it (layers already unpacked are skipped).
            List<string> fetched;
            lock (reporter.Fetched) fetched = pulled.Manifest.Layers.Select(l => LayerProgressView.Id(l.ParsedDigest)).Where(reporter.Fetched.Contains).ToList();
            if (!q) foreach (string id in fetched) view.Update(id, "Extracting");
            await engine.Images.UnpackAsync(reference.ToString(), wanted, cancellationToken: ct).ConfigureAwait(false);
            if (!q)
            {
                foreach (string id in fetched) view.Update(id, "Pull complete");
                view.Finish();
                output.WriteLine($"Digest: {pulled.Target.Digest}");
                output.WriteLine(before == pulled.Target.Digest
                    ? $"Status: Image is up to date for {reference.FamiliarName}"
                    : $"Status: Downloaded newer image for {reference.FamiliarName}");
            }
            output.WriteLine(reference.ToString());
            return 0;
        });
        return command;
    }

    /// <summary><c>docker push NAME[:TAG]</c>.</summary>
    private static Command Push(string name)
    {
        var image = new Argument<string>("NAME[:TAG]");
        var quiet = QuietOption("suppress verbose output");
        var command = new Command(name, "Upload an image to a registry") { image, quiet };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            ImageReference reference = ImageReference.Parse(parse.GetValue(image)!);
            bool q = parse.GetValue(quiet);
            TextWriter output = Console.Out;
            // Resolve before printing, so an unknown image fails with docker's message alone.
            engine.Images.ResolveRecord(reference.ToString());
            if (!q) output.WriteLine($"The push refers to repository [{reference.Repository}]");
            var view = new LayerProgressView(output, IsTerminal(output));
            using var client = engine.CreateRegistryClient();
            var result = await engine.Images.PushAsync(client, reference.ToString(), reference.ToString(),
                new Berth.Images.Registry.PushOptions { Progress = q ? null : new PushReporter(view) }, ct).ConfigureAwait(false);
            if (!q)
            {
                view.Finish();
                output.WriteLine($"{reference.Reference}: digest: {result.Root.Digest} size: {result.Root.Size}");
            }
            else
            {
                output.WriteLine(reference.ToString());
            }
            return 0;
        });
        return command;
    }
}
