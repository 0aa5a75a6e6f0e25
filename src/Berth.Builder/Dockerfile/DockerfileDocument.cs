using System.Globalization;

namespace Berth.Builder.Dockerfile;

/// <summary>A parsed Dockerfile: parser directives, the ARGs before the first FROM, and the stages.</summary>
public sealed record DockerfileDocument(
    char EscapeToken,
    string? Syntax,
    IReadOnlyList<ArgInstruction> MetaArgs,
    IReadOnlyList<BuildStage> Stages)
{
    /// <summary>
    /// The stage named <paramref name="nameOrIndex"/> (case-insensitive), or at that numeric index
    /// (<c>COPY --from=0</c>); null when there is none.
    /// </summary>
    public BuildStage? FindStage(string nameOrIndex)
    {
        ArgumentNullException.ThrowIfNull(nameOrIndex);
        foreach (var stage in Stages)
        {
            if (stage.Name is not null && string.Equals(stage.Name, nameOrIndex, StringComparison.OrdinalIgnoreCase))
            {
                return stage;
            }
        }
        if (int.TryParse(nameOrIndex, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < Stages.Count)
        {
            return Stages[index];
        }
        return null;
    }
}

/// <param name="Name">The lower-cased <c>AS</c> name, or null.</param>
/// <param name="Instructions">The instructions after FROM, in order.</param>
public sealed record BuildStage(int Index, string? Name, FromInstruction From, IReadOnlyList<Instruction> Instructions);
