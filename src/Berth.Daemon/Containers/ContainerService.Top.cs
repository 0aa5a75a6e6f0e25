using System.Diagnostics;
using Berth.Daemon.Api;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>
    /// GET /containers/{id}/top: runs the host's <c>ps</c> with the given arguments and keeps the
    /// rows of the container's processes (its cgroup's PIDs), as dockerd does.
    /// </summary>
    public async Task<ContainerTopResponse> TopAsync(ContainerEntry entry, string psArgs)
    {
        HashSet<int> pids;
        try
        {
            pids = [.. ContainerStats.Manager(entry.Record).GetPids()];
        }
        catch (Exception e) when (e is Berth.Cgroups.CgroupException or IOException)
        {
            throw new ApiException(500, $"cannot list the processes of container {entry.Record.Id}: {e.Message}");
        }
        var psi = new ProcessStartInfo("ps") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in psArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries)) psi.ArgumentList.Add(a);
        using Process ps = Process.Start(psi) ?? throw new ApiException(500, "cannot run ps");
        using StreamReader outReader = ps.StandardOutput, errReader = ps.StandardError; // Process leaves them open (see MonitorProcess.LaunchAsync)
        Task<string> errors = errReader.ReadToEndAsync();
        string output = await outReader.ReadToEndAsync();
        await ps.WaitForExitAsync();
        // ps's first line says what is wrong; the rest is its usage text (dockerd keeps the first line too).
        if (ps.ExitCode != 0) throw new ApiException(500, $"ps: {(await errors).Trim().Split('\n')[0].Trim()}");
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) throw new ApiException(500, "ps printed nothing");
        string[] titles = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int pidColumn = Array.IndexOf(titles, "PID");
        if (pidColumn < 0) throw ApiException.BadRequest("Couldn't find PID field in ps output");
        var rows = new List<IReadOnlyList<string>>();
        foreach (string line in lines.Skip(1))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length <= pidColumn || !int.TryParse(fields[pidColumn], out int pid) || !pids.Contains(pid)) continue;
            // The last column (the command) keeps its spaces.
            var row = fields.Take(titles.Length - 1).ToList();
            row.Add(string.Join(' ', fields.Skip(titles.Length - 1)));
            rows.Add(row);
        }
        PublishEvent(entry.Record, "top");
        return new ContainerTopResponse(titles, rows);
    }
}
