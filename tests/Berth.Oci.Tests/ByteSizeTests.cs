namespace Berth.Oci.Tests;

/// <summary>go-units RAMInBytes: <c>^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$</c>, then int64(ParseFloat(number) * multiplier).</summary>
public class ByteSizeTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("1", 1L)]
    [InlineData("1024", 1024L)]
    [InlineData("007", 7L)]
    public void PlainNumbers_AreBytes(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out long bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("1k", 1L << 10)]
    [InlineData("1m", 1L << 20)]
    [InlineData("1g", 1L << 30)]
    [InlineData("1t", 1L << 40)]
    [InlineData("1p", 1L << 50)]
    [InlineData("64m", 64L << 20)]
    [InlineData("8191p", 8191L << 50)]
    public void EachUnit_IsAPowerOf1024(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out long bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("1.5g", 3L << 29)]
    [InlineData("0.5k", 512L)]
    [InlineData("1.5", 1L)]
    [InlineData("0.9", 0L)]
    [InlineData("2.0001k", 2048L)]
    [InlineData("0.1k", 102L)]
    public void Decimals_AreTruncatedAfterMultiplying(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out long bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("1kb", 1L << 10)]
    [InlineData("1ki", 1L << 10)]
    [InlineData("1kib", 1L << 10)]
    [InlineData("1KiB", 1L << 10)]
    [InlineData("1KB", 1L << 10)]
    [InlineData("1K", 1L << 10)]
    [InlineData("1kI", 1L << 10)]
    [InlineData("2G", 2L << 30)]
    [InlineData("3Tb", 3L << 40)]
    [InlineData("1 k", 1L << 10)]
    [InlineData("1.5 GiB", 3L << 29)]
    [InlineData("10mb", 10L << 20)]
    [InlineData("1024b", 1024L)]
    [InlineData("1024B", 1024L)]
    [InlineData("1024ib", 1024L)]
    [InlineData("1024i", 1024L)]
    [InlineData("1024 b", 1024L)]
    [InlineData("1024 ", 1024L)]
    public void Suffixes_InAnyCase_AfterOneOptionalSpace(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out long bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1x")]
    [InlineData("k")]
    [InlineData("kb")]
    [InlineData(".5k")]
    [InlineData("1.")]
    [InlineData("1.k")]
    [InlineData("1..2")]
    [InlineData("1.2.3")] // the pattern takes it; ParseFloat does not
    [InlineData(" 1k")]
    [InlineData("1k ")]
    [InlineData("1  k")]
    [InlineData("1\tk")]
    [InlineData("1k\n")]
    [InlineData("1kk")]
    [InlineData("1bi")]
    [InlineData("1kbb")]
    [InlineData("1kiib")]
    [InlineData("1e3")]
    [InlineData("1.5e")]
    [InlineData("1,5g")]
    [InlineData("1_000")]
    [InlineData("0x10")]
    [InlineData("Infinity")]
    [InlineData("NaN")]
    [InlineData("١٢")] // Arabic-Indic digits: Go's \d is ASCII only
    public void OtherForms_AreRefused(string text)
    {
        Assert.False(ByteSize.TryParse(text, out long bytes));
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void Null_IsRefused() => Assert.False(ByteSize.TryParse(null, out _));

    [Theory]
    [InlineData("8192p")] // exactly 2^63
    [InlineData("9223372036854775808")]
    [InlineData("9223372036854775807")] // float64 rounds it up to 2^63
    [InlineData("99999999999999999999")]
    [InlineData("16777216t")]
    public void Overflow_IsRefused(string text)
    {
        Assert.False(ByteSize.TryParse(text, out _));
    }

    [Fact]
    public void NumbersBeyondFloat64_AreRefused()
    {
        Assert.False(ByteSize.TryParse(new string('9', 400), out _));
        Assert.False(ByteSize.TryParse(new string('9', 400) + ".5k", out _));
    }

    [Fact]
    public void LargestValues_BelowTwoToThe63_AreRead()
    {
        Assert.True(ByteSize.TryParse("8191.99p", out long bytes));
        Assert.Equal((long)(8191.99 * (1L << 50)), bytes);
        Assert.True(ByteSize.TryParse("9223372036854774784", out bytes)); // the float64 just below 2^63
        Assert.Equal(9223372036854774784L, bytes);
    }

    /// <summary>go-units FromHumanSize (dockerd's local log driver's max-size): the same strings, 1000-based.</summary>
    [Theory]
    [InlineData("20m", 20_000_000L)]
    [InlineData("3k", 3000L)]
    [InlineData("1.5 GB", 1_500_000_000L)]
    [InlineData("512", 512L)]
    public void DecimalSizes_Are1000Based(string text, long expected)
    {
        Assert.True(ByteSize.TryParseDecimal(text, out long bytes));
        Assert.Equal(expected, bytes);
        Assert.False(ByteSize.TryParseDecimal("-1k", out _));
    }
}
