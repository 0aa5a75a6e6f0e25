namespace Berth.Builder.Dockerfile;

/// <summary>
/// A Dockerfile that cannot be built as written. The message reads like Docker's
/// (<c>Dockerfile:12: unknown instruction: FORM</c>); <see cref="Reason"/> is the part after the location.
/// </summary>
public sealed class DockerfileException : Exception
{
    public DockerfileException(string fileName, int line, string reason, Exception? innerException = null)
        : base(line > 0 ? $"{fileName}:{line}: {reason}" : $"{fileName}: {reason}", innerException)
    {
        FileName = fileName;
        Line = line;
        Reason = reason;
    }

    public string FileName { get; }

    /// <summary>1-based line where the offending instruction starts; 0 when the problem is the file as a whole.</summary>
    public int Line { get; }

    public string Reason { get; }
}

/// <summary>Thrown inside the parser without a location; <see cref="DockerfileParser"/> adds file and line.</summary>
internal sealed class DockerfileSyntaxException(string message) : Exception(message);
