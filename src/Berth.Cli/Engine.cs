using System.Runtime.InteropServices;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Images.Store;

namespace Berth.Cli;

/// <summary>
/// The image engine opened in-process on a data root:
/// <code>
/// &lt;data-root&gt;/content/             blobs (FileContentStore)
/// &lt;data-root&gt;/snapshots/overlayfs/  layer snapshots (OverlaySnapshotter)
/// &lt;data-root&gt;/images/              names (references.json) and spool files
/// &lt;data-root&gt;/berth.lock           held (flock, blocking) for the whole command
/// </code>
/// Concurrency: the image store serialises garbage collection against pulls only inside one
/// process, and the snapshotter refuses a second opener. So every berth command takes an exclusive
/// lock on the data root first and waits for it: two commands on one data root run one after the
/// other, as they would through one daemon. This is the in-process stand-in for berthd.
/// </summary>
internal sealed partial class Engine : IDisposable
{
    public const string DefaultDataRoot = "/var/lib/berth";

    private readonly int _lockFd;
    private readonly OverlaySnapshotter _snapshotter;

    private Engine(string dataRoot, IReadOnlyCollection<string> insecureRegistries)
    {
        DataRoot = Path.GetFullPath(dataRoot);
        InsecureRegistries = insecureRegistries;
        Directory.CreateDirectory(DataRoot);
        string lockPath = Path.Combine(DataRoot, "berth.lock");
        _lockFd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0x180);
        if (_lockFd < 0) throw new NativeCallException(Marshal.GetLastPInvokeError(), "open", lockPath);
        while (flock(_lockFd, LOCK_EX) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                close(_lockFd);
                throw new NativeCallException(errno, "flock", lockPath);
            }
        }
        try
        {
            var content = new FileContentStore(Path.Combine(DataRoot, "content"));
            _snapshotter = new OverlaySnapshotter(Path.Combine(DataRoot, "snapshots", "overlayfs"));
            Images = new ImageStore(Path.Combine(DataRoot, "images"), content, _snapshotter);
        }
        catch
        {
            _snapshotter?.Dispose();
            close(_lockFd);
            throw;
        }
    }

    public string DataRoot { get; }
    public IReadOnlyCollection<string> InsecureRegistries { get; }
    public ImageStore Images { get; }

    public static Engine Open(System.CommandLine.ParseResult parse)
        => new(parse.GetValue(Program.DataRootOption) ?? DefaultDataRoot, parse.GetValue(Program.InsecureRegistryOption) ?? []);

    public RegistryClient CreateRegistryClient() => new(new RegistryClientOptions { InsecureRegistries = InsecureRegistries });

    public void Dispose()
    {
        _snapshotter.Dispose();
        close(_lockFd);
    }

    private const int O_RDWR = 0x2, O_CREAT = 0x40, O_CLOEXEC = 0x80000, LOCK_EX = 2, EINTR = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
