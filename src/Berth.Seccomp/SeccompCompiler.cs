using Berth.Oci;
using Berth.Seccomp.Bpf;

namespace Berth.Seccomp;

public sealed class SeccompCompileOptions
{
    public static SeccompCompileOptions Default { get; } = new();

    /// <summary>
    /// runc's -ENOSYS stub: on each architecture the section lists, a syscall numbered above every syscall the
    /// section names returns ENOSYS instead of the default action, so that programs fall back from syscalls
    /// newer than the profile (clone3, openat2…). Skipped when the default action is ALLOW, LOG or TRACE, or is
    /// already ERRNO(ENOSYS). On by default, as in runc.
    /// </summary>
    public bool EnosysStub { get; init; } = true;
}

/// <summary>
/// Compiles an OCI <c>linux.seccomp</c> section to a classic BPF seccomp filter, with libseccomp's semantics as
/// runc drives it:
/// <list type="bullet">
/// <item>the filter first checks <c>seccomp_data.arch</c>: the native architecture and every listed one get a
/// section; any other architecture gets KILL_THREAD (libseccomp's default bad-arch action, which runc keeps);</item>
/// <item>x86_64 and x32 share AUDIT_ARCH_X86_64: a number with bit 30 set is an x32 syscall, and without x32 in the
/// filter it is a bad-arch kill (except -1, the number a tracer leaves for a skipped syscall);</item>
/// <item>syscall names unknown on an architecture are skipped there; rules whose action equals the default are
/// dropped (runc);</item>
/// <item>conditions of one rule are ANDed; rules for one syscall are ORed, tried in order, the first that matches
/// decides; an unconditional rule wins over conditional ones; two conditions on the same argument split the rule
/// into one rule per condition (runc's compatibility behaviour);</item>
/// <item>arguments compare as 64-bit values on 64-bit ABIs (two 32-bit halves, high first) and as their low 32 bits
/// on x86, x32 and arm, as libseccomp does;</item>
/// <item>on x86 (i386) a rule for a socket or SysV IPC syscall also covers socketcall(2)/ipc(2) with that call number
/// in argument 0, as libseccomp does.</item>
/// </list>
/// The syscall number dispatch is a binary search over the number line cut into runs of equal outcome, so a
/// lookup costs about log2(runs) comparisons whatever the size of the allow list.
/// </summary>
public static class SeccompCompiler
{
    private const string Field = "linux.seccomp";

