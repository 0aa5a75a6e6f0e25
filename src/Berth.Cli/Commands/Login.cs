using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Images.Registry;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth login</c> and <c>berth logout</c>, as docker's: the daemon checks the credentials
/// against the registry (<c>POST /auth</c>), the client keeps them, in the config file's
/// credential helper when one is configured, else in <c>auths</c> (see
/// <see cref="DockerConfigCredentials.SaveLogin"/>). Pull and push then send them.
/// </summary>
internal static class LoginCommands
{
    public static IEnumerable<(string Name, Func<Command> Build)> TopLevel() => [("login", Login), ("logout", Logout)];

    private static Command Login()
    {
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne, Description = "registry (default: Docker Hub)" };
        var username = new Option<string?>("--username", "-u") { Description = "Username" };
        var password = new Option<string?>("--password", "-p") { Description = "Password" };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Take the password from stdin" };
        var command = new Command("login", "Log in to a registry") { server, username, password, passwordStdin };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string registry = parse.GetValue(server) is { Length: > 0 } s ? s : "docker.io";
            string? user = parse.GetValue(username), secret = parse.GetValue(password);
            if (parse.GetValue(passwordStdin))
            {
                if (secret is not null) throw new UsageException("--password and --password-stdin are mutually exclusive");
                if (string.IsNullOrEmpty(user)) throw new UsageException("Must provide --username with --password-stdin");
                secret = Console.In.ReadToEnd().TrimEnd('\n', '\r');
            }
            else if (secret is not null)
            {
                Console.Error.WriteLine("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            }
            if (string.IsNullOrEmpty(user) || string.IsNullOrEmpty(secret))
            {
                if (!Interop.Libc.IsTerminal(0)) throw new UsageException("Error: Cannot perform an interactive login from a non TTY device");
                if (string.IsNullOrEmpty(user))
                {
                    Console.Out.Write("Username: ");
                    user = Console.ReadLine()?.Trim();
                    if (string.IsNullOrEmpty(user)) throw new UsageException("Error: Non-null Username Required");
                }
                if (string.IsNullOrEmpty(secret))
                {
                    Console.Out.Write("Password: ");
                    secret = ReadHidden();
                    Console.Out.WriteLine();
                    if (string.IsNullOrEmpty(secret)) throw new UsageException("Error: Password Required");
                }
            }

            string key = DockerConfigCredentials.ServerKey(registry);
            await client.PostJsonAsync("/auth", body: new JsonObject { ["username"] = user, ["password"] = secret, ["serveraddress"] = key }, ct: ct).ConfigureAwait(false);
            string path = DockerConfigCredentials.DefaultPath;
            if (DockerConfigCredentials.SaveLogin(path, registry, user, secret))
                Console.Error.WriteLine($"WARNING! Your password will be stored unencrypted in {path}.\n"
                    + "Configure a credential helper (credsStore in that file) to remove this warning.\n");
            Console.Out.WriteLine("Login Succeeded");
            return 0;
        });
        return command;
    }

    private static Command Logout()
    {
        var server = new Argument<string?>("SERVER") { Arity = ArgumentArity.ZeroOrOne, Description = "registry (default: Docker Hub)" };
        var command = new Command("logout", "Log out from a registry") { server };
        Runner.SetAction(command, (parse, _) =>
        {
            string registry = parse.GetValue(server) is { Length: > 0 } s ? s : "docker.io";
            string key = DockerConfigCredentials.ServerKey(registry);
            Console.Out.WriteLine(DockerConfigCredentials.RemoveLogin(DockerConfigCredentials.DefaultPath, registry)
                ? $"Removing login credentials for {key}" : $"Not logged in to {key}");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>A line from the terminal without echoing it.</summary>
    private static string ReadHidden()
    {
        var text = new StringBuilder();
        while (true)
        {
            ConsoleKeyInfo key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) return text.ToString();
            if (key.Key == ConsoleKey.Backspace) { if (text.Length > 0) text.Length--; }
            else if (key.KeyChar != '\0') text.Append(key.KeyChar);
        }
    }
}
