using System.Net;

namespace Berth.Network.Tests.Dns;

public sealed class DnsMessageTests
{
    [Fact]
    public void A_query_s_question_is_read_lower_cased_and_without_the_root_dot()
    {
        byte[] query = DnsTestClient.Query(0x1234, "Web.MyNet.", DnsMessage.TypeAaaa, withEdns: true);
        Assert.True(DnsMessage.TryReadQuery(query, out DnsQuestion q, out int end));
        Assert.Equal(new DnsQuestion("web.mynet", DnsMessage.TypeAaaa, DnsMessage.ClassIn), q);
        Assert.Equal(query.Length - 11, end); // the EDNS record after the question is not part of it
        Assert.Equal(0x1234, DnsMessage.IdOf(query));
    }

    [Fact]
    public void Packets_that_are_not_readable_queries_are_refused()
    {
        byte[] good = DnsTestClient.Query(1, "web", DnsMessage.TypeA);
        Assert.False(DnsMessage.TryReadQuery(good.AsSpan(0, 11), out _, out _)); // shorter than a header
        Assert.False(DnsMessage.TryReadQuery(good.AsSpan(0, good.Length - 2), out _, out _)); // question cut short

        byte[] response = (byte[])good.Clone();
        response[2] |= 0x80;
        Assert.False(DnsMessage.TryReadQuery(response, out _, out _));

        byte[] compressed = (byte[])good.Clone();
        compressed[12] = 0xC0; // a pointer where the first label's length is
        Assert.False(DnsMessage.TryReadQuery(compressed, out _, out _));

        byte[] overrun = (byte[])good.Clone();
        overrun[12] = 60; // a label longer than the packet
        Assert.False(DnsMessage.TryReadQuery(overrun, out _, out _));

        byte[] noQuestion = (byte[])good.Clone();
        noQuestion[5] = 0;
        Assert.False(DnsMessage.TryReadQuery(noQuestion, out _, out _));
    }

    [Fact]
    public void An_answer_repeats_id_question_and_recursion_desired_and_points_its_records_at_the_question_name()
    {
        byte[] query = DnsTestClient.Query(0xBEEF, "web", DnsMessage.TypeA, withEdns: true);
        Assert.True(DnsMessage.TryReadQuery(query, out _, out int end));
        byte[] answer = DnsMessage.Answer(query, end, DnsMessage.RcodeNoError,
            [DnsRecord.Address(IPAddress.Parse("172.18.0.2")), DnsRecord.Address(IPAddress.Parse("172.18.0.3"))]);

        DnsReply reply = DnsTestClient.Parse(answer);
        Assert.Equal(0xBEEF, reply.Id);
        Assert.Equal(0x8000 | 0x0400 | 0x0100 | 0x0080, reply.Flags); // QR, AA, RD (as asked), RA
        Assert.Equal(["172.18.0.2", "172.18.0.3"], reply.Addresses.Select(a => a.ToString()));
        Assert.Equal(query[12..end], answer[12..end]);
        Assert.Equal([0xC0, 12], answer[end..(end + 2)]);
        Assert.Equal(0, answer[10] << 8 | answer[11]); // the query's EDNS record is not echoed
        Assert.Equal(DnsMessage.AnswerTtl, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(answer.AsSpan(end + 6)));
    }

    [Fact]
    public void An_answer_too_large_for_udp_keeps_whole_records_and_sets_truncated()
    {
        byte[] query = DnsTestClient.Query(7, "web", DnsMessage.TypeA);
        Assert.True(DnsMessage.TryReadQuery(query, out _, out int end));
        var many = Enumerable.Range(1, 60).Select(i => DnsRecord.Address(IPAddress.Parse($"10.0.0.{i}"))).ToList();

        byte[] udp = DnsMessage.Answer(query, end, DnsMessage.RcodeNoError, many, DnsMessage.MaxUdpLength);
        DnsReply truncated = DnsTestClient.Parse(udp);
        Assert.True(udp.Length <= DnsMessage.MaxUdpLength);
        Assert.True(truncated.Truncated);
        Assert.Equal((DnsMessage.MaxUdpLength - end) / 16, truncated.Answers.Count);

        DnsReply whole = DnsTestClient.Parse(DnsMessage.Answer(query, end, DnsMessage.RcodeNoError, many));
        Assert.False(whole.Truncated);
        Assert.Equal(60, whole.Answers.Count);
    }

    [Fact]
    public void Refusals_and_format_errors_carry_their_rcode_without_authority()
    {
        byte[] query = DnsTestClient.Query(9, "example.org", DnsMessage.TypeA);
        Assert.True(DnsMessage.TryReadQuery(query, out _, out int end));
        DnsReply refused = DnsTestClient.Parse(DnsMessage.Answer(query, end, DnsMessage.RcodeRefused, []));
        Assert.Equal(DnsMessage.RcodeRefused, refused.Rcode);
        Assert.Equal(0, refused.Flags & 0x0400);

        byte[] formErr = DnsMessage.FormatError([0xAB, 0xCD, 0xFF]);
        Assert.Equal(12, formErr.Length);
        Assert.Equal(0xABCD, DnsMessage.IdOf(formErr));
        Assert.Equal(DnsMessage.RcodeFormErr, DnsTestClient.Parse(formErr).Rcode);
    }

    [Theory]
    [InlineData("2.0.18.172.in-addr.arpa", "172.18.0.2")]
    [InlineData("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "2001:db8::1")]
    [InlineData("0.18.172.in-addr.arpa", null)] // a zone, not an address
    [InlineData("256.0.18.172.in-addr.arpa", null)]
    [InlineData("x.0.18.172.in-addr.arpa", null)]
    [InlineData("1.0.ip6.arpa", null)]
    [InlineData("web.mynet", null)]
    public void Reverse_names_stand_for_whole_addresses_only(string name, string? address)
        => Assert.Equal(address, DnsMessage.ReverseNameAddress(name)?.ToString());

    [Fact]
    public void Names_are_encoded_label_by_label()
    {
        Assert.Equal("web.mynet", DnsTestClient.ReadName(DnsMessage.EncodeName("web.mynet.")));
        Assert.Throws<ArgumentException>(() => DnsMessage.EncodeName(new string('a', 64) + ".net"));
    }
}
