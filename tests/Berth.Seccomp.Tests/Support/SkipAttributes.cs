namespace Berth.Seccomp.Tests.Support;

/// <summary>A fact that compares with libseccomp; skipped where libseccomp.so.2 is not installed.</summary>
public sealed class LibseccompFactAttribute : FactAttribute
{
    public LibseccompFactAttribute() { if (!Libseccomp.IsAvailable) Skip = "libseccomp.so.2 is not installed (apt-get install libseccomp2)"; }
}

public sealed class LibseccompTheoryAttribute : TheoryAttribute
{
    public LibseccompTheoryAttribute() { if (!Libseccomp.IsAvailable) Skip = "libseccomp.so.2 is not installed (apt-get install libseccomp2)"; }
}

/// <summary>A fact that loads filters into the kernel through a C helper; needs gcc and a seccomp-capable kernel.</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute() { if (SeccompHelper.SkipReason is { } reason) Skip = reason; }
}
