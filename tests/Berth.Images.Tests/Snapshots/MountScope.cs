using Berth.Images.Snapshots;

namespace Berth.Images.Tests.Snapshots;

/// <summary>Mounts a snapshot on a fresh /tmp/berth-test-* directory; Dispose unmounts and removes it, even after a failure.</summary>
internal sealed class MountScope : IDisposable
{
    private readonly TempDirectory _dir = new("mnt");
    private bool _mounted;

    public MountScope(IReadOnlyList<Mount> mounts)
    {
        try
        {
            MountHelper.MountAll(mounts, _dir.Path);
            _mounted = true;
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    public string Path => _dir.Path;

    public string Combine(string relative) => System.IO.Path.Combine(_dir.Path, relative);

    public void Dispose()
    {
        if (_mounted)
        {
            MountHelper.Unmount(_dir.Path, detach: true);
            _mounted = false;
        }
        _dir.Dispose();
    }
}
