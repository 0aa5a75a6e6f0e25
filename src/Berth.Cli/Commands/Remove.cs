using System.CommandLine;
using Berth.Cli.Output;
using Berth.Images.Store;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]</c>.</summary>
    private static Command Tag(string name)
    {
        var source = new Argument<string>("SOURCE_IMAGE[:TAG]");
        var target = new Argument<string>("TARGET_IMAGE[:TAG]");
        var command = new Command(name, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE") { source, target };
        Runner.SetEngineAction(command, (parse, engine, _) =>
        {
            engine.Images.Tag(parse.GetValue(source)!, parse.GetValue(target)!);
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>
    /// <c>docker rmi [-f] IMAGE…</c>: untags; an image that loses its last name is deleted, with its
    /// blobs and layer snapshots (a garbage collection, as docker removes the layers at once).
    /// </summary>
    private static Command Rmi(string name, string? alias = null)
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "force removal of the image" };
        var noPrune = new Option<bool>("--no-prune") { Description = "do not delete untagged parents" };
        var command = new Command(name, "Remove one or more images") { images, force, noPrune };
        if (alias is not null) command.Aliases.Add(alias);
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            int code = 0;
            bool deleted = false;
            foreach (string image in parse.GetValue(images)!)
            {
                try
                {
                    foreach (ImageRemoval r in engine.Images.Remove(image, parse.GetValue(force)))
                    {
                        if (r.Untagged is { } u) Console.Out.WriteLine($"Untagged: {u}");
                        if (r.Deleted is { } d)
                        {
                            Console.Out.WriteLine($"Deleted: {d}");
                            deleted = true;
                        }
                    }
                }
                catch (Exception e) when (e is Berth.Images.ImagesException)
                {
                    (string message, int c) = Runner.Describe(e);
                    Console.Out.Flush();
                    Console.Error.WriteLine("Error: " + message);
                    code = Math.Max(code, c);
                }
            }
            if (deleted)
            {
                GarbageCollectionResult gc = await engine.Images.CollectGarbageAsync(ct).ConfigureAwait(false);
                foreach (string s in gc.RemovedSnapshots) Console.Out.WriteLine($"Deleted: {s}");
            }
            return code;
        });
        return command;
    }

    /// <summary><c>docker image prune [-a] [-f]</c>: removes unnamed images (all images with -a) and every unreferenced blob and layer.</summary>
    private static Command Prune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "remove all unused images, not just dangling ones" };
        var force = new Option<bool>("--force", "-f") { Description = "do not prompt for confirmation" };
        var command = new Command("prune", "Remove unused images") { all, force };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            bool removeAll = parse.GetValue(all);
            if (!parse.GetValue(force))
            {
                Console.Out.WriteLine(removeAll
                    ? "WARNING! This will remove all images without at least one container associated to them."
                    : "WARNING! This will remove all dangling images.");
                Console.Out.Write("Are you sure you want to continue? [y/N] ");
                Console.Out.Flush();
                string? answer = Console.In.ReadLine();
                if (answer?.Trim().ToLowerInvariant() is not ("y" or "yes")) return 0;
            }
            var lines = new List<string>();
            if (removeAll)
            {
                // No containers exist without the daemon: every image is unused.
                foreach (ImageRecord record in engine.Images.References())
                    foreach (ImageRemoval r in engine.Images.Remove(record.Name, force: true))
                    {
                        if (r.Untagged is { } u) lines.Add($"untagged: {u}");
                        if (r.Deleted is { } d) lines.Add($"deleted: {d}");
                    }
            }
            GarbageCollectionResult gc = await engine.Images.CollectGarbageAsync(ct).ConfigureAwait(false);
            lines.AddRange(gc.RemovedSnapshots.Select(s => $"deleted: {s}"));
            if (lines.Count > 0)
            {
                Console.Out.WriteLine("Deleted Images:");
                foreach (string l in lines) Console.Out.WriteLine(l);
                Console.Out.WriteLine();
            }
            Console.Out.WriteLine($"Total reclaimed space: {Units.HumanSize(gc.ReclaimedBytes)}");
            return 0;
        });
        return command;
    }
}
