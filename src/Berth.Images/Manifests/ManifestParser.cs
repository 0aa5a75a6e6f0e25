using System.Text.Json;
using Berth.Images.Content;

namespace Berth.Images.Manifests;

/// <summary>A parsed and validated manifest or index, with the exact bytes its digest covers.</summary>
public sealed class ManifestDocument
{
    internal ManifestDocument(Digest digest, string mediaType, byte[] bytes, ImageManifest? manifest, ImageIndex? index)
    {
        Digest = digest;
        MediaType = mediaType;
        Bytes = bytes;
        Manifest = manifest;
        Index = index;
    }

    public Digest Digest { get; }
    public string MediaType { get; }
    public byte[] Bytes { get; }
    public bool IsIndex => Index is not null;

    /// <summary>The manifest, when this document is one (else null).</summary>
    public ImageManifest? Manifest { get; }

    /// <summary>The index or manifest list, when this document is one (else null).</summary>
    public ImageIndex? Index { get; }

    public Descriptor ToDescriptor(Platform? platform = null) => Descriptor.For(MediaType, Digest, Bytes.Length, platform);
}

/// <summary>
/// Reads manifests, indexes and configs from untrusted bytes. Every document is size-limited
/// before it is parsed, its digest is checked against the one it was fetched by, its schema
/// version and media type are checked, and every digest inside it is validated, with an error
/// naming the field.
/// </summary>
public static class ManifestParser
{
    /// <summary>The largest manifest or index accepted (containerd's and the Distribution registry's limit).</summary>
    public const int MaxManifestSize = 4 * 1024 * 1024;

    /// <summary>The largest image config accepted.</summary>
    public const int MaxConfigSize = 8 * 1024 * 1024;

    /// <summary>Refuses a manifest larger than <see cref="MaxManifestSize"/> before reading it.</summary>
    public static void CheckManifestSize(long size, string what)
    {
        if (size > MaxManifestSize)
            throw new ImagesException(ImagesErrorKind.InvalidArgument,
                $"{what}: manifest of {size} bytes exceeds the limit of {MaxManifestSize} bytes; refused");
    }

    /// <summary>
    /// Parses a manifest or index. <paramref name="contentType"/> is the media type it was served or
    /// described with (may be null); <paramref name="expected"/> the digest it was asked for by (may be null).
    /// </summary>
    public static ManifestDocument Parse(byte[] bytes, string? contentType = null, Digest? expected = null, string? what = null)
    {
        what ??= expected?.ToString() ?? "manifest";
        CheckManifestSize(bytes.Length, what);
        Digest actual = Digest.Compute(bytes);
        if (expected is { } want && want != actual)
            throw new ImagesException(ImagesErrorKind.DataLoss, $"{what}: manifest digest mismatch: expected {want}, content is {actual}; refused");

        ManifestProbe probe = Deserialize(bytes, ManifestJsonContext.Default.ManifestProbe, what);
        if (probe.SchemaVersion == 1)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: Docker image manifest schema 1 is deprecated and not supported");
        if (probe.SchemaVersion != 2)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: schemaVersion is {probe.SchemaVersion}, expected 2");

        contentType = NormalizeContentType(contentType);
        string mediaType;
        if (probe.MediaType is { Length: > 0 } declared)
        {
            if (!MediaTypes.IsIndex(declared) && !MediaTypes.IsManifest(declared))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: unsupported manifest media type `{declared}`");
            if (contentType is not null && (MediaTypes.IsIndex(contentType) || MediaTypes.IsManifest(contentType)) && contentType != declared)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: served as `{contentType}` but the document says mediaType `{declared}`; refused");
            mediaType = declared;
        }
        else if (contentType is not null && (MediaTypes.IsIndex(contentType) || MediaTypes.IsManifest(contentType)))
            mediaType = contentType;
        else if (probe.Manifests is not null)
            mediaType = MediaTypes.OciIndex;
        else if (probe.Config is not null)
            mediaType = MediaTypes.OciManifest;
        else
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: neither a manifest nor an index (no `manifests`, no `config`)");

        if (MediaTypes.IsIndex(mediaType))
        {
            if (probe.Config is not null || probe.Layers is not null)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: media type `{mediaType}` but the document has `config`/`layers`");
            ImageIndex index = Deserialize(bytes, ManifestJsonContext.Default.ImageIndex, what);
            for (int i = 0; i < index.Manifests.Count; i++)
                ValidateDescriptor(index.Manifests[i], $"{what}: manifests[{i}]");
            return new ManifestDocument(actual, mediaType, bytes, null, index);
        }

        if (probe.Manifests is not null)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: media type `{mediaType}` but the document has `manifests`");
        ImageManifest manifest = Deserialize(bytes, ManifestJsonContext.Default.ImageManifest, what);
        if (probe.Config is null)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: manifest has no `config`");
        ValidateDescriptor(manifest.Config, $"{what}: config");
        for (int i = 0; i < manifest.Layers.Count; i++)
            ValidateDescriptor(manifest.Layers[i], $"{what}: layers[{i}]");
        return new ManifestDocument(actual, mediaType, bytes, manifest, null);
    }

    /// <summary>Parses an image config fetched by <paramref name="expected"/>, verifying its digest and its diffIDs.</summary>
    public static ImageConfig ParseConfig(byte[] bytes, Digest? expected = null)
    {
        string what = expected is { } d ? $"config {d}" : "config";
        if (bytes.Length > MaxConfigSize)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: {bytes.Length} bytes exceeds the limit of {MaxConfigSize} bytes; refused");
        if (expected is { } want && Digest.Compute(bytes) is var actual && actual != want)
            throw new ImagesException(ImagesErrorKind.DataLoss, $"{what}: digest mismatch: content is {actual}; refused");
        ImageConfig config = Deserialize(bytes, ManifestJsonContext.Default.ImageConfig, what);
        for (int i = 0; i < config.RootFS.DiffIds.Count; i++)
            if (!Digest.TryParse(config.RootFS.DiffIds[i], out _))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: rootfs.diff_ids[{i}] `{config.RootFS.DiffIds[i]}` is not a valid digest");
        return config;
    }

    public static byte[] Serialize(ImageManifest manifest) => JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJsonContext.Default.ImageManifest);
    public static byte[] Serialize(ImageIndex index) => JsonSerializer.SerializeToUtf8Bytes(index, ManifestJsonContext.Default.ImageIndex);
    public static byte[] Serialize(ImageConfig config) => JsonSerializer.SerializeToUtf8Bytes(config, ManifestJsonContext.Default.ImageConfig);

    private static void ValidateDescriptor(Descriptor d, string where)
    {
        if (d is null) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{where}: null descriptor");
        if (!Digest.TryParse(d.Digest, out _))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{where}.digest `{d.Digest}` is not a valid sha256 digest");
        if (d.Size < 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{where}.size {d.Size} is negative");
        if (string.IsNullOrEmpty(d.MediaType)) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{where}.mediaType is missing");
    }

    private static string? NormalizeContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return null;
        int semicolon = contentType.IndexOf(';');
        return (semicolon >= 0 ? contentType[..semicolon] : contentType).Trim();
    }

    private static T Deserialize<T>(byte[] bytes, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, type) ?? throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: document is `null`");
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: malformed JSON: {e.Message}", e);
        }
    }
}
