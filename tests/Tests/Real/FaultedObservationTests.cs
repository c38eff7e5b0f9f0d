using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// An observation the inventory could not record, past its retries, lands in file-changed_error;
/// the watcher hears of its fault and reports the file again, so it is recorded and copied once
/// the cause is mended, without the file changing and without a restart.
/// </summary>
public sealed class FaultedObservationTests : PipelineTest
{
    /// <param name="faults">How many times the list faults before the cause is mended: each fault is reported again, a minute apart (the slow tier waits for two).</param>
    [TestCase(1)]
    [TestCase(2, Category = "Faults")]
    public async Task When_a_list_faults_for_good_then_the_cause_is_mended_Should_record_and_copy_the_file_without_a_change_or_a_restart(int faults)
    {
        var backup = pipeline.Backup();
        // An hour's poll: only the watcher's re-check can report the file again within the test.
        await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "1h"), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "refused.dat");

        // The database refuses the file's row (an error no retry mends) until the test lets it in.
        await ExecuteAsync("""
            create table test_refused (path text primary key);
            create function test_refuse_origin() returns trigger language plpgsql as $$
            begin
                if exists (select 1 from test_refused where path = new.origin_path) then
                    raise exception 'the test refuses %', new.origin_path;
                end if;
                return new;
            end $$;
            create trigger test_refuse_origin before insert or update on file_origins
                for each row execute function test_refuse_origin();
            """);
        await ExecuteAsync("insert into test_refused values (@Path)", path);

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Files.Write(path, 4096);
        var mtime = File.GetLastWriteTimeUtc(path);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The inventory's retries (about a minute) run out: the list goes to the error queue.
        var errors = await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"),
            m => m?.Count >= faults, TimeSpan.FromMinutes(3 * faults), $"the refused list in file-changed_error {faults} times");
        Assert.That(errors[0]["properties"]!["headers"]!["MT-Fault-Message"]?.ToString(), Does.Contain($"the test refuses {path}"));
        Assert.That(await pipeline.OriginAsync(path), Is.Null, "not recorded while refused");

        var faulted = clock.Elapsed;
        await ExecuteAsync("delete from test_refused where path = @Path", path);

        var row = await pipeline.ReplicatedAsync(backup, path, TimeSpan.FromMinutes(3));
        TestContext.Out.WriteLine($"in file-changed_error after {faulted.TotalSeconds:0.0} s; copied {(clock.Elapsed - faulted).TotalSeconds:0.0} s after the cause was mended");
        Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
        var origin = await pipeline.OriginAsync(path);
        Assert.Multiple(() =>
        {
            Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(mtime), "the file did not change");
            Assert.That(origin!.Mtime, Is.EqualTo(Microseconds.Truncate(mtime)));
            Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)));
        });
    }

    [Test]
    public async Task When_a_watcher_runs_Should_have_its_own_fault_queue_deleted_when_it_stops()
    {
        var host = await pipeline.StartAsync(pipeline.Configure([]), PipelineServices.Watcher);
        var queue = await Eventually.Get(async () => (await pipeline.Management.QueuesAsync(pipeline.Name))
                .FirstOrDefault(q => q["name"]!.ToString().StartsWith($"watcher-{TestPipeline.Host}-faults-", StringComparison.Ordinal)),
            q => q is not null, TimeSpan.FromSeconds(30), "the watcher's fault queue");
        Assert.Multiple(() =>
        {
            // MassTransit's temporary queue: exclusive to the process's connection, gone with it.
            Assert.That(queue!["exclusive"]!.GetValue<bool>(), Is.True, queue.ToJsonString());
            Assert.That(queue["arguments"]!["xtelemdb.description"]!.ToString(), Does.Contain("could not record"));
        });

        await pipeline.StopAsync(host);
        await Eventually.True(async () => !(await pipeline.Management.QueuesAsync(pipeline.Name))
                .Any(q => q["name"]!.ToString() == queue!["name"]!.ToString()),
            TimeSpan.FromSeconds(30), "the fault queue deleted with its watcher");
    }

    async Task ExecuteAsync(string sql, string? path = null)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        if (path is not null)
            command.Parameters.AddWithValue("Path", path);
        await command.ExecuteNonQueryAsync();
    }
}
