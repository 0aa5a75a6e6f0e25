using System.Globalization;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>
    /// A container event with dockerd's actor attributes (daemon.LogContainerEventWithAttributes):
    /// the container's labels, <c>image</c> (the name it was created from) and <c>name</c>, then
    /// the event's own attributes (<c>exitCode</c>, <c>signal</c>, <c>execID</c>, …).
    /// </summary>
    public void PublishEvent(ContainerRecord r, string action, params ReadOnlySpan<(string Key, string Value)> extra)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in r.Config.Labels ?? []) attributes[k] = v;
        attributes["image"] = string.IsNullOrEmpty(r.Config.Image) ? r.ImageId : r.Config.Image;
        attributes["name"] = r.Name.TrimStart('/');
        foreach (var (k, v) in extra) attributes[k] = v;
        Events.Publish("container", action, r.Id, attributes);
    }

    /// <summary>dockerd's die attributes: the exit code and how long the process ran, in whole seconds.</summary>
    private void PublishDie(ContainerRecord r)
    {
        long seconds = DateTimeOffset.TryParse(r.State.StartedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset started)
            && DateTimeOffset.TryParse(r.State.FinishedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset finished)
            && finished > started ? (long)(finished - started).TotalSeconds : 0;
        PublishEvent(r, "die", ("exitCode", r.State.ExitCode.ToString(CultureInfo.InvariantCulture)), ("execDuration", seconds.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// dockerd's exec actions carry the command as entrypoint, a space, then the arguments
    /// (<c>exec_create: sh -c date</c>), so a command without arguments ends in a space: <c>exec_create: true </c>.
    /// </summary>
    private static string ExecAction(string action, ExecInstance exec)
    {
        List<string> cmd = exec.Config.Cmd ?? [];
        return $"{action}: {cmd.FirstOrDefault() ?? ""} {string.Join(' ', cmd.Skip(1))}";
    }

    /// <summary>The kill event's <c>signal</c> attribute is the number, as dockerd writes it.</summary>
    internal static string SignalNumber(string signal)
    {
        string s = (signal.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? signal[3..] : signal).ToUpperInvariant();
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n.ToString(CultureInfo.InvariantCulture);
        int number = s switch
        {
            "HUP" => 1, "INT" => 2, "QUIT" => 3, "ILL" => 4, "TRAP" => 5, "ABRT" or "IOT" => 6, "BUS" => 7, "FPE" => 8, "KILL" => 9,
            "USR1" => 10, "SEGV" => 11, "USR2" => 12, "PIPE" => 13, "ALRM" => 14, "TERM" => 15, "STKFLT" => 16, "CHLD" => 17,
            "CONT" => 18, "STOP" => 19, "TSTP" => 20, "TTIN" => 21, "TTOU" => 22, "URG" => 23, "XCPU" => 24, "XFSZ" => 25,
            "VTALRM" => 26, "PROF" => 27, "WINCH" => 28, "IO" or "POLL" => 29, "PWR" => 30, "SYS" => 31,
            _ when s.StartsWith("RTMIN+", StringComparison.Ordinal) && int.TryParse(s[6..], CultureInfo.InvariantCulture, out int k) => 34 + k,
            _ when s.StartsWith("RTMAX-", StringComparison.Ordinal) && int.TryParse(s[6..], CultureInfo.InvariantCulture, out int k) => 64 - k,
            "RTMIN" => 34, "RTMAX" => 64,
            _ => 0,
        };
        return number > 0 ? number.ToString(CultureInfo.InvariantCulture) : s;
    }
}
