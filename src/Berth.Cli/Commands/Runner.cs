using System.CommandLine;
using System.Net.Http;
using Berth.Images;

namespace Berth.Cli.Commands;

/// <summary>
/// Runs a command's body with Docker's error conventions: one line <c>Error: …</c> on stderr, never a
/// stack trace. Exit 1 for what the user asked that cannot be done (no such image, a bad reference,
/// a digest mismatch, a malformed archive, registry refusals), as docker's image commands exit;
/// 125 for a failure of the engine itself (an unexpected error) and for a command line that does not parse.
/// </summary>
internal static class Runner
{
    public const int Failure = 1;

    public static void SetAction(Command command, Func<ParseResult, CancellationToken, Task<int>> body)
        => command.SetAction(async (parse, ct) => await RunAsync(parse, ct, body).ConfigureAwait(false));

    public static void SetEngineAction(Command command, Func<ParseResult, Engine, CancellationToken, Task<int>> body)
        => SetAction(command, async (parse, ct) =>
        {
            using Engine engine = Engine.Open(parse);
            return await body(parse, engine, ct).ConfigureAwait(false);
        });

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        try
        {
            return await body(parse, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            (string message, int code) = Describe(e);
            Console.Out.Flush();
            Console.Error.WriteLine("Error: " + message);
            return code;
        }
    }

    public static (string Message, int Code) Describe(Exception e) => e switch
    {
        OperationCanceledException => ("operation canceled", Failure),
        ImagesException { Kind: ImagesErrorKind.Internal } x => (OneLine(x.Message), Program.UsageOrEngineError),
        ImagesException x => (OneLine(x.Message), Failure),
        FormatException x => (OneLine(x.Message), Program.UsageOrEngineError),
        UsageException x => (OneLine(x.Message), Program.UsageOrEngineError),
        HttpRequestException x => (OneLine(x.InnerException is { } inner ? $"{x.Message} ({inner.Message})" : x.Message), Failure),
        FileNotFoundException x => (OneLine(x.FileName is { } f ? $"open {f}: no such file or directory" : x.Message), Failure),
        DirectoryNotFoundException x => (OneLine(x.Message), Failure),
        UnauthorizedAccessException x => (OneLine(x.Message), Failure),
        IOException x => (OneLine(x.Message), Program.UsageOrEngineError),
        _ => (OneLine($"{e.GetType().Name}: {e.Message}"), Program.UsageOrEngineError),
    };

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}

/// <summary>A command line that is well-formed but asks for something the command does not take.</summary>
internal sealed class UsageException(string message) : Exception(message);
