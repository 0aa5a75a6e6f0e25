
namespace Berth.Oci;

/// <summary>Reads config.json, turning every JSON problem into a <see cref="SpecException"/> that names the field.</summary>
public static class SpecLoader
{
    public const string ConfigFileName = "config.json";

    public static Spec LoadFromBundle(string bundleDir)
    {
        var path = Path.Combine(bundleDir, ConfigFileName);
        byte[] json;
        try
        {
            json = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw SpecException.Unreadable($"{ConfigFileName} not found in bundle {bundleDir}", inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw SpecException.Unreadable($"{ConfigFileName}: cannot read {path}: {e.Message}", inner: e);
        }
        return Parse(json);
    }

    public static Spec Parse(string json, string fileName = ConfigFileName) =>
        Parse(System.Text.Encoding.UTF8.GetBytes(json), fileName);

    public static Spec Parse(ReadOnlySpan<byte> utf8Json, string fileName = ConfigFileName) =>
        ReadDocument(utf8Json, fileName, SpecReader.ReadSpec);

    /// <summary>A process.json (runc exec --process): the spec's process object.</summary>
    public static Process ParseProcess(ReadOnlySpan<byte> utf8Json, string fileName) =>
        ReadDocument(utf8Json, fileName, SpecReader.ReadProcess);

    /// <summary>A resources file (runc update -r): the spec's linux.resources object; null reads as no change.</summary>
    public static LinuxResources ParseResources(ReadOnlySpan<byte> utf8Json, string fileName) =>
        ReadDocument(utf8Json, fileName, SpecReader.ReadResources, whenNull: new LinuxResources());

    private static T ReadDocument<T>(ReadOnlySpan<byte> utf8Json, string fileName, JsonValueReader<T> read, T? whenNull = null)
        where T : class
    {
        var reader = new StrictJsonReader(utf8Json, fileName);
        if (reader.IsNull) return whenNull ?? throw new SpecException(null, "the document is null", fileName);
        var value = read(ref reader);
        reader.EndDocument();
        return value;
    }

    internal static string StripPosition(string message)
    {
        var at = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (at < 0) at = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        var text = (at < 0 ? message : message[..at]).TrimEnd();
        // The reader's advice is for the programmer, not for whoever wrote config.json.
        const string advice = " Change the reader options.";
        return text.EndsWith(advice, StringComparison.Ordinal) ? text[..^advice.Length] : text;
    }
}
