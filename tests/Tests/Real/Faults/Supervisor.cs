using System.Diagnostics;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// Keeps an xtelemdb service running as compose's "restart: unless-stopped" or systemd's
/// Restart= would: started again a second after it exits, until the test ends.
/// </summary>
public sealed class Supervisor : IAsyncDisposable
{
    readonly Func<XtelemdbProcess> start;
    readonly CancellationTokenSource stopping = new();
    readonly Task loop;
    XtelemdbProcess current;

    public Supervisor(string name, Func<XtelemdbProcess> start)
    {
        Name = name;
        this.start = start;
        current = start();
        loop = Task.Run(SuperviseAsync);
    }

    public string Name { get; }
    public int Restarts { get; private set; }
    public IReadOnlyList<int> ExitCodes => exitCodes;
    readonly List<int> exitCodes = [];

    public Process Process => current.Process;

    /// <summary>What the current incarnation has written so far.</summary>
    public string Output => current.Output;

    async Task SuperviseAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await current.Process.WaitForExitAsync(stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            exitCodes.Add(current.Process.ExitCode);
            TestContext.Progress.WriteLine($"supervisor: {Name} exited with code {current.Process.ExitCode}; starting it again");
            await Task.Delay(TimeSpan.FromSeconds(1));
            Restarts++;
            current = start();
        }
    }

    /// <summary>SIGKILL, as a crash or the OOM killer would; the supervisor starts it again.</summary>
    public void Kill() => current.Process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        await loop;
        if (!current.Process.HasExited)
        {
            current.Process.Kill(entireProcessTree: true);
            await current.Process.WaitForExitAsync();
        }
        stopping.Dispose();
    }
}
