using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>Docker's query conventions: booleans as 1/true/yes, <c>filters</c> as JSON.</summary>
public static class QueryArgs
{
    public static bool Bool(HttpContext context, string name) => ParseBool(name, context.Request.Query[name]);

    /// <summary>Docker's query boolean: absent or empty is false; 1/true/yes, 0/false/no; anything else a 400.</summary>
    public static bool ParseBool(string name, string? v)
    {
        if (string.IsNullOrEmpty(v)) return false;
        return v.ToLowerInvariant() switch
        {
            "1" or "true" or "yes" => true,
            "0" or "false" or "no" => false,
            _ => throw ApiException.BadRequest($"invalid value `{v}` for query parameter `{name}`: want a boolean"),
        };
    }

    public static string? String(HttpContext context, string name)
    {
        string? v = context.Request.Query[name];
        return string.IsNullOrEmpty(v) ? null : v;
    }

    /// <summary>
    /// Parses <c>filters</c>: <c>{"name":{"value":true}}</c> (the current form) or
    /// <c>{"name":["value"]}</c> (the legacy one); refuses names outside <paramref name="accepted"/>.
    /// </summary>
    public static Dictionary<string, List<string>> Filters(HttpContext context, params string[] accepted)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string? text = context.Request.Query["filters"];
        if (string.IsNullOrWhiteSpace(text)) return result;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"invalid filters `{text}`: {Berth.Images.JsonErrorText.Describe(e.Message)}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"invalid filters `{text}`: want a JSON object");
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (!accepted.Contains(p.Name)) throw ApiException.BadRequest($"invalid filter '{p.Name}'");
                var values = new List<string>();
                if (p.Value.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty v in p.Value.EnumerateObject())
                        if (v.Value.ValueKind != JsonValueKind.False) values.Add(v.Name);
                }
                else if (p.Value.ValueKind == JsonValueKind.Array)
                {
                    foreach (JsonElement v in p.Value.EnumerateArray())
                        values.Add(v.ValueKind == JsonValueKind.String ? v.GetString()! : throw ApiException.BadRequest($"invalid filter '{p.Name}': values must be strings"));
                }
                else throw ApiException.BadRequest($"invalid filter '{p.Name}': want an object or an array");
                result[p.Name] = values;
            }
        }
        return result;
    }

    /// <summary>The single boolean value of a filter such as <c>dangling</c>; null when absent.</summary>
    public static bool? BoolFilter(Dictionary<string, List<string>> filters, string name)
    {
        if (!filters.TryGetValue(name, out List<string>? values) || values.Count == 0) return null;
        bool? result = null;
        foreach (string v in values)
        {
            bool b = v.ToLowerInvariant() switch
            {
                "1" or "true" => true,
                "0" or "false" => false,
                _ => throw ApiException.BadRequest($"invalid filter '{name}={v}'"),
            };
            if (result is not null && result != b) throw ApiException.BadRequest($"invalid filter '{name}': conflicting values");
            result = b;
        }
        return result;
    }
}
