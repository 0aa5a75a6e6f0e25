using System.CommandLine;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Images.References;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    /// <summary>
    /// <c>docker commit [-a AUTHOR] [-c CHANGE]... [-m MESSAGE] [-p=false] CONTAINER [REPOSITORY[:TAG]]</c>:
    /// <c>POST /commit</c>; prints the new image's ID.
    /// </summary>
    private static Command Commit()
    {
        var container = new Argument<string>("CONTAINER");
        var reference = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var author = new Option<string?>("--author", "-a") { Description = "author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")" };
        var change = new Option<string[]>("--change", "-c") { Description = "apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)" };
        var message = new Option<string?>("--message", "-m") { Description = "commit message" };
        var pause = new Option<bool>("--pause", "-p") { Description = "pause container during commit", DefaultValueFactory = _ => true };
        var command = new Command("commit", "Create a new image from a container's changes") { container, reference, author, change, message, pause };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var query = new Query().Add("container", parse.GetValue(container));
            if (parse.GetValue(reference) is { Length: > 0 } target)
            {
                // As docker's client: a digest cannot be a commit's name; a name alone gets :latest.
                ImageReference r = ImageReference.ParseNormalized(target);
                if (r.Digest is not null) throw new UsageException("refusing to create a tag with a digest reference");
                r = r.WithDefaultTag();
                query.Add("repo", ImageCommands.Repo(r)).Add("tag", r.Tag);
            }
            query.Add("comment", parse.GetValue(message)).Add("author", parse.GetValue(author)).Add("pause", parse.GetValue(pause), always: true);
            foreach (string c in parse.GetValue(change) ?? []) query.Add("changes", c);
            JsonNode? created = await client.PostJsonAsync("/commit", query, ct: ct).ConfigureAwait(false);
            Console.Out.WriteLine(created?["Id"]?.GetValue<string>() ?? throw new IOException("the daemon's commit answer has no Id"));
            return 0;
        });
        return command;
    }

    /// <summary><c>docker diff CONTAINER</c>: <c>GET /containers/{id}/changes</c>, one "C|A|D path" line each.</summary>
    private static Command Diff()
    {
        var container = new Argument<string>("CONTAINER");
        var command = new Command("diff", "Inspect changes to files or directories on a container's filesystem") { container };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonNode? changes = await client.GetJsonAsync($"/containers/{parse.GetValue(container)}/changes", ct: ct).ConfigureAwait(false);
            foreach (JsonNode? c in changes as JsonArray ?? [])
            {
                string kind = c?["Kind"]?.GetValue<int>() switch { 0 => "C", 1 => "A", 2 => "D", var k => throw new IOException($"the daemon's changes hold an unknown kind {k}") };
                Console.Out.WriteLine($"{kind} {c?["Path"]?.GetValue<string>()}");
            }
            return 0;
        });
        return command;
    }
}
