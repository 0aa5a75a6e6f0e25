using System.Runtime.InteropServices;
using System.Text;

namespace Berth.Runtime.Native;

/// <summary>
/// A value an op passes to the kernel: an immediate, the address of data in the
/// program's arena, or the result of an earlier op kept in a slot.
/// </summary>
public readonly record struct OpArg(OpArgKind Kind, long Value)
{
    public static implicit operator OpArg(long value) => new(OpArgKind.Immediate, value);
    public static implicit operator OpArg(int value) => new(OpArgKind.Immediate, value);
    public static implicit operator OpArg(uint value) => new(OpArgKind.Immediate, value);
    public static implicit operator OpArg(ulong value) => new(OpArgKind.Immediate, unchecked((long)value));
    public static implicit operator OpArg(Slot slot) => new(OpArgKind.Slot, slot.Index);
    public static implicit operator OpArg(Data data) => new(OpArgKind.Data, data.Offset);
}

public enum OpArgKind { Immediate, Data, Slot }

/// <summary>A register of the child program: holds the result of an op (an fd, a pid).</summary>
public readonly record struct Slot(int Index);

/// <summary>An offset into the program's data arena; becomes an address when built.</summary>
public readonly record struct Data(int Offset);

/// <summary>A position in the op list, resolved when the program is built.</summary>
public sealed class Label
{
    internal int Target = -1;
    public bool IsPlaced => Target >= 0;
}

public enum OpKind
{
    Syscall = 1, Fork = 2, Load = 3, Store = 4, FdPath = 5, Fail = 6, Exit = 7, CopyTree = 8,
    /// <summary>Continues at OnSuccess when Args[0] equals Args[1] (either may be a slot), else with the next op.</summary>
    JumpIfEqual = 9,
    /// <summary>Continues at OnSuccess when Args[0] differs from Args[1], else with the next op.</summary>
    JumpIfDifferent = 10,
    /// <summary>
    /// Args: a passwd file fd, a uid, a buffer and its size. Result 1: the buffer holds "HOME=&lt;home&gt;"
    /// of the first entry with that uid; 0: no entry has it (the buffer is untouched).
    /// </summary>
    PasswdHome = 11,
}

/// <summary>One step of the child program and what it means, for error messages.</summary>
public sealed class Op
{
    public required OpKind Kind { get; init; }
    public long Syscall { get; init; }
    public OpArg[] Args { get; init; } = [];
    public Slot? Result { get; set; }
    public bool FailOnZero { get; set; }
    /// <summary>
    /// An execve (path in Args[0]) whose failure the process also writes to its own stderr, in
    /// runc's words ("exec /app: exec format error"): once the container is started nobody may be
    /// left to read the report.
    /// </summary>
    public bool ExecErrorToStderr { get; set; }
    public Label? OnSuccess { get; set; }
    /// <summary>errno values that are not failures; a null label means "go on with the next op".</summary>
    public List<(int Errno, Label? Then)> Tolerated { get; } = [];
    /// <summary>What this op does, in words, for the message when it fails ("mount proc on /proc").</summary>
    public required string Description { get; init; }

    public Op Tolerate(int errno, Label? then = null)
    {
        if (Tolerated.Count == ChildProgram.MaxErrnoRules)
            throw new InvalidOperationException($"an op tolerates at most {ChildProgram.MaxErrnoRules} errno values");
        Tolerated.Add((errno, then));
        return this;
    }
}

/// <summary>
/// Builds the table of raw syscalls that the native executor (native/executor/berth_exec.c)
/// runs in the child between clone and execve. The layout written by <see cref="Build"/>
/// must match struct berth_program and struct berth_op there.
/// </summary>
public sealed class ChildProgram
{
    public const int AbiVersion = 6;
    public const int MaxSlots = 64;
    public const int MaxErrnoRules = 3;
    internal const int OpSize = 96;
    internal const int HeaderSize = 32 + MaxSlots * 8;

    readonly List<Op> _ops = [];
    readonly MemoryStream _data = new();
    // Offsets in the arena that hold the arena offset of other data; turned into addresses when built.
    readonly List<int> _pointerFixups = [];
    int _nextSlot;

    // Eight zero bytes at offset 0: what Jump loads.
    public ChildProgram() => _data.Write(new byte[8]);

    public ulong CloneFlags { get; set; }

