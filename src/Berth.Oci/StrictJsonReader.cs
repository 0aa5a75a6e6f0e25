using System.Text;
using System.Text.Json;

namespace Berth.Oci;

/// <summary>Reads one value (an object of the model) with a <see cref="StrictJsonReader"/>.</summary>
public delegate T JsonValueReader<T>(ref StrictJsonReader reader);

/// <summary>
/// A forward-only reader over one JSON document that knows the path of the value it stands on,
/// for hand-written readers of hot documents (config.json, state.json). It exists for speed:
/// System.Text.Json's source-generated metadata for the OCI model costs ~3 ms per NativeAOT
/// process (reflection over attributes and converters on first use), and every runtime command
/// is a new process. Its rules are those of <see cref="SpecJsonContext"/>: strict types (no
/// numbers in strings), null only where the model allows it, unknown fields skipped; every
/// problem is a <see cref="SpecException"/> naming the field's path and line.
/// </summary>
/// <remarks>
/// Usage: <c>r.BeginObject()</c>, then <c>while (r.NextProperty(out var name)) switch (name) { … default: r.Skip(); }</c>;
/// arrays with <c>r.BeginArray()</c> and <c>while (r.NextElement())</c>. Each value reader
/// leaves the reader on the value's last token.
/// </remarks>
public ref struct StrictJsonReader
{
    private Utf8JsonReader _reader;
    private readonly ReadOnlySpan<byte> _json;
    private readonly string _file;
    // One entry per open container: the property name or index the reader is at inside it.
    private readonly List<string?> _names = [];
    private readonly List<int> _indexes = [];

    public StrictJsonReader(ReadOnlySpan<byte> json, string file)
    {
        _json = json;
        _file = file;
        _reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        Advance();
    }

    /// <summary>The current token is JSON null.</summary>
    public readonly bool IsNull => _reader.TokenType == JsonTokenType.Null;

    /// <summary>After the root value: anything but whitespace left is a syntax error.</summary>
    public void EndDocument()
    {
        try
        {
            if (_reader.Read())
                throw Error(null, "unexpected content after the document");
        }
        catch (JsonException e)
        {
            throw SyntaxError(e);
        }
    }

    public void BeginObject()
    {
        if (_reader.TokenType != JsonTokenType.StartObject) throw Expected("an object");
        _names.Add(null);
        _indexes.Add(-1);
    }

    /// <summary>Moves to the next property's value; false (and the object closed) at its end.</summary>
    public bool NextProperty(out string name)
    {
        Advance();
        if (_reader.TokenType == JsonTokenType.EndObject)
        {
            Pop();
            name = "";
            return false;
        }
        name = GetString();
        _names[^1] = name;
        Advance();
        return true;
    }

    public void BeginArray()
    {
        if (_reader.TokenType != JsonTokenType.StartArray) throw Expected("an array");
        _names.Add(null);
        _indexes.Add(-1);
    }

    /// <summary>Moves to the next element; false (and the array closed) at its end.</summary>
    public bool NextElement()
    {
        Advance();
        if (_reader.TokenType == JsonTokenType.EndArray)
        {
            Pop();
            return false;
        }
        _indexes[^1]++;
        return true;
    }

    /// <summary>Skips the current value (an unknown field), containers included.</summary>
    public void Skip()
    {
        try { _reader.Skip(); }
        catch (JsonException e) { throw SyntaxError(e); }
    }

    public string String() =>
        _reader.TokenType switch
        {
            JsonTokenType.String => GetString(),
            JsonTokenType.Null => throw MustNotBeNull(),
            _ => throw Expected("a string"),
        };

    public string? NullableString() => IsNull ? null : String();

    // A well-formed token can still hold an escape that is no string (a lone UTF-16 surrogate,
    // "\ud800"): the reader throws InvalidOperationException for it, not a JsonException.
    private readonly string GetString()
    {
        try { return _reader.GetString()!; }
        catch (InvalidOperationException e) { throw Error(Path(), $"not a valid string: {e.Message}"); }
    }

    public bool Boolean() =>
        _reader.TokenType switch
        {
            JsonTokenType.True => true,
            JsonTokenType.False => false,
            _ => throw Expected("a boolean"),
        };

    public bool? NullableBoolean() => IsNull ? null : Boolean();

    public int Int32() => IsNumber && _reader.TryGetInt32(out var v) ? v : throw Expected("an integer (32 bit)");
    public long Int64() => IsNumber && _reader.TryGetInt64(out var v) ? v : throw Expected("an integer (64 bit)");
    public ushort UInt16() => IsNumber && _reader.TryGetUInt16(out var v) ? v : throw Expected("a non-negative integer (16 bit)");
    public uint UInt32() => IsNumber && _reader.TryGetUInt32(out var v) ? v : throw Expected("a non-negative integer (32 bit)");
    public ulong UInt64() => IsNumber && _reader.TryGetUInt64(out var v) ? v : throw Expected("a non-negative integer (64 bit)");

    public int? NullableInt32() => IsNull ? null : Int32();
    public long? NullableInt64() => IsNull ? null : Int64();
    public ushort? NullableUInt16() => IsNull ? null : UInt16();
    public uint? NullableUInt32() => IsNull ? null : UInt32();
    public ulong? NullableUInt64() => IsNull ? null : UInt64();

    private readonly bool IsNumber => _reader.TokenType == JsonTokenType.Number;

    public DateTimeOffset Time() =>
        _reader.TokenType == JsonTokenType.String && _reader.TryGetDateTimeOffset(out var v) ? v : throw Expected("an RFC 3339 time string");

    /// <summary>An object read by <paramref name="read"/>; null for JSON null.</summary>
    public T? Nullable<T>(JsonValueReader<T> read) where T : class => IsNull ? null : read(ref this);

    /// <summary>An array of values read by <paramref name="read"/>; null for JSON null.</summary>
    public List<T>? NullableList<T>(JsonValueReader<T> read)
    {
        if (IsNull) return null;
        BeginArray();
        var list = new List<T>();
        while (NextElement()) list.Add(read(ref this));
        return list;
    }

    /// <summary>An object whose every value <paramref name="read"/> reads; null for JSON null.</summary>
    public Dictionary<string, T>? NullableMap<T>(JsonValueReader<T> read)
    {
        if (IsNull) return null;
        BeginObject();
        var map = new Dictionary<string, T>();
        while (NextProperty(out var key)) map[key] = read(ref this);
        return map;
    }

    public List<string>? NullableStringList() => NullableList(StringValue);
    public List<string> StringList() => IsNull ? throw MustNotBeNull() : NullableStringList()!;
    public List<uint>? NullableUInt32List() => NullableList(static (ref StrictJsonReader r) => r.UInt32());
    public Dictionary<string, string>? NullableStringMap() => NullableMap(StringValue);

    private static readonly JsonValueReader<string> StringValue = static (ref StrictJsonReader r) => r.String();

    /// <summary>An error about the current value, e.g. an unknown enum name.</summary>
    public readonly SpecException Error(string problem) => Error(Path(), problem);

    private readonly SpecException Expected(string what) => Error(Path(), $"expected {what}");

    private readonly SpecException MustNotBeNull() => Error(Path(), "must not be null");

    private readonly SpecException Error(string? path, string problem) => new(path, problem, _file, Line());

    private readonly SpecException SyntaxError(JsonException e)
    {
        int? line = e.LineNumber is long l ? (int)l + 1 : null;
        return new SpecException(null, SpecLoader.StripPosition(e.Message), _file, line, e);
    }

    private void Advance()
    {
        try
        {
            if (!_reader.Read())
                throw new SpecException(null, "the document is empty", _file);
        }
        catch (JsonException e)
        {
            throw SyntaxError(e);
        }
    }

    private void Pop()
    {
        _names.RemoveAt(_names.Count - 1);
        _indexes.RemoveAt(_indexes.Count - 1);
    }

    private readonly int Line()
    {
        var upTo = (int)Math.Min(_reader.TokenStartIndex, _json.Length);
        return _json[..upTo].Count((byte)'\n') + 1;
    }

    /// <summary>The JSON path in System.Text.Json's notation without the leading <c>$.</c>: <c>linux.sysctl['a.b']</c>, <c>mounts[2].type</c>.</summary>
    private readonly string? Path()
    {
        var path = new StringBuilder();
        for (int i = 0; i < _names.Count; i++)
        {
            if (_indexes[i] >= 0)
                path.Append('[').Append(_indexes[i]).Append(']');
            else if (_names[i] is string name)
            {
                if (name.AsSpan().IndexOfAny(".'[] ") >= 0) path.Append("['").Append(name).Append("']");
                else path.Append(path.Length > 0 ? "." : "").Append(name);
            }
        }
        return path.Length == 0 ? null : path.ToString();
    }
}
