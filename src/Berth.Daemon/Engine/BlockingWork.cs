namespace Berth.Daemon.Engine;

/// <summary>
/// Work that blocks on a client: synchronous reads of a request body (the tar readers of cp and
/// build) and synchronous writes to a response the client may read slowly or never (cp out,
/// export). Each runs on a thread of its own, not the thread pool's: a pool thread held by a client
/// that sends a byte a second is one fewer for every other request, and a few dozen such clients
/// starved the pool (a ping waited 12 s while it grew). A thread of its own costs that client alone.
/// Also work a request waits for while it runs beside it (a container start's DNS redirect): queued on
/// a busy pool, it would hold the request up for as long as the pool stays busy.
/// </summary>
internal static class BlockingWork
{
    public static Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
        => Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);

    public static Task RunAsync(Action work, CancellationToken cancellationToken)
        => Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
}
