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
        string cert = dir.Combine("token.pem");
        using var tokens = new TokenServer(cert, "alice", "s3cret");
        using var registry = new RegistryProcess(tokens.AuthSection(cert));

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
    public void Docker_config_credentials_parse_auth_and_map_docker_hub()
    {
        string auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pa:ss"));
        var c = DockerConfigCredentials.Parse(Encoding.UTF8.GetBytes("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" + auth + "\"},\"reg.example:5000\":{\"identitytoken\":\"tok\"}},\"credsStore\":\"desktop\"}"));
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
