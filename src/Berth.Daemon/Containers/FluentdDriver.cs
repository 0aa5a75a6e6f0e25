using System.Globalization;
using System.Text;
using Berth.Daemon.Api;

namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's fluentd logging driver (moby daemon/logger/fluentd with fluent-logger-golang): berth-monitor sends every
/// entry to fluentd in the Forward protocol's message mode, and keeps dockerd's dual-logging cache beside it for
/// <c>docker logs</c> (<see cref="LogCache"/>). Options, checked as dockerd 20.10 checks them:
/// <c>fluentd-address</c> (<c>[tcp://]host[:port]</c> or <c>unix:///path</c>; 127.0.0.1:24224 by default),
/// <c>fluentd-async</c> (or the deprecated <c>fluentd-async-connect</c>: an unreachable fluentd does not fail the
/// start), <c>fluentd-buffer-limit</c> (messages kept while fluentd does not take them, 1048576),
/// <c>fluentd-retry-wait</c> (a Go duration, 1s), <c>fluentd-max-retries</c> (failed connection attempts in a
/// row before what is kept is dropped; 2147483647), <c>fluentd-sub-second-precision</c>, <c>tag</c> (<c>{{.ID}}</c>),
/// <c>fluentd-request-ack</c> (every message carries a chunk id and the next waits for fluentd's ack of it; a wrong
/// or missing ack sends it again on a new connection), <c>labels</c>, <c>labels-regex</c>, <c>env</c>,
/// <c>env-regex</c> (extra record fields), and the cache's options.
/// </summary>
public static class FluentdDriver
{
    public const string Name = "fluentd";

    private const string DefaultHost = "127.0.0.1";
    private const int DefaultPort = 24224;

