using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.Fixity;

public enum FixityResult { Good, Repaired, Damaged, Missing, Different }

/// <summary>
/// Reads one recorded copy back and hashes it. A copy whose bytes changed while its size and mtime
/// did not (bit rot) is reported at once (log, metric, a message in fixity_error) and repaired from
/// a replica or origin here that still holds the recorded bytes: the repair's bytes must hash to the
/// record before they replace anything. A copy gone or of another version is asked for again.
/// </summary>
public sealed class FixityCheck(XtelemdbSettings settings, FixityStore fixity, InventoryStore inventory, ReplicaTargetFactory targets,
    ReplicaCopier copier, ReplicaNeeds needs, QueueLabels labels, IBus bus, ILogger<FixityCheck> logger)
{
    /// <summary>Whether the replica has its marker: a disk not mounted is not checked (nor its copies asked for again).</summary>
    public Task<bool> AvailableAsync(ReplicaSettings replica, CancellationToken cancellationToken) =>
        targets.For(replica).HasMarkerAsync(cancellationToken);

    public async Task<FixityResult> CheckAsync(int replicaId, ReplicaSettings replica, RecordedCopy copy, CancellationToken cancellationToken)
    {
        var target = targets.For(replica);
        // This process's copies of the same file wait: a copy landing mid-check is not damage.
        using var _ = await copier.HoldAsync(replica.Name, copy.ReplicaPath, cancellationToken);
        var recorded = new FileVersion(copy.Mtime, copy.Size);
        var held = await target.StatAsync(copy.ReplicaPath, cancellationToken);
        if (held is not { } found || !target.Holds(found, recorded))
        {
            // Not rot, which keeps size and mtime: gone, or replaced. The record no longer claims it (nothing
            // counts it, purgeable least of all), and it is asked for again where the origin still holds it.
            logger.LogWarning("Fixity: {Path} on {Replica} is {What}; its record is forgotten and the file asked for again", copy.ReplicaPath, replica.Name,
                held is { } other ? $"another version ({other.Size} bytes, mtime {other.Mtime:O}) than recorded ({copy.Size} bytes, mtime {copy.Mtime:O})" : "missing");
            await fixity.ForgetAsync(replicaId, copy, cancellationToken);
            var again = await inventory.NeedsForCopiesAsync(replicaId, [(copy.OriginHost, copy.OriginPath)], cancellationToken);
            await needs.SendAsync(bus, again.Select(n => n with { Recopy = true }), cancellationToken);
            return held is null ? FixityResult.Missing : FixityResult.Different;
        }
        var checksum = await target.ChecksumAsync(copy.ReplicaPath, cancellationToken);
        PipelineMetrics.FixityRead.Add(copy.Size, PipelineMetrics.Replica(replica.Name));
        if (checksum == copy.Checksum)
        {
            await fixity.MarkCheckedAsync(replicaId, copy, DateTime.UtcNow, cancellationToken);
            return FixityResult.Good;
        }
        // The record may have moved on while the copy was read (a copy by another process): only its own bytes are judged.
        if (await inventory.RecordedCopyAsync(replicaId, copy.OriginHost, copy.OriginPath, cancellationToken) != copy)
            return FixityResult.Good;

        logger.LogError("Fixity: {Path} on {Replica} is damaged: its bytes hash to {Found}, not the recorded {Recorded}, with the same size and mtime",
            copy.ReplicaPath, replica.Name, checksum, copy.Checksum);
        PipelineMetrics.FixityDamaged.Add(1, PipelineMetrics.Replica(replica.Name));
        var repairedFrom = await RepairAsync(replicaId, replica.Name, target, copy, cancellationToken);
        if (repairedFrom is not null)
        {
            logger.LogWarning("Fixity: {Path} on {Replica} repaired from {Source}", copy.ReplicaPath, replica.Name, repairedFrom);
            await fixity.MarkCheckedAsync(replicaId, copy, DateTime.UtcNow, cancellationToken);
        }
        else
        {
            logger.LogError("Fixity: {Path} on {Replica} could not be repaired: no replica or origin this replicator reads holds bytes hashing to {Recorded}; "
                + "the damaged copy is left as it is", copy.ReplicaPath, replica.Name, copy.Checksum);
            await fixity.MarkDamagedAsync(replicaId, copy, DateTime.UtcNow, cancellationToken);
        }
        await ReportAsync(new CopyDamaged
        {
            Replica = replica.Name, OriginHost = copy.OriginHost, OriginPath = copy.OriginPath, ReplicaPath = copy.ReplicaPath,
            Mtime = copy.Mtime, Size = copy.Size, RecordedChecksum = copy.Checksum!, FoundChecksum = checksum,
            RepairedFrom = repairedFrom, DetectedAt = DateTime.UtcNow,
        }, cancellationToken);
        return repairedFrom is null ? FixityResult.Damaged : FixityResult.Repaired;
    }

    /// <summary>
    /// Copies the recorded bytes back from the first source here that holds them: another replica's
    /// copy with the same recorded checksum on this host, then the origin if it still has that version.
    /// Each try must hash to the record before it replaces the damaged copy. Returns the source, or null.
    /// </summary>
    async Task<string?> RepairAsync(int replicaId, string replicaName, IReplicaTarget target, RecordedCopy copy, CancellationToken cancellationToken)
    {
        var sources = (await fixity.RepairSourcesAsync(replicaId, copy, cancellationToken))
            .Where(s => s.Kind == "local" && s.Host == settings.Host)
            .Select(s => (Name: ReplicaNames.Of(s.Kind, s.Host, s.Url), s.ReplicaPath))
            .ToList();
        if (settings.SourcePath(copy.OriginHost, copy.OriginPath) is { } origin)
            sources.Add(($"the origin {copy.OriginHost}:{copy.OriginPath}", origin));
        var recorded = new FileVersion(copy.Mtime, copy.Size);
        foreach (var (name, path) in sources)
        {
            if (FileVersion.Of(path) is not { } version || !version.SameAs(recorded))
                continue;
            try
            {
                if (await target.CopyAsync(path, copy.ReplicaPath, held: null, progress: null, cancellationToken, mustHashTo: copy.Checksum) is not null)
                    return name;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Fixity: repairing {Path} on {Replica} from {Source} failed: {Error}", copy.ReplicaPath, replicaName, name, e.Message);
            }
        }
        return null;
    }

    async Task ReportAsync(CopyDamaged damaged, CancellationToken cancellationToken)
    {
        try
        {
            await labels.SendReportAsync(bus, Queues.FixityDamaged, damaged, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The log and the metric have it; the record says damaged or repaired.
            logger.LogWarning(e, "Could not report the damaged copy {Path} in {Queue}", damaged.ReplicaPath, Queues.FixityDamaged);
        }
    }
}
