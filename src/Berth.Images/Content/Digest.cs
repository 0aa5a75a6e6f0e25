using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Berth.Images.Content;

/// <summary>
/// A content digest in the OCI form <c>sha256:&lt;64 lowercase hex&gt;</c>. Only sha256 is accepted:
/// the hex part becomes a file name in the store, so it is validated strictly before any use.
/// </summary>
public readonly struct Digest : IEquatable<Digest>
{
    public const string Sha256Algorithm = "sha256";
    private const int HexLength = 64;

    private readonly string? _value;

    private Digest(string value) => _value = value;

    /// <summary>The algorithm, always <c>sha256</c>.</summary>
    public string Algorithm => Sha256Algorithm;

    /// <summary>The 64 lowercase hex characters.</summary>
    public string Hex => Value[(Sha256Algorithm.Length + 1)..];

    /// <summary>The full form, <c>sha256:…</c>.</summary>
    public string Value => _value ?? throw new InvalidOperationException("default(Digest) is not a digest");

    public static Digest Parse(string value)
        => TryParse(value, out Digest digest, out string? error)
            ? digest
            : throw new ImagesException(ImagesErrorKind.InvalidArgument, error);

    public static bool TryParse(string? value, out Digest digest) => TryParse(value, out digest, out _);

    private static bool TryParse(string? value, out Digest digest, [NotNullWhen(false)] out string? error)
    {
        digest = default;
        if (string.IsNullOrEmpty(value))
        {
            error = "invalid digest: empty";
            return false;
        }
        int colon = value.IndexOf(':');
        if (colon <= 0)
        {
            error = $"invalid digest `{Shorten(value)}`: expected `sha256:<64 hex characters>`";
            return false;
        }
        string algorithm = value[..colon];
        if (algorithm != Sha256Algorithm)
        {
            error = $"invalid digest `{Shorten(value)}`: unsupported algorithm `{Shorten(algorithm)}` (only sha256 is supported)";
            return false;
        }
        ReadOnlySpan<char> hex = value.AsSpan(colon + 1);
        if (hex.Length != HexLength)
        {
            error = $"invalid digest `{Shorten(value)}`: sha256 needs 64 hex characters, got {hex.Length}";
            return false;
        }
        foreach (char c in hex)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                error = $"invalid digest `{Shorten(value)}`: `{c}` is not a lowercase hex character";
                return false;
            }
        }
        digest = new Digest(value);
        error = null;
        return true;
    }

    /// <summary>The digest of a finished sha256 hash.</summary>
    public static Digest FromSha256(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != 32) throw new ArgumentException("a sha256 hash is 32 bytes", nameof(hash));
        return new Digest(Sha256Algorithm + ":" + Convert.ToHexStringLower(hash));
    }

    /// <summary>The digest of some bytes.</summary>
    public static Digest Compute(ReadOnlySpan<byte> data) => FromSha256(SHA256.HashData(data));

    public bool Equals(Digest other) => string.Equals(_value, other._value, StringComparison.Ordinal);
    public override bool Equals(object? obj) => obj is Digest other && Equals(other);
    public override int GetHashCode() => _value is null ? 0 : StringComparer.Ordinal.GetHashCode(_value);
    public override string ToString() => _value ?? "";
    public static bool operator ==(Digest left, Digest right) => left.Equals(right);
    public static bool operator !=(Digest left, Digest right) => !left.Equals(right);

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
