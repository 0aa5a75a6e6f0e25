using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Berth.Daemon.Api;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's syslog logging driver (moby daemon/logger/syslog): berth-monitor sends every entry to
/// the syslog the options name, formatted as dockerd's srslog formats it, and keeps dockerd's
/// dual-logging cache beside it (the local format in <c>container-cached-logs/</c>), so that
/// <c>docker logs</c> still reads the container's output, unless <c>cache-disabled</c>.
/// Options, checked as dockerd checks them: <c>syslog-address</c> (<c>unix://</c> and <c>unixgram://</c>
/// paths, <c>udp://</c> and <c>tcp://</c> host and port, 514 when left out; empty: the first of /dev/log,
/// /var/run/syslog, /var/run/log), <c>syslog-facility</c> (a name or code; daemon by default),
/// <c>syslog-format</c> (rfc3164, rfc5424, rfc5424micro; empty: rfc3164 without the hostname, srslog's
/// unix format), <c>tag</c> (a template of <c>{{.ID}}</c>, <c>{{.FullID}}</c>, <c>{{.Name}}</c>,
/// <c>{{.ImageID}}</c>, <c>{{.ImageFullID}}</c>, <c>{{.ImageName}}</c>, <c>{{.DaemonName}}</c>; <c>{{.ID}}</c> by default),
/// <c>labels</c>, <c>labels-regex</c>, <c>env</c>, <c>env-regex</c> (taken; syslog messages carry no
/// attributes), and the cache's <c>cache-disabled</c>, <c>cache-max-size</c>, <c>cache-max-file</c>,
/// <c>cache-compress</c>. Over TLS (<c>tcp+tls://</c>): <c>syslog-tls-ca-cert</c>, <c>syslog-tls-cert</c>,
/// <c>syslog-tls-key</c> (PEM files, read by berth-monitor at each start, as dockerd reads them when the
/// logger starts) and <c>syslog-tls-skip-verify</c> (as in dockerd, its presence skips the check, whatever
/// its value); the server's certificate must name the address's host; rfc5424 messages get RFC 5425's
/// length prefix. The TLS options are ignored for other schemes, as dockerd ignores them.
/// </summary>
public static partial class SyslogDriver
{
    public const string Name = "syslog";

    /// <summary>Where srslog looks for the local syslog when no address is given, in order.</summary>
    private static readonly string[] LocalSockets = ["/dev/log", "/var/run/syslog", "/var/run/log"];

    private static readonly Dictionary<string, int> Facilities = new(StringComparer.Ordinal)
    {
        ["kern"] = 0, ["user"] = 1, ["mail"] = 2, ["daemon"] = 3, ["auth"] = 4, ["syslog"] = 5, ["lpr"] = 6, ["news"] = 7,
        ["uucp"] = 8, ["cron"] = 9, ["authpriv"] = 10, ["ftp"] = 11,
        ["local0"] = 16, ["local1"] = 17, ["local2"] = 18, ["local3"] = 19, ["local4"] = 20, ["local5"] = 21, ["local6"] = 22, ["local7"] = 23,
    };

