using System.Runtime.InteropServices;

namespace Berth.Seccomp.Bpf;

/// <summary>One classic BPF instruction, laid out as the kernel's <c>struct sock_filter</c> (8 bytes, host endian).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K)
{
    public override string ToString() => $"{{ 0x{Code:x2}, {Jt}, {Jf}, 0x{K:x8} }}";
}

/// <summary>Classic BPF opcodes (linux/bpf_common.h) and the seccomp_data offsets the filter reads.</summary>
public static class BpfOp
{
    // Classes
    public const ushort Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Ret = 0x06, Misc = 0x07;
    // Sizes and modes
    public const ushort W = 0x00, H = 0x08, B = 0x10, Imm = 0x00, Abs = 0x20, Ind = 0x40, Mem = 0x60, Len = 0x80;
    // ALU and jump operations
    public const ushort Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70,
        Neg = 0x80, Mod = 0x90, Xor = 0xa0;
    public const ushort Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40;
    public const ushort K = 0x00, X = 0x08, A = 0x10;
    public const ushort Tax = 0x00, Txa = 0x80;

    /// <summary>Offsets into <c>struct seccomp_data</c>: nr, arch, instruction_pointer, args[6] (little endian halves).</summary>
    public const uint DataNr = 0, DataArch = 4, DataArgs = 16;

    public static uint ArgLow(int index) => DataArgs + (uint)index * 8;
    public static uint ArgHigh(int index) => DataArgs + (uint)index * 8 + 4;
}
