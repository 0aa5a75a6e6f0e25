using Berth.Oci;

namespace Berth.Images.Engine;

/// <summary>What <c>docker run</c> / <c>create</c> may change over the image config. Every field is optional.</summary>
public sealed class ContainerOverrides
{
    /// <summary>The container's ID; its first 12 characters are the default hostname, as in Docker.</summary>
    public string? ContainerId { get; init; }

    /// <summary><c>-e</c>: <c>KEY=VALUE</c> replaces or adds; a bare <c>KEY</c> removes it.</summary>
    public IReadOnlyList<string>? Env { get; init; }

    /// <summary>
    /// <see cref="Env"/> already holds the image's variables (dockerd's Config.Env, merged at create):
    /// the process gets PATH, HOSTNAME, TERM with Env applied over them, in its order, not the image's again.
    /// </summary>
    public bool EnvIncludesImageEnv { get; init; }

    /// <summary>The arguments after the image name; replace the image's Cmd when non-empty.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary><c>--entrypoint</c>: replaces the image's Entrypoint and drops its Cmd; an empty list clears the Entrypoint.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }

    public string? WorkingDir { get; init; }
    public string? User { get; init; }

    /// <summary><c>--group-add</c>: extra supplementary groups (names from the image's /etc/group, or numbers).</summary>
    public IReadOnlyList<string>? GroupAdd { get; init; }

    public string? Hostname { get; init; }
    public string? Domainname { get; init; }
    public bool Tty { get; init; }
    public bool ReadonlyRootfs { get; init; }

    /// <summary>Bytes.</summary>
    public long? Memory { get; init; }

    /// <summary>Memory plus swap, bytes (-1: unlimited).</summary>
    public long? MemorySwap { get; init; }

    /// <summary><c>--cpus</c>, in CPUs (1.5 = 150000µs every 100000µs).</summary>
    public double? Cpus { get; init; }

    public ulong? CpuShares { get; init; }
    public string? CpusetCpus { get; init; }
    public long? PidsLimit { get; init; }

    /// <summary>Capability names, with or without <c>CAP_</c>, any case; <c>ALL</c> allowed.</summary>
    public IReadOnlyList<string>? CapAdd { get; init; }

    public IReadOnlyList<string>? CapDrop { get; init; }

    /// <summary>All capabilities, no masked or read-only paths, /sys writable, every host device.</summary>
    public bool Privileged { get; init; }

    /// <summary><c>--tmpfs</c>: destination → options (e.g. <c>size=64m,exec</c>, or empty).</summary>
    public IReadOnlyDictionary<string, string>? Tmpfs { get; init; }

    public IReadOnlyList<BindMount>? Binds { get; init; }

    /// <summary>Spec annotations set last (<c>--annotation</c>).</summary>
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>The host's devices, for privileged containers; /dev is scanned when null.</summary>
    public Func<IReadOnlyList<LinuxDevice>>? HostDevices { get; init; }
}

/// <summary><c>-v /src:/dst[:ro]</c>.</summary>
/// <param name="Propagation">rprivate (Docker's default), private, rshared, shared, rslave, slave.</param>
public sealed record BindMount(string Source, string Destination, bool ReadOnly = false, string Propagation = "rprivate");

/// <summary>The runtime spec and what the engine needs beside it.</summary>
/// <param name="StopSignal">The image's StopSignal, SIGTERM when it sets none.</param>
/// <param name="ExposedPorts">"80/tcp"-style keys, sorted.</param>
/// <param name="Volumes">Anonymous volume destinations the image declares, sorted.</param>
public sealed record ImageSpec(
    Spec Spec,
    ResolvedUser User,
    string StopSignal,
    IReadOnlyList<string> ExposedPorts,
    IReadOnlyList<string> Volumes,
    IReadOnlyDictionary<string, string> Labels);
