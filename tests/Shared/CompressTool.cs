using System.Diagnostics;

namespace Berth.Tests.Shared;

/// <summary>Compresses with a Debian tool (xz, bzip2, gzip…), as a user's archive would be made.</summary>
internal static class CompressTool
{
    /// <summary><paramref name="data"/> through `<paramref name="tool"/> -c`; a tool that fails throws.</summary>
    public static byte[] Compress(string tool, byte[] data)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        using Process p = Process.Start(start)!;
        // Read while writing: a compressor's output fills its pipe before it has read all of its input.
        Task<byte[]> output = Task.Run(() =>
        {
            using var buffer = new MemoryStream();
            p.StandardOutput.BaseStream.CopyTo(buffer);
            return buffer.ToArray();
        });
        p.StandardInput.BaseStream.Write(data);
        p.StandardInput.Close();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} -c exited with {p.ExitCode}");
        return output.Result;
    }
}
