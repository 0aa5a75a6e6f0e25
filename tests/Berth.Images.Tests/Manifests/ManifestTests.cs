using System.Text;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;

namespace Berth.Images.Tests.Manifests;

public sealed class ManifestTests
{
    private static readonly string D = Digest.Compute("x"u8).Value;

    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest", "busybox:latest")]
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36")]
    [InlineData("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest")]
    [InlineData("user/app:v2", "docker.io/user/app:v2", "user/app:v2")]
    [InlineData("localhost:5000/x/y:tag", "localhost:5000/x/y:tag", "localhost:5000/x/y:tag")]
    [InlineData("localhost/x", "localhost/x:latest", "localhost/x:latest")]
    [InlineData("127.0.0.1:5000/a/b/c", "127.0.0.1:5000/a/b/c:latest", "127.0.0.1:5000/a/b/c:latest")]
    [InlineData("ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1")]
    public void References_normalize_as_docker_does(string input, string full, string familiar)
    {
        ImageReference r = ImageReference.Parse(input);
        Assert.Equal(full, r.ToString());
        Assert.Equal(familiar, r.FamiliarName);
    }

    [Fact]
    public void A_digest_reference_has_no_default_tag()
    {
        ImageReference r = ImageReference.Parse("busybox@" + D);
        Assert.Null(r.Tag);
        Assert.Equal(D, r.Reference);
        Assert.Equal("docker.io/library/busybox@" + D, r.ToString());
        Assert.Equal("v1", ImageReference.Parse("busybox:v1@" + D).Tag);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Busybox")]
    [InlineData("busybox:")]
    [InlineData("a//b")]
    [InlineData("busybox@sha256:abc")]
    [InlineData("busybox:-bad")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Bad_references_are_refused(string input)
        => Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => ImageReference.Parse(input)).Kind);

    [Fact]
    public void An_oversized_manifest_is_refused_before_parsing()
    {
        byte[] big = new byte[ManifestParser.MaxManifestSize + 1];
        var e = Assert.Throws<ImagesException>(() => ManifestParser.Parse(big));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("exceeds the limit", e.Message);
    }

    [Fact]
    public void A_manifest_is_checked_against_its_digest_and_its_fields()
    {
        byte[] bytes = Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{D}}","size":1},"layers":[{"mediaType":"{{MediaTypes.OciLayerGzip}}","digest":"sha256:nothex","size":1}]}""");
        var e = Assert.Throws<ImagesException>(() => ManifestParser.Parse(bytes));
        Assert.Contains("layers[0].digest", e.Message);
        Assert.Equal(ImagesErrorKind.DataLoss, Assert.Throws<ImagesException>(() => ManifestParser.Parse(bytes, expected: Digest.Compute("y"u8))).Kind);
        Assert.Contains("schema 1", Assert.Throws<ImagesException>(() => ManifestParser.Parse("""{"schemaVersion":1}"""u8.ToArray())).Message);
        Assert.Contains("served as", Assert.Throws<ImagesException>(() =>
            ManifestParser.Parse(Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[]}"""), MediaTypes.DockerManifest)).Message);
    }

    [Fact]
    public void Docker_and_oci_documents_parse_with_their_media_types()
    {
        var list = ManifestParser.Parse(Encoding.UTF8.GetBytes($$$"""{"schemaVersion":2,"mediaType":"{{{MediaTypes.DockerManifestList}}}","manifests":[{"mediaType":"{{{MediaTypes.DockerManifest}}}","digest":"{{{D}}}","size":5,"platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}"""));
        Assert.True(list.IsIndex);
        Assert.Equal(MediaTypes.DockerManifestList, list.MediaType);
        Assert.Equal("linux/arm/v7", list.Index!.Manifests[0].Platform!.ToString());
        // No mediaType field: the Content-Type decides, then the shape.
        var oci = ManifestParser.Parse(Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{D}}","size":1},"layers":[]}"""));
        Assert.Equal(MediaTypes.OciManifest, oci.MediaType);
    }

    [Fact]
    public void Platform_selection_normalizes_and_prefers_the_hosts()
    {
        var index = new ImageIndex
        {
            Manifests =
            [
                Descriptor.For(MediaTypes.OciManifest, Digest.Compute("1"u8), 1, new Platform { OS = "linux", Architecture = "arm", Variant = "v6" }),
                Descriptor.For(MediaTypes.OciManifest, Digest.Compute("2"u8), 1, new Platform { OS = "linux", Architecture = "arm64", Variant = "v8" }),
                Descriptor.For(MediaTypes.OciManifest, Digest.Compute("3"u8), 1, new Platform { OS = "linux", Architecture = "amd64" }),
                Descriptor.For(MediaTypes.OciManifest, Digest.Compute("4"u8), 1, new Platform { OS = "unknown", Architecture = "unknown" }),
            ],
        };
        Assert.Equal(Digest.Compute("2"u8).Value, PlatformMatcher.Select(index, PlatformMatcher.Parse("linux/aarch64"), "t").Digest);
        Assert.Equal(Digest.Compute("3"u8).Value, PlatformMatcher.Select(index, PlatformMatcher.Parse("linux/x86_64"), "t").Digest);
        Assert.Equal(Digest.Compute("1"u8).Value, PlatformMatcher.Select(index, PlatformMatcher.Parse("linux/arm/v6"), "t").Digest);
        Assert.Contains("linux/arm/v6, linux/arm64", Assert.Throws<ImagesException>(() => PlatformMatcher.Select(index, PlatformMatcher.Parse("linux/arm/v7"), "t")).Message);
        if (PlatformMatcher.Host.Architecture is "amd64" or "arm64")
            Assert.Equal(PlatformMatcher.Host.Architecture, PlatformMatcher.Select(index, null, "t").Platform!.Architecture);
    }

    [Fact]
    public void Chain_ids_follow_the_image_spec()
    {
        Digest a = Digest.Compute("a"u8), b = Digest.Compute("b"u8);
        IReadOnlyList<Digest> chain = ChainId.Compute([a, b]);
        Assert.Equal(a, chain[0]);
        Assert.Equal(Digest.Compute(Encoding.ASCII.GetBytes(a.Value + " " + b.Value)), chain[1]);
    }
}
