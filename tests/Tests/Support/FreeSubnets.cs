namespace Xtelemdb.Tests.Support;

/// <summary>
/// The /30 subnets (PREFIX.N.0/30) the veth pairs of the network tests take. A subnet is free when
/// no interface of this machine has an address in it (another test process's links are up, so
/// ip lists them) and no fixture of this process has claimed it and not yet brought its link up:
/// fixtures run side by side, and two of them looking at once would otherwise take the same one.
/// </summary>
public static class FreeSubnets
{
    static readonly Lock Gate = new();
    static readonly HashSet<string> Claimed = [];

    /// <param name="prefix">The /16 of one kind of link, e.g. "10.232".</param>
    /// <returns>e.g. "10.232.7": the link takes .1 and .2 of it. Give it back with <see cref="Release"/> once the link is down.</returns>
    public static string Claim(string prefix)
    {
        lock (Gate)
        {
            var taken = Shell.Output("ip", "-o", "-4", "addr", "show");
            var subnet = Enumerable.Range(1, 250).Select(n => $"{prefix}.{n}")
                             .FirstOrDefault(s => !Claimed.Contains(s) && !taken.Contains($" {s}.", StringComparison.Ordinal))
                         ?? throw new InvalidOperationException($"every {prefix}.N.0/30 of the network tests is taken: ip -4 addr lists them");
            Claimed.Add(subnet);
            return subnet;
        }
    }

    public static void Release(string subnet)
    {
        lock (Gate)
            Claimed.Remove(subnet);
    }
}
