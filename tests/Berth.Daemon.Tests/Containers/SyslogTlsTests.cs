using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// docker's syslog driver over TLS (<c>tcp+tls://</c>): a TLS server in the test, with certificates made here
/// (a CA, a server certificate for 127.0.0.1 and localhost, a client certificate), gets srslog's messages as
/// dockerd 20.10 sends them (rfc5424 with RFC 5425's length prefix, the other formats as over tcp); the client
/// certificate is presented; a server the CA did not sign, a certificate for another address and files that
/// cannot be read fail the start with dockerd's words; syslog-tls-skip-verify skips the check.
/// </summary>
public sealed partial class SyslogTlsTests : DockerCliTestBase
{
    private static readonly string Pid = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Rfc5424_gets_the_length_prefix_the_default_format_none_and_the_client_certificate_is_presented()
    {
        using var dir = new TempDirectory("syslog-tls");
        using var pki = new TestPki(dir);
        using var server = new TlsSyslogServer(pki.Server, requireClientCertificate: true);
        DockerCli docker = Docker();

        docker.Ok("run", "--rm", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp+tls://127.0.0.1:{server.Port}",
            "--log-opt", "syslog-tls-ca-cert=" + pki.CaFile, "--log-opt", "syslog-tls-cert=" + pki.ClientCertFile,
            "--log-opt", "syslog-tls-key=" + pki.ClientKeyFile, "--log-opt", "syslog-format=rfc5424", "busybox", "sh", "-c", "echo one; echo two");
        var (text, client) = await server.NextConnectionAsync();
        // dockerd 20.10 sent "68 <30>1 2026-12-06T17:32:28Z vm a336fbbd3efe 3279 a336fbbd3efe - five\n": the length counts the newline.
        MatchCollection frames = Rfc5424Frame().Matches(text);
        Assert.Equal(2, frames.Count);
        Assert.Equal(text.Length, frames.Sum(f => f.Length));
        foreach (Match frame in frames) Assert.Equal(int.Parse(frame.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Encoding.UTF8.GetByteCount(frame.Groups[2].Value));
        Assert.EndsWith(" - one\n", frames[0].Groups[2].Value, StringComparison.Ordinal);
        Assert.EndsWith(" - two\n", frames[1].Groups[2].Value, StringComparison.Ordinal);
        Assert.Equal(pki.ClientThumbprint, client?.GetCertHashString());

        // The default format over TLS: no prefix, as dockerd ("<30>Dec  6 17:32:28 2f3e5f08d7c7[3279]: hi\n"), and a host name works.
        string id = docker.Ok("run", "-d", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp+tls://localhost:{server.Port}",
            "--log-opt", "syslog-tls-ca-cert=" + pki.CaFile, "--log-opt", "syslog-tls-cert=" + pki.ClientCertFile,
            "--log-opt", "syslog-tls-key=" + pki.ClientKeyFile, "busybox", "echo", "plain").Trim();
        (text, _) = await server.NextConnectionAsync();
        Assert.Matches(@"^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d " + Regex.Escape($"{id[..12]}[{Pid}]: plain\n") + "$", text);
        docker.Ok("rm", "-f", id);
    }

    [Fact]
    public async Task A_server_the_ca_did_not_sign_or_a_wrong_name_or_unreadable_files_fail_the_start_in_dockerds_words()
    {
        using var dir = new TempDirectory("syslog-tls");
        using var pki = new TestPki(dir);
        using var server = new TlsSyslogServer(pki.Server, requireClientCertificate: false);
        string address = $"syslog-address=tcp+tls://127.0.0.1:{server.Port}";
        DockerCli docker = Docker();
        (string[] Options, string Error)[] failures =
        [
            // dockerd 20.10, each checked by hand against the same kind of server:
            (["syslog-tls-ca-cert=" + pki.OtherCaFile], "failed to initialize logging driver: x509: certificate signed by unknown authority"),
            ([], "failed to initialize logging driver: x509: certificate signed by unknown authority"),
            (["syslog-tls-ca-cert=/nonexistent.pem"], "failed to initialize logging driver: could not read CA certificate \"/nonexistent.pem\": open /nonexistent.pem: no such file or directory"),
            (["syslog-tls-ca-cert=" + pki.CaFile, "syslog-tls-cert=" + pki.ClientCertFile], "failed to initialize logging driver: Could not load X509 key pair: open : no such file or directory"),
            (["syslog-tls-ca-cert=" + pki.CaFile, "syslog-tls-cert=/nonexistent.pem", "syslog-tls-key=" + pki.ClientKeyFile],
                "failed to initialize logging driver: Could not load X509 key pair: open /nonexistent.pem: no such file or directory"),
        ];
        foreach (var (options, error) in failures)
        {
            var (exit, _, stderr) = docker.Run(["run", "--rm", "--log-driver", "syslog", "--log-opt", address, .. options.SelectMany(o => new[] { "--log-opt", o }), "busybox", "true"]);
            Assert.True(exit != 0 && stderr.Contains(error, StringComparison.Ordinal), $"{string.Join(' ', options)}: {stderr}");
        }

        // A certificate for another name: Go's x509.HostnameError.
        using var elsewhere = new TlsSyslogServer(pki.Elsewhere, requireClientCertificate: false);
        var (code, _, message) = docker.Run("run", "--rm", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp+tls://127.0.0.1:{elsewhere.Port}",
            "--log-opt", "syslog-tls-ca-cert=" + pki.CaFile, "busybox", "true");
        Assert.True(code != 0 && message.Contains("failed to initialize logging driver: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs", StringComparison.Ordinal), message);

        // syslog-tls-skip-verify: its presence skips the check, whatever its value (dockerd reads only the key).
        docker.Ok("run", "--rm", "--log-driver", "syslog", "--log-opt", address, "--log-opt", "syslog-tls-ca-cert=" + pki.OtherCaFile,
            "--log-opt", "syslog-tls-skip-verify=false", "busybox", "echo", "unchecked");
        var (text, _) = await server.NextConnectionAsync();
        Assert.EndsWith("]: unchecked\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_the_server_closes_is_made_again_with_a_new_handshake_for_the_next_message()
    {
        using var dir = new TempDirectory("syslog-tls");
        using var pki = new TestPki(dir);
        using var server = new TlsSyslogServer(pki.Server, requireClientCertificate: false, closeAfterLines: 1);
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp+tls://127.0.0.1:{server.Port}",
            "--log-opt", "syslog-tls-ca-cert=" + pki.CaFile, "busybox", "sh", "-c", "echo first; sleep 1; echo second; sleep 1; echo third").Trim();
        try
        {
            // The server closes after the first line; "second" finds the connection closed (it is dropped, as srslog's
            // write to a closed connection fails), "third" goes on a new connection made at once.
            var (first, _) = await server.NextConnectionAsync();
            Assert.EndsWith("]: first\n", first, StringComparison.Ordinal);
            var (next, _) = await server.NextConnectionAsync();
            Assert.Matches(@"\]: (second|third)\n$", next);
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    [GeneratedRegex(@"(\d+) (<30>1 [^\n]*\n)")]
    private static partial Regex Rfc5424Frame();

    /// <summary>A CA, a server certificate it signed for 127.0.0.1 and localhost, one for "elsewhere" only, a client certificate, and another CA, as PEM files.</summary>
    private sealed class TestPki : IDisposable
    {
        public X509Certificate2 Server { get; }
        public X509Certificate2 Elsewhere { get; }
        public string CaFile { get; }
        public string OtherCaFile { get; }
        public string ClientCertFile { get; }
        public string ClientKeyFile { get; }
        public string ClientThumbprint { get; }

        public TestPki(TempDirectory dir)
        {
            using RSA caKey = RSA.Create(2048);
            var caRequest = new CertificateRequest("CN=berth test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            using X509Certificate2 ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
            CaFile = Write(dir, "ca.pem", ca.ExportCertificatePem());

            using RSA otherKey = RSA.Create(2048);
            var otherRequest = new CertificateRequest("CN=another CA", otherKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            otherRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using X509Certificate2 other = otherRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
            OtherCaFile = Write(dir, "other-ca.pem", other.ExportCertificatePem());

            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            Server = Issue(ca, "CN=localhost", names, X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, "1.3.6.1.5.5.7.3.1", out _);
            var elsewhere = new SubjectAlternativeNameBuilder();
            elsewhere.AddDnsName("elsewhere.example");
            Elsewhere = Issue(ca, "CN=elsewhere.example", elsewhere, X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, "1.3.6.1.5.5.7.3.1", out _);
            using X509Certificate2 client = Issue(ca, "CN=berth client", null, X509KeyUsageFlags.DigitalSignature, "1.3.6.1.5.5.7.3.2", out RSA clientKey);
            ClientCertFile = Write(dir, "client.pem", client.ExportCertificatePem());
            ClientKeyFile = Write(dir, "client.key", clientKey.ExportPkcs8PrivateKeyPem());
            ClientThumbprint = client.GetCertHashString();
            clientKey.Dispose();
        }

        private static X509Certificate2 Issue(X509Certificate2 ca, string subject, SubjectAlternativeNameBuilder? names, X509KeyUsageFlags usage, string purpose, out RSA key)
        {
            key = RSA.Create(2048);
            var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(purpose)], false));
            if (names is not null) request.CertificateExtensions.Add(names.Build());
            byte[] serial = RandomNumberGenerator.GetBytes(12);
            using X509Certificate2 issued = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
            using X509Certificate2 withKey = issued.CopyWithPrivateKey(key);
            // Through PKCS#12, so that SslStream finds the key on any platform.
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        }

        private static string Write(TempDirectory dir, string name, string pem)
        {
            string path = dir.Combine(name);
            File.WriteAllText(path, pem);
            return path;
        }

        public void Dispose()
        {
            Server.Dispose();
            Elsewhere.Dispose();
        }
    }

    /// <summary>A TLS server on a loopback port: each connection whose handshake succeeds is read to its end (handshakes that fail are dropped).</summary>
    private sealed class TlsSyslogServer : IDisposable
    {
        private readonly Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly System.Threading.Channels.Channel<(string, X509Certificate?)> connections = System.Threading.Channels.Channel.CreateUnbounded<(string, X509Certificate?)>();
        private readonly CancellationTokenSource stop = new();
        private readonly int closeAfterLines;

        public int Port { get; }

        public TlsSyslogServer(X509Certificate2 certificate, bool requireClientCertificate, int closeAfterLines = int.MaxValue)
        {
            this.closeAfterLines = closeAfterLines;
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            _ = Task.Run(() => AcceptAsync(certificate, requireClientCertificate));
        }

        public async Task<(string Text, X509Certificate? Client)> NextConnectionAsync()
            => await connections.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        private async Task AcceptAsync(X509Certificate2 certificate, bool requireClientCertificate)
        {
            while (!stop.IsCancellationRequested)
            {
                Socket connection;
                try { connection = await listener.AcceptAsync(stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
                _ = Task.Run(async () =>
                {
                    using var stream = new SslStream(new NetworkStream(connection, ownsSocket: true), false, (_, _, _, _) => true);
                    try
                    {
                        await stream.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                        {
                            ServerCertificate = certificate,
                            ClientCertificateRequired = requireClientCertificate,
                        }, stop.Token);
                        var data = new MemoryStream();
                        var buffer = new byte[65536];
                        int n, lines = 0;
                        while (lines < closeAfterLines && (n = await stream.ReadAsync(buffer, stop.Token)) > 0)
                        {
                            data.Write(buffer, 0, n);
                            lines += buffer.AsSpan(0, n).Count((byte)'\n');
                        }
                        connections.Writer.TryWrite((Encoding.UTF8.GetString(data.ToArray()), stream.RemoteCertificate));
                    }
                    catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException) { }
                });
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Dispose();
        }
    }
}
