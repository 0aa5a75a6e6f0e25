namespace Berth.Daemon.Hosting;

/// <summary>The PID file: written atomically (temp, fsync, rename) at start, removed at a clean stop.</summary>
public sealed class PidFile : IDisposable
{
    private PidFile(string path) => Path = path;

    public string Path { get; }

    public static PidFile Write(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        Engine.DurableFile.Write(path, System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId + "\n"));
        return new PidFile(path);
    }

    public void Dispose()
    {
        try
        {
            // Only remove it if it is still ours (a later daemon may have replaced it after a crash of this one).
            if (File.Exists(Path) && File.ReadAllText(Path).Trim() == Environment.ProcessId.ToString())
                File.Delete(Path);
        }
        catch (IOException)
        {
        }
    }
}
