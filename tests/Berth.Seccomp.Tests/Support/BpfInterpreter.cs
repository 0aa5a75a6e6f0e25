using System.Buffers.Binary;
using Berth.Seccomp.Bpf;

namespace Berth.Seccomp.Tests.Support;

/// <summary>The input of a seccomp filter: <c>struct seccomp_data</c>.</summary>
public readonly record struct SeccompData(uint Arch, uint Nr, ulong A0 = 0, ulong A1 = 0, ulong A2 = 0, ulong A3 = 0, ulong A4 = 0, ulong A5 = 0, ulong InstructionPointer = 0)
{
    public byte[] ToBytes()
    {
        var data = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(0), Nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), Arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), InstructionPointer);
        ulong[] args = [A0, A1, A2, A3, A4, A5];
        for (var i = 0; i < 6; i++) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16 + 8 * i), args[i]);
        return data;
    }
}

/// <summary>
/// A classic BPF interpreter with the kernel's seccomp checks (bpf_check_classic + seccomp_check_filter):
/// only 32-bit aligned absolute loads inside seccomp_data, forward jumps inside the program, and a program
/// that ends in a return.
/// </summary>
public static class BpfInterpreter
{
    public static uint Run(ReadOnlySpan<SockFilter> program, SeccompData input) => Run(program, input, out _);

    public static uint Run(ReadOnlySpan<SockFilter> program, SeccompData input, out int steps)
    {
        Validate(program);
        var data = input.ToBytes();
        uint a = 0, x = 0;
        Span<uint> mem = stackalloc uint[16];
        mem.Clear();
        steps = 0;
        for (var pc = 0; ; pc++)
        {
            var insn = program[pc];
            steps++;
            uint Src() => (insn.Code & BpfOp.X) != 0 ? x : insn.K;
            switch (insn.Code & 0x07)
            {
                case BpfOp.Ld:
                    a = (insn.Code & 0xe0) switch
                    {
                        BpfOp.Abs => BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)insn.K)),
                        BpfOp.Imm => insn.K,
                        BpfOp.Mem => mem[(int)insn.K],
                        BpfOp.Len => (uint)data.Length,
                        _ => throw new InvalidOperationException($"pc {pc}: unsupported load {insn}"),
                    };
                    break;
                case BpfOp.Ldx:
                    x = (insn.Code & 0xe0) switch
                    {
                        BpfOp.Imm => insn.K,
                        BpfOp.Mem => mem[(int)insn.K],
                        BpfOp.Len => (uint)data.Length,
                        _ => throw new InvalidOperationException($"pc {pc}: unsupported ldx {insn}"),
                    };
                    break;
                case BpfOp.St: mem[(int)insn.K] = a; break;
                case BpfOp.Stx: mem[(int)insn.K] = x; break;
                case BpfOp.Alu:
                    a = (insn.Code & 0xf0) switch
                    {
                        BpfOp.Add => a + Src(),
                        BpfOp.Sub => a - Src(),
                        BpfOp.Mul => a * Src(),
                        BpfOp.Div => Src() == 0 ? throw new InvalidOperationException("div by 0") : a / Src(),
                        BpfOp.Mod => a % Src(),
                        BpfOp.Or => a | Src(),
                        BpfOp.And => a & Src(),
                        BpfOp.Xor => a ^ Src(),
                        BpfOp.Lsh => a << (int)Src(),
                        BpfOp.Rsh => a >> (int)Src(),
                        BpfOp.Neg => (uint)-(int)a,
                        _ => throw new InvalidOperationException($"pc {pc}: bad alu {insn}"),
                    };
                    break;
                case BpfOp.Jmp:
                    var op = insn.Code & 0xf0;
                    if (op == BpfOp.Ja) { pc += (int)insn.K; break; }
                    var taken = op switch
                    {
                        BpfOp.Jeq => a == Src(),
                        BpfOp.Jgt => a > Src(),
                        BpfOp.Jge => a >= Src(),
                        BpfOp.Jset => (a & Src()) != 0,
                        _ => throw new InvalidOperationException($"pc {pc}: bad jump {insn}"),
                    };
                    pc += taken ? insn.Jt : insn.Jf;
                    break;
                case BpfOp.Ret:
                    return (insn.Code & 0x18) == BpfOp.A ? a : insn.K;
                case BpfOp.Misc:
                    if ((insn.Code & 0xf8) == BpfOp.Tax) x = a; else a = x;
                    break;
            }
        }
    }

    /// <summary>The kernel's static checks, so that a program accepted here is one seccomp(2) would load.</summary>
    public static void Validate(ReadOnlySpan<SockFilter> program)
    {
        if (program.Length is 0 or > BpfEmitterLimits.MaxInstructions) throw new InvalidOperationException($"bad length {program.Length}");
        for (var pc = 0; pc < program.Length; pc++)
        {
            var insn = program[pc];
            switch (insn.Code & 0x07)
            {
                case BpfOp.Ld when (insn.Code & 0xe0) == BpfOp.Abs:
                    if (insn.Code != (BpfOp.Ld | BpfOp.W | BpfOp.Abs) || insn.K >= 64 || (insn.K & 3) != 0)
                        throw new InvalidOperationException($"pc {pc}: seccomp allows only aligned 32-bit loads from seccomp_data: {insn}");
                    break;
                case BpfOp.Jmp:
                    if ((insn.Code & 0xf0) == BpfOp.Ja)
                    {
                        if (pc + 1 + (long)insn.K >= program.Length) throw new InvalidOperationException($"pc {pc}: ja out of range");
                    }
                    else if (pc + 1 + Math.Max(insn.Jt, insn.Jf) >= program.Length)
                        throw new InvalidOperationException($"pc {pc}: jump out of range");
                    break;
            }
        }
        if ((program[^1].Code & 0x07) is not (BpfOp.Ret or BpfOp.Jmp)) throw new InvalidOperationException("program does not end in ret");
    }
}

internal static class BpfEmitterLimits
{
    public const int MaxInstructions = 4096;
}
