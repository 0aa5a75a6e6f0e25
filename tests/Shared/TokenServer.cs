using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Berth.Tests.Shared;

/// <summary>
/// A Docker token server (the Distribution "token authentication" spec) on 127.0.0.1 for the real
/// registry's <c>auth: token</c>: checks basic credentials and issues RS256 JWTs whose <c>x5c</c>
/// header carries a self-signed certificate that the registry trusts through <c>rootcertbundle</c>.
/// Stopped on Dispose.
/// </summary>
internal sealed class TokenServer : IDisposable
{
    public const string Service = "berth-test-registry";
    public const string Issuer = "berth-test-issuer";
    private readonly HttpListener _listener;
    private readonly RSA _key = RSA.Create(2048);
    private readonly X509Certificate2 _certificate;
    private readonly string _user, _password;
    private readonly Task _loop;
    private int _issued;

    public TokenServer(string certificatePath, string user, string password)
    {
        _user = user;
        _password = password;
        var request = new CertificateRequest("CN=berth-test-token", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(certificatePath, _certificate.ExportCertificatePem());
        _listener = LoopbackListener.Start(out int port);
        Port = port;
        _loop = Task.Run(() => LoopbackListener.ServeAsync(_listener, c => { Handle(c); return Task.CompletedTask; }));
    }

    public int Port { get; }
    public string Realm => $"http://127.0.0.1:{Port}/token";
    public int Issued => Volatile.Read(ref _issued);
    public int Refused { get; private set; }

    /// <summary>The registry config's <c>auth:</c> section.</summary>
    public string AuthSection(string certificatePath) => $"""
          token:
            realm: {Realm}
            service: {Service}
            issuer: {Issuer}
            rootcertbundle: {certificatePath}

        """;

    private void Handle(HttpListenerContext context)
    {
        string expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_user}:{_password}"));
        if (context.Request.Headers["Authorization"] != expected)
        {
            Refused++;
            context.Response.StatusCode = 401;
            return;
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string header = B64(Json(w =>
        {
            w.WriteString("typ", "JWT");
            w.WriteString("alg", "RS256");
            w.WriteStartArray("x5c");
            w.WriteStringValue(Convert.ToBase64String(_certificate.RawData));
            w.WriteEndArray();
        }));
        string claims = B64(Json(w =>
        {
            w.WriteString("iss", Issuer);
            w.WriteString("sub", _user);
            w.WriteString("aud", Service);
            w.WriteNumber("exp", now + 300);
            w.WriteNumber("nbf", now - 10);
            w.WriteNumber("iat", now);
            w.WriteString("jti", Guid.NewGuid().ToString("N"));
            w.WriteStartArray("access");
            foreach (string scope in context.Request.QueryString.GetValues("scope") ?? [])
            {
                string[] parts = scope.Split(':');
                if (parts.Length != 3) continue;
                w.WriteStartObject();
                w.WriteString("type", parts[0]);
                w.WriteString("name", parts[1]);
                w.WriteStartArray("actions");
                foreach (string action in parts[2].Split(',')) w.WriteStringValue(action);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }));
        string signature = B64(_key.SignData(Encoding.ASCII.GetBytes(header + "." + claims), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        Interlocked.Increment(ref _issued);
        byte[] body = Json(w =>
        {
            w.WriteString("token", $"{header}.{claims}.{signature}");
            w.WriteNumber("expires_in", 300);
        });
        context.Response.ContentType = "application/json";
        context.Response.OutputStream.Write(body);
    }

    private static byte[] Json(Action<Utf8JsonWriter> fill)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            fill(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose()
    {
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _certificate.Dispose();
        _key.Dispose();
    }
}

/// <summary>The real registry behind a <see cref="TokenServer"/> that knows one user: a registry that wants a login.</summary>
internal sealed class TokenRegistry : IDisposable
{
    private readonly TempDirectory _dir = new("token-registry");

    public TokenRegistry(string user, string password)
    {
        string certificate = _dir.Combine("token.pem");
        try
        {
            Tokens = new TokenServer(certificate, user, password);
            Registry = new RegistryProcess(Tokens.AuthSection(certificate));
        }
        catch
        {
            Tokens?.Dispose();
            _dir.Dispose();
            throw;
        }
    }

    public TokenServer Tokens { get; }
    public RegistryProcess Registry { get; }
    public string Host => Registry.Host;

    public void Dispose()
    {
        Registry.Dispose();
        Tokens.Dispose();
        _dir.Dispose();
    }
}
