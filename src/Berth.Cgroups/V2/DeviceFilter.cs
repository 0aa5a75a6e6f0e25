namespace Berth.Cgroups.V2;

/// <summary>One eBPF instruction (<c>struct bpf_insn</c>): opcode, registers, offset, immediate.</summary>
public readonly record struct BpfInstruction(byte Code, byte Dst, byte Src, short Offset, int Imm)
{
    public void WriteTo(Span<byte> destination)
    {
        destination[0] = Code;
        destination[1] = (byte)((Src << 4) | (Dst & 0xF));
        BitConverter.TryWriteBytes(destination[2..4], Offset);
        BitConverter.TryWriteBytes(destination[4..8], Imm);
    }

    public override string ToString() => $"{Code:x2} r{Dst} r{Src} off={Offset} imm={Imm}";
}

/// <summary>
/// Compiles OCI device rules to a BPF_PROG_TYPE_CGROUP_DEVICE program, the way runc's
/// <c>devicefilter</c> and crun's <c>ebpf.c</c> do. The program reads
/// <c>struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }</c> (type in the low
/// 16 bits of access_type, access in the high 16), then tests the rules from last to first — the
/// last matching rule wins, as in cgroup v1 — and returns 1 (allow) or 0 (deny). Rules before
/// the last unconditional one ("a *:* rwm") cannot matter and are left out: the verifier refuses
/// unreachable instructions.
/// </summary>
public static class DeviceFilter
{
    internal const int DevBlock = 1, DevChar = 2;
    internal const int AccMknod = 1, AccRead = 2, AccWrite = 4;

    // Opcodes (linux/bpf_common.h, linux/bpf.h).
    internal const byte LdxMemW = 0x61;     // BPF_LDX | BPF_MEM | BPF_W
    internal const byte Alu32AndK = 0x54;   // BPF_ALU | BPF_AND | BPF_K
    internal const byte Alu32RshK = 0x74;   // BPF_ALU | BPF_RSH | BPF_K
    internal const byte Alu32MovK = 0xb4;   // BPF_ALU | BPF_MOV | BPF_K
    internal const byte Alu32MovX = 0xbc;   // BPF_ALU | BPF_MOV | BPF_X
    internal const byte JmpJneK = 0x55;     // BPF_JMP | BPF_JNE | BPF_K
    internal const byte JmpJneX = 0x5d;     // BPF_JMP | BPF_JNE | BPF_X
    internal const byte JmpExit = 0x95;     // BPF_JMP | BPF_EXIT

    /// <summary>The program for <paramref name="rules"/> (validated by the caller).</summary>
    public static IReadOnlyList<BpfInstruction> Compile(IReadOnlyList<DeviceRule> rules)
    {
        var program = new List<BpfInstruction>
        {
            // r2 = type, r3 = access, r4 = major, r5 = minor
            new(LdxMemW, 2, 1, 0, 0),
            new(Alu32AndK, 2, 0, 0, 0xFFFF),
            new(LdxMemW, 3, 1, 0, 0),
            new(Alu32RshK, 3, 0, 0, 16),
            new(LdxMemW, 4, 1, 4, 0),
            new(LdxMemW, 5, 1, 8, 0),
        };
        var first = 0;
        var defaultAllow = false;
        for (var i = rules.Count - 1; i >= 0; i--)
        {
            if (IsUnconditional(rules[i]))
            {
                first = i + 1;
                defaultAllow = rules[i].Allow;
                break;
            }
        }
        for (var i = rules.Count - 1; i >= first; i--)
        {
            program.AddRange(Block(rules[i]));
        }
        program.Add(new(Alu32MovK, 0, 0, 0, defaultAllow ? 1 : 0));
        program.Add(new(JmpExit, 0, 0, 0, 0));
        return program;
    }

    /// <summary>The program as the bytes bpf(BPF_PROG_LOAD) takes.</summary>
    public static byte[] Encode(IReadOnlyList<BpfInstruction> program)
    {
        var bytes = new byte[program.Count * 8];
        for (var i = 0; i < program.Count; i++)
        {
            program[i].WriteTo(bytes.AsSpan(i * 8, 8));
        }
        return bytes;
    }

    internal static int AccessMask(string access) =>
        access.Aggregate(0, (mask, c) => mask | c switch { 'r' => AccRead, 'w' => AccWrite, 'm' => AccMknod, _ => 0 });

    private static bool IsUnconditional(DeviceRule rule) =>
        rule.Type == 'a' && !rule.HasMajor && !rule.HasMinor && AccessMask(rule.EffectiveAccess) == (AccRead | AccWrite | AccMknod);

    /// <summary>
    /// One rule: each condition that does not hold jumps past the block (to the next rule);
    /// falling through all of them returns the rule's verdict.
    /// </summary>
    private static List<BpfInstruction> Block(DeviceRule rule)
    {
        var checks = new List<Func<short, BpfInstruction[]>>();
        if (rule.Type != 'a')
        {
            var type = rule.Type == 'c' ? DevChar : DevBlock;
            checks.Add(skip => [new(JmpJneK, 2, 0, skip, type)]);
        }
        var access = AccessMask(rule.EffectiveAccess);
        if (access != (AccRead | AccWrite | AccMknod))
        {
            // Matches when the requested access is a subset of the rule's: (r3 & access) == r3.
            checks.Add(skip => [new(Alu32MovX, 1, 3, 0, 0), new(Alu32AndK, 1, 0, 0, access), new(JmpJneX, 1, 3, skip, 0)]);
        }
        if (rule.HasMajor)
        {
            checks.Add(skip => [new(JmpJneK, 4, 0, skip, (int)rule.Major!.Value)]);
        }
        if (rule.HasMinor)
        {
            checks.Add(skip => [new(JmpJneK, 5, 0, skip, (int)rule.Minor!.Value)]);
        }
        // Sizes are fixed, so the jump distance from each check to the block's end is known.
        var sizes = checks.Select(c => c(0).Length).ToList();
        var block = new List<BpfInstruction>();
        const int verdictLength = 2;
        for (var i = 0; i < checks.Count; i++)
        {
            var after = sizes.Skip(i + 1).Sum() + verdictLength;
            block.AddRange(checks[i]((short)after));
        }
        block.Add(new(Alu32MovK, 0, 0, 0, rule.Allow ? 1 : 0));
        block.Add(new(JmpExit, 0, 0, 0, 0));
        return block;
    }
}
