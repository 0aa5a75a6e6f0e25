using System.IO.Pipelines;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.Registry;
using Berth.Images.Snapshots;

namespace Berth.Images.Store;

/// <summary>
/// A layer unpacked while it downloads: the bytes the registry client passes on go through a
/// bounded pipe into <see cref="LayerApplier"/> on a thread of its own, writing into an active
/// snapshot. Nothing is committed until the download is finished complete (the content store has
/// verified every byte against the layer's digest) and the uncompressed stream matches the diffID;
/// otherwise the snapshot is removed and the layer is unpacked from the store afterwards, as
/// without streaming, which reports any error in it then. The applier treats the bytes as hostile
/// either way (a verified layer can be hostile too), so applying them before verification writes
/// nothing outside the snapshot.
/// </summary>
internal sealed class StreamedLayerUnpack : IBlobSink
{
    // Backpressure: a download faster than the disk waits instead of filling memory.
    private static readonly PipeOptions Options = new(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20, useSynchronizationContext: false);

    private readonly ISnapshotter _snapshotter;
    private readonly Descriptor _layer;
    private readonly Digest _diffId;
    private readonly string _name;
    private readonly string _key;
    private readonly Pipe _pipe = new(Options);
    private readonly Task<LayerApplyResult> _apply;
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Prepares the snapshot <paramref name="key"/> on <paramref name="parent"/> and starts applying into it.</summary>
    public StreamedLayerUnpack(ISnapshotter snapshotter, Descriptor layer, Digest diffId, string name, string key, string? parent, LayerApplyOptions? options)
    {
        _snapshotter = snapshotter;
        _layer = layer;
        _diffId = diffId;
        _name = name;
        _key = key;
        string dir = MountHelper.WritableDirectory(snapshotter.Prepare(key, parent, new Dictionary<string, string> { ["berth.io/unpack"] = name }));
        // A thread of its own: the applier reads synchronously and would block a pool thread for as
        // long as the download lasts.
        _apply = Task.Factory.StartNew(() =>
        {
            try
            {
                using Stream input = _pipe.Reader.AsStream();
                return LayerApplier.Apply(input, dir, options);
            }
            finally
            {
                _pipe.Reader.Complete(); // a writer waiting on a full pipe is released
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public Digest Layer => _layer.ParsedDigest;

    public async ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_apply.IsCompleted) return false; // failed (or ended early): the store-side unpack will say why
        FlushResult result = await _pipe.Writer.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        return !result.IsCompleted;
    }

    public void Finish(bool complete)
    {
        if (!_finished.TrySetResult(complete)) return;
        // A writer completed with an error makes the applier's next read throw: an unfinished
        // stream is never taken for a short layer.
        _pipe.Writer.Complete(complete ? null : new OperationCanceledException("the layer's download did not complete"));
    }

    /// <summary>
    /// Waits for the download's outcome and the applier; commits the snapshot as <c>name</c> and
    /// returns what the applier found when both succeeded and the diffID matches, otherwise removes
    /// it and returns null.
    /// </summary>
    public async Task<LayerApplyResult?> CompleteAsync(IProgress<UnpackProgress>? progress)
    {
        bool complete = await _finished.Task.ConfigureAwait(false);
        LayerApplyResult? result;
        try
        {
            result = await _apply.ConfigureAwait(false);
        }
        catch (Exception) // hostile or broken layer, abandoned download: the snapshot goes, the layer is unpacked again from the store
        {
            result = null;
        }
        if (complete && result is not null && result.DiffId == _diffId)
        {
            try
            {
                progress?.Report(new UnpackProgress(Layer, _layer.Size, _layer.Size, Done: false));
                _snapshotter.Commit(_name, _key, new Dictionary<string, string> { ["berth.io/diff-id"] = _diffId.Value, ["berth.io/layer"] = _layer.Digest });
                progress?.Report(new UnpackProgress(Layer, _layer.Size, _layer.Size, Done: true));
                return result;
            }
            catch (ImagesException)
            {
                // Not committed (disk full, …): removed below; the unpack from the store tries again and reports what fails.
            }
        }
        try
        {
            _snapshotter.Remove(_key);
        }
        catch (ImagesException)
        {
        }
        return null;
    }
}
