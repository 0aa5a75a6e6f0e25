using System.Runtime.InteropServices;

namespace Berth.Images.Manifests;

/// <summary>Chooses a manifest from an index by platform, normalising names as containerd's platforms package does.</summary>
public static class PlatformMatcher
{
    /// <summary>The platform this process runs on (linux/amd64, linux/arm64/v8, …).</summary>
    public static Platform Host { get; } = Normalize(new Platform
    {
        OS = "linux",
        Architecture = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "arm",
            Architecture.X86 => "386",
            Architecture.S390x => "s390x",
            Architecture.Ppc64le => "ppc64le",
            Architecture.RiscV64 => "riscv64",
            Architecture.LoongArch64 => "loong64",
            var other => other.ToString().ToLowerInvariant(),
        },
        Variant = RuntimeInformation.OSArchitecture == Architecture.Arm ? "v7" : null,
    });

    /// <summary>Parses <c>os[/arch[/variant]]</c> (e.g. <c>linux/arm64/v8</c>).</summary>
    public static Platform Parse(string text)
    {
        string[] parts = text.Split('/');
        if (parts.Length is < 1 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid platform `{text}`: expected os[/arch[/variant]]");
        return Normalize(new Platform
        {
            OS = parts[0].ToLowerInvariant(),
            Architecture = parts.Length > 1 ? parts[1].ToLowerInvariant() : Host.Architecture,
            Variant = parts.Length > 2 ? parts[2].ToLowerInvariant() : null,
        });
    }

    /// <summary>Canonical names: x86_64→amd64, aarch64→arm64 (variant v8 implied), armhf→arm/v7 ….</summary>
    public static Platform Normalize(Platform p)
    {
        string os = p.OS.ToLowerInvariant() switch { "macos" => "darwin", var o => o };
        string arch = p.Architecture.ToLowerInvariant();
        string? variant = string.IsNullOrEmpty(p.Variant) ? null : p.Variant.ToLowerInvariant();
        switch (arch)
        {
            case "i386": arch = "386"; variant = null; break;
            case "x86_64" or "x86-64" or "amd64":
                arch = "amd64";
                if (variant == "v1") variant = null;
                break;
            case "aarch64" or "arm64":
                arch = "arm64";
                if (variant is "8" or "v8") variant = null;
                break;
            case "armhf": arch = "arm"; variant = "v7"; break;
            case "armel": arch = "arm"; variant = "v6"; break;
            case "arm":
                variant = variant switch { null or "7" => "v7", "5" or "6" or "8" => "v" + variant, _ => variant };
                break;
        }
        return p with { OS = os, Architecture = arch, Variant = variant };
    }

    /// <summary>Whether a manifest for <paramref name="candidate"/> runs on <paramref name="wanted"/>.</summary>
    public static bool Matches(Platform wanted, Platform? candidate)
    {
        if (candidate is null) return false;
        Platform w = Normalize(wanted), c = Normalize(candidate);
        return w.OS == c.OS && w.Architecture == c.Architecture && (w.Variant is null || w.Variant == c.Variant);
    }

    /// <summary>
    /// The entry of <paramref name="index"/> for <paramref name="wanted"/> (the host when null).
    /// Attestation manifests (platform unknown/unknown) are never chosen.
    /// </summary>
    /// <exception cref="ImagesException">NotFound listing the platforms the index has.</exception>
    public static Descriptor Select(ImageIndex index, Platform? wanted, string what)
    {
        wanted ??= Host;
        var matches = index.Manifests.Where(m => MediaTypes.IsManifest(m.MediaType) && Matches(wanted, m.Platform)).ToList();
        if (matches.Count > 0)
        {
            // Without a wanted variant, prefer the entry with none (the baseline), as containerd orders them.
            return matches.FirstOrDefault(m => Normalize(m.Platform!).Variant == Normalize(wanted).Variant) ?? matches[0];
        }
        string available = string.Join(", ", index.Manifests.Select(m => m.Platform?.ToString() ?? "(no platform)"));
        throw new ImagesException(ImagesErrorKind.NotFound, $"{what}: no manifest for platform {Normalize(wanted)} (the index has: {available})");
    }
}