    public static SeccompProgram Compile(LinuxSeccomp seccomp, SeccompArch native, SeccompCompileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(seccomp);
        options ??= SeccompCompileOptions.Default;

        if (seccomp.DefaultAction == "SCMP_ACT_NOTIFY")
            throw new SeccompException($"{Field}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
        var defaultRet = Action(seccomp.DefaultAction, seccomp.DefaultErrnoRet, $"{Field}.defaultAction");

        // Architectures: the native one always (seccomp_init adds it), then the listed ones.
        var arches = new List<SeccompArch> { native };
        var listed = new List<SeccompArch>();
        List<string>? skipped = null;
        var architectures = seccomp.Architectures ?? [];
        for (var i = 0; i < architectures.Count; i++)
        {
            if (SeccompArchitectures.TryParse(architectures[i], out var arch))
            {
                if (!arches.Contains(arch)) arches.Add(arch);
                if (!listed.Contains(arch)) listed.Add(arch);
            }
            else if (SeccompNames.Architectures.Contains(architectures[i]))
                (skipped ??= []).Add(architectures[i]);
            else
                throw new SeccompException($"{Field}.architectures[{i}]: unknown architecture \"{architectures[i]}\"");
        }

        var flags = Flags(seccomp.Flags);
        var stub = options.EnosysStub
            && (defaultRet & SeccompReturn.ActionMask) is not (SeccompReturn.Allow or SeccompReturn.Log or SeccompReturn.Trace)
            && defaultRet != (SeccompReturn.Errno | SeccompReturn.ENOSYS);

        var tables = new Dictionary<uint, RuleSet>[arches.Count];
        var highest = new uint[arches.Count];
        for (var a = 0; a < arches.Count; a++) tables[a] = [];

        var syscalls = seccomp.Syscalls ?? [];
        var notify = false;
        for (var i = 0; i < syscalls.Count; i++)
        {
            var syscall = syscalls[i];
            var at = $"{Field}.syscalls[{i}]";
            var ret = Action(syscall.Action, syscall.ErrnoRet, $"{at}.action");
            notify |= ret == SeccompReturn.UserNotif;
            var rules = Rules(syscall.Args, at);
            for (var a = 0; a < arches.Count; a++)
            {
                var table = SyscallTable.For(arches[a]);
                foreach (var name in syscall.Names)
                {
                    if (arches[a] == SeccompArch.X86 && ret != defaultRet && Multiplexed.Call(name) is { } mux)
                        Add(tables[a], mux.Nr, Multiplexed.Rules(rules, mux.Call), ret);
                    if (!table.TryGetValue(name, out var nr)) continue;
                    if (nr > highest[a]) highest[a] = nr;
                    if (ret != defaultRet) Add(tables[a], nr, rules, ret);
                }
            }
        }

        if (notify)
        {
            flags |= SeccompProgram.FlagNewListener;
            // The kernel refuses TSYNC with a listener unless a failed sync returns ESRCH (libseccomp does the same).
            if ((flags & SeccompProgram.FlagTsync) != 0) flags |= SeccompProgram.FlagTsyncEsrch;
        }
        else
            flags &= ~SeccompProgram.FlagWaitKillableRecv;  // only means something with a listener; the kernel refuses it alone

        var emitter = new BpfEmitter();
        var generator = new Generator(emitter, defaultRet);

        // Sections by AUDIT_ARCH value, the native one first. Emitted back to front.
        var audits = new List<uint>();
        foreach (var arch in arches)
            if (!audits.Contains(arch.AuditArch())) audits.Add(arch.AuditArch());
        var sectionLabels = new int[audits.Count];
        for (var s = audits.Count - 1; s >= 0; s--)
        {
            var intervals = new IntervalBuilder();
            for (var a = 0; a < arches.Count; a++)
            {
                if (arches[a].AuditArch() != audits[s]) continue;
                var is64 = arches[a].Is64Bit();
                foreach (var (nr, set) in tables[a]) intervals.Point(nr, set.Outcome(is64));
                if (stub && listed.Contains(arches[a]) && highest[a] != 0)
                {
                    var top = arches[a] == SeccompArch.X86_64 ? SyscallTable.X32SyscallBit - 1 : uint.MaxValue;
                    if (highest[a] < top) intervals.Range(highest[a] + 1, top, Outcome.Return(SeccompReturn.Errno | SeccompReturn.ENOSYS), stubPriority: true);
                }
            }
            if (audits[s] == SeccompArch.X86_64.AuditArch())
            {
                var has64 = arches.Contains(SeccompArch.X86_64);
                var hasX32 = arches.Contains(SeccompArch.X32);
                var bad = Outcome.Return(SeccompReturn.KillThread);
                if (has64 && !hasX32) intervals.Range(SyscallTable.X32SyscallBit, uint.MaxValue - 1, bad, stubPriority: false);
                if (hasX32 && !has64) intervals.Range(0, SyscallTable.X32SyscallBit - 1, bad, stubPriority: false);
            }
            var tree = generator.Tree(intervals.Build(Outcome.Return(defaultRet)));
            sectionLabels[s] = emitter.Load(BpfOp.DataNr, tree);
        }

        var next = emitter.Ret(SeccompReturn.KillThread);
        for (var s = audits.Count - 1; s >= 0; s--)
            next = emitter.Jump(BpfOp.Jeq, audits[s], sectionLabels[s], next);
        emitter.Load(BpfOp.DataArch, next);

        return new SeccompProgram(emitter.ToArray(), flags, skipped ?? (IReadOnlyList<string>)[]);
    }

    private static void Add(Dictionary<uint, RuleSet> table, uint nr, Condition[][] rules, uint ret)
    {
        if (!table.TryGetValue(nr, out var set)) table[nr] = set = new RuleSet();
        set.Add(rules, ret);
    }

    /// <summary>
    /// i386's socketcall(2) and ipc(2): as libseccomp does, a rule for a socket or SysV IPC syscall also applies to the
    /// multiplexer, with the call number in argument 0 in place of any condition on argument 0.
    /// </summary>
    private static class Multiplexed
    {
        private const uint SocketCall = 102, Ipc = 117;

        private static readonly string[] s_socket =
        [
            "socket", "bind", "connect", "listen", "accept", "getsockname", "getpeername", "socketpair", "send", "recv",
            "sendto", "recvfrom", "shutdown", "setsockopt", "getsockopt", "sendmsg", "recvmsg", "accept4", "recvmmsg", "sendmmsg",
        ];

        private static readonly (string Name, uint Call)[] s_ipc =
        [
            ("semop", 1), ("semget", 2), ("semctl", 3), ("semtimedop", 4), ("msgsnd", 11), ("msgrcv", 12), ("msgget", 13),
            ("msgctl", 14), ("shmat", 21), ("shmdt", 22), ("shmget", 23), ("shmctl", 24),
        ];

        public static (uint Nr, uint Call)? Call(string name)
        {
            var socket = Array.IndexOf(s_socket, name);
            if (socket >= 0) return (SocketCall, (uint)socket + 1);
            foreach (var (ipc, call) in s_ipc) if (ipc == name) return (Ipc, call);
            return null;
        }

        public static Condition[][] Rules(Condition[][] rules, uint call) =>
            [.. rules.Select(r => (Condition[])[new Condition(0, Op.Eq, call, 0), .. r.Where(c => c.Index != 0)])];
    }

    private static uint Action(string action, uint? errnoRet, string field)
    {
        try { return SeccompReturn.FromAction(action, errnoRet); }
        catch (SeccompException e) { throw new SeccompException($"{field}: {e.Message}"); }
    }

    private static uint Flags(List<string>? names)
    {
        uint flags = 0;
        for (var i = 0; i < (names?.Count ?? 0); i++)
            flags |= names![i] switch
            {
                "SECCOMP_FILTER_FLAG_TSYNC" => SeccompProgram.FlagTsync,
                "SECCOMP_FILTER_FLAG_LOG" => SeccompProgram.FlagLog,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => SeccompProgram.FlagSpecAllow,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => SeccompProgram.FlagWaitKillableRecv,
                var other => throw new SeccompException($"{Field}.flags[{i}]: unknown flag \"{other}\""),
            };
        return flags;
    }

    /// <summary>The rule's conditions; more than one list when two conditions test the same argument (runc).</summary>
    private static Condition[][] Rules(List<LinuxSeccompArg>? args, string at)
    {
        if (args is null || args.Count == 0) return [[]];
        var conditions = new Condition[args.Count];
        var seen = 0;
        var repeated = false;
        for (var j = 0; j < args.Count; j++)
        {
            var arg = args[j];
            if (arg.Index > 5) throw new SeccompException($"{at}.args[{j}].index: {arg.Index} is out of range [0, 5]");
            var op = arg.Op switch
            {
                "SCMP_CMP_NE" => Op.Ne, "SCMP_CMP_LT" => Op.Lt, "SCMP_CMP_LE" => Op.Le, "SCMP_CMP_EQ" => Op.Eq,
                "SCMP_CMP_GE" => Op.Ge, "SCMP_CMP_GT" => Op.Gt, "SCMP_CMP_MASKED_EQ" => Op.MaskedEq,
                _ => throw new SeccompException($"{at}.args[{j}].op: unknown operator \"{arg.Op}\""),
            };
            repeated |= (seen & (1 << (int)arg.Index)) != 0;
            seen |= 1 << (int)arg.Index;
            conditions[j] = new Condition((int)arg.Index, op, arg.Value, arg.ValueTwo ?? 0);
        }
        return repeated ? [.. conditions.Select(c => new[] { c })] : [conditions];
    }

    internal enum Op { Ne, Lt, Le, Eq, Ge, Gt, MaskedEq }

    internal readonly record struct Condition(int Index, Op Op, ulong Value, ulong ValueTwo);

    /// <summary>What a syscall number leads to: a return value, or the argument checks of its rules.</summary>
    internal readonly record struct Outcome(uint Ret, RuleSet? Rules, bool Is64)
    {
        public static Outcome Return(uint ret) => new(ret, null, false);
    }

    /// <summary>Every rule for one syscall number on one architecture.</summary>
    internal sealed class RuleSet
    {
        public uint? Unconditional;
        public readonly List<(Condition[] Conditions, uint Ret)> Conditional = [];

        public void Add(Condition[][] rules, uint ret)
        {
            foreach (var conditions in rules)
            {
                if (conditions.Length == 0) Unconditional ??= ret;
                else Conditional.Add((conditions, ret));
            }
        }

        public Outcome Outcome(bool is64) => Unconditional is { } ret ? SeccompCompiler.Outcome.Return(ret) : new Outcome(0, this, is64);
    }

    /// <summary>Cuts the 32-bit syscall number line into runs that share one outcome.</summary>
    private sealed class IntervalBuilder
    {
        private readonly Dictionary<uint, Outcome> _points = [];
        private readonly List<(uint Lo, uint Hi, Outcome Outcome, bool Stub)> _ranges = [];

        public void Point(uint nr, Outcome outcome) => _points[nr] = outcome;

        public void Range(uint lo, uint hi, Outcome outcome, bool stubPriority) => _ranges.Add((lo, hi, outcome, stubPriority));

        public (uint[] Starts, Outcome[] Outcomes) Build(Outcome fallback)
        {
            var cuts = new List<ulong>(_points.Count * 2 + _ranges.Count * 2 + 1) { 0 };
            foreach (var nr in _points.Keys) { cuts.Add(nr); cuts.Add((ulong)nr + 1); }
            foreach (var r in _ranges) { cuts.Add(r.Lo); cuts.Add((ulong)r.Hi + 1); }
            cuts.Sort();

            var starts = new List<uint>(cuts.Count);
            var outcomes = new List<Outcome>(cuts.Count);
            for (var i = 0; i < cuts.Count; i++)
            {
                if (cuts[i] > uint.MaxValue || (i > 0 && cuts[i] == cuts[i - 1])) continue;
                var nr = (uint)cuts[i];
                var outcome = At(nr, fallback);
                if (outcomes.Count > 0 && outcomes[^1] == outcome) continue;
                starts.Add(nr);
                outcomes.Add(outcome);
            }
            return ([.. starts], [.. outcomes]);
        }

        private Outcome At(uint nr, Outcome fallback)
        {
            foreach (var r in _ranges) if (r.Stub && nr >= r.Lo && nr <= r.Hi) return r.Outcome;
            if (_points.TryGetValue(nr, out var outcome)) return outcome;
            foreach (var r in _ranges) if (!r.Stub && nr >= r.Lo && nr <= r.Hi) return r.Outcome;
            return fallback;
        }
    }

    private sealed class Generator(BpfEmitter emitter, uint defaultRet)
    {
        /// <summary>A binary search on the syscall number (in A) over the runs; returns the root's label.</summary>
        public int Tree((uint[] Starts, Outcome[] Outcomes) runs) => Tree(runs.Starts, runs.Outcomes, 0, runs.Starts.Length);

        private int Tree(uint[] starts, Outcome[] outcomes, int lo, int hi)
        {
            if (hi - lo == 1) return Leaf(outcomes[lo]);
            // One syscall between two runs of the same outcome: a single jeq.
            if (hi - lo == 3 && outcomes[lo] == outcomes[lo + 2] && starts[lo + 2] == starts[lo + 1] + 1)
            {
                var hit = Leaf(outcomes[lo + 1]);
                return emitter.Jump(BpfOp.Jeq, starts[lo + 1], hit, Leaf(outcomes[lo]));
            }
            var mid = (lo + hi) / 2;
            var above = Tree(starts, outcomes, mid, hi);
            var below = Tree(starts, outcomes, lo, mid);
            return emitter.Jump(BpfOp.Jge, starts[mid], above, below);
        }

        private int Leaf(Outcome outcome)
        {
            if (outcome.Rules is not { } rules) return emitter.Ret(outcome.Ret);
            var next = emitter.Ret(defaultRet);
            for (var r = rules.Conditional.Count - 1; r >= 0; r--)
            {
                var (conditions, ret) = rules.Conditional[r];
                var pass = emitter.Ret(ret);
                for (var c = conditions.Length - 1; c >= 0; c--) pass = Condition(conditions[c], pass, next, outcome.Is64);
                next = pass;
            }
            return next;
        }

        /// <summary>Code that goes to <paramref name="pass"/> when the condition holds, else to <paramref name="fail"/>.</summary>
        private int Condition(Condition c, int pass, int fail, bool is64)
        {
            uint lo = (uint)c.Value, hi = (uint)(c.Value >> 32);
            var low = BpfOp.ArgLow(c.Index);
            var high = BpfOp.ArgHigh(c.Index);
            int label;
            switch (c.Op)
            {
                case Op.Eq:
                    label = emitter.Load(low, emitter.Jump(BpfOp.Jeq, lo, pass, fail));
                    return is64 ? emitter.Load(high, emitter.Jump(BpfOp.Jeq, hi, label, fail)) : label;
                case Op.Ne:
                    label = emitter.Load(low, emitter.Jump(BpfOp.Jeq, lo, fail, pass));
                    return is64 ? emitter.Load(high, emitter.Jump(BpfOp.Jeq, hi, label, pass)) : label;
                case Op.Gt or Op.Ge:
                    label = emitter.Load(low, emitter.Jump(c.Op == Op.Gt ? BpfOp.Jgt : BpfOp.Jge, lo, pass, fail));
                    if (!is64) return label;
                    // hi > v.hi: pass; hi == v.hi: decided by the low half; hi < v.hi: fail.
                    var equalHigh = emitter.Jump(BpfOp.Jeq, hi, label, fail);
                    return emitter.Load(high, emitter.Jump(BpfOp.Jgt, hi, pass, equalHigh));
                case Op.Lt or Op.Le:
                    // lo < v.lo is !(lo >= v.lo); lo <= v.lo is !(lo > v.lo).
                    label = emitter.Load(low, emitter.Jump(c.Op == Op.Lt ? BpfOp.Jge : BpfOp.Jgt, lo, fail, pass));
                    if (!is64) return label;
                    var sameHigh = emitter.Jump(BpfOp.Jeq, hi, label, pass);
                    return emitter.Load(high, emitter.Jump(BpfOp.Jgt, hi, fail, sameHigh));
                case Op.MaskedEq:
                    // (arg & value) == (valueTwo & value), half by half: libseccomp masks the datum too.
                    uint datumLo = (uint)c.ValueTwo, datumHi = (uint)(c.ValueTwo >> 32);
                    label = Masked(low, lo, datumLo, pass, fail);
                    return is64 ? Masked(high, hi, datumHi, label, fail) : label;
                default:
                    throw new ArgumentOutOfRangeException(nameof(c));
            }
        }

        private int Masked(uint offset, uint mask, uint datum, int pass, int fail)
        {
            datum &= mask;
            if (mask == 0) return pass;
            var test = emitter.Jump(BpfOp.Jeq, datum, pass, fail);
            if (mask != uint.MaxValue) test = emitter.And(mask, test);
            return emitter.Load(offset, test);
        }
    }
}
