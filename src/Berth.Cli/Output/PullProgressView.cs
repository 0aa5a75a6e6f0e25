using System.Text;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.Registry;

namespace Berth.Cli.Output;

/// <summary>
/// docker pull's and docker push's per-layer lines. On a terminal each layer keeps one line that is
/// redrawn in place (cursor up, erase line) with a progress bar; otherwise a plain line is written
/// each time a layer changes status (never for byte counts), as docker does when its output is piped.
/// Reports arrive on transfer threads; everything here runs under one lock.
/// </summary>
internal sealed class LayerProgressView
{
    private readonly TextWriter _out;
    private readonly bool _tty;
    private readonly object _gate = new();
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (string Status, string Detail)> _lines = new(StringComparer.Ordinal);
    private int _drawn;
    private long _lastDraw;

    public LayerProgressView(TextWriter output, bool tty)
    {
        _out = output;
        _tty = tty;
    }

    public static string Id(Digest digest) => digest.Hex[..12];

    /// <summary>Sets a layer's status; <paramref name="detail"/> (a progress bar) is shown on terminals only.</summary>
    public void Update(string id, string status, string detail = "", bool force = false)
    {
        lock (_gate)
        {
            bool known = _lines.TryGetValue(id, out var old);
            if (!known) _order.Add(id);
            bool statusChanged = !known || old.Status != status;
            _lines[id] = (status, detail);
            if (!_tty)
            {
                if (statusChanged) _out.WriteLine($"{id}: {status}");
                return;
            }
            // Byte-count redraws are throttled; status changes draw at once.
            long now = Environment.TickCount64;
            if (!statusChanged && !force && now - _lastDraw < 100) return;
            _lastDraw = now;
            Redraw();
        }
    }

    /// <summary>Writes a line below the layer lines (and forgets them: later updates no longer redraw).</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_tty) Redraw();
            _out.Flush();
        }
    }

    private void Redraw()
    {
        var sb = new StringBuilder();
        if (_drawn > 0) sb.Append($"\x1b[{_drawn}A");
        foreach (string id in _order)
        {
            var (status, detail) = _lines[id];
            sb.Append("\x1b[2K\r").Append(id).Append(": ").Append(status);
            if (detail.Length > 0) sb.Append(' ').Append(detail);
            sb.Append('\n');
        }
        _drawn = _order.Count;
        _out.Write(sb.ToString());
        _out.Flush();
    }

    /// <summary>docker's progress bar: <c>[=====&gt;      ]  1.2MB/2.3MB</c>.</summary>
    public static string Bar(long current, long total)
    {
        if (total <= 0) return Units.HumanSize(current);
        const int width = 50;
        int filled = (int)Math.Clamp(current * width / total, 0, width);
        string bar = filled >= width ? new string('=', width) : new string('=', filled) + ">" + new string(' ', width - filled - 1);
        return $"[{bar}] {Units.HumanSize(current),8}/{Units.HumanSize(total)}";
    }
}

/// <summary>Pull reports → layer lines (the config blob is not shown, as in docker).</summary>
internal sealed class PullReporter(LayerProgressView view, Func<Digest, bool> present) : IProgress<PullProgress>
{
    public HashSet<string> Fetched { get; } = new(StringComparer.Ordinal);

    public void Report(PullProgress p)
    {
        if (!MediaTypes.IsLayer(p.MediaType)) return;
        string id = LayerProgressView.Id(p.Digest);
        switch (p.State)
        {
            case PullState.Waiting: view.Update(id, present(p.Digest) ? "Already exists" : "Pulling fs layer"); break;
            case PullState.Downloading: view.Update(id, "Downloading", LayerProgressView.Bar(p.Current, p.Total)); break;
            case PullState.Complete:
                lock (Fetched) Fetched.Add(id);
                view.Update(id, "Download complete");
                break;
            case PullState.AlreadyExists: view.Update(id, "Already exists"); break;
            case PullState.Failed: view.Update(id, "Download failed"); break;
        }
    }
}

/// <summary>Push reports → layer lines.</summary>
internal sealed class PushReporter(LayerProgressView view) : IProgress<PushProgress>
{
    public void Report(PushProgress p)
    {
        if (!MediaTypes.IsLayer(p.MediaType)) return;
        string id = LayerProgressView.Id(p.Digest);
        switch (p.State)
        {
            case PushState.Waiting: view.Update(id, "Preparing"); break;
            case PushState.Uploading: view.Update(id, "Pushing", LayerProgressView.Bar(p.Current, p.Total)); break;
            case PushState.Pushed: view.Update(id, "Pushed"); break;
            case PushState.AlreadyExists: view.Update(id, "Layer already exists"); break;
            case PushState.Mounted: view.Update(id, "Mounted from another repository"); break;
            case PushState.Failed: view.Update(id, "Push failed"); break;
        }
    }
}
