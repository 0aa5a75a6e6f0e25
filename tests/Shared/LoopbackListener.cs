using System.Net;

namespace Berth.Tests.Shared;

/// <summary>An HttpListener on a free port of 127.0.0.1, for the test servers (token server, search index).</summary>
internal static class LoopbackListener
{
    /// <summary>Answers requests one at a time with <paramref name="handle"/> (the response closed after it) until the listener stops.</summary>
    public static async Task ServeAsync(HttpListener listener, Func<HttpListenerContext, Task> handle)
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                await handle(context);
            }
            finally
            {
                context.Response.Close();
            }
        }
    }

    /// <summary>Stops <paramref name="listener"/> and waits for <paramref name="server"/>, its <see cref="ServeAsync"/> loop.</summary>
    public static async Task StopAsync(HttpListener listener, Task server)
    {
        listener.Stop();
        try
        {
            listener.Close();
        }
        catch (HttpListenerException)
        {
            // Close binds the port again to remove its prefixes, which a connection in TIME_WAIT can refuse; Stop closed the socket.
        }
        await server;
    }

    public static HttpListener Start(out int port)
    {
        // FreePort's port may be taken by someone else before the listener binds it: try another.
        for (int attempt = 1; ; attempt++)
        {
            port = RegistryProcess.FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return listener;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
    }
}
