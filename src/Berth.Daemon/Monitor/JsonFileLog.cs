using System.Text.Json;

namespace Berth.Daemon.Monitor;

/// <summary>Docker's json-file log format as berth-monitor writes it: one JSON object a line,
/// <c>{"log":"…","stream":"stdout","attrs":{…},"time":"RFC 3339 with nanoseconds"}</c> (attrs only when log-opt labels/env select some).</summary>
public static class JsonFileLog
{
    /// <summary>The entries of the json-file log at <paramref name="path"/>: <see cref="LogReader.ReadAsync"/>.</summary>
    public static IAsyncEnumerable<LogEntry> ReadAsync(string path, DateTimeOffset? since, DateTimeOffset? until, int tail,
        bool follow, Func<bool> stopFollowing, CancellationToken ct)
        => LogReader.ReadAsync(new LogLocation(path, LogFormat.JsonFile), since, until, tail, follow, stopFollowing, ct);

    /// <summary>Lines up to their newline; an unterminated last line waits for it. Lines that are not entries (a torn
    /// last line after a crash) are skipped.</summary>
    internal sealed class Decoder : ILogDecoder
    {
        public int Decode(ReadOnlySpan<byte> buffer, bool complete, List<LogEntry> entries)
        {
            int lineStart = 0;
            for (int nl; (nl = buffer[lineStart..].IndexOf((byte)'\n')) >= 0; lineStart += nl + 1)
                if (ParseLine(buffer.Slice(lineStart, nl)) is { } e) entries.Add(e);
            return lineStart;
        }
    }

    /// <summary>Parses one json-file line; null when it is not an entry.</summary>
    internal static LogEntry? ParseLine(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            byte[]? log = null;
            string? stream = null;
            DateTimeOffset? time = null;
            List<KeyValuePair<string, string>>? attributes = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("log"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String) return null;
                    var buffer = new byte[reader.ValueSpan.Length];
                    log = buffer[..reader.CopyString(buffer)];
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String) return null;
                    stream = reader.GetString();
                }
                else if (reader.ValueTextEquals("time"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped) return null;
                    time = ParseTime(reader.ValueSpan);
                    if (time is null) return null;
                }
                else if (reader.ValueTextEquals("attrs"u8))
                {
                    if (!reader.Read()) return null;
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        attributes = [];
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            string key = reader.GetString()!;
                            if (!reader.Read() || reader.TokenType != JsonTokenType.String) return null;
                            attributes.Add(new(key, reader.GetString()!));
                        }
                        attributes.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
                    }
                    else reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return log is null || stream is null || time is null ? null
                : new LogEntry(stream, time.Value, log) { Attributes = attributes is { Count: > 0 } ? attributes : null };
        }
        catch (JsonException) { return null; }
        catch (InvalidOperationException) { return null; }   // e.g. an escaped lone surrogate in CopyString
    }

    /// <summary>RFC 3339 with up to nine fractional digits (Go's RFC3339Nano, as Docker writes it):
    /// <c>2026-12-04T16:44:16.123456789Z</c> or with a <c>±hh:mm</c> offset. Digits past the 100 ns tick are dropped.</summary>
    internal static DateTimeOffset? ParseTime(ReadOnlySpan<byte> s)
    {
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return null;
        if (!Digits(s, 0, 4, out int year) || !Digits(s, 5, 2, out int month) || !Digits(s, 8, 2, out int day)
            || !Digits(s, 11, 2, out int hour) || !Digits(s, 14, 2, out int minute) || !Digits(s, 17, 2, out int second)) return null;
        int i = 19;
        long ticks = 0;
        if (s[i] == '.')
        {
            int start = ++i;
            while (i < s.Length && s[i] is >= (byte)'0' and <= (byte)'9') i++;
            int count = i - start;
            if (count is 0 or > 9) return null;
            for (int k = 0; k < 7; k++) ticks = ticks * 10 + (k < count ? s[start + k] - '0' : 0);
        }
        TimeSpan offset;
        if (i == s.Length - 1 && (s[i] == 'Z' || s[i] == 'z')) offset = TimeSpan.Zero;
        else if (i == s.Length - 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':'
                 && Digits(s, i + 1, 2, out int oh) && Digits(s, i + 4, 2, out int om))
            offset = new TimeSpan(oh, om, 0) * (s[i] == '-' ? -1 : 1);
        else return null;
        try { return new DateTimeOffset(year, month, day, hour, minute, second, offset).AddTicks(ticks); }
        catch (ArgumentOutOfRangeException) { return null; }
    }

    private static bool Digits(ReadOnlySpan<byte> s, int at, int count, out int value)
    {
        value = 0;
        for (int k = at; k < at + count; k++)
        {
            if (s[k] is < (byte)'0' or > (byte)'9') return false;
            value = value * 10 + (s[k] - '0');
        }
        return true;
    }
}
