using System.Globalization;
using System.Net;
using System.Text;
using Berth.Daemon.Api;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's gelf logging driver (moby daemon/logger/gelf with Graylog's go-gelf writers): berth-monitor sends every
/// non-empty entry as a GELF 1.1 message to <c>gelf-address</c> (<c>udp://host:port</c> or <c>tcp://host:port</c>,
/// required), and keeps dockerd's dual-logging cache beside it for <c>docker logs</c> (<see cref="LogCache"/>).
/// Options, checked as dockerd's ValidateLogOpt checks them: <c>gelf-compression-type</c> (gzip, zlib, none; gzip by
/// default) and <c>gelf-compression-level</c> (-1 to 9; go-gelf's default is 1), both udp only;
/// <c>gelf-tcp-max-reconnect</c> (3) and <c>gelf-tcp-reconnect-delay</c> (1 s), tcp only; <c>tag</c> (the
/// <c>_tag</c> field), <c>labels</c>, <c>labels-regex</c>, <c>env</c>, <c>env-regex</c> (extra fields, named with a
/// leading underscore), and the cache's options.
/// </summary>
public static class GelfDriver
{
    public const string Name = "gelf";

    /// <summary>The first error in the options, in dockerd's words; null when they are good.</summary>
    public static string? Check(IReadOnlyDictionary<string, string> options)
    {
        string address = options.GetValueOrDefault("gelf-address") ?? "";
        if (AddressError(address, out Uri? uri) is { } addressError) return addressError;
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            switch (key)
            {
                case "gelf-address" or "tag" or "labels" or "env":
                    break;
                case "labels-regex" or "env-regex":
                    if (value.Length > 0 && LogLimits.RegexError(value) is { } regexError) return $"invalid log opt {key} `{value}`: {regexError}";
                    break;
                case "gelf-compression-level":
                    if (uri!.Scheme != "udp") return "compression is only supported on UDP";
                    if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int level) || level is < -1 or > 9)
                        return $"unknown value \"{value}\" for log opt \"{key}\" for gelf log driver";
                    break;
                case "gelf-compression-type":
                    if (uri!.Scheme != "udp") return "compression is only supported on UDP";
                    if (value is not ("gzip" or "zlib" or "none")) return $"unknown value \"{value}\" for log opt \"{key}\" for gelf log driver";
                    break;
                case "gelf-tcp-max-reconnect" or "gelf-tcp-reconnect-delay":
                    if (uri!.Scheme != "tcp") return $"\"{key}\" is only valid for TCP";
                    if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) || n < 0) return $"\"{key}\" must be a positive integer";
                    break;
                default:
                    if (!LogCache.IsOption(key)) return $"unknown log opt \"{key}\" for gelf log driver";
                    break;
            }
        }
        if (options.GetValueOrDefault("tag") is { Length: > 0 } tag && LogTag.Error(tag) is { } tagError) return tagError;
        return LogCache.Check(options);
    }

    /// <summary>moby's gelf parseAddress.</summary>
    private static string? AddressError(string address, out Uri? uri)
    {
        uri = null;
        if (address.Length == 0) return "gelf-address is a required parameter";
        if (!Uri.TryCreate(address, UriKind.Absolute, out uri)) return $"parse \"{address}\": invalid URI for request";
        if (uri.Scheme is not ("udp" or "tcp")) return "gelf: endpoint needs to be TCP or UDP";
        // net.SplitHostPort(u.Host): a host and an explicit port.
        int authority = address.IndexOf("://", StringComparison.Ordinal) + 3;
        string hostPort = address[authority..].Split('/', '?', '#')[0];
        if (uri.Host.Length == 0 || uri.IsDefaultPort || !hostPort.Contains(':', StringComparison.Ordinal) || hostPort.EndsWith(':'))
            return "gelf: please provide gelf-address as proto://host:port";
        return null;
    }

    /// <summary>
    /// What berth-monitor is given at the container's start: the address (the host name resolved now), the
    /// compression and reconnection settings, the host field (berthd's hostname, as dockerd's os.Hostname) and the
    /// extra fields as one JSON object, keys sorted, as dockerd marshals them once per container.
    /// </summary>
    public static GelfTarget Target(ContainerRecord r)
    {
        IReadOnlyDictionary<string, string> options = r.HostConfig.LogConfig.Config ?? [];
        var uri = new Uri(options["gelf-address"]);
        string address = LogServerAddress.Inet(uri.Scheme, uri.Host, uri.Port);
        string Option(string key, string fallback) => options.GetValueOrDefault(key) is { Length: > 0 } v ? v : fallback;
        int Number(string key, int fallback) => int.Parse(Option(key, fallback.ToString(CultureInfo.InvariantCulture)), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

        IReadOnlyList<string> command = (r.Config.Entrypoint ?? []).Concat(r.Config.Cmd ?? []).ToList();
        var extra = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["_container_id"] = r.Id,
            ["_container_name"] = r.Name.TrimStart('/'),
            ["_image_id"] = r.ImageId,
            ["_image_name"] = r.Config.Image ?? "",
            // dockerd's Info.Command(): the path and the arguments joined by spaces.
            ["_command"] = string.Join(' ', command.Count > 0 ? command : [""]),
            ["_tag"] = LogTag.Of(r),
            ["_created"] = GoTime(r.Created),
        };
        foreach (var (key, value) in LogLimits.ExtraAttributes(r.HostConfig.LogConfig, r.Config.Labels, r.Config.Env))
            extra[key.StartsWith('_') ? key : "_" + key] = value;
        string extraJson = GoJson.Object(extra);
        if (Encoding.UTF8.GetByteCount(extraJson) > 16384)
            throw ApiException.BadRequest("log opts labels/env: the GELF message's extra fields would be over 16 KiB (berth-monitor's bound)");

        return new GelfTarget(address, Dns.GetHostName(), extraJson,
            Option("gelf-compression-type", "gzip"), Number("gelf-compression-level", 1),
            Number("gelf-tcp-max-reconnect", 3), Number("gelf-tcp-reconnect-delay", 1));
    }

    /// <summary>A time as Go's time.Time marshals to JSON: RFC 3339 with the fraction's trailing zeros left out.</summary>
    private static string GoTime(string rfc3339)
    {
        if (!DateTimeOffset.TryParse(rfc3339, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset t)) return rfc3339;
        string text = t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture).TrimEnd('0').TrimEnd('.');
        return text + "Z";
    }
}

/// <summary>The GELF server berth-monitor sends to: see <see cref="GelfDriver.Target"/> and the monitor's --gelf options.</summary>
public sealed record GelfTarget(string Address, string Host, string ExtraJson, string Compression, int CompressionLevel, int MaxReconnect, int ReconnectDelay);
