using System.CommandLine;
using System.Net.Http;
using Berth.Cli.Client;
using Berth.Images;

namespace Berth.Cli.Commands;

/// <summary>
/// Runs a command's body with Docker's error conventions: one line on stderr, never a stack trace.
/// Errors the daemon answered are <c>Error response from daemon: …</c>; others the bare message,
/// as docker's main prints them.
/// Exit 1 for what cannot be done (docker exits 1 for every error but a command line that does not
/// parse), 125 for a command line that does not parse and for unexpected failures of the client; <c>run</c>/<c>create</c>
/// use <see cref="ContainerFailure"/> instead (125, <c>berth: …</c>, as docker run does).
/// </summary>
internal static class Runner
{
    /// <summary>
    /// One request per name, printing what <paramref name="action"/> returns (if anything) on success
    /// and docker's error line otherwise; exit 1 if any failed (docker's stop, kill, rm, rmi, volume
    /// rm, network rm …).
    /// </summary>
    public static async Task<int> ForEachAsync(IEnumerable<string> names, Func<string, Task<string?>> action)
    {
        int code = 0;
        foreach (string name in names)
        {
            try
            {
                if (await action(name).ConfigureAwait(false) is { } line) Console.Out.WriteLine(line);
            }
            catch (DaemonException e)
            {
                Console.Out.Flush();
                Console.Error.WriteLine(Describe(e).Message);
                code = Failure;
            }
        }
        return code;
    }

    public const int Failure = 1;

    public static void SetAction(Command command, Func<ParseResult, CancellationToken, Task<int>> body)
        => command.SetAction(async (parse, ct) => await RunAsync(parse, ct, body).ConfigureAwait(false));

    public static void SetClientAction(Command command, Func<ParseResult, DaemonClient, CancellationToken, Task<int>> body)
        => SetAction(command, async (parse, ct) =>
        {
            using var client = new DaemonClient(DaemonClient.ResolveHost(parse.GetValue(Program.HostOption)));
            return await body(parse, client, ct).ConfigureAwait(false);
        });

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        try
        {
            return await body(parse, ct).ConfigureAwait(false);
        }
        catch (ExitException e)
        {
            return e.Code;
        }
        catch (Exception e)
        {
            (string message, int code) = Describe(e);
            Console.Out.Flush();
            Console.Error.WriteLine(message);
            return code;
        }
    }

    public static (string Message, int Code) Describe(Exception e) => e switch
    {
        DaemonException x => ("Error response from daemon: " + OneLine(x.Message), Failure),
        DaemonUnreachableException x => (x.Message, Failure),
        StreamErrorException x => (OneLine(x.Message), x.Code > 0 ? x.Code : Failure),
        OperationCanceledException => ("operation canceled", Failure),
        ImagesException x => (OneLine(x.Message), Failure),
        FormatException x => (OneLine(x.Message), Failure),
        UsageException x => (OneLine(x.Message), Failure),
        HttpRequestException x => (OneLine(x.InnerException is { } inner ? $"{x.Message} ({inner.Message})" : x.Message), Failure),
        FileNotFoundException x => (OneLine(x.FileName is { } f ? $"open {f}: no such file or directory" : x.Message), Failure),
        DirectoryNotFoundException x => (OneLine(x.Message), Failure),
        UnauthorizedAccessException x => (OneLine(x.Message), Failure),
        IOException x => (OneLine(x.Message), Failure),
        _ => (OneLine($"{e.GetType().Name}: {e.Message}"), Program.UsageOrEngineError),
    };

    /// <summary>docker run/create's way of failing: <c>berth: &lt;error&gt;</c>, <c>See 'berth run --help'.</c>, exit 125 (126/127 when the command cannot be run).</summary>
    public static ExitException ContainerFailure(string command, Exception e, int code = Program.UsageOrEngineError)
    {
        string message = e switch
        {
            DaemonException x => "Error response from daemon: " + OneLine(x.Message),
            DaemonUnreachableException x => x.Message,
            _ => Describe(e).Message,
        };
        Console.Out.Flush();
        Console.Error.WriteLine($"berth: {message}");
        Console.Error.WriteLine($"See 'berth {command} --help'.");
        return new ExitException(code);
    }

    /// <summary>Prints <paramref name="message"/> as docker's errors are printed and ends the command with <paramref name="code"/>.</summary>
    public static ExitException Fail(string message, int code = Failure)
    {
        Console.Out.Flush();
        Console.Error.WriteLine(message);
        return new ExitException(code);
    }

    public static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}

/// <summary>A command line that is well-formed but asks for something the command does not take.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Ends the command with this exit code (the message, if any, is already printed).</summary>
internal sealed class ExitException(int code) : Exception($"exit {code}")
{
    public int Code { get; } = code;
}
