namespace Xtelemdb.Tests.Support;

/// <summary>
/// Passed to a harness list's Select: the messages it holds now. Without it Select (and so Single
/// or Count) waits out the whole inactivity timeout for more. A test first waits for the positive
/// signal that the work is over (a fault, or a consume without an exception), then looks.
/// </summary>
public static class SoFar
{
    public static readonly CancellationToken Only = new(canceled: true);
}
