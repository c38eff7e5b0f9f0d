using System.Security.Cryptography;
using System.Collections.Concurrent;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Sftp;

namespace Xtelemdb.Replicator.Copying;

/// <summary>One target per replica for the life of the process, so SFTP sessions are pooled per replica.</summary>
/// <param name="clock">The local time bandwidth timetables are read at (tests set it; otherwise the system's).</param>
public sealed class ReplicaTargetFactory(XtelemdbSettings settings, TimeProvider? clock = null) : IDisposable
{
    /// <summary>
    /// This process among the replicators that write SFTP replicas: SFTP has no locks, so two
    /// processes (of one host or of several) must never share a part file name.
    /// </summary>
    static readonly string Writer = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    readonly ConcurrentDictionary<string, Lazy<IReplicaTarget>> targets = new(StringComparer.Ordinal);

    public IReplicaTarget For(ReplicaSettings replica) =>
        targets.GetOrAdd(replica.Name, _ => new Lazy<IReplicaTarget>(() => Create(replica, settings.Host, clock))).Value;

    /// <summary>
    /// A target of its own, for a command that runs once (import, verify). A replica on this host
    /// is written where it is, an ssh:// replica of another host over SFTP.
    /// </summary>
    public static IReplicaTarget Create(ReplicaSettings replica, string thisHost, TimeProvider? clock = null)
    {
        if (replica.Ssh is not { } ssh)
            return new LocalReplicaTarget(replica.Prefix);
        if (replica.Host == thisHost)
            return new LocalReplicaTarget(replica.Prefix.StartsWith('/')
                ? replica.Prefix
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), replica.Prefix));
        var sessions = new SftpSessions(SshEndpoint.Resolve(ssh), ssh.Connections ?? SshReplicaSettings.DefaultConnections);
        return new SftpReplicaTarget(replica.Prefix, sessions, ssh.BandwidthLimit is { } limit ? new BandwidthLimit(limit, clock) : null, writer: $"{thisHost}.{Writer}");
    }

    public void Dispose()
    {
        foreach (var target in targets.Values.Where(t => t.IsValueCreated))
            (target.Value as IDisposable)?.Dispose();
    }
}
