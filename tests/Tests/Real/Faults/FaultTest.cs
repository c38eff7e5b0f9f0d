using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// A fault scenario: files flow, something breaks, and the audit must pass at the end. Each
/// scenario prints one "fault-audit" line (scenario, files, faults, lost, recopies) for the record.
/// </summary>
[Category("Faults")]
public abstract class FaultTest : PipelineTest
{
    protected static readonly TimeSpan ConvergeTimeout = TimeSpan.FromMinutes(4);

    /// <summary>The test host's data folder, for the audit.</summary>
    protected Dictionary<string, string> Origins => new() { [TestPipeline.Host] = pipeline.Data };

    /// <summary>Small files of 1 to 8 KiB, written one after another at the given pace, in nested folders.</summary>
    protected async Task<IReadOnlyList<string>> WriteFilesAsync(string root, int count, TimeSpan pause, Func<int, Task>? after = null, string prefix = "f")
    {
        var written = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var path = Path.Combine(root, $"night{i % 7}", $"cam{i % 3}", $"{prefix}{i:D6}.dat");
            Files.Write(path, 1024 + (i * 37 % 7168), seed: i);
            written.Add(path);
            if (after is not null)
                await after(i);
            if (pause > TimeSpan.Zero && i % 50 == 0)
                await Task.Delay(pause);
        }
        return written;
    }

    /// <summary>The audit, then xtelemdb verify checksum=true on each replica; returns the files audited.</summary>
    /// <param name="config">The TOML file of the host whose folders the replicas are; default: the test's.</param>
    protected async Task<int> AuditAsync(string connection, IReadOnlyDictionary<string, string> origins, IReadOnlyDictionary<string, string> replicas, string? config = null)
    {
        var report = await new Audit(connection).PassesAsync(origins, replicas, ConvergeTimeout);
        foreach (var replica in replicas.Keys)
        {
            var verify = pipeline.StartCommandLine(null, ["verify", $"replica={replica}", "checksum=true", "--config", config ?? pipeline.ConfigPath]);
            await verify.Process.WaitForExitAsync();
            verify.Process.WaitForExit();
            var (exit, output) = (verify.Process.ExitCode, verify.Output);
            Assert.That(exit, Is.Zero, $"verify {replica}: {output}");
        }
        return report.Files;
    }

    /// <summary>Copies this incarnation of a service process made, from its /metrics.</summary>
    protected static async Task<double> CopiesAsync(string listen)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            var metrics = await http.GetStringAsync($"http://{listen}/metrics");
            return PrometheusText.Sum(metrics, "xtelemdb_replicator_copies_total", "result=\"copied\"");
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    /// <summary>Called after the audit passed, so no file was lost. Copies are known where the replicator ran in this process.</summary>
    protected static void Record(string scenario, int files, string faults, long? copies, int versions) =>
        TestContext.Progress.WriteLine($"fault-audit | {scenario} | {files} | {faults} | 0 | {(copies is { } c ? Math.Max(0, c - versions).ToString() : "not counted")}");
}
