using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cli.Client;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    /// <summary><c>docker logs [-f] [--since T] [--until T] [-n/--tail N] [-t] [--details] CONTAINER</c>.</summary>
    private static Command Logs()
    {
        var container = new Argument<string>("CONTAINER");
        var follow = new Option<bool>("--follow", "-f") { Description = "follow log output" };
        var since = new Option<string?>("--since") { Description = "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)" };
        var until = new Option<string?>("--until") { Description = "show logs before a timestamp or relative" };
        var tail = new Option<string>("--tail", "-n") { Description = "number of lines to show from the end of the logs", DefaultValueFactory = _ => "all" };
        var timestamps = new Option<bool>("--timestamps", "-t") { Description = "show timestamps" };
        var details = new Option<bool>("--details") { Description = "show extra details provided to logs" };
        var command = new Command("logs", "Fetch the logs of a container") { container, follow, since, until, tail, timestamps, details };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string name = parse.GetValue(container)!;
            JsonNode? inspect = await client.GetJsonAsync($"/containers/{name}/json", ct: ct).ConfigureAwait(false);
            bool tty = inspect?["Config"]?["Tty"]?.GetValue<bool>() ?? false;
            DateTimeOffset now = DateTimeOffset.UtcNow;
            var query = new Query().Add("stdout", true).Add("stderr", true)
                .Add("since", parse.GetValue(since) is { } s ? Timestamp(s, now) : null)
                .Add("until", parse.GetValue(until) is { } u ? Timestamp(u, now) : null)
                .Add("timestamps", parse.GetValue(timestamps)).Add("follow", parse.GetValue(follow))
                .Add("tail", parse.GetValue(tail)).Add("details", parse.GetValue(details));
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Get, $"/containers/{name}/logs", query, ct: ct,
                completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await Task.Factory.StartNew(() =>
            {
                if (tty) StdStreams.CopyRaw(StdStreams.Reader(body));
                else StdStreams.Demultiplex(StdStreams.Reader(body));
            }, TaskCreationOptions.LongRunning).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>docker's <c>timetypes.GetTimestamp</c>: a Go duration (<c>10m</c>, <c>1h30m</c>) before now, RFC 3339, a date, or Unix seconds as given.</summary>
    internal static string Timestamp(string value, DateTimeOffset now)
    {
        if (DurationPattern().Match(value) is { Success: true } m)
        {
            double seconds = 0;
            foreach (Capture c in m.Groups[1].Captures)
            {
                Match part = Regex.Match(c.Value, @"^([0-9.]+)(ns|us|µs|ms|s|m|h)$");
                double n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
                seconds += n * part.Groups[2].Value switch { "h" => 3600, "m" => 60, "s" => 1, "ms" => 1e-3, "us" or "µs" => 1e-6, _ => 1e-9 };
            }
            return Unix(now.AddSeconds(value.StartsWith('-') ? seconds : -seconds));
        }
        if (Regex.IsMatch(value, @"^\d+(\.\d+)?$")) return value;
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset t)) return Unix(t);
        throw new UsageException($"invalid value for \"since\": failed to parse value as time or duration: \"{value}\"");
    }

    private static string Unix(DateTimeOffset t)
    {
        long ticks = t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return $"{ticks / TimeSpan.TicksPerSecond}.{ticks % TimeSpan.TicksPerSecond * 100:D9}";
    }

    [GeneratedRegex(@"^[-+]?(?:([0-9.]+(?:ns|us|µs|ms|s|m|h)))+$")]
    private static partial Regex DurationPattern();
}