    /// <summary>A cgroup2 directory fd to clone the child into (clone3 CLONE_INTO_CGROUP), or -1.</summary>
    public int CgroupFd { get; set; } = -1;
    public IReadOnlyList<Op> Ops => _ops;

    public Slot NewSlot()
    {
        if (_nextSlot == MaxSlots) throw new InvalidOperationException("the child program ran out of slots");
        return new Slot(_nextSlot++);
    }

    /// <summary>A slot whose value is set before the clone (an fd the parent opened).</summary>
    public Slot Preset(long value)
    {
        var slot = NewSlot();
        _presets[slot.Index] = value;
        return slot;
    }
    readonly Dictionary<int, long> _presets = [];

    public Op Add(Op op) { _ops.Add(op); return op; }

    public Op Syscall(long nr, string description, params OpArg[] args)
    {
        if (args.Length > 6) throw new ArgumentException("a syscall takes at most six arguments");
        return Add(new Op { Kind = OpKind.Syscall, Syscall = nr, Args = args, Description = description });
    }

    /// <summary>An unconditional jump: a load of a constant that always succeeds.</summary>
    public void Jump(Label target, string why) =>
        Add(new Op { Kind = OpKind.Load, Args = [new Data(0), 0, 0], OnSuccess = target, Description = why });

    /// <summary>Continues at <paramref name="target"/> when <paramref name="a"/> equals <paramref name="b"/>.</summary>
    public void JumpIfEqual(OpArg a, OpArg b, Label target, string why) =>
        Add(new Op { Kind = OpKind.JumpIfEqual, Args = [a, b], OnSuccess = target, Description = why });

    /// <summary>Continues at <paramref name="target"/> when <paramref name="a"/> differs from <paramref name="b"/>.</summary>
    public void JumpIfDifferent(OpArg a, OpArg b, Label target, string why) =>
        Add(new Op { Kind = OpKind.JumpIfDifferent, Args = [a, b], OnSuccess = target, Description = why });

    public void Place(Label label)
    {
        if (label.IsPlaced) throw new InvalidOperationException("label placed twice");
        label.Target = _ops.Count;
    }

    public Data String(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        if (bytes.Contains((byte)0)) throw new RuntimeException($"\"{value.Replace("\0", "\\0")}\" contains a NUL byte: no path, option or argument can");
        var data = Bytes(bytes);
        _data.WriteByte(0);
        return data;
    }

    /// <summary>A NULL-terminated array of C strings (argv, envp).</summary>
    public Data StringArray(IEnumerable<string> values) => PointerArray(values.Select(String).ToList());

    /// <summary>A NULL-terminated array of pointers to data already in the arena (C strings for argv, envp).</summary>
    public Data PointerArray(IReadOnlyList<Data> strings)
    {
        Align(8);
        var start = (int)_data.Position;
        foreach (var s in strings)
        {
            _pointerFixups.Add((int)_data.Position);
            WriteInt64(s.Offset);
        }
        WriteInt64(0);
        return new Data(start);
    }

    public Data Bytes(ReadOnlySpan<byte> bytes, int alignment = 1)
    {
        Align(alignment);
        var start = (int)_data.Position;
        _data.Write(bytes);
        return new Data(start);
    }

    public Data Zeroes(int length, int alignment = 8) => Bytes(new byte[length], alignment);

    /// <summary>A struct whose fields are written by <paramref name="write"/>; pointer fields via <see cref="StructWriter.Pointer"/>.</summary>
    public Data Struct(int length, Action<StructWriter> write, int alignment = 8)
    {
        var buffer = new byte[length];
        var writer = new StructWriter(buffer);
        write(writer);
        var data = Bytes(buffer, alignment);
        foreach (var (offset, target) in writer.Pointers)
        {
            _pointerFixups.Add(data.Offset + offset);
            BitConverter.TryWriteBytes(_data.GetBuffer().AsSpan(data.Offset + offset, 8), (long)target.Offset);
        }
        return data;
    }

    void Align(int alignment)
    {
        while (_data.Position % alignment != 0) _data.WriteByte(0);
    }

    void WriteInt64(long value)
    {
        Span<byte> b = stackalloc byte[8];
        BitConverter.TryWriteBytes(b, value);
        _data.Write(b);
    }

