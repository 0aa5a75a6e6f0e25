using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Builder;
using Berth.Builder.Context;
using Berth.Daemon.Api;
using Berth.Daemon.Engine;

namespace Berth.Daemon.Build;

/// <summary>
/// <c>POST /build?remote=…</c>, as dockerd's builder/remotecontext Detect: a Git URL is cloned
/// (<c>#ref:subdir</c>, submodules), an http(s) URL is downloaded and taken as a tar (plain or
/// compressed) or, answered as text/plain, as a Dockerfile alone. Clones and downloads live under
/// the build's temp directory and go with the context, also when the build fails.
/// </summary>
public static partial class RemoteContext
{
    /// <summary>What the docker CLI sends for <c>--stream</c>, which the classic builder no longer serves.</summary>
    private const string ClientSessionRemote = "client-session";

    // dockerd's acceptableRemoteMIME: what a downloaded context may be.
    [GeneratedRegex(@"(?:application/(?:(?:x\-)?tar|octet\-stream|((?:x\-)?(?:gzip|bzip2?|xz)))|(?:text/plain))")]
    private static partial Regex AcceptableMime();

    /// <summary>
    /// The build context <paramref name="remote"/> names. <paramref name="downloaded"/> hears of a
    /// download's progress (bytes so far, and whether it is the last report).
    /// </summary>
    public static async Task<BuildContext> OpenAsync(string remote, string tempDirectory, string dockerfile, Action<long, bool>? downloaded, CancellationToken cancellationToken)
    {
        if (remote == ClientSessionRemote)
            throw ApiException.BadRequest("experimental session with v1 builder is no longer supported, use builder version v2 (BuildKit) instead");
        if (RemoteUrl.IsGitUrl(remote)) return await CloneAsync(remote, tempDirectory, dockerfile, cancellationToken);
        if (RemoteUrl.IsUrl(remote)) return await DownloadAsync(remote, tempDirectory, dockerfile, downloaded, cancellationToken);
        throw new ApiException(500, $"remoteURL ({remote}) could not be recognized as URL");
    }

