namespace Berth.Daemon.Configuration;

/// <summary>A bad flag, config file or host: berthd says what and exits with status 1.</summary>
public sealed class DaemonConfigException(string message, Exception? inner = null) : Exception(message, inner);
