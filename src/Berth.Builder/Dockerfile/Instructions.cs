namespace Berth.Builder.Dockerfile;

/// <summary>
/// One parsed Dockerfile instruction. <see cref="Original"/> is the source text with line continuations
/// joined, flags included (<c>RUN --network=none apk add x</c>); heredoc bodies are not part of it.
/// </summary>
public abstract record Instruction
{
    /// <summary>1-based line where the instruction starts.</summary>
    public required int Line { get; init; }

    public required string Original { get; init; }

    /// <summary>The instruction keyword, upper-case.</summary>
    public abstract string Keyword { get; }
}

public sealed record FromInstruction(string Image, string? StageName, string? Platform) : Instruction
{
    public override string Keyword => "FROM";
}

/// <param name="Mounts">The raw <c>--mount</c> values, in order.</param>
public sealed record RunInstruction(CommandLine Command, IReadOnlyList<Heredoc> Heredocs, string? Network, IReadOnlyList<string> Mounts) : Instruction
{
    public override string Keyword => "RUN";
}

public sealed record CmdInstruction(CommandLine Command) : Instruction
{
    public override string Keyword => "CMD";
}

/// <param name="Command">Empty for <c>ENTRYPOINT []</c> or a bare <c>ENTRYPOINT</c> (resets the entrypoint).</param>
public sealed record EntrypointInstruction(CommandLine Command) : Instruction
{
    public override string Keyword => "ENTRYPOINT";
}

/// <param name="Sources">Context (or stage) paths; heredoc sources are in <paramref name="Heredocs"/> instead.</param>
/// <param name="Heredocs">Inline files (<c>COPY &lt;&lt;EOF /dest</c>), in source order; the file name is the heredoc name.</param>
public sealed record CopyInstruction(
    IReadOnlyList<string> Sources,
    string Destination,
    string? From,
    string? Chown,
    string? Chmod,
    bool Link,
    IReadOnlyList<string> Excludes,
    IReadOnlyList<Heredoc> Heredocs) : Instruction
{
    public override string Keyword => "COPY";
}

public sealed record AddInstruction(
    IReadOnlyList<string> Sources,
    string Destination,
    string? Chown,
    string? Chmod,
    bool Link,
    IReadOnlyList<string> Excludes,
    IReadOnlyList<Heredoc> Heredocs,
    string? Checksum,
    bool KeepGitDir) : Instruction
{
    public override string Keyword => "ADD";
}

/// <param name="Variables">Keys and values as written (quotes included); <see cref="InstructionExpander"/> removes quotes.</param>
public sealed record EnvInstruction(IReadOnlyList<KeyValuePair<string, string>> Variables) : Instruction
{
    public override string Keyword => "ENV";
}

public sealed record ArgDefinition(string Name, string? Default);

public sealed record ArgInstruction(IReadOnlyList<ArgDefinition> Args) : Instruction
{
    public override string Keyword => "ARG";
}

public sealed record WorkdirInstruction(string Path) : Instruction
{
    public override string Keyword => "WORKDIR";
}

public sealed record UserInstruction(string User) : Instruction
{
    public override string Keyword => "USER";
}

/// <param name="Labels">Keys and values as written (quotes included); <see cref="InstructionExpander"/> removes quotes.</param>
public sealed record LabelInstruction(IReadOnlyList<KeyValuePair<string, string>> Labels) : Instruction
{
    public override string Keyword => "LABEL";

    /// <summary>Taken as they are, no quotes removed nor variables expanded (<c>docker build --label</c>'s, as dockerd's NewLabelCommand).</summary>
    public bool Verbatim { get; init; }
}

/// <param name="Ports">As written (<c>80/tcp</c>), sorted like Docker does.</param>
public sealed record ExposeInstruction(IReadOnlyList<string> Ports) : Instruction
{
    public override string Keyword => "EXPOSE";
}

public sealed record VolumeInstruction(IReadOnlyList<string> Paths) : Instruction
{
    public override string Keyword => "VOLUME";
}

public sealed record ShellInstruction(IReadOnlyList<string> Shell) : Instruction
{
    public override string Keyword => "SHELL";
}

public sealed record StopsignalInstruction(string Signal) : Instruction
{
    public override string Keyword => "STOPSIGNAL";
}

/// <param name="Test">Null for <c>HEALTHCHECK NONE</c>.</param>
/// <param name="Interval">Null when not given or 0 (inherit the default).</param>
/// <param name="Retries">Null when not given.</param>
public sealed record HealthcheckInstruction(
    CommandLine? Test,
    TimeSpan? Interval,
    TimeSpan? Timeout,
    TimeSpan? StartPeriod,
    TimeSpan? StartInterval,
    int? Retries) : Instruction
{
    public override string Keyword => "HEALTHCHECK";
}

/// <param name="Trigger">The parsed trigger, for validation; its Line is the ONBUILD's.</param>
/// <param name="TriggerText">What goes in the image config's OnBuild list: the text after ONBUILD, heredoc bodies appended as Docker does.</param>
public sealed record OnbuildInstruction(Instruction Trigger, string TriggerText) : Instruction
{
    public override string Keyword => "ONBUILD";
}

public sealed record MaintainerInstruction(string Name) : Instruction
{
    public override string Keyword => "MAINTAINER";
}