    private static async Task<BuildContext> DownloadAsync(string url, string tempDirectory, string dockerfile, Action<long, bool>? downloaded, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await RemoteFetch.GetAsync(url, cancellationToken);
        }
        catch (ApiException e)
        {
            throw new ApiException(e.StatusCode, $"error downloading remote context {url}: {e.Message}", e);
        }
        using (response)
        {
            Stream body = await response.Content.ReadAsStreamAsync(cancellationToken);
            long? length = response.Content.Headers.ContentLength;
            string declared = response.Content.Headers.ContentType?.ToString() ?? "";
            // dockerd's inspectResponse: up to 100 bytes read to sniff what the server did not say.
            byte[] preamble = new byte[length is > 0 and < 100 ? (int)length : 100];
            int read = await body.ReadAtLeastAsync(preamble, preamble.Length, throwOnEndOfStream: false, cancellationToken);
            if (read == 0) throw new ApiException(500, $"error detecting content type for remote {url}: empty response");
            string contentType = declared.Length == 0 || declared == "application/octet-stream" ? ContentSniffer.Detect(preamble.AsSpan(0, read)) : declared;
            string acceptable = AcceptableMime().Match(contentType) is { Success: true } m ? m.Value : "";
            if (acceptable.Length == 0)
                throw new ApiException(500, $"error detecting content type for remote {url}: unsupported Content-Type \"{declared}\"");
            // As dockerd's progress reader: a report every 512 kB, and one when the body's end is read (a
            // Dockerfile is read to its end; a tar's reader stops at its end-of-archive blocks, before it).
            using var content = new ProgressReadStream(new Berth.Images.PrefixedStream(preamble.AsMemory(0, read), body), downloaded);
            if (acceptable == "text/plain")
            {
                // A Dockerfile alone: `dockerfile=` has nothing to name, as with dockerd.
                string text = await BlockingWork.RunAsync(() =>
                {
                    using var reader = new StreamReader(content, Encoding.UTF8, leaveOpen: true);
                    return reader.ReadToEnd();
                }, cancellationToken);
                return BuildContext.FromDockerfileText(text, tempDirectory);
            }
            try
            {
                return await BlockingWork.RunAsync(() => BuildContext.Extract(content, tempDirectory, dockerfile, cancellationToken), cancellationToken);
            }
            catch (BuildException e) when (IsDockerfileMissing(e))
            {
                throw new ApiException(500, $"Cannot locate specified Dockerfile: {dockerfile}", e);
            }
        }
    }

    /// <summary>The context has no such Dockerfile (BuildContext's error), which dockerd says in words of its own for a remote context.</summary>
    private static bool IsDockerfileMissing(BuildException e)
        => e.Kind == BuildErrorKind.NotFound && e.Message.StartsWith("Dockerfile `", StringComparison.Ordinal);

    // ---- git ------------------------------------------------------------------------------------

    /// <summary>A Git URL split as dockerd's gitutils parseRemoteURL: the remote, the ref (default master) and the context's subdirectory.</summary>
    public sealed record GitSource(string Remote, string Ref, string Subdirectory)
    {
        public static GitSource Parse(string url)
        {
            if (!RemoteUrl.IsUrl(url) && !url.StartsWith("git://", StringComparison.Ordinal) && !url.StartsWith("git@", StringComparison.Ordinal))
                url = "https://" + url; // github.com/…
            int hash = url.IndexOf('#');
            string remote = hash < 0 ? url : url[..hash];
            string fragment = hash < 0 ? "" : url[(hash + 1)..];
            string[] refAndDirectory = fragment.Split(':', 2);
            string reference = refAndDirectory[0].Length > 0 ? refAndDirectory[0] : "master";
            string subdirectory = refAndDirectory.Length > 1 ? refAndDirectory[1] : "";
            if (reference.StartsWith('-')) throw new ApiException(500, $"invalid refspec: {reference}");
            return new GitSource(remote, reference, subdirectory);
        }
    }

    private static async Task<BuildContext> CloneAsync(string url, string tempDirectory, string dockerfile, CancellationToken cancellationToken)
    {
        GitSource source = GitSource.Parse(url);
        Directory.CreateDirectory(tempDirectory);
        string root = Path.Combine(tempDirectory, "git-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(root);
        try
        {
            // dockerd's cloneGitRepo, step by step: a fetch of the one ref (shallow where the server allows),
            // checkout by name (a branch) or of what was fetched (a tag, a commit), then the submodules.
            await GitAsync(root, "failed to init repo at " + root, cancellationToken, "init");
            await GitAsync(root, $"failed add origin repo at {source.Remote}", cancellationToken, "remote", "add", "origin", source.Remote);
            string[] fetch = await SupportsShallowCloneAsync(source.Remote, cancellationToken)
                ? ["fetch", "--depth", "1", "origin", "--", source.Ref]
                : ["fetch", "origin", "--", source.Ref];
            await GitAsync(root, "error fetching", cancellationToken, fetch);
            (int checkout, string checkoutOutput) = await RunGitAsync(root, cancellationToken, "checkout", source.Ref);
            if (checkout != 0 && (await RunGitAsync(root, cancellationToken, "checkout", "FETCH_HEAD")).ExitCode != 0)
                throw new ApiException(500, $"error checking out {source.Ref}: {checkoutOutput}: exit status {checkout}");
            await GitAsync(root, "error initializing submodules", cancellationToken, "submodule", "update", "--init", "--recursive", "--depth=1");
        }
        catch
        {
            RemoveClone(root);
            throw;
        }
        try
        {
            return await BlockingWork.RunAsync(() => BuildContext.Adopt(root, source.Subdirectory, dockerfile, "git"), cancellationToken);
        }
        catch (BuildException e)
        {
            // Before any output, as dockerd: a plain error status (a subdirectory that is not there, no Dockerfile).
            throw new ApiException(500, IsDockerfileMissing(e) ? $"Cannot locate specified Dockerfile: {dockerfile}" : e.Message, e);
        }
    }

    private static void RemoveClone(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the builder's cleanup of its temp directory at the next start.
        }
    }

    /// <summary>dockerd's supportsShallowClone: any non-HTTP transport, or an HTTP server answering git-upload-pack's advertisement (a smart server).</summary>
    private static async Task<bool> SupportsShallowCloneAsync(string remote, CancellationToken cancellationToken)
    {
        if (!RemoteUrl.IsUrl(remote)) return true;
        try
        {
            using HttpResponseMessage response = await RemoteFetch.GetAsync(remote + "/info/refs?service=git-upload-pack", cancellationToken);
            return (int)response.StatusCode == 200 && response.Content.Headers.ContentType?.MediaType == "application/x-git-upload-pack-advertisement";
        }
        catch (ApiException)
        {
            return false;
        }
    }

    private static async Task GitAsync(string root, string failure, CancellationToken cancellationToken, params string[] args)
    {
        (int exitCode, string output) = await RunGitAsync(root, cancellationToken, args);
        // As dockerd's errors.Wrapf(err, "…: %s", output): git's output as it is, its newline included.
        if (exitCode != 0) throw new ApiException(500, $"{failure}: {output}: exit status {exitCode}");
    }

    /// <summary>git with the clone as its work tree, its output (stdout and stderr) gathered; it never prompts for credentials.</summary>
    private static async Task<(int ExitCode, string Output)> RunGitAsync(string root, CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("git")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])["--work-tree", root, "--git-dir", Path.Combine(root, ".git"), .. args]) start.ArgumentList.Add(arg);
        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ApiException(500, "cannot start git");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ApiException(500, $"exec: \"git\": executable file not found in $PATH ({e.Message}): berthd needs git to build from a Git URL", e);
        }
        using (process)
        {
            process.StandardInput.Close();
            var output = new StringBuilder();
            Task stdout = PumpAsync(process.StandardOutput, output);
            Task stderr = PumpAsync(process.StandardError, output);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            await Task.WhenAll(stdout, stderr);
            return (process.ExitCode, output.ToString());
        }
    }

    private static async Task PumpAsync(StreamReader reader, StringBuilder output)
    {
        string text = await reader.ReadToEndAsync();
        lock (output) output.Append(text);
    }
}
