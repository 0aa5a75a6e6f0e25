using System.Text;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Registry;

/// <summary>Bearer-token auth against the real registry configured with <c>auth: token</c> and a token server made here.</summary>
public sealed class RegistryAuthTests
{
    private static RegistryClient Client(ICredentialProvider credentials, RecordingHandler? handler = null)
        => new(new RegistryClientOptions { Credentials = credentials, Handler = handler, InitialRetryDelay = TimeSpan.FromMilliseconds(10) });

    [Fact]
    public async Task Token_auth_with_credentials_from_a_docker_config_pushes_and_pulls_and_refuses_without()
    {
        using var dir = new TempDirectory("auth");
        using var secure = new TokenRegistry("alice", "s3cret");
        TokenServer tokens = secure.Tokens;
        RegistryProcess registry = secure.Registry;

        string auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret"));
        File.WriteAllText(dir.Combine("config.json"), "{\"auths\":{\"" + registry.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        DockerConfigCredentials credentials = DockerConfigCredentials.Load(dir.Combine("config.json"));

        using var local = new StoreScope();
        string name = $"{registry.Host}/secure/app:v1";
        var m = await TestImages.StoreImageAsync(local.Content, [TestImages.FileLayer("secret", "data")]);
        local.Images.SetReference(ImageReference.Parse(name), m with { Platform = null });
        using var handler = new RecordingHandler();
        using (RegistryClient client = Client(credentials, handler))
        {
            await local.Images.PushAsync(client, name);
            using var remote = new StoreScope();
            Image pulled = await remote.Images.PullAsync(client, name);
            Assert.Equal(local.Images.Get(name).Id, pulled.Id);
        }
        Assert.InRange(tokens.Issued, 1, 4); // cached per scope, not fetched per request

        // Anonymous: the token endpoint refuses, and the error says who refused what.
        using (RegistryClient anonymous = Client(DockerConfigCredentials.Empty))
        {
            using var remote = new StoreScope();
            var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAsync(anonymous, name));
            Assert.Equal(ImagesErrorKind.Unauthorized, e.Kind);
            Assert.Contains(registry.Host, e.Message);
            Assert.Contains("anonymous", e.Message);
            Assert.Contains("repository:secure/app:pull", e.Message);
        }

        // Wrong password.
        using (RegistryClient wrong = Client(DockerConfigCredentials.Parse(Encoding.UTF8.GetBytes(
            "{\"auths\":{\"http://" + registry.Host + "/v1/\":{\"username\":\"alice\",\"password\":\"nope\"}}}"))))
        {
            using var remote = new StoreScope();
            var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAsync(wrong, name));
            Assert.Equal(ImagesErrorKind.Unauthorized, e.Kind);
            Assert.Contains("`alice`", e.Message);
        }
    }

    [Fact]
    public async Task Login_checks_the_credentials_against_the_registry_and_its_token_server()
    {
        using var secure = new TokenRegistry("alice", "s3cret");
        TokenServer tokens = secure.Tokens;
        RegistryProcess registry = secure.Registry;
        static ICredentialProvider As(string registry, string user, string password) => DockerConfigCredentials.Parse(Encoding.UTF8.GetBytes(
            "{\"auths\":{\"" + registry + "\":{\"auth\":\"" + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)) + "\"}}}"));

        using (RegistryClient right = Client(As(registry.Host, "alice", "s3cret")))
            await right.LoginAsync(registry.Host);
        Assert.Equal(1, tokens.Issued);
        using (RegistryClient wrong = Client(As(registry.Host, "alice", "nope")))
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => wrong.LoginAsync(registry.Host));
            Assert.Equal(ImagesErrorKind.Unauthorized, e.Kind);
            Assert.Contains("`alice`", e.Message);
        }
        using (RegistryClient anonymous = Client(DockerConfigCredentials.Empty))
            Assert.Equal(ImagesErrorKind.Unauthorized, (await Assert.ThrowsAsync<RegistryException>(() => anonymous.LoginAsync(registry.Host))).Kind);

        // A registry that asks for no credentials takes any.
        using var open = new RegistryProcess();
        using (RegistryClient any = Client(As(open.Host, "bob", "whatever")))
            await any.LoginAsync(open.Host);
    }

    /// <summary>A credential helper in a temp dir that keeps what it is given in a file next to it, as docker-credential-pass would in its store.</summary>
    private static string FakeHelper(TempDirectory dir)
    {
        string helper = dir.Combine("docker-credential-fake");
        string store = dir.Combine("helper-store");
        File.WriteAllText(helper, $$"""
            #!/bin/sh
            # docker-credential-fake: one credential at most, kept in {{store}}; every call logged.
            echo "$1" >> {{store}}.calls
            case "$1" in
              store) cat > {{store}} ;;
              get) read -r url; if [ -f {{store}} ] && grep -q "\"ServerURL\":\"$url\"" {{store}}; then cat {{store}}; else echo "credentials not found in native keychain"; exit 1; fi ;;
              list) if [ -f {{store}} ]; then sed -n 's/.*"ServerURL":"\([^"]*\)","Username":"\([^"]*\)".*/{"\1":"\2"}/p' {{store}}; else echo '{}'; fi ;;
              erase) read -r url; if [ -f {{store}} ]; then rm {{store}}; else echo "credentials not found in native keychain"; exit 1; fi ;;
              *) echo "unknown action $1" >&2; exit 2 ;;
            esac
            """);
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return helper;
    }

    /// <summary>All(), for --use-api-socket: what credsStore lists and every auths entry, helper first, under docker's keys.</summary>
    [Fact]
    public void All_gathers_the_helpers_list_and_the_auths_entries()
    {
        using var dir = new TempDirectory("helper-all");
        string helper = FakeHelper(dir);
        string? Find(string program) => program == "docker-credential-fake" ? helper : null;
        string config = dir.Combine("config.json");
        string bob = Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pw"));
        File.WriteAllText(config, """{"credsStore": "fake", "auths": {"plain.example": {"auth": "BOB"}, "https://index.docker.io/v1/": {"identitytoken": "tok"}, "empty.example": {}}}""".Replace("BOB", bob, StringComparison.Ordinal));
        DockerConfigCredentials.SaveLogin(config, "127.0.0.1:5000", "alice", "s3cret", Find);

        Dictionary<string, RegistryCredential> all = DockerConfigCredentials.Load(config, Find).All();
        Assert.Equal(["127.0.0.1:5000", "https://index.docker.io/v1/", "plain.example"], all.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new RegistryCredential("alice", "s3cret"), all["127.0.0.1:5000"]);
        Assert.Equal(new RegistryCredential("bob", "pw"), all["plain.example"]);
        Assert.Equal(new RegistryCredential(null, null, "tok"), all["https://index.docker.io/v1/"]);
        Assert.Contains("list", File.ReadAllLines(dir.Combine("helper-store.calls")));
    }

    [Fact]
    public void Login_is_saved_in_the_credential_helper_when_the_config_names_one_and_read_back_from_it()
    {
        using var dir = new TempDirectory("helper");
        string helper = FakeHelper(dir);
        string? Find(string program) => program == "docker-credential-fake" ? helper : null;
        string config = dir.Combine("config.json");
        File.WriteAllText(config, """{"credsStore": "fake", "psFormat": "table {{.ID}}"}""");

        Assert.False(DockerConfigCredentials.SaveLogin(config, "127.0.0.1:5000", "alice", "s3cret", Find)); // not in plain text
        string saved = File.ReadAllText(config);
        Assert.DoesNotContain("s3cret", saved);
        Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret")), saved);
        Assert.Contains("\"psFormat\"", saved); // the rest of the file is kept
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));

        var credentials = DockerConfigCredentials.Load(config, Find);
        Assert.Equal(new RegistryCredential("alice", "s3cret"), credentials.Get("127.0.0.1:5000"));
        Assert.Null(credentials.Get("other.example"));

        Assert.True(DockerConfigCredentials.RemoveLogin(config, "127.0.0.1:5000", Find));
        Assert.Null(DockerConfigCredentials.Load(config, Find).Get("127.0.0.1:5000"));
        Assert.False(DockerConfigCredentials.RemoveLogin(config, "127.0.0.1:5000", Find));
        Assert.Equal(["store", "get", "get", "erase", "get", "erase"], File.ReadAllLines(dir.Combine("helper-store.calls")));
    }

    [Fact]
    public void Without_a_helper_a_login_goes_into_auths_and_a_missing_or_bad_helper_is_a_clear_error()
    {
        using var dir = new TempDirectory("helper");
        string config = dir.Combine("config.json");
        Assert.True(DockerConfigCredentials.SaveLogin(config, "docker.io", "bob", "pw"));
        Assert.Contains("https://index.docker.io/v1/", File.ReadAllText(config));
        Assert.Equal(new RegistryCredential("bob", "pw"), DockerConfigCredentials.Load(config).Get("docker.io"));
        Assert.True(DockerConfigCredentials.RemoveLogin(config, "docker.io"));
        Assert.Null(DockerConfigCredentials.Load(config).Get("docker.io"));

        File.WriteAllText(config, """{"credHelpers": {"reg.example": "nosuch"}}""");
        var missing = Assert.Throws<ImagesException>(() => DockerConfigCredentials.Load(config, _ => null).Get("reg.example"));
        Assert.Contains("docker-credential-nosuch is not installed", missing.Message);
        Assert.Null(DockerConfigCredentials.Load(config, _ => null).Get("other.example")); // other registries are not its business

        File.WriteAllText(config, """{"credsStore": "../../bin/sh"}""");
        Assert.Contains("invalid credential helper name", Assert.Throws<ImagesException>(() => DockerConfigCredentials.Load(config).Get("reg.example")).Message);
        File.WriteAllText(config, """{"credsStore": 5}""");
        Assert.Contains("credsStore is not a string", Assert.Throws<ImagesException>(() => DockerConfigCredentials.Load(config)).Message);
    }

    [Fact]
    public void Docker_config_credentials_parse_auth_and_map_docker_hub()
    {
        string auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pa:ss"));
        var c = DockerConfigCredentials.Parse(Encoding.UTF8.GetBytes("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" + auth + "\"},\"reg.example:5000\":{\"identitytoken\":\"tok\"}}}"));
        Assert.Equal(new RegistryCredential("bob", "pa:ss"), c.Get("docker.io"));
        Assert.Equal("tok", c.Get("reg.example:5000")!.IdentityToken);
        Assert.Null(c.Get("other.example"));
    }

    [Fact]
    public void Challenges_parse_quoted_parameters()
    {
        var parse = RegistryAuthenticator.ParseChallenge("realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull,push\"");
        Assert.Equal("https://auth.example/token", parse["realm"]);
        Assert.Equal("repository:a/b:pull,push", parse["scope"]);
    }
}
