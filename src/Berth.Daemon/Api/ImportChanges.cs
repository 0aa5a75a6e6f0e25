using System.Text.Json;
using Berth.Images;
using Berth.Images.Manifests;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>docker import --change</c>: the Dockerfile instructions that only set config (CMD,
/// ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK), as dockerd accepts them.
/// </summary>
public static class ImportChanges
{
    public static ContainerConfig? Apply(IReadOnlyList<string> changes)
    {
        if (changes.Count == 0) return null;
        var config = new ContainerConfig();
        foreach (string change in changes)
        {
            string line = change.Trim();
            int space = line.IndexOfAny([' ', '\t']);
            string instruction = (space < 0 ? line : line[..space]).ToUpperInvariant();
            string args = space < 0 ? "" : line[(space + 1)..].Trim();
            config = instruction switch
            {
                "CMD" => config with { Cmd = Command(args, shell: true) },
                "ENTRYPOINT" => config with { Entrypoint = Command(args, shell: true) },
                "ENV" => config with { Env = [.. config.Env ?? [], .. Pairs(args, instruction).Select(p => $"{p.Key}={p.Value}")] },
                "LABEL" => config with { Labels = Merge(config.Labels, Pairs(args, instruction)) },
                "WORKDIR" => config with { WorkingDir = args },
                "USER" => config with { User = args },
                "STOPSIGNAL" => config with { StopSignal = args },
                "EXPOSE" => config with { ExposedPorts = MergeSet(config.ExposedPorts, args.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Contains('/') ? p : p + "/tcp")) },
                "VOLUME" => config with { Volumes = MergeSet(config.Volumes, Command(args, shell: false)) },
                "HEALTHCHECK" => config with { Healthcheck = Healthcheck(line) },
                _ => throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{instruction} is not a valid change command"),
            };
        }
        return config;
    }

    /// <summary>HEALTHCHECK [--interval=… --timeout=… --start-period=… --start-interval=… --retries=…] CMD …|NONE, parsed as the builder parses it.</summary>
    private static HealthConfig Healthcheck(string line)
    {
        try
        {
            if (Berth.Builder.Dockerfile.DockerfileParser.ParseTriggers([line], "change").SingleOrDefault() is Berth.Builder.Dockerfile.HealthcheckInstruction h)
                return Berth.Builder.ImageBuilder.HealthOf(h);
        }
        catch (Berth.Builder.Dockerfile.DockerfileException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, e.Message);
        }
        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid HEALTHCHECK change: {line}");
    }

    private static IReadOnlyList<string> Command(string args, bool shell)
    {
        if (args.StartsWith('['))
        {
            try
            {
                using JsonDocument doc = JsonDocument.Parse(args);
                return doc.RootElement.EnumerateArray().Select(e => e.GetString() ?? "").ToList();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                // Not valid JSON: Docker falls back to the shell form.
            }
        }
        return shell ? ["/bin/sh", "-c", args] : args.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    private static List<KeyValuePair<string, string>> Pairs(string args, string instruction)
    {
        var result = new List<KeyValuePair<string, string>>();
        if (!args.Contains('='))
        {
            int space = args.IndexOf(' ');
            if (space <= 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{instruction} requires a key and a value");
            result.Add(new(args[..space], args[(space + 1)..].Trim()));
            return result;
        }
        foreach (string pair in args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{instruction}: `{pair}` is not key=value");
            result.Add(new(pair[..eq], pair[(eq + 1)..].Trim('"')));
        }
        return result;
    }

    private static Dictionary<string, string> Merge(IReadOnlyDictionary<string, string>? existing, IEnumerable<KeyValuePair<string, string>> add)
    {
        var result = existing?.ToDictionary() ?? [];
        foreach (var (k, v) in add) result[k] = v;
        return result;
    }

    private static Dictionary<string, EmptyObject> MergeSet(IReadOnlyDictionary<string, EmptyObject>? existing, IEnumerable<string> add)
    {
        var result = existing?.ToDictionary() ?? [];
        foreach (string k in add) result[k] = new EmptyObject();
        return result;
    }
}
