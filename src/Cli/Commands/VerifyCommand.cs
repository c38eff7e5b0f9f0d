using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Cli.Commands;

public static class VerifyCommand
{
    public static Command Create()
    {
        var replicaOption = new Option<string?>("--replica", "--prefix") { Description = "The replica to verify (default: every enabled replica)" };
        var checksum = new Option<bool>("--checksum")
        {
            Description = "Also hash every copy and compare it with its recorded checksum; record the checksum of a copy that has none (an imported one) and holds its recorded size and mtime",
        };
        var fix = new Option<bool>("--fix") { Description = "Ask for a new copy of every missing or different file; compute a backlog found wrong afresh" };
        var json = XtelemdbCommand.Json();
        var command = new Command("verify", "Compare replicas with the database: missing, different and unrecorded files, and the backlog the database keeps; exit 1 if any") { replicaOption, checksum, fix, json };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            // Only --fix sends (its requests for new copies): checking alone needs no broker.
            await using var session = result.GetValue(fix)
                ? await OperatorSession.StartWithBusAsync(settings, cancellationToken)
                : await OperatorSession.StartAsync(settings, cancellationToken);
            var replicas = result.GetValue(replicaOption) is { } named
                ? [await XtelemdbCommand.FindReplicaAsync(session.Store, settings, named, cancellationToken)]
                : (await session.Store.ReplicasAsync(cancellationToken)).Where(r => r.Enabled).ToArray();

            var reports = new List<VerifyReport>();
            foreach (var replica in replicas)
            {
                if (replica.Host != settings.Host && replica.Kind != "ssh")
                {
                    // Another host's folder is not reachable from here: say so, never report it verified.
                    if (result.GetValue(replicaOption) is not null)
                        throw new UsageException($"replica {replica.Name} is a folder of {replica.Host}: run verify on {replica.Host} (host = \"{replica.Host}\" in its TOML file)");
                    Output.Line($"Not verified here: {replica.Name} is a folder of {replica.Host}; run verify there.");
                    continue;
                }
                var target = ReplicaTargetFactory.Create(replica.SettingsIn(settings), settings.Host);
                try
                {
                    reports.Add(await Output.WithProgressAsync($"Verifying {replica.Name}", progress =>
                        ReplicaVerifier.RunAsync(session, replica, target, result.GetValue(checksum), result.GetValue(fix), progress, cancellationToken)));
                }
                finally
                {
                    (target as IDisposable)?.Dispose();
                }
            }
            Print(reports, result.GetValue(json));
            return reports.All(r => r.Ok) ? XtelemdbCommand.Done : XtelemdbCommand.Failed;
        }));
        return command;
    }

    static void Print(IReadOnlyList<VerifyReport> reports, bool json)
    {
        if (json)
        {
            Output.WriteJson(reports);
            return;
        }
        foreach (var report in reports)
        {
            Output.Line($"{report.Replica}: {report.Checked:N0} recorded copies checked ({report.ChecksumsVerified:N0} checksums"
                + (report.ChecksumsRecorded > 0 ? $"; {report.ChecksumsRecorded:N0} recorded for copies that had none" : "") + "); "
                + $"{report.Missing:N0} missing, {report.Different:N0} different, {report.Unrecorded:N0} unrecorded"
                + (report.FixesRequested > 0 ? $"; {report.FixesRequested:N0} copies requested" : "")
                + (report.Skipped > 0 ? $"; {report.Skipped:N0} entries the watchers do not back up" : "")
                + (report.Refused > 0 ? $", {report.Refused:N0} of them files the inventory's database refuses" : ""));
            if (report.Problems.Count > 0)
                Output.Table(["path", "problem"], report.Problems.Select(p => (IReadOnlyList<string>)[p.Path, p.Problem]));
        }
    }
}
