using Berth.Daemon;
using Berth.Daemon.Configuration;
using Berth.Daemon.Engine;
using Berth.Daemon.Hosting;

// berthd: parse dockerd-style flags, start the host, wait for SIGTERM/SIGINT, clean up.
ParsedArgs parsed;
try
{
    parsed = DaemonArgs.Parse(args);
}
catch (DaemonConfigException e)
{
    Console.Error.WriteLine($"berthd: {e.Message}");
    return 1;
}
if (parsed.ShowHelp)
{
    Console.WriteLine(DaemonArgs.Usage);
    return 0;
}
if (parsed.ShowVersion)
{
    Console.WriteLine($"berthd version {BerthEngine.Version}, API {Berth.Daemon.Api.ApiVersion.Current} (min {Berth.Daemon.Api.ApiVersion.Minimum})");
    return 0;
}
SystemdNotify systemd = SystemdNotify.TakeFromEnvironment();
if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("BERTHD_ALLOW_NON_ROOT") is null)
    Console.Error.WriteLine("berthd: warning: not running as root; overlay mounts and containers will fail");

// Sockets are bound with the umask's mode before they are chmod'ed to 0660: deny others write
// (and so connect) from the start. Only the binary does this; tests hosting berthd in-process
// keep their umask.
Interop.umask(Interop.umask(0) | 0x12 /* 022 */);

DaemonHost host;
try
{
    host = await DaemonHost.StartAsync(parsed.Options);
}
catch (DaemonConfigException e)
{
    Console.Error.WriteLine($"berthd: {e.Message}");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or Berth.Images.ImagesException)
{
    Console.Error.WriteLine($"berthd: failed to start: {e.Message}");
    return 1;
}
await using (host)
{
    if (systemd.Send("READY=1") is { } notReady) Console.Error.WriteLine($"berthd: warning: {notReady}");
    await host.WaitForShutdownAsync();
    systemd.Send("STOPPING=1");
}
return 0;
