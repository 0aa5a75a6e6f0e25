using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Berth.Oci;

namespace Berth.Seccomp;

/// <summary>
/// Compiled programs by a SHA-256 of the seccomp section (every field that shapes the program, in order: not
/// listenerPath or listenerMetadata, which are the runtime's) and the native architecture.
/// Containers of one engine mostly share a profile, so after the first start the cost is the hash. Thread-safe;
/// holds at most <see cref="Capacity"/> programs and starts over when full.
/// </summary>
public sealed class SeccompProgramCache(int capacity = 256)
{
    public static SeccompProgramCache Shared { get; } = new();

    private readonly ConcurrentDictionary<Key, SeccompProgram> _programs = new();

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity));

    public int Count => _programs.Count;

    public SeccompProgram GetOrCompile(LinuxSeccomp seccomp, SeccompArch native, SeccompCompileOptions? options = null)
    {
        options ??= SeccompCompileOptions.Default;
        var key = new Key(Hash(seccomp), native, options.EnosysStub);
        if (_programs.TryGetValue(key, out var program)) return program;
        program = SeccompCompiler.Compile(seccomp, native, options);
        if (_programs.Count >= Capacity) _programs.Clear();
        return _programs.GetOrAdd(key, program);
    }

    public void Clear() => _programs.Clear();

    private readonly record struct Key(UInt128 Low, UInt128 High, SeccompArch Native, bool Stub)
    {
        public Key((UInt128 Low, UInt128 High) hash, SeccompArch native, bool stub) : this(hash.Low, hash.High, native, stub) { }
    }

    /// <summary>SHA-256 over a length-prefixed encoding of the section, so that no two sections share an encoding.</summary>
    internal static (UInt128, UInt128) Hash(LinuxSeccomp seccomp)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var writer = new Writer(hash);
        writer.String(seccomp.DefaultAction);
        writer.Optional(seccomp.DefaultErrnoRet);
        writer.Strings(seccomp.Architectures);
        writer.Strings(seccomp.Flags);
        var syscalls = seccomp.Syscalls ?? [];
        writer.Int(syscalls.Count);
        foreach (var syscall in syscalls)
        {
            writer.Strings(syscall.Names);
            writer.String(syscall.Action);
            writer.Optional(syscall.ErrnoRet);
            var args = syscall.Args ?? [];
            writer.Int(args.Count);
            foreach (var arg in args)
            {
                writer.Int((int)arg.Index);
                writer.ULong(arg.Value);
                writer.ULong(arg.ValueTwo ?? 0);
                writer.Int(arg.ValueTwo is null ? 0 : 1);
                writer.String(arg.Op);
            }
        }
        writer.Flush();
        Span<byte> digest = stackalloc byte[32];
        hash.GetHashAndReset(digest);
        return (BinaryPrimitives.ReadUInt128LittleEndian(digest), BinaryPrimitives.ReadUInt128LittleEndian(digest[16..]));
    }

    private sealed class Writer(IncrementalHash hash)
    {
        private readonly byte[] _buffer = new byte[4096];
        private int _used;

        public void Int(int value) { Reserve(4); BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_used), value); _used += 4; }

        public void ULong(ulong value) { Reserve(8); BinaryPrimitives.WriteUInt64LittleEndian(_buffer.AsSpan(_used), value); _used += 8; }

        public void Optional(uint? value) { Int(value is null ? 0 : 1); Int((int)(value ?? 0)); }

        public void String(string? value)
        {
            if (value is null) { Int(-1); return; }
            var length = Encoding.UTF8.GetByteCount(value);
            Int(length);
            Reserve(length);
            if (length > _buffer.Length) { hash.AppendData(Encoding.UTF8.GetBytes(value)); return; }
            _used += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_used));
        }

        public void Strings(List<string>? values)
        {
            if (values is null) { Int(-1); return; }
            Int(values.Count);
            foreach (var value in values) String(value);
        }

        public void Flush() { hash.AppendData(_buffer, 0, _used); _used = 0; }

        private void Reserve(int bytes) { if (_used + bytes > _buffer.Length) Flush(); }
    }
}