    /// <summary>The first error in the options, in dockerd's words where it has them; null when they are good.</summary>
    public static string? Check(IReadOnlyDictionary<string, string> options)
    {
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key is not ("syslog-address" or "syslog-facility" or "syslog-format" or "tag" or "labels" or "labels-regex" or "env" or "env-regex"
                    or "syslog-tls-ca-cert" or "syslog-tls-cert" or "syslog-tls-key" or "syslog-tls-skip-verify")
                && !LogCache.IsOption(key))
                return $"unknown log opt '{key}' for syslog log driver";
            if (key is "labels-regex" or "env-regex" && value.Length > 0 && LogLimits.RegexError(value) is { } regexError)
                return $"invalid log opt {key} `{value}`: {regexError}";
        }
        if (options.GetValueOrDefault("syslog-address") is { Length: > 0 } address && AddressError(address) is { } addressError) return addressError;
        if (options.GetValueOrDefault("syslog-facility") is { Length: > 0 } facility && FacilityCode(facility) is null) return "invalid syslog facility";
        if (options.GetValueOrDefault("syslog-format") is { Length: > 0 } format && format is not ("rfc3164" or "rfc5424" or "rfc5424micro"))
            return "Invalid syslog format";
        if (options.GetValueOrDefault("tag") is { Length: > 0 } tag && LogTag.Error(tag) is { } tagError) return tagError;
        return LogCache.Check(options);
    }

    /// <summary>
    /// What berth-monitor is given for a container at its start: the address (a host name resolved now, the local
    /// socket found now), the facility, the timestamp style and the rest of the header (hostname, tag, berthd's PID,
    /// as srslog's formatters write them with dockerd's).
    /// </summary>
    /// <exception cref="ApiException">500 in dockerd's words when the syslog cannot be found (the start fails, as dockerd's).</exception>
    public static SyslogTarget Target(ContainerRecord r)
    {
        IReadOnlyDictionary<string, string> options = r.HostConfig.LogConfig.Config ?? [];
        string address = MonitorAddress(options.GetValueOrDefault("syslog-address") ?? "", out string? tlsServerName);
        int facility = FacilityCode(options.GetValueOrDefault("syslog-facility") is { Length: > 0 } f ? f : "daemon")!.Value;
        string tag = LogTag.Of(r);
        string pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        string hostname = Dns.GetHostName();
        SyslogTarget target = (options.GetValueOrDefault("syslog-format") ?? "") switch
        {
            "rfc3164" => new SyslogTarget(address, facility, "stamp", $"{hostname} {tag}[{pid}]: "),
            "rfc5424" => new SyslogTarget(address, facility, "rfc3339", $"{hostname} {tag} {pid} {tag} - "),
            "rfc5424micro" => new SyslogTarget(address, facility, "rfc3339micro", $"{hostname} {tag} {pid} {tag} - "),
            _ => new SyslogTarget(address, facility, "stamp", $"{tag}[{pid}]: "),
        };
        if (tlsServerName is not null)
        {
            // Relative paths are berthd's working directory's, as they are dockerd's.
            string? File(string key) => options.GetValueOrDefault(key) is { Length: > 0 } path ? Path.GetFullPath(path) : null;
            target = target with
            {
                Tls = new SyslogTls(tlsServerName, File("syslog-tls-ca-cert"), File("syslog-tls-cert"), File("syslog-tls-key"),
                    options.ContainsKey("syslog-tls-skip-verify")),
            };
        }
        // berth-monitor takes a header of at most 512 bytes (a tag is one line of a log message, not a document).
        if (System.Text.Encoding.UTF8.GetByteCount(target.Header) > 512 || target.Header.Contains('\n'))
            throw ApiException.BadRequest($"log opt tag: the tag \"{tag}\" is too long or has a newline (syslog headers are one line of at most 512 bytes)");
        return target;
    }

    private static string MonitorAddress(string address, out string? tlsServerName)
    {
        tlsServerName = null;
        if (address.Length == 0)
        {
            string local = LocalSockets.FirstOrDefault(File.Exists)
                ?? throw new ApiException(500, "failed to initialize logging driver: Unix syslog delivery error");
            return "unix:" + local;
        }
        var uri = new Uri(address);
        if (uri.Scheme is "unix" or "unixgram") return uri.Scheme + ":" + uri.AbsolutePath;
        if (uri.Scheme == "tcp+tls") tlsServerName = uri.IdnHost.Trim('[', ']');
        return LogServerAddress.Inet(uri.Scheme == "tcp+tls" ? "tcp" : uri.Scheme, uri.Host, uri.IsDefaultPort || uri.Port < 0 ? 514 : uri.Port);
    }

    /// <summary>moby's parseAddress: a URL of a served scheme; a unix path must exist.</summary>
    private static string? AddressError(string address)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out Uri? uri)) return $"parse \"{address}\": invalid URI for request";
        switch (uri.Scheme)
        {
            case "unix" or "unixgram":
                return File.Exists(uri.AbsolutePath) || Directory.Exists(uri.AbsolutePath) ? null : $"stat {uri.AbsolutePath}: no such file or directory";
            case "udp" or "tcp" or "tcp+tls":
                return uri.Host.Length == 0 ? $"syslog-address {address}: no host" : null;
            default:
                return $"unsupported scheme: '{uri.Scheme}'";
        }
    }

    private static int? FacilityCode(string facility)
        => Facilities.TryGetValue(facility, out int code) ? code
            : int.TryParse(facility, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && Facilities.ContainsValue(n) ? n : null;
}

/// <summary>The syslog berth-monitor sends to: see <see cref="SyslogDriver.Target"/> and the monitor's --syslog options.</summary>
public sealed record SyslogTarget(string Address, int Facility, string Time, string Header)
{
    /// <summary>tcp+tls: how the connection is made (null: plain).</summary>
    public SyslogTls? Tls { get; init; }
}

/// <summary>syslog over TLS: the name the server's certificate must carry (the address's host), and the log opts' files.</summary>
public sealed record SyslogTls(string ServerName, string? CaFile, string? CertFile, string? KeyFile, bool SkipVerify);
