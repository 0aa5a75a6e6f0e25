using System.Formats.Tar;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Images;
using Berth.Images.Registry;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>run/create --use-api-socket</c>, as docker 28's client does it: the container gets the daemon's
/// API socket at /var/run/docker.sock (the socket this client talks to, bind-mounted) and, when the
/// client holds registry credentials, a config.json with them at /run/secrets/docker/config.json
/// (mode 0600, copied in after the create) with DOCKER_CONFIG pointing there, so a docker client
/// inside pulls and pushes as the user does. A DOCKER_CONFIG given by the user keeps the credentials
/// out (docker's rule: the user knows better). Whoever holds that socket controls the daemon: the
/// flag hands the container the host's root, exactly as it does under docker.
/// </summary>
internal static class ApiSocket
{
    public const string SocketInContainer = "/var/run/docker.sock";
    public const string ConfigInContainer = "/run/secrets/docker/config.json";

    /// <summary>Adds the socket's mount (and DOCKER_CONFIG) to the create body; returns the credentials to copy in after the create.</summary>
    public static Dictionary<string, RegistryCredential> Prepare(DaemonClient client, JsonObject body)
    {
        var host = (JsonObject)body["HostConfig"]!;
        var mounts = host["Mounts"] as JsonArray ?? [];
        mounts.Add((JsonNode)new JsonObject
        {
            ["Type"] = "bind",
            ["Source"] = Path.GetFullPath(client.SocketPath),
            ["Target"] = SocketInContainer,
            ["BindOptions"] = new JsonObject(),
        });
        host["Mounts"] = mounts;
        var env = body["Env"] as JsonArray ?? [];
        if (env.Any(e => e?.GetValue<string>().StartsWith("DOCKER_CONFIG=", StringComparison.Ordinal) == true)) return [];
        Dictionary<string, RegistryCredential> credentials;
        try
        {
            credentials = DockerConfigCredentials.LoadDefault().All();
        }
        catch (ImagesException e)
        {
            throw new UsageException($"resolving credentials failed: {e.Message}");
        }
        if (credentials.Count > 0)
        {
            env.Add((JsonNode)("DOCKER_CONFIG=" + Path.GetDirectoryName(ConfigInContainer)));
            body["Env"] = env;
        }
        return credentials;
    }

    /// <summary>Writes the config file into the created container (PUT /containers/{id}/archive at /).</summary>
    public static async Task CopyConfigAsync(DaemonClient client, string id, Dictionary<string, RegistryCredential> credentials, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, ConfigInContainer.TrimStart('/'))
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                DataStream = new MemoryStream(ConfigJson(credentials)),
            };
            await writer.WriteEntryAsync(entry, ct).ConfigureAwait(false);
        }
        buffer.Position = 0;
        using var content = new StreamContent(buffer);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Put, $"/containers/{id}/archive", new Query().Add("path", "/"), content, ct).ConfigureAwait(false);
    }

    /// <summary>A docker config file holding only <c>auths</c>, as docker writes one: base64 user:password in <c>auth</c>, an identity token beside it.</summary>
    internal static byte[] ConfigJson(Dictionary<string, RegistryCredential> credentials)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentCharacter = '\t', IndentSize = 1 }))
        {
            w.WriteStartObject();
            w.WriteStartObject("auths");
            foreach (var (server, credential) in credentials.OrderBy(c => c.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(server);
                if (!string.IsNullOrEmpty(credential.Username) || !string.IsNullOrEmpty(credential.Password))
                    w.WriteString("auth", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}")));
                if (!string.IsNullOrEmpty(credential.IdentityToken)) w.WriteString("identitytoken", credential.IdentityToken);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
