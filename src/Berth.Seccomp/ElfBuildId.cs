using System.Runtime.InteropServices;

namespace Berth.Seccomp;

/// <summary>
/// The running executable's GNU build ID (<c>.note.gnu.build-id</c>: the linker's hash of the output), read
/// from its program headers in memory (getauxval AT_PHDR/AT_PHNUM, the PT_NOTE segments). It names a
/// NativeAOT binary's exact build for a few hundred instructions (264, single-stepped), where the module
/// version id goes through the reflection metadata.
/// </summary>
internal static unsafe partial class ElfBuildId
{
    private const nuint AT_PHDR = 3, AT_PHNUM = 5;
    private const uint PT_NOTE = 4, PT_PHDR = 6, NT_GNU_BUILD_ID = 3;
    private const int PhdrSize = 56; // Elf64_Phdr

    [LibraryImport("libc", EntryPoint = "getauxval")]
    private static partial nuint GetAuxVal(nuint type);

    /// <summary>The build ID in lowercase hex, or null when the executable has none (or is not a 64-bit ELF as expected).</summary>
    public static string? Read()
    {
        if (IntPtr.Size != 8) return null;
        byte* phdrs = (byte*)GetAuxVal(AT_PHDR);
        nuint count = GetAuxVal(AT_PHNUM);
        if (phdrs == null || count is 0 or > 256) return null;
        // The load bias: zero for a non-PIE executable, the mapping's base for a PIE one.
        nint bias = 0;
        for (nuint i = 0; i < count; i++)
        {
            byte* ph = phdrs + i * PhdrSize;
            if (*(uint*)ph == PT_PHDR) bias = (nint)phdrs - (nint)(*(ulong*)(ph + 16));
        }
        for (nuint i = 0; i < count; i++)
        {
            byte* ph = phdrs + i * PhdrSize;
            if (*(uint*)ph != PT_NOTE) continue;
            byte* note = (byte*)(bias + (nint)(*(ulong*)(ph + 16)));
            ulong size = *(ulong*)(ph + 32); // p_filesz
            for (ulong at = 0; at + 12 <= size;)
            {
                uint nameSize = *(uint*)(note + at), descSize = *(uint*)(note + at + 4), type = *(uint*)(note + at + 8);
                ulong name = at + 12, desc = name + Align4(nameSize), next = desc + Align4(descSize);
                if (next > size) break;
                if (type == NT_GNU_BUILD_ID && nameSize == 4 && new ReadOnlySpan<byte>(note + name, 4).SequenceEqual("GNU\0"u8) && descSize is > 0 and <= 64)
                    return Convert.ToHexStringLower(new ReadOnlySpan<byte>(note + desc, (int)descSize));
                at = next;
            }
        }
        return null;
    }

    private static ulong Align4(uint n) => (n + 3UL) & ~3UL;
}
