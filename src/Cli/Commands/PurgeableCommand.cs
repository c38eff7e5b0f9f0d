using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Commands;

public static class PurgeableCommand
{
    public static Command Create()
    {
        var host = new Option<string?>("--host") { Description = "Only files of this origin host" };
        var prefix = new Option<string?>("--prefix")
        {
            Description = "Only files in this folder and below it (or this one file), such as /opt/MagAOX/rawimages, which does not hold /opt/MagAOX/rawimages2",
        };
        var olderThan = new Option<string>("--older-than")
        {
            Description = "Only files last modified longer ago than this, such as 180d, 12h or 30m", DefaultValueFactory = _ => "180d",
        };
        var copies = new Option<int>("--copies")
        {
            Description = "Copies of the file's current version it needs, each with a recorded checksum, all agreeing", DefaultValueFactory = _ => 2,
        };
        var offsite = new Option<int>("--offsite")
        {
            Description = "How many of those copies must be on an SSH replica of another host than the file's", DefaultValueFactory = _ => 1,
        };
        var json = XtelemdbCommand.Json();
        var command = new Command("purgeable",
            "List the files the instrument may delete because the replicas hold them: per folder, the files and the bytes deleting them "
            + "would free; --json lists the files. It NEVER deletes anything. A copy counts when it is of the file's current version, on an "
            + "enabled replica, not found damaged, with a recorded checksum (an imported copy has none until 'verify checksum=true' reads it); a file whose "
            + "copies disagree is listed apart as a CONFLICT (exit 1); a file missing from its origin, or that no watcher ever reported, "
            + "is not listed. Delete a file only while its size and mtime on the instrument are still the ones listed")
            { host, prefix, olderThan, copies, offsite, json };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            var age = result.GetValue(olderThan)!;
            if (!Durations.TryParse(age, out var minimumAge))
                throw new UsageException($"--older-than: expected a duration such as 180d, 12h or 30m, got \"{age}\"");
            var (copiesNeeded, offsiteNeeded) = (result.GetValue(copies), result.GetValue(offsite));
            if (copiesNeeded < 1)
                throw new UsageException($"--copies: expected 1 or more copies, got {copiesNeeded}");
            if (offsiteNeeded < 0)
                throw new UsageException($"--offsite: expected 0 or more copies, got {offsiteNeeded}");
            if (offsiteNeeded > copiesNeeded)
                throw new UsageException($"--offsite: {offsiteNeeded} offsite copies is more than --copies {copiesNeeded}: raise --copies or lower --offsite");
            var path = result.GetValue(prefix);
            if (path is not null && !path.StartsWith('/'))
                throw new UsageException($"--prefix: expected an absolute path such as /opt/MagAOX/rawimages, got \"{path}\"");
            var now = DateTime.UtcNow;
            // A duration reaching before year 1 selects nothing, as any age beyond the oldest file would.
            var before = minimumAge < now - DateTime.MinValue ? now - minimumAge : DateTime.SpecifyKind(DateTime.MinValue, DateTimeKind.Utc);
            var criteria = new PurgeCriteria(result.GetValue(host), path, before, copiesNeeded, offsiteNeeded);

            // Only the database: knowing what may be deleted must not wait for a broker.
            await using var session = await OperatorSession.StartAsync(settings, cancellationToken);
            var store = session.Purgeable;
            if (criteria.OriginHost is { } named && !await store.KnowsHostAsync(named, cancellationToken))
            {
                var known = await store.OriginHostsAsync(cancellationToken);
                throw new UsageException($"--host: no file of origin host \"{named}\" is known"
                    + (known.Count == 0 ? " (no origin file is known yet)" : $"; the origin hosts are {string.Join(", ", known)}"));
            }
            var replicas = (await session.Store.ReplicasAsync(cancellationToken)).ToDictionary(r => r.Id);

            PurgeableSummary summary;
            if (result.GetValue(json))
            {
                using var output = new PurgeableJson(replicas, criteria, age);
                summary = await PurgeableListing.RunAsync(store, criteria, output, cancellationToken);
            }
            else
                summary = await PurgeableListing.RunAsync(store, criteria, new PurgeableText(replicas, PurgeableListing.Describe(criteria, age)), cancellationToken);
            return summary.Conflicts == 0 ? XtelemdbCommand.Done : XtelemdbCommand.Failed;
        }));
        return command;
    }
}
