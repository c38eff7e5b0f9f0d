using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// One observation the database refuses must not keep the others of its list from being recorded:
/// the list is recorded by halves, every file the database takes is recorded and copied, and only
/// the refused one fails, named. A time-bound error (a serialization failure) still retries the whole list.
/// </summary>
public sealed class RefusedObservationTests : PipelineTest
{
    const string RetryFor = "5s";

    [Test]
    public async Task When_a_list_holds_a_path_too_long_for_the_index_Should_record_and_copy_the_others_and_name_the_refused_one()
    {
        var backup = pipeline.Backup();
        var ordinary = WriteFiles("night", 6);
        var tooLong = TooLongForTheIndex(Path.Combine(pipeline.Data, "deep"));
        Files.Write(tooLong, 100);
        var log = new CapturedLog();
        // Polls every 2 s: the watcher's next complete list of what it does not back up names the refused file.
        await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "2s", retryFor: RetryFor), PipelineServices.All,
            services => services.AddLogging(logging => logging.AddProvider(log)));

        foreach (var path in ordinary)
        {
            await pipeline.ReplicatedAsync(backup, path);
            Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
        }
        var refusal = await Eventually.Get(() => Task.FromResult(log.Lines.FirstOrDefault(l => l.Message.Contains(tooLong, StringComparison.Ordinal) && l.Level == LogLevel.Error)),
            line => line is not null, Eventually.Patience, "the refusal logged as an error naming the file");
        TestContext.Out.WriteLine(refusal!.Message[^200..]);
        Assert.That(refusal.Message, Does.StartWith($"{TestPipeline.Host}:{tooLong} is not recorded, so not backed up: the database refuses its row (54000: index row size"));
        Assert.That(refusal.Message, Does.Contain("exceeds btree version 4 maximum 2704"));
        Assert.That(await pipeline.OriginAsync(tooLong), Is.Null, "not recorded");
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(ordinary.Length));

        // The list is done, not faulted: nothing in the error queue, and the watcher does not report the file again.
        await Eventually.True(async () => (await pipeline.Management.QueuesAsync(pipeline.Name))
            .Any(q => q["name"]!.ToString() == "file-changed" && q["messages"]?.GetValue<int>() == 0), Eventually.Patience, "file-changed drained");
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"), Is.Empty);

        // The watcher lists it with what it does not back up, and verify names it.
        await Eventually.True(async () => await SkippedAsync(tooLong), Eventually.Patience, "the refused file in skipped_files");
        var (exit, output) = await pipeline.RunAsync("verify");
        Assert.That(exit, Is.EqualTo(1), "a file of data not backed up fails verify, though the replica holds every file the inventory knows: " + output);
        Assert.That(output, Does.Contain("1 of them files the inventory's database refuses"));
        Assert.That(output, Does.Contain($"{TestPipeline.Host}:{tooLong}").And.Contain("not backed up: refused by the inventory's database (54000: index row size"));

        // Three more polls, longer than a retry window: the file is refused once, not reported again and again.
        var polls = PollsIn(log);
        await Eventually.True(() => PollsIn(log) >= polls + 3, Eventually.Patience, "three more polls");
        Assert.That(log.Lines.Count(l => l.Message.Contains(tooLong, StringComparison.Ordinal) && l.Level == LogLevel.Error), Is.EqualTo(1), "refused once");
        Assert.That(log.Lines.Where(l => l.Message.Contains("could not record", StringComparison.Ordinal)), Is.Empty, "no list faulted");
    }

    /// <summary>
    /// A refusal that may be mended (here a trigger's; in life a rule an operator added) is not one
    /// of the row's content: the others of the list are recorded and copied, the list faults naming
    /// the refused file, and once the cause is mended the watcher's re-check records it.
    /// </summary>
    [Test]
    public async Task When_a_trigger_refuses_one_file_of_a_list_Should_record_the_others_and_fault_the_list_naming_it()
    {
        var backup = pipeline.Backup();
        var files = WriteFiles("night", 6);
        var refused = files[2];
        await StartWithTheDatabasePreparedAsync(backup, () => RefusingTrigger.InstallAsync(pipeline.Connection, refused));

        foreach (var path in files.Where(f => f != refused))
            await pipeline.ReplicatedAsync(backup, path);
        var errors = await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"),
            m => m?.Count >= 1, Eventually.Patience, "the list in file-changed_error");
        Assert.That(Management.FaultReason(errors[0]), Is.EqualTo(
            $"The database refused 1 of {files.Length} observations, the others are recorded: {TestPipeline.Host}:{refused} (P0001: the test refuses {refused})"));
        Assert.That(await pipeline.OriginAsync(refused), Is.Null, "not recorded while refused");

        await RefusingTrigger.LiftAsync(pipeline.Connection);
        await pipeline.ReplicatedAsync(backup, refused);
        Files.AssertSameFile(refused, TestPipeline.TargetOf(backup, refused));
    }

    /// <summary>
    /// A serialization failure on one row of a list (the backlog's triggers can meet one) passes
    /// with time: the whole list is retried, and recorded in one statement, not split.
    /// </summary>
    [Test]
    public async Task When_one_row_of_a_list_meets_a_serialization_failure_Should_retry_the_whole_list_and_record_it_in_one_statement()
    {
        var backup = pipeline.Backup();
        var files = WriteFiles("night", 6);
        var unlucky = files[3];
        // The row of one file fails its first three attempts as a serialization failure; a sequence counts the attempts (it is not rolled back).
        await StartWithTheDatabasePreparedAsync(backup, async () =>
        {
            await using var connection = new NpgsqlConnection(pipeline.Connection);
            await connection.ExecuteAsync($"""
                create sequence test_attempts;
                create function test_fail_thrice() returns trigger language plpgsql as $$
                begin
                    if new.origin_path = '{unlucky}' then
                        if nextval('test_attempts') <= 3 then
                            raise exception 'the test fails %', new.origin_path using errcode = 'serialization_failure';
                        end if;
                    end if;
                    return new;
                end $$;
                create trigger test_fail_thrice before insert or update on file_origins for each row execute function test_fail_thrice();
                """);
        });

        foreach (var path in files)
            await pipeline.ReplicatedAsync(backup, path);
        await using var db = new NpgsqlConnection(pipeline.Connection);
        Assert.Multiple(async () =>
        {
            Assert.That(await db.ExecuteScalarAsync<long>("select last_value from test_attempts"), Is.EqualTo(4), "three failures, then the fourth attempt");
            Assert.That(await db.ExecuteScalarAsync<long>("select count(distinct xmin::text) from file_origins"), Is.EqualTo(1), "every file recorded by one statement: the list was not split");
            Assert.That(await db.ExecuteScalarAsync<long>("select count(*) from file_origins"), Is.EqualTo(files.Length));
        });
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"), Is.Empty, "retried, not faulted");
    }

    /// <summary>Files written before the start: the start-up scan reports them all in one list.</summary>
    string[] WriteFiles(string folder, int count)
    {
        var files = Enumerable.Range(0, count).Select(i => Path.Combine(pipeline.Data, folder, $"file{i}.dat")).ToArray();
        for (var i = 0; i < files.Length; i++)
            Files.Write(files[i], 1000 + i, seed: i);
        return files;
    }

    /// <summary>The inventory first (it migrates the database), then what the test adds to the database, then the watcher and the replicator.</summary>
    async Task StartWithTheDatabasePreparedAsync(string backup, Func<Task> prepare)
    {
        var settings = pipeline.Configure([backup], pollInterval: "1h", retryFor: RetryFor);
        await pipeline.StartAsync(settings, PipelineServices.Inventory);
        await prepare();
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Replicator);
    }

    /// <summary>
    /// A file whose path is longer than a btree entry (2704 bytes) and does not compress (random names), yet
    /// within Linux's PATH_MAX: folders of 200 random letters each.
    /// </summary>
    static string TooLongForTheIndex(string under)
    {
        var random = new Random(7);
        const string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        var path = under;
        while (path.Length < 2900)
            path = Path.Combine(path, new string([.. Enumerable.Range(0, 200).Select(_ => letters[random.Next(letters.Length)])]));
        Assert.That(System.Text.Encoding.UTF8.GetByteCount(path), Is.LessThan(MessageGuard.MaxPathBytes - 100), "a path Linux allows");
        return Path.Combine(path, "refused.dat");
    }

    async Task<bool> SkippedAsync(string path)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        return await connection.ExecuteScalarAsync<bool>("select exists (select 1 from skipped_files where path = @Path)", new { Path = path });
    }

    static int PollsIn(CapturedLog log) => log.Lines.Count(l => l.Message.StartsWith("Poll: ", StringComparison.Ordinal));
}
