using System.Runtime.InteropServices;
using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Support;

/// <summary>
/// A compiled child program laid out in native memory, so that tests can read the data its
/// ops point to (paths, mount data, structs) as the executor will see it.
/// </summary>
public sealed unsafe class CompiledProgram : IDisposable
{
    public const int ReportFd = 11, StartFd = 12;

    public ChildProgram Program { get; }
    public bool ForksInit { get; }
    public NativeProgram Native { get; }
    public IReadOnlyList<Op> Ops => Program.Ops;
    readonly long _dataBase;

    public CompiledProgram(ChildProgram program, bool forksInit)
    {
        Program = program;
        ForksInit = forksInit;
        Native = program.Build(ReportFd);
        _dataBase = Native.Address + ChildProgram.HeaderSize + program.Ops.Count * ChildProgram.OpSize;
    }

    public static CompiledProgram Compile(Spec spec, string rootfs = "/tmp/berth-unit-rootfs", string bundle = "/tmp", int consoleFd = -1,
        int preserveFds = 0, bool noPivot = false, CgroupMountPlan? cgroups = null)
    {
        var (program, forks) = InitCompiler.Compile(new InitOptions
        {
            Spec = spec, Rootfs = rootfs, BundleDir = bundle, StartFd = StartFd, ReportFd = ReportFd,
            ConsoleSocketFd = consoleFd, PreserveFds = preserveFds, NoPivot = noPivot, Cgroups = cgroups, HostHasProcKcore = true,
        });
        return new CompiledProgram(program, forks);
    }

    public IntPtr Address(OpArg arg) =>
        arg.Kind == OpArgKind.Data ? (IntPtr)(_dataBase + arg.Value) : throw new InvalidOperationException($"argument {arg} is not data");

    /// <summary>The C string an argument points to.</summary>
    public string String(OpArg arg) => Marshal.PtrToStringUTF8(Address(arg))!;

    /// <summary>The argument as a string when it points to data, else its number.</summary>
    public string Show(OpArg arg) => arg.Kind switch
    {
        OpArgKind.Data => $"\"{String(arg)}\"",
        OpArgKind.Slot => $"slot{arg.Value}",
        _ => arg.Value.ToString(),
    };

    /// <summary>The <paramref name="length"/> bytes an argument points to, as ASCII.</summary>
    public string Bytes(OpArg arg, int length) => System.Text.Encoding.ASCII.GetString((byte*)Address(arg), length);

    public long Int64(OpArg arg, int offset) => *(long*)(Address(arg) + offset);
    public int Int32(OpArg arg, int offset) => *(int*)(Address(arg) + offset);

    public int IndexOf(Op op) => Program.Ops.ToList().IndexOf(op);

    public IEnumerable<Op> Syscalls(long nr) => Ops.Where(o => o.Kind == OpKind.Syscall && o.Syscall == nr);

    public Op Single(Func<Op, bool> match, string what)
    {
        var found = Ops.Where(match).ToList();
        Assert.True(found.Count == 1, $"expected one op that {what}, found {found.Count}:\n{Dump()}");
        return found[0];
    }

    public Op First(Func<Op, bool> match, string what) =>
        Ops.FirstOrDefault(match) ?? throw new Xunit.Sdk.XunitException($"no op {what}:\n{Dump()}");

    /// <summary>Index of the first op whose description contains <paramref name="text"/> (−1 if none).</summary>
    public int Find(string text) => Program.Ops.ToList().FindIndex(o => o.Description.Contains(text, StringComparison.Ordinal));

    public int MustFind(string text)
    {
        var index = Find(text);
        Assert.True(index >= 0, $"no op described as \"{text}\" in:\n{Dump()}");
        return index;
    }

    public string Dump() => string.Join('\n', Ops.Select((o, i) =>
        $"{i,3} {o.Kind} {(o.Kind == OpKind.Syscall ? o.Syscall.ToString() : "")} ({string.Join(", ", o.Args.Select(a => a.Kind == OpArgKind.Data && o.Kind != OpKind.Store ? SafeShow(a) : a.ToString()))}) {o.Description}"));

    string SafeShow(OpArg a)
    {
        var s = String(a);
        return s.All(c => c >= ' ' && c < 127) && s.Length > 0 ? $"\"{s}\"" : $"data@{a.Value}";
    }

    public void Dispose() => Native.Dispose();
}