    /// <summary>Lays the program out in native memory for berth_spawn.</summary>
    public unsafe NativeProgram Build(int reportFd)
    {
        foreach (var op in _ops)
        {
            if (op.OnSuccess is { IsPlaced: false } || op.Tolerated.Any(t => t.Then is { IsPlaced: false }))
                throw new InvalidOperationException($"op '{op.Description}' jumps to a label that was never placed");
        }
        var opsOffset = HeaderSize;
        var dataOffset = opsOffset + _ops.Count * OpSize;
        var total = dataOffset + (int)_data.Length;
        var memory = (byte*)NativeMemory.AllocZeroed((nuint)total);
        var span = new Span<byte>(memory, total);
        long dataBase = (long)memory + dataOffset;

        _data.GetBuffer().AsSpan(0, (int)_data.Length).CopyTo(span[dataOffset..]);
        foreach (var fixup in _pointerFixups)
        {
            var at = span.Slice(dataOffset + fixup, 8);
            BitConverter.TryWriteBytes(at, dataBase + BitConverter.ToInt64(at));
        }

        BitConverter.TryWriteBytes(span[0..], CloneFlags);
        BitConverter.TryWriteBytes(span[8..], reportFd);
        BitConverter.TryWriteBytes(span[12..], _ops.Count);
        BitConverter.TryWriteBytes(span[16..], (long)memory + opsOffset);
        BitConverter.TryWriteBytes(span[24..], CgroupFd);
        foreach (var (slot, value) in _presets)
            BitConverter.TryWriteBytes(span[(32 + slot * 8)..], value);

        for (var i = 0; i < _ops.Count; i++)
            WriteOp(span.Slice(opsOffset + i * OpSize, OpSize), _ops[i], dataBase);
        return new NativeProgram(memory, total);
    }

    static void WriteOp(Span<byte> o, Op op, long dataBase)
    {
        uint slotMask = 0;
        BitConverter.TryWriteBytes(o[0..], (int)op.Kind);
        BitConverter.TryWriteBytes(o[4..], (int)op.Syscall);
        for (var i = 0; i < op.Args.Length; i++)
        {
            var arg = op.Args[i];
            var value = arg.Kind switch
            {
                OpArgKind.Data => dataBase + arg.Value,
                OpArgKind.Slot => arg.Value,
                _ => arg.Value,
            };
            if (arg.Kind == OpArgKind.Slot) slotMask |= 1u << i;
            BitConverter.TryWriteBytes(o[(16 + i * 8)..], value);
        }
        BitConverter.TryWriteBytes(o[8..], slotMask);
        BitConverter.TryWriteBytes(o[12..], op.Result?.Index ?? -1);
        BitConverter.TryWriteBytes(o[64..], (op.FailOnZero ? 1 : 0) | (op.ExecErrorToStderr ? 2 : 0));
        BitConverter.TryWriteBytes(o[68..], op.OnSuccess?.Target ?? -1);
        for (var i = 0; i < MaxErrnoRules; i++)
        {
            var (errno, then) = i < op.Tolerated.Count ? op.Tolerated[i] : (0, null);
            BitConverter.TryWriteBytes(o[(72 + i * 4)..], errno);
            BitConverter.TryWriteBytes(o[(84 + i * 4)..], then?.Target ?? -1);
        }
    }
}

/// <summary>Writes a C struct's fields at byte offsets.</summary>
public sealed class StructWriter(byte[] buffer)
{
    internal List<(int Offset, Data Target)> Pointers { get; } = [];
    public StructWriter Int32(int offset, int value) { BitConverter.TryWriteBytes(buffer.AsSpan(offset), value); return this; }
    public StructWriter Int64(int offset, long value) { BitConverter.TryWriteBytes(buffer.AsSpan(offset), value); return this; }
    public StructWriter UInt64(int offset, ulong value) { BitConverter.TryWriteBytes(buffer.AsSpan(offset), value); return this; }
    public StructWriter Pointer(int offset, Data target) { Pointers.Add((offset, target)); return this; }
}

/// <summary>A built program in native memory; freed on dispose (in the parent only).</summary>
public sealed unsafe class NativeProgram(byte* memory, int length) : IDisposable
{
    byte* _memory = memory;
    public IntPtr Address => (IntPtr)_memory;
    public int Length { get; } = length;

    public void Dispose()
    {
        if (_memory != null) NativeMemory.Free(_memory);
        _memory = null;
    }
}
