using System.Runtime.InteropServices;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Native;

/// <summary>The table ChildProgram.Build writes must be the one native/executor/berth_exec.c reads.</summary>
public sealed unsafe class ChildProgramLayoutTests
{
    // struct berth_program and struct berth_op as berth_exec.c declares them (x86_64/arm64 LP64).
    static readonly Dictionary<string, int> ExpectedOffsets = new()
    {
        ["program.clone_flags"] = 0, ["program.report_fd"] = 8, ["program.op_count"] = 12, ["program.ops"] = 16, ["program.cgroup_fd"] = 24,
        ["program.slots"] = 32, ["program.size"] = 32 + 64 * 8,
        ["op.kind"] = 0, ["op.nr"] = 4, ["op.slot_args"] = 8, ["op.result_slot"] = 12, ["op.args"] = 16, ["op.flags"] = 64,
        ["op.on_success"] = 68, ["op.errnos"] = 72, ["op.on_errno"] = 84, ["op.size"] = 96,
    };

    [Fact]
    public void Offsets_match_the_c_structs_as_the_compiler_lays_them_out()
    {
        var source = Path.Combine(TestEnvironment.RepoRoot ?? "/nonexistent", "native/executor/berth_exec.c");
        if (!File.Exists(source) || TestEnvironment.Sh("command -v gcc").Code != 0)
        {
            // Without gcc or the source, check at least the constants against the expectation.
            Assert.Equal(ChildProgram.OpSize, ExpectedOffsets["op.size"]);
            Assert.Equal(ChildProgram.HeaderSize, ExpectedOffsets["program.size"]);
            return;
        }
        var dir = Directory.CreateTempSubdirectory("berth-layout-").FullName;
        try
        {
            var probe = Path.Combine(dir, "probe.c");
            File.WriteAllText(probe, $$"""
                #include "{{source}}"
                #include <stdio.h>
                #include <stddef.h>
                #define P(s, f) printf("%s.%s=%zu\n", #s, #f, offsetof(struct berth_##s, f))
                int main(void) {
                    P(program, clone_flags); P(program, report_fd); P(program, op_count); P(program, ops); P(program, cgroup_fd); P(program, slots);
                    printf("program.size=%zu\n", sizeof(struct berth_program));
                    P(op, kind); P(op, nr); P(op, slot_args); P(op, result_slot); P(op, args); P(op, flags);
                    P(op, on_success); P(op, errnos); P(op, on_errno);
                    printf("op.size=%zu\n", sizeof(struct berth_op));
                    printf("abi=%d\n", BERTH_EXEC_ABI);
                    printf("slots=%d\n", BERTH_MAX_SLOTS);
                    printf("rules=%d\n", BERTH_MAX_ERRNO_RULES);
                    return 0;
                }
                """);
            var (code, output) = TestEnvironment.Sh($"gcc -o '{dir}/probe' '{probe}' && '{dir}/probe'");
            Assert.True(code == 0, $"compiling the layout probe failed:\n{output}");
            var actual = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')).ToDictionary(p => p[0], p => int.Parse(p[1]));
            foreach (var (field, offset) in ExpectedOffsets)
                Assert.True(actual[field] == offset, $"{field} is at {actual[field]} in berth_exec.c, ChildProgram writes it at {offset}");
            Assert.Equal(ChildProgram.AbiVersion, actual["abi"]);
            Assert.Equal(ChildProgram.MaxSlots, actual["slots"]);
            Assert.Equal(ChildProgram.MaxErrnoRules, actual["rules"]);
            Assert.Equal(ChildProgram.OpSize, actual["op.size"]);
            Assert.Equal(ChildProgram.HeaderSize, actual["program.size"]);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Build_writes_header_ops_presets_and_resolves_data_and_labels()
    {
        var p = new ChildProgram { CloneFlags = Sys.CLONE_NEWPID | Sys.CLONE_NEWNS };
        var preset = p.Preset(77);
        var result = p.NewSlot();
        var path = p.String("/some/path");
        var target = new Label();
        var op0 = p.Syscall(Sys.OpenAt, "open", Sys.AT_FDCWD, path, Sys.O_RDONLY, preset);
        op0.Result = result;
        op0.Tolerate(Sys.ENOENT, target).Tolerate(Sys.EACCES);
        op0.OnSuccess = target;
        var op1 = p.Syscall(Sys.Read, "read", result, path, 1);
        op1.FailOnZero = true;
        p.Place(target);
        p.Add(new Op { Kind = OpKind.Exit, Args = [3], Description = "exit" });

        using var native = p.Build(reportFd: 42);
        var m = (byte*)native.Address;
        Assert.Equal((ulong)(Sys.CLONE_NEWPID | Sys.CLONE_NEWNS), *(ulong*)m);
        Assert.Equal(42, *(int*)(m + 8));
        Assert.Equal(3, *(int*)(m + 12));
        var ops = *(byte**)(m + 16);
        Assert.True(ops == m + ChildProgram.HeaderSize, "the ops pointer must point just after the header");
        Assert.Equal(77L, *(long*)(m + 32 + preset.Index * 8));

        byte* o0 = ops, o1 = ops + ChildProgram.OpSize, o2 = ops + 2 * ChildProgram.OpSize;
        Assert.Equal((int)OpKind.Syscall, *(int*)o0);
        Assert.Equal((int)Sys.OpenAt, *(int*)(o0 + 4));
        Assert.Equal(1u << 3, *(uint*)(o0 + 8)); // only args[3] is a slot
        Assert.Equal(result.Index, *(int*)(o0 + 12));
        Assert.Equal((long)Sys.AT_FDCWD, *(long*)(o0 + 16));
        Assert.Equal("/some/path", Marshal.PtrToStringUTF8((IntPtr)(*(long*)(o0 + 24))));
        Assert.Equal((long)preset.Index, *(long*)(o0 + 40));
        Assert.Equal(0, *(int*)(o0 + 64));
        Assert.Equal(2, *(int*)(o0 + 68)); // on_success → the Exit op
        Assert.Equal((Sys.ENOENT, Sys.EACCES, 0), (*(int*)(o0 + 72), *(int*)(o0 + 76), *(int*)(o0 + 80)));
        Assert.Equal((2, -1, -1), (*(int*)(o0 + 84), *(int*)(o0 + 88), *(int*)(o0 + 92)));

        Assert.Equal(1, *(int*)(o1 + 64)); // OPF_FAIL_ON_ZERO
        Assert.Equal(-1, *(int*)(o1 + 68));
        Assert.Equal(-1, *(int*)(o1 + 12)); // result not kept
        Assert.Equal((1u << 0), *(uint*)(o1 + 8));
        Assert.Equal((int)OpKind.Exit, *(int*)o2);
        Assert.Equal(3L, *(long*)(o2 + 16));
    }

    [Fact]
    public void String_arrays_are_null_terminated_pointer_arrays()
    {
        var p = new ChildProgram();
        var argv = p.StringArray(["a", "bc"]);
        p.Syscall(Sys.Execve, "exec", 0, argv, 0);
        using var native = p.Build(2);
        var op = (byte*)native.Address + ChildProgram.HeaderSize;
        var array = (long*)*(long*)(op + 24);
        Assert.Equal("a", Marshal.PtrToStringUTF8((IntPtr)array[0]));
        Assert.Equal("bc", Marshal.PtrToStringUTF8((IntPtr)array[1]));
        Assert.Equal(0L, array[2]);
    }

    [Fact]
    public void Build_refuses_a_jump_to_a_label_never_placed_and_strings_with_nul()
    {
        var p = new ChildProgram();
        p.Syscall(Sys.Close, "close", 5).OnSuccess = new Label();
        Assert.Throws<InvalidOperationException>(() => p.Build(2));
        Assert.Throws<RuntimeException>(() => p.String("a\0b"));
        var op = new Op { Kind = OpKind.Syscall, Description = "x" };
        op.Tolerate(1).Tolerate(2).Tolerate(3);
        Assert.Throws<InvalidOperationException>(() => op.Tolerate(4));
    }

    [NativeFact]
    public void Executor_abi_matches_the_built_library() => Executor.EnsureAbi();
}
