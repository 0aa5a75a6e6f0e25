using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Berth.Runtime.Native;

/// <summary>
/// The binding to native/executor/berth_exec.c. NativeAOT builds link libberthexec.a
/// statically (DirectPInvoke); JIT runs (tests) load libberthexec.so from beside the
/// assembly or from artifacts/native.
/// </summary>
public static partial class Executor
{
    const string Lib = "berthexec";

    [LibraryImport(Lib)] private static partial nint berth_spawn(nint program);
    [LibraryImport(Lib)] private static partial int berth_exec_abi_version();
    [LibraryImport(Lib)] private static partial int berth_exec_op_size();
    [LibraryImport(Lib)] private static partial int berth_exec_program_size();

    static int _checked;

    /// <summary>Clones a child that runs the program; returns its pid.</summary>
    public static int Spawn(NativeProgram program)
    {
        EnsureAbi();
        var result = berth_spawn(program.Address);
        if (result < 0) throw LibC.Error("clone container init", (int)-result);
        return (int)result;
    }

    public static void EnsureAbi()
    {
        if (Volatile.Read(ref _checked) == 1) return;
        if (berth_exec_abi_version() != ChildProgram.AbiVersion
            || berth_exec_op_size() != ChildProgram.OpSize
            || berth_exec_program_size() != ChildProgram.HeaderSize)
            throw new RuntimeException(
                $"the native executor does not match this build (abi {berth_exec_abi_version()}, op {berth_exec_op_size()} bytes, " +
                $"program {berth_exec_program_size()} bytes; expected {ChildProgram.AbiVersion}/{ChildProgram.OpSize}/{ChildProgram.HeaderSize}): rebuild with ./build.sh");
        Volatile.Write(ref _checked, 1);
    }

#pragma warning disable CA2255 // a module initializer is the place to install a resolver
    [ModuleInitializer]
    internal static void InstallResolver()
    {
        if (!RuntimeFeature.IsDynamicCodeSupported) return; // NativeAOT: linked statically
        NativeLibrary.SetDllImportResolver(typeof(Executor).Assembly, Resolve);
    }
#pragma warning restore CA2255

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Lib) return 0;
        foreach (var dir in CandidateDirectories())
        {
            var file = Path.Combine(dir, "libberthexec.so");
            if (File.Exists(file)) return NativeLibrary.Load(file);
        }
        throw new DllNotFoundException("libberthexec.so not found beside the assembly or in artifacts/native: run ./build.sh");
    }

    static IEnumerable<string> CandidateDirectories()
    {
        yield return AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            yield return Path.Combine(dir.FullName, "artifacts", "native");
    }
}
