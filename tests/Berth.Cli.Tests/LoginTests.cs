namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth login</c> / <c>logout</c> against a registry that wants a token (the real registry
/// with <c>auth: token</c> and a token server made by the test): the daemon checks the password,
/// the CLI keeps it in the docker config file, push and pull send it, logout forgets it.
/// </summary>
public sealed class LoginTests
{
    [Fact]
    public void LoginPushPullLogout()
    {
        using var cli = new BerthCli();
        using var registry = new TokenRegistry("alice", "s3cret");
        string config = Path.Combine(cli.Work, "docker-config", "config.json");
        string repo = $"{registry.Host}/secure/busybox:1";
        cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "login"), repo);

        CliResult anonymous = cli.Run("push", repo);
        Assert.True(anonymous.ExitCode != 0, anonymous.ToString());

        CliResult wrong = cli.RunWith("nope\n"u8.ToArray(), "login", "-u", "alice", "--password-stdin", registry.Host);
        Assert.True(wrong.ExitCode == 1, wrong.ToString());
        Assert.Contains("Error response from daemon", wrong.Stderr);
        Assert.False(File.Exists(config), "a refused login was saved");

        CliResult ok = cli.RunWith("s3cret\n"u8.ToArray(), "login", "-u", "alice", "--password-stdin", registry.Host);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Equal("Login Succeeded\n", ok.Stdout);
        Assert.Contains("stored unencrypted", ok.Stderr);
        Assert.Contains($"\"{registry.Host}\"", File.ReadAllText(config));

        cli.Ok("push", repo);
        cli.Ok("rmi", repo);
        cli.Ok("pull", repo);
        cli.Ok("rmi", repo);

        Assert.Equal($"Removing login credentials for {registry.Host}\n", cli.Ok("logout", registry.Host));
        CliResult forgotten = cli.Run("pull", repo);
        Assert.True(forgotten.ExitCode != 0, forgotten.ToString());
        Assert.Equal($"Not logged in to {registry.Host}\n", cli.Ok("logout", registry.Host));

        // No password and no terminal to ask on: docker's refusal, nothing asked.
        CliResult noTty = cli.Run("login", "-u", "alice", registry.Host);
        Assert.True(noTty.ExitCode == 1, noTty.ToString());
        Assert.Contains("Cannot perform an interactive login from a non TTY device", noTty.Stderr);
    }
}
