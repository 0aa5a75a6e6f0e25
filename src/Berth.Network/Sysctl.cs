using Berth.Network.Netlink;

namespace Berth.Network;

/// <summary>
/// net.* sysctls of one network namespace. /proc/sys/net resolves to the namespace of the thread
/// that opens the file, so for another namespace the open happens on a <see cref="Netns"/> thread.
/// </summary>
public static class Sysctl
{
    public static string Read(string? netnsPath, string key) =>
        Run(netnsPath, $"read sysctl {key}", () => File.ReadAllText(PathOf(key)).Trim());

    public static void Write(string? netnsPath, string key, string value) =>
        Run(netnsPath, $"write sysctl {key}={value}", () => { File.WriteAllText(PathOf(key), value); return 0; });

    private static string PathOf(string key) => "/proc/sys/" + key.Replace('.', '/');

    private static T Run<T>(string? netnsPath, string operation, Func<T> work)
    {
        try
        {
            return netnsPath is null ? work() : Netns.RunIn(netnsPath, operation, work);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NetworkException(NetworkErrorKind.Internal, $"{operation}{(netnsPath is null ? "" : $" in {netnsPath}")}: {e.Message}", e);
        }
    }
}
