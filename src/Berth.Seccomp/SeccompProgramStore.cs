using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Oci;
using Berth.Seccomp.Bpf;

namespace Berth.Seccomp;

/// <summary>
/// Compiled programs kept on disk, so that a profile is compiled once per runtime binary rather
/// than once per <c>berth-runtime</c> process (every create and exec is a new process; Docker's
/// default profile took ~0.5 ms to compile each time). One file per program in a directory of
/// the runtime's own state (root-owned, 0700): <c>&lt;fnv-1a of the key&gt;.bpf</c>.
/// </summary>
/// <remarks>
/// The key is the section's full encoding (<see cref="SeccompProgramCache.Encode"/>), the native
/// architecture, the compile options and the identity of the compiler (a NativeAOT executable's GNU build
/// ID, else its module version id; the executable's path, size and modification time, and under the JIT the assembly's): a
/// rebuilt or reinstalled runtime never reads an older program. A file is used only when its stored key equals the key
/// byte for byte (the file name's 64-bit hash is only an address) and its structure checks out;
/// anything else (missing, truncated, another key, another format) is compiled afresh and
/// written over it, atomically (temp file, rename). At most <c>maxEntries</c> files are
/// kept (<see cref="DefaultMaxEntries"/> unless told): writing past that empties the directory first.
/// </remarks>
public sealed class SeccompProgramStore(string directory, int maxEntries = SeccompProgramStore.DefaultMaxEntries)
{
    public const int DefaultMaxEntries = 256;
    private const int MaxInstructions = 4096; // BPF_MAXINSNS
    private static ReadOnlySpan<byte> Magic => "BERTHBPF"u8;
    private const int FormatVersion = 1;

    public string Directory { get; } = directory;

    public int MaxEntries { get; } = maxEntries > 0 ? maxEntries : throw new ArgumentOutOfRangeException(nameof(maxEntries));

    /// <summary>The program from the store when it holds this exact key; otherwise compiled and stored.</summary>
    public SeccompProgram GetOrCompile(LinuxSeccomp section, SeccompArch native, SeccompCompileOptions? options = null)
    {
        options ??= SeccompCompileOptions.Default;
        var key = Key(SeccompProgramCache.Encode(section), native, options.EnosysStub);
        var path = System.IO.Path.Combine(Directory, $"{Fnv1a64(key):x16}.bpf");
        if (TryRead(path, key) is { } stored) return stored;
        var program = SeccompCompiler.Compile(section, native, options);
        TryWrite(path, key, program);
        return program;
    }

    internal static byte[] Key(byte[] encoding, SeccompArch native, bool stub)
    {
        var key = new List<byte>(encoding.Length + 128);
        void Int(long value) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, value); key.AddRange(b.ToArray()); }
        void Text(string value) { var bytes = Encoding.UTF8.GetBytes(value); Int(bytes.Length); key.AddRange(bytes); }
        Int(FormatVersion);
        // The compiler's build, so that any change to the compiler's code gives another key, even in
        // a binary whose size and time a package kept the same: in a NativeAOT executable its GNU
        // build ID (the linker's hash of the whole binary, read from memory for a few hundred
        // instructions), else the module version id (a deterministic build's hash of its inputs;
        // under NativeAOT it would go through the reflection metadata).
        Text(!System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported && ElfBuildId.Read() is { } buildId
            ? "elf-build-id:" + buildId
            : typeof(SeccompCompiler).Module.ModuleVersionId.ToString("N"));
        foreach (var file in CompilerFiles())
        {
            Text(file);
            try
            {
                var info = new FileInfo(file);
                Int(info.Length);
                Int(info.LastWriteTimeUtc.Ticks);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Int(-1); }
        }
        Int((int)native);
        Int(stub ? 1 : 0);
        Int(encoding.Length);
        key.AddRange(encoding);
        return [.. key];
    }

    /// <summary>The files whose change must invalidate stored programs: the executable, and the compiler's assembly when it has a file of its own (JIT).</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "Location is empty in a NativeAOT build: then the executable is the compiler, and it is in the list.")]
    private static List<string> CompilerFiles()
    {
        var files = new List<string>(2);
        if (Environment.ProcessPath is { Length: > 0 } exe) files.Add(exe);
        // Not asked under NativeAOT, where it is empty: reaching the Assembly object alone reads the reflection
        // metadata's assembly names (~190,000 instructions per process).
        if (System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported && typeof(SeccompCompiler).Assembly.Location is { Length: > 0 } assembly)
            files.Add(assembly);
        return files;
    }

    private static SeccompProgram? TryRead(string path, byte[] key)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        return Parse(data, key);
    }

    /// <summary>The program a file holds for <paramref name="key"/>; null for any other key or any damage.</summary>
    internal static SeccompProgram? Parse(ReadOnlySpan<byte> data, ReadOnlySpan<byte> key)
    {
        if (!data.StartsWith(Magic)) return null;
        data = data[Magic.Length..];
        if (!TakeBlock(ref data, out var storedKey) || !storedKey.SequenceEqual(key)) return null;
        if (!TakeInt(ref data, out var flags) || !TakeInt(ref data, out var skippedCount) || skippedCount > 64) return null;
        var skipped = new List<string>(skippedCount);
        for (int i = 0; i < skippedCount; i++)
        {
            if (!TakeBlock(ref data, out var name)) return null;
            skipped.Add(Encoding.UTF8.GetString(name));
        }
        if (!TakeBlock(ref data, out var filter) || !data.IsEmpty) return null;
        if (filter.Length == 0 || filter.Length % 8 != 0 || filter.Length / 8 > MaxInstructions) return null;
        return new SeccompProgram(MemoryMarshal.Cast<byte, SockFilter>(filter).ToArray(), (uint)flags, skipped);
    }

    internal static byte[] Format(ReadOnlySpan<byte> key, SeccompProgram program)
    {
        var output = new List<byte>(Magic.Length + key.Length + program.Filter.Length + 64);
        void Int(int value) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, value); output.AddRange(b.ToArray()); }
        void Block(ReadOnlySpan<byte> bytes) { Int(bytes.Length); output.AddRange(bytes.ToArray()); }
        output.AddRange(Magic.ToArray());
        Block(key);
        Int((int)program.Flags);
        Int(program.SkippedArchitectures.Count);
        foreach (var name in program.SkippedArchitectures) Block(Encoding.UTF8.GetBytes(name));
        Block(program.Filter);
        return [.. output];
    }

    private void TryWrite(string path, byte[] key, SeccompProgram program)
    {
        // A store that cannot be written (read-only root, disk full) costs a compile next time,
        // nothing more: the program in hand is correct either way.
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (!File.Exists(path) && System.IO.Directory.EnumerateFiles(Directory, "*.bpf").Take(MaxEntries + 1).Count() >= MaxEntries)
                foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "*.bpf").ToList()) File.Delete(old);
            File.WriteAllBytes(temp, Format(key, program));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
        }
    }

    private static bool TakeInt(ref ReadOnlySpan<byte> data, out int value)
    {
        value = 0;
        if (data.Length < 4) return false;
        value = BinaryPrimitives.ReadInt32LittleEndian(data);
        data = data[4..];
        return value >= 0;
    }

    private static bool TakeBlock(ref ReadOnlySpan<byte> data, out ReadOnlySpan<byte> block)
    {
        block = default;
        if (!TakeInt(ref data, out var length) || length > data.Length) return false;
        block = data[..length];
        data = data[length..];
        return true;
    }

    private static ulong Fnv1a64(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037;
        foreach (var b in bytes) hash = (hash ^ b) * 1099511628211;
        return hash;
    }
}
