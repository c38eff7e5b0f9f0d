namespace Xtelemdb.Tests.Real.Faults;

/// <summary>Several instrument computers feeding one inventory; one of them going down.</summary>
public sealed class HostFaultTests : FaultTest
{
    /// <summary>A host of its own: its TOML file (host name, data folder), over the test's broker and database.</summary>
    /// <summary>Each host backs its files up to a backup disk of its own.</summary>
    string ConfigureHost(string host)
    {
        var data = Path.Combine(pipeline.Root, host, "data");
        Directory.CreateDirectory(data);
        pipeline.Configure([pipeline.Backup($"backup-{host}")], pollInterval: "10s");
        var toml = File.ReadAllText(pipeline.ConfigPath)
            .Replace($"host = \"{TestPipeline.Host}\"", $"host = \"{host}\"", StringComparison.Ordinal)
            .Replace($"roots = [\"{pipeline.Data}\"]", $"roots = [\"{data}\"]", StringComparison.Ordinal);
        var path = Path.Combine(pipeline.Root, host, "xtelemdb.toml");
        File.WriteAllText(path, toml);
        return path;
    }

    [Test]
    public async Task When_one_of_two_hosts_goes_down_Should_the_other_keep_replicating_and_the_first_catch_up()
    {
        var hosts = new[] { "exao-a", "exao-b" };
        var configs = hosts.ToDictionary(h => h, ConfigureHost);
        var inventory = pipeline.StartCommandLine(null, ["run", "Inventory", "--config", configs["exao-a"]]);
        await Support.Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 1, TimeSpan.FromSeconds(60), "the inventory started");
        // Each host a process of its own with its own host name and data folder, as on its own computer.
        var pairs = hosts.ToDictionary(h => h, h => pipeline.StartCommandLine(null, ["run", "Watcher", "Replicator", "--config", configs[h]]));
        var data = hosts.ToDictionary(h => h, h => Path.Combine(pipeline.Root, h, "data"));

        await WriteFilesAsync(data["exao-a"], 300, TimeSpan.FromMilliseconds(50));
        await WriteFilesAsync(data["exao-b"], 300, TimeSpan.FromMilliseconds(50));
        Dictionary<string, string> Own(string host) => new() { [host] = data[host] };
        Dictionary<string, string> Replica(string host) => new() { [$"{host}:{pipeline.Backup($"backup-{host}")}"] = pipeline.Backup($"backup-{host}") };
        foreach (var host in hosts)
            await new Audit(pipeline.Connection).PassesAsync(Own(host), Replica(host), ConvergeTimeout);

        // exao-a goes down; exao-b goes on writing, and its files still reach the backup.
        pairs["exao-a"].Process.Kill(entireProcessTree: true);
        var whileDown = await WriteFilesAsync(data["exao-a"], 200, TimeSpan.Zero, prefix: "down");
        var meanwhile = await WriteFilesAsync(data["exao-b"], 200, TimeSpan.FromMilliseconds(50), prefix: "meanwhile");
        await new Audit(pipeline.Connection).PassesAsync(Own("exao-b"), Replica("exao-b"), ConvergeTimeout);
        Assert.That(File.Exists(pipeline.Backup("backup-exao-a") + "/exao-a" + whileDown[0]), Is.False, "nothing of the host that is down was copied");

        pipeline.StartCommandLine(null, ["run", "Watcher", "Replicator", "--config", configs["exao-a"]]);
        var audited = await AuditAsync(pipeline.Connection, Own("exao-a"), Replica("exao-a"), configs["exao-a"])
            + await AuditAsync(pipeline.Connection, Own("exao-b"), Replica("exao-b"), configs["exao-b"]);
        Assert.That(audited, Is.EqualTo(300 + 200 + 300 + 200));
        Assert.That(inventory.Process.HasExited, Is.False);
        Record("two hosts, one down for a while", audited, "1 host's watcher and replicator killed, restarted later", null, 0);
    }
}
