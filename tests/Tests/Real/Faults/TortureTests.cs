using System.Text;
using CsCheck;
using Dapper;
using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// The randomized torture test: sequences of file-system operations on a watched root,
/// interleaved with faults (the service SIGKILLed, the broker killed and restarted, the SFTP
/// sessions cut), against real services and a local and an SFTP replica. After each sequence the
/// audit must pass (every regular file's current version on both replicas, bytes, mtime and
/// record), nothing that is not a regular file may be an origin, and every FIFO and every name
/// that is not UTF-8 must be listed for verify. CsCheck generates the sequences; a failure prints
/// its seed and the smallest failing sequence found, and XTELEMDB_TORTURE_SEED replays it.
/// XTELEMDB_TORTURE_SECONDS sets the budget (scripts/soak runs it for hours).
/// </summary>
[Order(5)] // a long fault scenario: started first (Parallelism.cs)
public sealed class TortureTests : FaultTest
{
    /// <summary>Two minutes in CI: a handful of sequences.</summary>
    const int DefaultSeconds = 120;

    SshServer? ssh;
    OwnBroker? broker;
    Supervisor? service;
    string backup = null!;
    string sshUrl = null!;
    int sequences, operations, faults;

    [Test]
    public async Task When_random_operations_and_faults_hit_a_watched_root_Should_every_audit_pass()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("XTELEMDB_TORTURE_SECONDS"), out var s) ? s : DefaultSeconds;
        var seed = Environment.GetEnvironmentVariable("XTELEMDB_TORTURE_SEED");
        await StartAsync();
        try
        {
            await Script.SampleAsync(RunSequenceAsync, writeLine: TestContext.Progress.WriteLine, seed: seed,
                iter: seed is null ? -1 : 1, time: seed is null ? seconds : -1, threads: 1, print: ops => string.Join("\n", ops.Select(o => o.ToString())));
        }
        finally
        {
            TestContext.Progress.WriteLine($"torture | {sequences} sequences | {operations} operations | {faults} faults | {seconds} s budget");
        }
        Assert.That(sequences, Is.GreaterThan(0), "at least one sequence ran within the budget");
        // What later faults may have done to earlier sequences' folders: the whole root, once more.
        await new Audit(pipeline.Connection).PassesAsync(Origins, Replicas, ConvergeTimeout, audited: path => !formerFiles.Any(f => path.StartsWith(f + "/", StringComparison.Ordinal)));
    }

    Dictionary<string, string> Replicas => new() { [TestPipeline.Named(backup)] = backup, [sshUrl] = Path.Combine(ssh!.Home, "backup") };

    /// <summary>Files replaced by folders in every sequence so far: the folder's files are refused, the old copy kept.</summary>
    readonly List<string> formerFiles = [];

    [TearDown]
    public async Task StopServersAsync()
    {
        if (service is not null)
            await service.DisposeAsync();
        if (broker is not null)
            await broker.DisposeAsync();
        if (ssh is not null)
            await ssh.DisposeAsync();
    }

    async Task StartAsync()
    {
        broker = new OwnBroker(Path.Combine(pipeline.Root, "rabbitmq"));
        await broker.StartAsync();
        ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        ssh.ReplicaFolder();
        sshUrl = $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";
        backup = pipeline.Backup();
        // A short poll and max_interval: what a fault hid is found again within seconds.
        pipeline.Configure([backup, sshUrl], pollInterval: "5s", broker: broker.Uri,
            tables: new Dictionary<string, string> { [sshUrl] = ssh.ReplicaTable() });
        service = new Supervisor("sync continuous=true", () => pipeline.StartProcess("sync", "continuous=true"));
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 2, TimeSpan.FromSeconds(60), "the service started");
    }

    /// <summary>One sequence, in a folder of its own under the watched root; then the oracle.</summary>
    async Task RunSequenceAsync(Op[] ops)
    {
        var folder = Path.Combine(pipeline.Data, $"s{++sequences:D4}");
        Directory.CreateDirectory(folder);
        TestContext.Progress.WriteLine($"torture: sequence {sequences}, {ops.Length} operations in {folder}");
        var world = new World(folder);
        foreach (var op in ops)
        {
            operations++;
            switch (op)
            {
                case Fault fault:
                    faults++;
                    await InjectAsync(fault);
                    break;
                default:
                    await world.ApplyAsync(op);
                    break;
            }
        }
        await OracleAsync(world);
    }

    async Task InjectAsync(Fault fault)
    {
        TestContext.Progress.WriteLine($"torture: {fault}");
        switch (fault.Kind)
        {
            case FaultKind.KillService:
                service!.Kill();
                break;
            case FaultKind.RestartBroker:
                await broker!.KillAsync();
                await Task.Delay(TimeSpan.FromSeconds(2));
                await broker.StartAsync();
                break;
            case FaultKind.CutSftp:
                ssh!.DropConnections();
                break;
        }
    }

    /// <summary>
    /// The audit of the sequence's folder on both replicas (rule 1 and rule 8); every present
    /// origin is a regular file that exists (no FIFO, symlink or mangled name published, every
    /// deletion seen); every FIFO and name that is not UTF-8 is listed for verify (rule 7).
    /// </summary>
    async Task OracleAsync(World world)
    {
        // A file under a folder that was a file before keeps the old copy in the folder's place (named in the error queue): not auditable.
        formerFiles.AddRange(world.FormerFiles);
        await new Audit(pipeline.Connection).PassesAsync(new Dictionary<string, string> { [TestPipeline.Host] = world.Folder }, Replicas,
            ConvergeTimeout, audited: path => !world.UnderFormerFile(path));

        var regular = Directory.EnumerateFiles(world.Folder, "*", Audit.WithoutLinks)
            .Where(p => Hosting.FileKinds.Of(p) == Hosting.FileKind.Regular).Order(StringComparer.Ordinal).ToArray();
        await Eventually.Get(async () => string.Join(", ", await PresentOriginsAsync(world.Folder)), seen => seen == string.Join(", ", regular), ConvergeTimeout,
            "the present origins are exactly the regular files: " + string.Join(", ", regular));

        var skipped = world.Skipped().Order(StringComparer.Ordinal).ToArray();
        await Eventually.Get(async () => string.Join(", ", await SkippedAsync(world.Folder)), seen => seen == string.Join(", ", skipped), ConvergeTimeout,
            "every FIFO and name that is not UTF-8 listed: " + string.Join(", ", skipped));
    }

    async Task<string[]> PresentOriginsAsync(string folder)
    {
        await using var db = new NpgsqlConnection(pipeline.Connection);
        return [.. (await db.QueryAsync<string>("select origin_path from file_origins where missing_since is null and origin_path like @Folder",
            new { Folder = folder + "/%" })).Order(StringComparer.Ordinal)];
    }

    async Task<string[]> SkippedAsync(string folder)
    {
        await using var db = new NpgsqlConnection(pipeline.Connection);
        return [.. (await db.QueryAsync<string>("select path from skipped_files where path like @Folder", new { Folder = folder + "/%" })).Order(StringComparer.Ordinal)];
    }

    // The operations. Files are picked from a small pool, so that operations meet each other.

    public abstract record Op;
    public sealed record Create(int File, int Size) : Op;
    public sealed record Append(int File, int Bytes) : Op;
    public sealed record Truncate(int File, int Size) : Op;
    /// <summary>New bytes of the same size, the mtime within the same second: SFTP's whole-second mtimes cannot tell them apart.</summary>
    public sealed record RewriteSameSecond(int File) : Op;
    public sealed record Rename(int File, int To) : Op;
    public sealed record MoveIntoDayFolder(int File) : Op;
    public sealed record Delete(int File) : Op;
    public sealed record ReplaceByFolder(int File) : Op;
    public sealed record MakeFifo(int File) : Op;
    public sealed record MakeSymlink(int File, int To) : Op;
    public sealed record MakeNonUtf8Name(int File) : Op;
    /// <summary>Appended every 100 ms for longer than max_interval (1 s): copied while it grows.</summary>
    public sealed record Grow(int File, int Steps) : Op;
    public sealed record Pause(int Milliseconds) : Op;
    public enum FaultKind { KillService, RestartBroker, CutSftp }
    public sealed record Fault(FaultKind Kind) : Op;

    const int Pool = 8;
    static readonly Gen<int> FileIndex = Gen.Int[0, Pool - 1];

    static readonly Gen<Op> Operation = Gen.Frequency(
        (8, Gen.Select(FileIndex, Gen.Int[0, 96 << 10], (f, size) => (Op)new Create(f, size))),
        (4, Gen.Select(FileIndex, Gen.Int[1, 8 << 10], (f, bytes) => (Op)new Append(f, bytes))),
        (2, Gen.Select(FileIndex, Gen.Int[0, 4 << 10], (f, size) => (Op)new Truncate(f, size))),
        (3, FileIndex.Select(f => (Op)new RewriteSameSecond(f))),
        (2, Gen.Select(FileIndex, FileIndex, (f, to) => (Op)new Rename(f, to))),
        (2, FileIndex.Select(f => (Op)new MoveIntoDayFolder(f))),
        (2, FileIndex.Select(f => (Op)new Delete(f))),
        (1, FileIndex.Select(f => (Op)new ReplaceByFolder(f))),
        (1, FileIndex.Select(f => (Op)new MakeFifo(f))),
        (1, Gen.Select(FileIndex, FileIndex, (f, to) => (Op)new MakeSymlink(f, to))),
        (1, FileIndex.Select(f => (Op)new MakeNonUtf8Name(f))),
        (1, Gen.Int[12, 30].Select(FileIndex, (steps, f) => (Op)new Grow(f, steps))),
        (2, Gen.Int[0, 1500].Select(ms => (Op)new Pause(ms))),
        (1, Gen.Enum<FaultKind>().Select(k => (Op)new Fault(k))));

    static readonly Gen<Op[]> Script = Operation.Array[3, 25];

    /// <summary>The sequence's folder, and what the operations made of it that the oracle must know.</summary>
    sealed class World(string folder)
    {
        readonly HashSet<string> formerFiles = new(StringComparer.Ordinal);
        /// <summary>Every path that was a regular file at some point: its copy may stand on the replicas, which never delete.</summary>
        readonly HashSet<string> everFiles = new(StringComparer.Ordinal);
        readonly Random random = new(1); // the same bytes for the same sequence: a seed replays it

        public string Folder => folder;

        string PathOf(int file) => Path.Combine(folder, $"f{file}.dat");

        public bool UnderFormerFile(string path) => formerFiles.Any(f => path.StartsWith(f + "/", StringComparison.Ordinal));

        public IEnumerable<string> FormerFiles => formerFiles;

        /// <summary>The FIFOs and non-UTF-8 names present now, as the watcher names them.</summary>
        public IEnumerable<string> Skipped()
        {
            foreach (var path in Directory.EnumerateFileSystemEntries(folder, "*", Audit.WithoutLinks))
            {
                var name = Path.GetFileName(path);
                if (name.Contains('\uFFFD'))
                    yield return Path.Join(Path.GetDirectoryName(path), name.Replace("\uFFFD", @"\xff"));
                else if (Hosting.FileKinds.Of(path) == Hosting.FileKind.Fifo)
                    yield return path;
            }
        }

        public async Task ApplyAsync(Op op)
        {
            try
            {
                await DoAsync(op);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // An operation the state does not allow (a folder where a file was): as a user's failed command, nothing happened.
                TestContext.Progress.WriteLine($"torture: {op} not applicable ({e.Message})");
            }
        }

        async Task DoAsync(Op op)
        {
            await ChangeAsync(op);
            foreach (var path in Directory.EnumerateFiles(folder, "*", Audit.WithoutLinks))
                if (Hosting.FileKinds.Of(path) == Hosting.FileKind.Regular)
                    everFiles.Add(path);
        }

        async Task ChangeAsync(Op op)
        {
            // Writing to a FIFO would wait for a reader: an operation on one is not applicable.
            var written = op switch
            {
                Create c => c.File, Append a => a.File, Truncate t => t.File, RewriteSameSecond r => r.File, Grow g => g.File, _ => (int?)null,
            };
            if (written is { } f && IsFifo(PathOf(f)))
                throw new IOException($"{PathOf(f)} is a FIFO, or a symlink to one");
            switch (op)
            {
                case Create(var file, var size):
                    Write(PathOf(file), size);
                    break;
                case Append(var file, var bytes):
                    await using (var stream = new FileStream(PathOf(file), FileMode.Append))
                        stream.Write(Bytes(bytes));
                    break;
                case Truncate(var file, var size):
                    if (File.Exists(PathOf(file)))
                        await using (var stream = new FileStream(PathOf(file), FileMode.Open))
                            stream.SetLength(Math.Min(size, stream.Length));
                    break;
                case RewriteSameSecond(var file):
                    if (File.Exists(PathOf(file)) && Hosting.FileKinds.Of(PathOf(file)) == Hosting.FileKind.Regular)
                    {
                        var before = File.GetLastWriteTimeUtc(PathOf(file));
                        var second = new DateTime(before.Ticks - before.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
                        var length = (int)new FileInfo(PathOf(file)).Length;
                        await File.WriteAllBytesAsync(PathOf(file), Bytes(length));
                        // Another instant of the same second: size and whole-second mtime as before, other bytes.
                        var after = second.AddMilliseconds((before.Millisecond + 1 + random.Next(998)) % 1000);
                        File.SetLastWriteTimeUtc(PathOf(file), after);
                    }
                    break;
                case Rename(var file, var to):
                    if (file != to && File.Exists(PathOf(file)))
                        File.Move(PathOf(file), PathOf(to), overwrite: true);
                    break;
                case MoveIntoDayFolder(var file):
                    if (File.Exists(PathOf(file)))
                    {
                        var day = Path.Combine(folder, "2026-11-27");
                        Directory.CreateDirectory(day);
                        File.Move(PathOf(file), Path.Combine(day, Path.GetFileName(PathOf(file))), overwrite: true);
                    }
                    break;
                case Delete(var file):
                    File.Delete(PathOf(file));
                    break;
                case ReplaceByFolder(var file):
                    if (File.Exists(PathOf(file)))
                        File.Delete(PathOf(file));
                    // Also a file deleted or renamed away before: its copy stays where the folder would go.
                    if (everFiles.Contains(PathOf(file)))
                        formerFiles.Add(PathOf(file));
                    Write(Path.Combine(PathOf(file), "inside.dat"), 1000);
                    break;
                case MakeFifo(var file):
                    if (!Path.Exists(PathOf(file)))
                        Shell.Run("mkfifo", PathOf(file));
                    break;
                case MakeSymlink(var file, var to):
                    if (!Path.Exists(PathOf(file)) && file != to)
                        File.CreateSymbolicLink(PathOf(file), PathOf(to));
                    break;
                case MakeNonUtf8Name(var file):
                    Shell.Run("bash", "-c", $"printf x > \"{folder}/$(printf 'n{file}\\xff.dat')\"");
                    break;
                case Grow(var file, var steps):
                    for (var i = 0; i < steps; i++)
                    {
                        await using (var stream = new FileStream(PathOf(file), FileMode.Append))
                            stream.Write(Bytes(4096));
                        await Task.Delay(100);
                    }
                    break;
                case Pause(var milliseconds):
                    await Task.Delay(milliseconds);
                    break;
            }
        }

        /// <summary>Whether writing the path would open a FIFO: itself, or through symlinks (a link to a link to a FIFO).</summary>
        static bool IsFifo(string path)
        {
            if (Hosting.FileKinds.Of(path) == Hosting.FileKind.Symlink)
                path = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
            return Hosting.FileKinds.Of(path) == Hosting.FileKind.Fifo;
        }

        void Write(string path, int size)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, Bytes(size));
        }

        byte[] Bytes(int count)
        {
            var bytes = new byte[count];
            random.NextBytes(bytes);
            return bytes;
        }
    }
}
