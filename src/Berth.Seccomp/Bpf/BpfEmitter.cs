namespace Berth.Seccomp.Bpf;

/// <summary>
/// Builds a classic BPF program back to front. Every jump in a seccomp filter goes forward, so emitting the
/// targets first means each jump's offset is known when the jump is written. A label is an instruction's
/// position counted from the end of the program (0 = the last instruction). A conditional jump reaches at most
/// 255 instructions ahead; a farther target gets a trampoline right behind the jump: a copy of the target when
/// it is a <c>ret</c>, else a <c>ja</c>, whose offset is 32 bits.
/// </summary>
internal sealed class BpfEmitter
{
    /// <summary>BPF_MAXINSNS: the kernel refuses longer programs.</summary>
    public const int MaxInstructions = 4096;

    private SockFilter[] _reversed = new SockFilter[512];
    private int _count;
    private readonly Dictionary<uint, int> _rets = [];

    public int Count => _count;

    /// <summary>A <c>ret</c> of the value, shared with an earlier identical one.</summary>
    public int Ret(uint value)
    {
        if (_rets.TryGetValue(value, out var label)) return label;
        return _rets[value] = Append(new SockFilter(BpfOp.Ret | BpfOp.K, 0, 0, value));
    }

    /// <summary><c>A = seccomp_data[offset]</c> (32 bits), then on to <paramref name="next"/>.</summary>
    public int Load(uint offset, int next) =>
        Append(new SockFilter(BpfOp.Ld | BpfOp.W | BpfOp.Abs, 0, 0, offset), next);

    /// <summary><c>A &amp;= mask</c>, then on to <paramref name="next"/>.</summary>
    public int And(uint mask, int next) => Append(new SockFilter(BpfOp.Alu | BpfOp.And | BpfOp.K, 0, 0, mask), next);

    /// <summary>A conditional jump (<see cref="BpfOp.Jeq"/>, <see cref="BpfOp.Jgt"/>, <see cref="BpfOp.Jge"/>, <see cref="BpfOp.Jset"/>) on A against k.</summary>
    public int Jump(ushort op, uint k, int whenTrue, int whenFalse)
    {
        if (whenTrue == whenFalse) return whenTrue;
        while (true)
        {
            if (Distance(whenTrue) > byte.MaxValue) { whenTrue = Trampoline(whenTrue); continue; }
            if (Distance(whenFalse) > byte.MaxValue) { whenFalse = Trampoline(whenFalse); continue; }
            break;
        }
        return Append(new SockFilter((ushort)(BpfOp.Jmp | op | BpfOp.K), (byte)Distance(whenTrue), (byte)Distance(whenFalse), k));
    }

    /// <summary>Makes <paramref name="target"/> the next instruction in program order, with a <c>ja</c> if it is not already.</summary>
    private int FallInto(int target) => Distance(target) == 0 ? target : Trampoline(target);

    private int Trampoline(int target)
    {
        var instruction = At(target);
        if (instruction.Code == (BpfOp.Ret | BpfOp.K))
            return _rets[instruction.K] = Append(instruction);
        return Append(new SockFilter(BpfOp.Jmp | BpfOp.Ja, 0, 0, (uint)Distance(target)));
    }

    /// <summary>The jump offset from an instruction appended now to the label.</summary>
    private int Distance(int label) => _count - 1 - label;

    private SockFilter At(int label) => _reversed[label];

    private int Append(SockFilter instruction, int next)
    {
        FallInto(next);
        return Append(instruction);
    }

    private int Append(SockFilter instruction)
    {
        if (_count == MaxInstructions)
            throw new SeccompException($"the filter needs more than {MaxInstructions} BPF instructions, the kernel's limit");
        if (_count == _reversed.Length) Array.Resize(ref _reversed, _reversed.Length * 2);
        _reversed[_count] = instruction;
        return _count++;
    }

    /// <summary>The program in execution order.</summary>
    public SockFilter[] ToArray()
    {
        var program = new SockFilter[_count];
        for (var i = 0; i < _count; i++) program[i] = _reversed[_count - 1 - i];
        return program;
    }
}
