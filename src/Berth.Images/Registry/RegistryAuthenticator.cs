using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Berth.Images.Registry;

/// <summary>
/// Answers a registry's 401 challenges (the Distribution "token authentication" flow): a
/// <c>Bearer realm=…,service=…,scope=…</c> challenge is taken to the token endpoint (with the
/// user's credentials as basic auth, or an identity token as an OAuth refresh token) and the
/// token is cached per registry and scope until it expires; a <c>Basic</c> challenge is answered
/// with the credentials directly. Credentials are never sent before a registry asks for them.
/// </summary>
internal sealed class RegistryAuthenticator(HttpClient http, ICredentialProvider credentials, TimeProvider time)
{
    private static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromSeconds(60);
    private readonly ConcurrentDictionary<string, (string Header, DateTimeOffset Expires)> _cache = new(StringComparer.Ordinal);

    /// <summary>Adds a cached Authorization header for the registry and scope, if there is one.</summary>
    public void Apply(HttpRequestMessage request, string registry, string scope)
    {
        if ((Lookup(registry + " " + scope) ?? Lookup(registry + " basic")) is { } header)
            request.Headers.Authorization = AuthenticationHeaderValue.Parse(header);
    }

    private string? Lookup(string key)
        => _cache.TryGetValue(key, out var entry) && entry.Expires > time.GetUtcNow() ? entry.Header : null;

    /// <summary>Obtains authorization after <paramref name="response"/> (a 401); false when there is no way to.</summary>
    public async Task<bool> AuthenticateAsync(HttpResponseMessage response, string registry, string repositoryForErrors, string scope, CancellationToken cancellationToken)
    {
        AuthenticationHeaderValue? challenge = response.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            ?? response.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase));
        if (challenge is null) return false;
        RegistryCredential? credential = credentials.Get(registry);

        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (credential?.Username is null) return false;
            string basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}"));
            _cache[registry + " basic"] = (basic, DateTimeOffset.MaxValue);
            return true;
        }

        Dictionary<string, string> parameters = ParseChallenge(challenge.Parameter ?? "");
        if (!parameters.TryGetValue("realm", out string? realm) || !Uri.TryCreate(realm, UriKind.Absolute, out Uri? realmUri)
            || (realmUri.Scheme != Uri.UriSchemeHttps && realmUri.Scheme != Uri.UriSchemeHttp))
            throw new RegistryException(ImagesErrorKind.Unauthorized, $"registry {registry}: bearer challenge without a usable realm (`{challenge.Parameter}`)", registry, repositoryForErrors, null, HttpStatusCode.Unauthorized);
        parameters.TryGetValue("service", out string? service);

        // Our scopes plus whatever the challenge names (it may ask for more, e.g. a mount source).
        var scopes = new List<string>(scope.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (parameters.TryGetValue("scope", out string? challengeScope))
            foreach (string s in challengeScope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                if (!scopes.Contains(s)) scopes.Add(s);

        HttpRequestMessage tokenRequest;
        if (credential?.IdentityToken is { Length: > 0 } refresh)
        {
            var form = new List<KeyValuePair<string, string>>
            {
                new("grant_type", "refresh_token"), new("refresh_token", refresh), new("client_id", "berth"),
            };
            if (service is not null) form.Add(new("service", service));
            if (scopes.Count > 0) form.Add(new("scope", string.Join(' ', scopes)));
            tokenRequest = new HttpRequestMessage(HttpMethod.Post, realmUri) { Content = new FormUrlEncodedContent(form) };
        }
        else
        {
            var query = new StringBuilder();
            if (service is not null) query.Append("service=").Append(Uri.EscapeDataString(service));
            foreach (string s in scopes) query.Append(query.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(s));
            var builder = new UriBuilder(realmUri);
            builder.Query = string.IsNullOrEmpty(builder.Query) ? query.ToString() : builder.Query.TrimStart('?') + "&" + query;
            tokenRequest = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            if (credential?.Username is not null)
                tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}")));
        }

        using (tokenRequest)
        using (HttpResponseMessage tokenResponse = await http.SendAsync(tokenRequest, cancellationToken).ConfigureAwait(false))
        {
            if (!tokenResponse.IsSuccessStatusCode)
                throw new RegistryException(ImagesErrorKind.Unauthorized,
                    $"registry {registry}: token endpoint {realmUri.GetLeftPart(UriPartial.Path)} refused {(credential is null ? "anonymous access" : $"the credentials of `{credential.Username}`")}{(scopes.Count > 0 ? " for " + string.Join(' ', scopes) : "")}: {(int)tokenResponse.StatusCode} {tokenResponse.ReasonPhrase}",
                    registry, repositoryForErrors, null, tokenResponse.StatusCode);
            byte[] body = await tokenResponse.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            (string token, TimeSpan lifetime) = ParseToken(body, registry, repositoryForErrors);
            // Renew a little early so a request never goes out with a token about to expire.
            TimeSpan margin = lifetime > TimeSpan.FromSeconds(20) ? TimeSpan.FromSeconds(10) : TimeSpan.Zero;
            _cache[registry + " " + scope] = ("Bearer " + token, time.GetUtcNow() + lifetime - margin);
        }
        return true;
    }

    private static (string Token, TimeSpan Lifetime) ParseToken(byte[] body, string registry, string repository)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            JsonElement root = doc.RootElement;
            string? token = null;
            if (root.TryGetProperty("token", out JsonElement t) && t.ValueKind == JsonValueKind.String) token = t.GetString();
            if (string.IsNullOrEmpty(token) && root.TryGetProperty("access_token", out JsonElement a) && a.ValueKind == JsonValueKind.String) token = a.GetString();
            if (string.IsNullOrEmpty(token)) throw new JsonException("no `token` or `access_token`");
            TimeSpan lifetime = root.TryGetProperty("expires_in", out JsonElement e) && e.TryGetInt32(out int seconds) && seconds > 0
                ? TimeSpan.FromSeconds(seconds) : DefaultTokenLifetime;
            return (token, lifetime);
        }
        catch (JsonException e)
        {
            throw new RegistryException(ImagesErrorKind.Unauthorized, $"registry {registry}: malformed token response: {e.Message}", registry, repository, null, inner: e);
        }
    }

    /// <summary>Parses <c>key="value",key=value</c> (RFC 7235 auth-params; quoted strings may hold commas).</summary>
    internal static Dictionary<string, string> ParseChallenge(string parameters)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        int i = 0;
        while (i < parameters.Length)
        {
            while (i < parameters.Length && (parameters[i] == ',' || char.IsWhiteSpace(parameters[i]))) i++;
            int keyStart = i;
            while (i < parameters.Length && parameters[i] != '=' && parameters[i] != ',') i++;
            string key = parameters[keyStart..i].Trim();
            if (i >= parameters.Length || parameters[i] != '=') continue;
            i++;
            var value = new StringBuilder();
            if (i < parameters.Length && parameters[i] == '"')
            {
                i++;
                while (i < parameters.Length && parameters[i] != '"')
                {
                    if (parameters[i] == '\\' && i + 1 < parameters.Length) i++;
                    value.Append(parameters[i++]);
                }
                i++;
            }
            else
            {
                while (i < parameters.Length && parameters[i] != ',') value.Append(parameters[i++]);
            }
            if (key.Length > 0) result[key] = value.ToString().Trim();
        }
        return result;
    }
}