    /// <summary>The first error in the options, in dockerd's words; null when they are good.</summary>
    public static string? Check(IReadOnlyDictionary<string, string> options)
    {
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key is not ("env" or "env-regex" or "labels" or "labels-regex" or "tag" or "fluentd-address" or "fluentd-async" or "fluentd-async-connect"
                or "fluentd-buffer-limit" or "fluentd-max-retries" or "fluentd-request-ack" or "fluentd-retry-wait" or "fluentd-sub-second-precision")
                && !LogCache.IsOption(key))
                return $"unknown log opt '{key}' for fluentd log driver";
            if (key is "labels-regex" or "env-regex" && value.Length > 0 && LogLimits.RegexError(value) is { } regexError)
                return $"invalid log opt {key} `{value}`: {regexError}";
        }
        string Get(string key) => options.GetValueOrDefault(key) ?? "";
        if (ParseAddress(Get("fluentd-address"), out _) is { } addressError) return addressError;
        if (Get("fluentd-buffer-limit") is { Length: > 0 } limit && !Oci.ByteSize.TryParse(limit, out _)) return $"invalid size: '{limit}'";
        if (Get("fluentd-retry-wait") is { Length: > 0 } wait && !DockerTime.TryParseGoDuration(wait, out _)) return $"time: invalid duration \"{wait}\"";
        if (Get("fluentd-max-retries") is { Length: > 0 } retries && !ulong.TryParse(retries, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            return $"strconv.ParseUint: parsing \"{retries}\": invalid syntax";
        if (Get("fluentd-async").Length > 0 && Get("fluentd-async-connect").Length > 0)
            return "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect";
        foreach (string key in (string[])["fluentd-async", "fluentd-async-connect", "fluentd-sub-second-precision", "fluentd-request-ack"])
            if (Get(key) is { Length: > 0 } b && LogLimits.ParseGoBool(b) is null) return $"strconv.ParseBool: parsing \"{b}\": invalid syntax";
        if (Get("tag") is { Length: > 0 } tag && LogTag.Error(tag) is { } tagError) return tagError;
        return LogCache.Check(options);
    }

    /// <summary>moby 20.10's fluentd parseAddress: a transport URL or host[:port]; the address berth-monitor takes, or an error.</summary>
    private static string? ParseAddress(string address, out (string Scheme, string Host, int Port, string Path) location)
    {
        location = ("tcp", DefaultHost, DefaultPort, "");
        if (address.Length == 0) return null;
        string hostPort = address;
        int scheme = address.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0 && address[..scheme] is "tcp" or "udp" or "unix" or "unixgram")
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out Uri? uri)) return $"invalid fluentd-address {address}: parse \"{address}\": invalid URI";
            string name = address[..scheme];
            if (name is "unix" or "unixgram")
            {
                if (name == "unixgram") return $"invalid fluentd-address {address}: berthd sends to fluentd over tcp or a unix stream socket";
                location = ("unix", "", 0, uri.AbsolutePath);
                return null;
            }
            if (name == "udp") return $"invalid fluentd-address {address}: berthd sends to fluentd over tcp or a unix stream socket";
            hostPort = address[(scheme + 3)..].Split('/', '?', '#')[0];
        }
        int colon = hostPort.LastIndexOf(':');
        bool bracketed = hostPort.StartsWith('[');
        if (colon < 0 || (bracketed && colon < hostPort.IndexOf(']', StringComparison.Ordinal)))
        {
            location = ("tcp", hostPort.Trim('[', ']'), DefaultPort, "");
            return null;
        }
        string host = hostPort[..colon].Trim('[', ']'), port = hostPort[(colon + 1)..];
        if (!int.TryParse(port, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int number))
            return $"invalid fluentd-address {address}: strconv.Atoi: parsing \"{port}\": invalid syntax";
        if (number is < 1 or > 65535) return $"invalid fluentd-address {address}: invalid port {port}";
        location = ("tcp", host, number, "");
        return null;
    }

    /// <summary>What berth-monitor is given at the container's start (a host name resolved now).</summary>
    public static FluentdTarget Target(ContainerRecord r)
    {
        IReadOnlyDictionary<string, string> options = r.HostConfig.LogConfig.Config ?? [];
        string Get(string key) => options.GetValueOrDefault(key) ?? "";
        ParseAddress(Get("fluentd-address"), out var location);
        string address = location.Scheme == "unix" ? "unix:" + location.Path
            : LogServerAddress.Inet("tcp", location.Host.Length > 0 ? location.Host : DefaultHost, location.Port);
        long bufferLimit = Get("fluentd-buffer-limit") is { Length: > 0 } l && Oci.ByteSize.TryParse(l, out long bytes) ? bytes : 1024 * 1024;
        long retryWaitMs = Get("fluentd-retry-wait") is { Length: > 0 } w && DockerTime.TryParseGoDuration(w, out TimeSpan wait) ? (long)wait.TotalMilliseconds : 1000;
        long maxRetries = Get("fluentd-max-retries") is { Length: > 0 } m && ulong.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out ulong retries)
            ? (long)Math.Min(retries, int.MaxValue) : int.MaxValue;
        bool async = LogLimits.ParseGoBool(Get("fluentd-async")) == true || LogLimits.ParseGoBool(Get("fluentd-async-connect")) == true;
        var extra = LogLimits.ExtraAttributes(r.HostConfig.LogConfig, r.Config.Labels, r.Config.Env);
        string tag = LogTag.Of(r);
        int size = Encoding.UTF8.GetByteCount(tag) + Encoding.UTF8.GetByteCount(r.Name) + extra.Sum(e => Encoding.UTF8.GetByteCount(e.Key) + Encoding.UTF8.GetByteCount(e.Value) + 16);
        if (size > 8192)
            throw ApiException.BadRequest("log opts tag/labels/env: the fluentd record's tag and extra fields would be over 8 KiB (berth-monitor's bound)");
        return new FluentdTarget(address, tag, r.Name, async, LogLimits.ParseGoBool(Get("fluentd-sub-second-precision")) == true,
            Math.Clamp(bufferLimit, 1, int.MaxValue), Math.Clamp(retryWaitMs, 0, int.MaxValue), maxRetries, extra)
        {
            RequestAck = LogLimits.ParseGoBool(Get("fluentd-request-ack")) == true,
        };
    }
}

/// <summary>The fluentd berth-monitor sends to: see <see cref="FluentdDriver.Target"/> and the monitor's --fluentd options.</summary>
public sealed record FluentdTarget(string Address, string Tag, string ContainerName, bool Async, bool SubSecondPrecision,
    long BufferLimit, long RetryWaitMs, long MaxRetries, IReadOnlyDictionary<string, string> Extra)
{
    /// <summary>fluentd-request-ack: every message carries a chunk id that fluentd must acknowledge before the next goes.</summary>
    public bool RequestAck { get; init; }
}
