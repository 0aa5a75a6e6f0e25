namespace Berth.Builder.Dockerfile;

/// <summary>
/// Substitutes build args and environment variables in the fields Docker expands, and only those:
/// ADD and COPY (sources, destination, --chown, --chmod, COPY --from), ENV and LABEL (keys and values),
/// EXPOSE, FROM (image, --platform), STOPSIGNAL, USER, VOLUME, WORKDIR and ARG defaults. RUN, CMD,
/// ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell; ONBUILD triggers and heredoc bodies are untouched.
/// Quotes are removed as part of expansion, as Docker's lexer does.
/// </summary>
public static class InstructionExpander
{
    /// <param name="lookup">A variable's value, or null when it is unset (unset expands to the empty string).</param>
    /// <param name="fileName">Used in the error location.</param>
    /// <exception cref="DockerfileException">A malformed word, such as an unterminated quote or <c>${X:?}</c> with X unset.</exception>
    public static Instruction Expand(Instruction instruction, ShellLex lex, Func<string, string?> lookup, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(instruction);
        ArgumentNullException.ThrowIfNull(lex);
        ArgumentNullException.ThrowIfNull(lookup);
        ArgumentNullException.ThrowIfNull(fileName);

        string Word(string word) => lex.ProcessWord(word, lookup);
        string? Optional(string? word) => word is null ? null : lex.ProcessWord(word, lookup);
        List<string> Each(IEnumerable<string> words) => [.. words.Select(Word)];
        List<KeyValuePair<string, string>> Pairs(IEnumerable<KeyValuePair<string, string>> pairs) =>
            [.. pairs.Select(p => new KeyValuePair<string, string>(Word(p.Key), Word(p.Value)))];

        try
        {
            return instruction switch
            {
                AddInstruction add => add with
                {
                    Sources = Each(add.Sources),
                    Destination = Word(add.Destination),
                    Chown = Optional(add.Chown),
                    Chmod = Optional(add.Chmod),
                },
                CopyInstruction copy => copy with
                {
                    Sources = Each(copy.Sources),
                    Destination = Word(copy.Destination),
                    From = Optional(copy.From),
                    Chown = Optional(copy.Chown),
                    Chmod = Optional(copy.Chmod),
                },
                EnvInstruction env => env with { Variables = Pairs(env.Variables) },
                LabelInstruction { Verbatim: true } => instruction,
                LabelInstruction label => label with { Labels = Pairs(label.Labels) },
                // A port may expand to several ("EXPOSE $PORTS").
                ExposeInstruction expose => expose with { Ports = [.. expose.Ports.SelectMany(p => lex.ProcessWords(p, lookup))] },
                FromInstruction stage => stage with { Image = Word(stage.Image), Platform = Optional(stage.Platform) },
                StopsignalInstruction stop => stop with { Signal = Word(stop.Signal) },
                UserInstruction user => user with { User = Word(user.User) },
                VolumeInstruction volume => volume with { Paths = Each(volume.Paths) },
                WorkdirInstruction workdir => workdir with { Path = Word(workdir.Path) },
                // BuildKit expands build args and ENV in --mount values; the command is the shell's.
                RunInstruction run when run.Mounts.Count > 0 => run with { Mounts = Each(run.Mounts) },
                ArgInstruction arg => arg with { Args = [.. arg.Args.Select(a => a with { Default = Optional(a.Default) })] },
                _ => instruction,
            };
        }
        catch (ArgumentException e)
        {
            throw new DockerfileException(fileName, instruction.Line, e.Message, e);
        }
    }
}
