using System.CommandLine;
using System.Text.Json;
using Berth.Images;
using Berth.Images.Archive;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker save [-o FILE] IMAGE…</c>: a docker-save/OCI-layout tar to the file or stdout.</summary>
    private static Command Save(string name)
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "write to a file, instead of STDOUT" };
        var command = new Command(name, "Save one or more images to a tar archive (streamed to STDOUT by default)") { images, output };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            string[] names = parse.GetValue(images)!;
            foreach (string n in names) engine.Images.ResolveRecord(n); // "No such image" before creating the file
            if (parse.GetValue(output) is { } path)
            {
                // Written beside the target and renamed, so a failed save leaves no truncated archive.
                string temp = path + ".berth-tmp-" + Environment.ProcessId;
                try
                {
                    await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                        await ImageArchive.SaveAsync(engine.Images, names, file, ct).ConfigureAwait(false);
                    File.Move(temp, path, overwrite: true);
                }
                finally
                {
                    File.Delete(temp);
                }
            }
            else
            {
                if (!Console.IsOutputRedirected)
                    throw new UsageException("cowardly refusing to save to a terminal. Use the -o flag or redirect");
                await using Stream stdout = Console.OpenStandardOutput();
                await ImageArchive.SaveAsync(engine.Images, names, stdout, ct).ConfigureAwait(false);
            }
            return 0;
        });
        return command;
    }

    /// <summary><c>docker load [-i FILE] [-q]</c>: loads a docker-save or OCI-layout tar (plain or compressed) and unpacks its images.</summary>
    private static Command Load(string name)
    {
        var input = new Option<string?>("--input", "-i") { Description = "read from tar archive file, instead of STDIN" };
        var quiet = QuietOption("suppress the load output");
        var command = new Command(name, "Load an image from a tar archive or STDIN") { input, quiet };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            IReadOnlyList<string> loaded;
            await using (Stream source = parse.GetValue(input) is { } path ? File.OpenRead(path) : Console.OpenStandardInput())
            {
                try
                {
                    loaded = await ImageArchive.LoadAsync(engine.Images, source, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new ImagesException(ImagesErrorKind.InvalidArgument, $"archive: not a valid image archive: {e.Message}", e);
                }
            }
            foreach (string item in loaded)
            {
                await engine.Images.UnpackAsync(item, cancellationToken: ct).ConfigureAwait(false);
                Console.Out.WriteLine(item.StartsWith("sha256:", StringComparison.Ordinal)
                    ? $"Loaded image ID: {item}"
                    : $"Loaded image: {ImageReference.ParseNormalized(item).FamiliarName}");
            }
            return 0;
        });
        return command;
    }

    /// <summary><c>docker import [-c CHANGE] [-m MSG] [--platform P] FILE|- [REPOSITORY[:TAG]]</c>: a rootfs tar becomes a one-layer image.</summary>
    private static Command Import(string name)
    {
        var file = new Argument<string>("file|-");
        var reference = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var change = new Option<string[]>("--change", "-c") { Description = "apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)" };
        var message = new Option<string?>("--message", "-m") { Description = "set commit message for imported image" };
        var platform = new Option<string?>("--platform") { Description = "set platform (os[/arch[/variant]])" };
        var command = new Command(name, "Import the contents from a tarball to create a filesystem image") { file, reference, change, message, platform };
        Runner.SetEngineAction(command, async (parse, engine, ct) =>
        {
            string? target = parse.GetValue(reference);
            if (target is not null) ImageReference.Parse(target); // a bad name fails before reading the input
            ContainerConfig? config = ApplyChanges(parse.GetValue(change) ?? []);
            var options = new ImportOptions
            {
                Config = config,
                Message = parse.GetValue(message),
                Platform = parse.GetValue(platform) is { } p ? PlatformMatcher.Parse(p) : null,
            };
            string path = parse.GetValue(file)!;
            Image image;
            await using (Stream source = path == "-" ? Console.OpenStandardInput() : File.OpenRead(path))
            {
                try
                {
                    image = await ImageArchive.ImportAsync(engine.Images, source, target, options, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new ImagesException(ImagesErrorKind.InvalidArgument, $"import: not a valid tar archive: {e.Message}", e);
                }
            }
            // Unpacking checks the tar entry by entry: input that is no tar, or a hostile one, leaves no image.
            // An unnamed import cannot be resolved by the store (it keeps names only); it stays packed
            // and goes at the next garbage collection, as unnamed loaded images do.
            if (target is not null)
            {
                try
                {
                    await engine.Images.UnpackAsync(target, options.Platform, cancellationToken: ct).ConfigureAwait(false);
                }
                catch
                {
                    engine.Images.Remove(target, force: true);
                    await engine.Images.CollectGarbageAsync(CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
            }
            Console.Out.WriteLine(image.Id.Value);
            return 0;
        });
        return command;
    }

    /// <summary>The <c>--change</c> instructions <c>docker import</c> takes, applied to an empty config.</summary>
    private static ContainerConfig? ApplyChanges(IReadOnlyList<string> changes)
    {
        if (changes.Count == 0) return null;
        var config = new ContainerConfig();
        foreach (string change in changes)
        {
            string text = change.Trim();
            int space = text.IndexOfAny([' ', '\t']);
            if (space < 0) throw new UsageException($"--change: `{change}`: expected INSTRUCTION ARGUMENTS");
            string instruction = text[..space].ToUpperInvariant(), args = text[(space + 1)..].Trim();
            config = instruction switch
            {
                "CMD" => config with { Cmd = CommandForm(args) },
                "ENTRYPOINT" => config with { Entrypoint = CommandForm(args) },
                "ENV" => config with { Env = [.. config.Env ?? [], .. KeyValues(args, "ENV").Select(kv => $"{kv.Key}={kv.Value}")] },
                "LABEL" => config with { Labels = MergeLabels(config.Labels, KeyValues(args, "LABEL")) },
                "WORKDIR" => config with { WorkingDir = args },
                "USER" => config with { User = args },
                "STOPSIGNAL" => config with { StopSignal = args },
                "EXPOSE" => config with { ExposedPorts = MergeSet(config.ExposedPorts, args.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Contains('/') ? p : p + "/tcp")) },
                "VOLUME" => config with { Volumes = MergeSet(config.Volumes, args.StartsWith('[') ? JsonArray(args, "VOLUME") : args.Split(' ', StringSplitOptions.RemoveEmptyEntries)) },
                _ => throw new UsageException($"--change: {instruction} is not a valid change command"),
            };
        }
        return config;
    }

    private static IReadOnlyList<string> CommandForm(string args)
        => args.StartsWith('[') ? JsonArray(args, "CMD") : ["/bin/sh", "-c", args];

    private static IReadOnlyList<string> JsonArray(string text, string what)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new UsageException($"--change: {what}: expected a JSON array of strings");
            return doc.RootElement.EnumerateArray().Select(e => e.GetString()!).ToList();
        }
        catch (JsonException e)
        {
            throw new UsageException($"--change: {what}: {e.Message}");
        }
    }

    private static List<KeyValuePair<string, string>> KeyValues(string args, string what)
    {
        var result = new List<KeyValuePair<string, string>>();
        if (!args.Contains('='))
        {
            int space = args.IndexOf(' ');
            if (space < 0) throw new UsageException($"--change: {what} needs a value");
            result.Add(new(args[..space], args[(space + 1)..].Trim()));
            return result;
        }
        foreach (string pair in args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--change: {what}: `{pair}` is not KEY=VALUE");
            result.Add(new(pair[..eq], pair[(eq + 1)..].Trim('"')));
        }
        return result;
    }

    private static Dictionary<string, string> MergeLabels(IReadOnlyDictionary<string, string>? old, IEnumerable<KeyValuePair<string, string>> add)
    {
        var d = old is null ? new Dictionary<string, string>() : new Dictionary<string, string>(old);
        foreach (var kv in add) d[kv.Key] = kv.Value;
        return d;
    }

    private static Dictionary<string, EmptyObject> MergeSet(IReadOnlyDictionary<string, EmptyObject>? old, IEnumerable<string> add)
    {
        var d = old is null ? new Dictionary<string, EmptyObject>() : new Dictionary<string, EmptyObject>(old);
        foreach (string k in add) d[k] = new EmptyObject();
        return d;
    }
}
