using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Buffers;
using System.Text;
using Berth.Oci;

namespace Berth.Seccomp;

/// <summary>
/// Compiled programs by the seccomp section's content (every field that shapes the program, in
/// order, length-prefixed; not listenerPath or listenerMetadata, which are the runtime's) and the
/// native architecture. A hit compares the whole encoding, not a digest: no cryptographic hash
/// is needed for safety, and none is paid for (loading OpenSSL for SHA-256 cost a fresh
/// berth-runtime process ~3 ms). Thread-safe; holds at most <see cref="Capacity"/> programs and
/// starts over when full.
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
        return GetOrAdd(seccomp, native, options, () => SeccompCompiler.Compile(seccomp, native, options));
    }

    /// <summary>The cached program for this section, or the one <paramref name="produce"/> returns for it (then cached).</summary>
    public SeccompProgram GetOrAdd(LinuxSeccomp seccomp, SeccompArch native, SeccompCompileOptions options, Func<SeccompProgram> produce)
    {
        var key = new Key(Encode(seccomp), native, options.EnosysStub);
        if (_programs.TryGetValue(key, out var program)) return program;
        program = produce();
        if (_programs.Count >= Capacity) _programs.Clear();
        return _programs.GetOrAdd(key, program);
    }

    public void Clear() => _programs.Clear();

    private sealed class Key(byte[] encoding, SeccompArch native, bool stub) : IEquatable<Key>
    {
        private readonly int _hash = HashOf(encoding, native, stub);

        public bool Equals(Key? other) =>
            other is not null && other._hash == _hash && other.Native == Native && other.Stub == Stub
            && other.Encoding.AsSpan().SequenceEqual(Encoding);

        public override bool Equals(object? obj) => Equals(obj as Key);
        public override int GetHashCode() => _hash;

        private byte[] Encoding { get; } = encoding;
        private SeccompArch Native { get; } = native;
        private bool Stub { get; } = stub;

        private static int HashOf(byte[] encoding, SeccompArch native, bool stub)
        {
            var hash = new HashCode();
            hash.AddBytes(encoding);
            hash.Add(native);
            hash.Add(stub);
            return hash.ToHashCode();
        }
    }

    /// <summary>A length-prefixed encoding of the section, so that no two sections share one.</summary>
    internal static byte[] Encode(LinuxSeccomp seccomp)
    {
        var writer = new Writer();
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
        return writer.ToArray();
    }

    private sealed class Writer
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(4096);

        public void Int(int value) { BinaryPrimitives.WriteInt32LittleEndian(_buffer.GetSpan(4), value); _buffer.Advance(4); }

        public void ULong(ulong value) { BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value); _buffer.Advance(8); }

        public void Optional(uint? value) { Int(value is null ? 0 : 1); Int((int)(value ?? 0)); }

        public void String(string? value)
        {
            if (value is null) { Int(-1); return; }
            var length = Encoding.UTF8.GetByteCount(value);
            Int(length);
            _buffer.Advance(Encoding.UTF8.GetBytes(value, _buffer.GetSpan(length)));
        }

        public void Strings(List<string>? values)
        {
            if (values is null) { Int(-1); return; }
            Int(values.Count);
            foreach (var value in values) String(value);
        }

        public byte[] ToArray() => _buffer.WrittenSpan.ToArray();
    }
}
