namespace Berth.Builder.Dockerfile;

/// <summary>
/// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD. Exec form (a JSON array of strings) keeps
/// each element; shell form has a single element, the rest of the line verbatim, to be run by the SHELL.
/// </summary>
public sealed record CommandLine(IReadOnlyList<string> Args, bool IsShellForm);

/// <summary>
/// A here-document (<c>RUN &lt;&lt;EOF</c>). <see cref="Content"/> holds the lines up to the terminator,
/// each with its line ending; with <see cref="StripTabs"/> (<c>&lt;&lt;-EOF</c>) leading tabs are already
/// removed. <see cref="Expand"/> is false when the delimiter was quoted, so variables must stay literal.
/// </summary>
public sealed record Heredoc(string Name, string Content, bool Expand, bool StripTabs);
