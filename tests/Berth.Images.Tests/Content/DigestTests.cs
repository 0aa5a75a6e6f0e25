using Berth.Images.Content;

namespace Berth.Images.Tests.Content;

public sealed class DigestTests
{
    private const string Empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Fact]
    public void Parses_a_sha256_digest()
    {
        Digest d = Digest.Parse(Empty);
        Assert.Equal("sha256", d.Algorithm);
        Assert.Equal(Empty[7..], d.Hex);
        Assert.Equal(Empty, d.ToString());
        Assert.Equal(d, Digest.Compute([]));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "expected `sha256:")]
    [InlineData("sha512:abcd", "unsupported algorithm `sha512`")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm `md5`")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "not a lowercase hex")]
    [InlineData("sha256:e3b0", "64 hex characters, got 4")]
    [InlineData("sha256:../../../../../../../../../../../../../../../../../../etc/passwd", "not a lowercase hex")]
    public void Refuses_anything_else_with_a_clear_message(string value, string expected)
    {
        var e = Assert.Throws<ImagesException>(() => Digest.Parse(value));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(expected, e.Message);
        Assert.False(Digest.TryParse(value, out _));
    }
}
