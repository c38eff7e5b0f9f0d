using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Hashing;
using Renci.SshNet.Common;
using Xtelemdb.Hosting;
using Xtelemdb.Replicator.Copying;
using static Xtelemdb.Replicator.Sftp.SftpWire;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// A source file's bytes into its part file on the server, hashed as they are read, then its mtime
/// set, flushed and closed: the part is complete when <see cref="SendAsync"/> returns its checksum.
///
/// Writes are pipelined, up to <see cref="InFlightPerSession"/> per session, more than OpenSSH's
/// 2 MiB channel window holds, so the window, not the round trip, sets the pace; a large file is
/// spread over several sessions, each with a window of its own. What the server flushed (every
/// 8 MiB; without fsync, what it acknowledged) is remembered per copy, so that a transfer cut by a
/// failure resumes from there (after a few of its blocks, read back, match the source). A file that
/// grew since the replica's recorded copy, whose first bytes still hash to that copy's recorded
/// checksum, has those bytes copied on the server (copy-data) and only the rest sent.
/// </summary>
/// <param name="writer">This replicator process: its part files are named for it, and each attempt at a copy has one of its own.</param>
sealed class SftpTransfer(SftpSessions sessions, BandwidthLimit? limit, string writer)
{
    const int ChunkSize = 64 * 1024;
    const int InFlightPerSession = 64;
    /// <summary>Files from this size on go over several sessions.</summary>
    public const long SpreadFrom = 16L << 20;
    const int MaxLanes = 4;
    /// <summary>Less than this acknowledged is sent again from the start rather than checked.</summary>
    const long ResumeFrom = 1L << 20;
    /// <summary>How often a large copy is flushed as it goes: a resumed copy starts from the last flush.</summary>
    const long FlushEvery = 8L << 20;
    const int CheckedBlocks = 8;

    /// <summary>Copies this process was making when they failed, by target: the part file, the source version and the bytes acknowledged.</summary>
    readonly ConcurrentDictionary<string, Progress> unfinished = new(StringComparer.Ordinal);

    /// <summary>
    /// Each attempt writes a part file of its own name: a rename of an earlier attempt still queued
    /// on a session that failed (a server busy with another copy's fsync) then renames that
    /// attempt's own complete part, never this attempt's unfinished one.
    /// </summary>
    long attempts;

    string NewPart(string target) => LocalFileCopy.PartPath(target, $"{writer}.{Interlocked.Increment(ref attempts)}");

    /// <summary>The copy is in place: nothing of it is left to resume, and a copy the next version may append to.</summary>
    public void Done(string target, HeldCopy copy)
    {
        unfinished.TryRemove(target, out _);
        if (copy.Version.Size < ResumeFrom)
            return;
        // Bounded: growing files are few; a back-fill of millions must not fill memory with them.
        if (lastCopies.Count >= RememberedCopies)
            lastCopies.Clear();
        lastCopies[target] = copy;
    }

    public HeldCopy? LastCopied(string target) => lastCopies.TryGetValue(target, out var copy) ? copy : null;

    const int RememberedCopies = 10_000;
    readonly ConcurrentDictionary<string, HeldCopy> lastCopies = new(StringComparer.Ordinal);

    /// <returns>The part file, complete and flushed, and the checksum of its bytes; a null checksum when the source changed meanwhile (the part is then to be removed).</returns>
    public async Task<(string Part, string? Checksum)> SendAsync(SftpWire wire, SourceFile input, string target, HeldCopy? held, bool flush,
        Action<long>? progress, CancellationToken cancellationToken)
    {
        var size = input.Version.Size;
        var earlier = unfinished.TryGetValue(target, out var failed) ? failed : null;
        var resumed = earlier is null ? null : await ResumeAsync(wire, input, earlier, flush, cancellationToken);
        var part = resumed is null ? NewPart(target) : earlier!.Part;
        if (resumed is null && earlier is not null)
            _ = wire.RemoveAsync(earlier.Part, CancellationToken.None).ContinueWith(t => t.Exception, TaskScheduler.Default); // a stale attempt's part
        var start = resumed
            ?? await AppendAsync(wire, input, target, part, held, cancellationToken)
            ?? (await CreateAsync(wire, part, cancellationToken), 0L, new XxHash3());
        var (handle, from, hash) = start;
        var done = new Progress(part, input.Version, from, durable: resumed is null ? 0 : from);
        unfinished[target] = done;
        var lanes = new List<Lane> { new(wire, handle) };
        var leases = new List<IDisposable>();
        try
        {
            while (size - from >= SpreadFrom && lanes.Count < Math.Min(MaxLanes, sessions.Connections))
            {
                var lease = await sessions.NextAsync(cancellationToken, exclude: [.. lanes.Select(l => l.Wire)]);
                leases.Add(lease);
                if (lanes.Any(l => l.Wire == lease.Wire))
                    break; // no other session to be had
                lanes.Add(new Lane(lease.Wire, await lease.Wire.OpenAsync(part, Access.Update, cancellationToken)));
            }
            var read = await WriteAsync(lanes, input, from, hash, done, flush, progress, cancellationToken);
            // One session serves its requests in order: its part's last writes, mtime, fsync and close go out together.
            // Several sessions' writes are all answered first, so that the fsync finds them written.
            if (lanes.Count > 1)
            {
                await Task.WhenAll(lanes.SelectMany(l => l.Writes));
                await Task.WhenAll(lanes.Skip(1).Select(l => l.CloseAsync()));
            }
            var finishing = new List<Task>(lanes[0].Writes) { await wire.SendSetTimes(handle, input.Version.Mtime, cancellationToken) };
            if (flush)
                finishing.Add(await wire.SendFsync(handle, cancellationToken));
            finishing.Add(lanes[0].CloseAsync());
            await Task.WhenAll(finishing);
            if (flush)
                done.Flushed(read); // a rename that fails resumes from the end: nothing is sent again
            // A log appended while it was copied still gives the version stated when it was opened, if
            // its first bytes are still those sent (hashed again here, not over the link): the next
            // version appends to it, where throwing it away would send it again and again.
            if (!input.Unchanged(read) && !(input.OnlyGrew(read) && FileChecksum.Format(HashOf(input, size)) == FileChecksum.Format(hash)))
            {
                unfinished.TryRemove(target, out _);
                return (part, null);
            }
            return (part, FileChecksum.Format(hash));
        }
        finally
        {
            // A failure with handles open: each closed once (a handle closed twice could be another
            // copy's by then: the server reuses them), as far as the session still answers, without waiting.
            foreach (var lane in lanes)
                _ = lane.CloseAsync().ContinueWith(t => t.Exception, TaskScheduler.Default);
            foreach (var lease in leases)
                lease.Dispose();
        }
    }

    /// <summary>
    /// A part file of a new inode: the old one removed first (in the same round trip), so that
    /// writes of an earlier attempt still queued on a session that failed land in an orphan, never
    /// in this copy.
    /// </summary>
    static async Task<byte[]> CreateAsync(SftpWire wire, string part, CancellationToken cancellationToken)
    {
        var removed = await wire.SendRemove(part, cancellationToken);
        var created = await wire.SendOpen(part, Access.CreateNew, cancellationToken);
        try
        {
            await removed;
        }
        catch (SftpPathNotFoundException)
        {
            // none there: the usual case
        }
        catch
        {
            // The remove failed otherwise, and so (the name still taken) did the exclusive create, or it holds a handle to close.
            _ = created.ContinueWith(t => t.IsCompletedSuccessfully ? wire.CloseAsync(t.Result, CancellationToken.None) : Task.CompletedTask, TaskScheduler.Default);
            throw;
        }
        return await created;
    }

    /// <summary>Reads, hashes and sends the source from <paramref name="from"/>; returns the bytes read in all (to compare with the size).</summary>
    /// <param name="flush">Whether the server flushes: then every <see cref="FlushEvery"/> acknowledged bytes are flushed as the copy goes, and a resumed copy starts from what is on the server's disk.</param>
    async Task<long> WriteAsync(List<Lane> lanes, SourceFile input, long from, XxHash3 hash, Progress done, bool flush, Action<long>? progress, CancellationToken cancellationToken)
    {
        var flushedAt = from;
        var size = input.Version.Size;
        var failed = new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, failed.Token);
        var offset = from;
        for (var index = 0; offset < size && !stop.IsCancellationRequested; index++)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
            var length = (int)Math.Min(ChunkSize, size - offset);
            var read = RandomAccess.Read(input.Handle, buffer.AsSpan(0, length), offset);
            // A source that changed is abandoned at once: the copy ends short, and Unchanged says so.
            if (read == 0 || offset / SourceFile.CheckEvery != (offset + read) / SourceFile.CheckEvery && input.ChangedSinceOpened())
            {
                ArrayPool<byte>.Shared.Return(buffer);
                break;
            }
            hash.Append(buffer.AsSpan(0, read));
            if (limit is not null)
                await limit.TakeAsync(read, cancellationToken);
            var lane = lanes[index % lanes.Count];
            try
            {
                await lane.Slots.WaitAsync(stop.Token);
            }
            catch (OperationCanceledException) when (failed.IsCancellationRequested)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                break; // a write failed: its failure is thrown below, not this wait's
            }
            Task<object?> reply;
            if (lanes.Count == 1)
            {
                reply = await lane.Wire.SendWrite(lane.Handle, offset, buffer, read, cancellationToken);
            }
            else
            {
                // A send waits while its session's window is full: on a thread of its own, so that the other sessions go on.
                var (wire, handle, at) = (lane.Wire, lane.Handle, offset);
                reply = Task.Run(async () => await await wire.SendWrite(handle, at, buffer, read, cancellationToken), cancellationToken);
            }
            lane.Writes.Add(AcknowledgedAsync(reply, lane, buffer, offset, read, done, progress, failed));
            offset += read;
            if (flush && done.Acknowledged - flushedAt >= FlushEvery)
            {
                // What is acknowledged was written on the server, whichever session wrote it: the fsync covers it.
                var upTo = flushedAt = done.Acknowledged;
                var (wire, handle) = (lanes[0].Wire, lanes[0].Handle);
                // Several sessions: sent aside, as the writes are, so that a full window on the first holds up no other.
                var flushed = lanes.Count == 1
                    ? await wire.SendFsync(handle, cancellationToken)
                    : Task.Run(async () => await await wire.SendFsync(handle, cancellationToken), cancellationToken);
                lanes[0].Writes.Add(FlushedAsync(flushed, upTo, done, failed));
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (failed.IsCancellationRequested)
            await Task.WhenAll(lanes.SelectMany(l => l.Writes)); // throws the write's failure
        return offset;
    }

    static async Task FlushedAsync(Task<object?> flushed, long upTo, Progress done, CancellationTokenSource failed)
    {
        try
        {
            await flushed;
            done.Flushed(upTo);
        }
        catch
        {
            failed.Cancel(); // the rest is not sent: the copy fails with the fsync's error
            throw;
        }
    }

    static async Task AcknowledgedAsync(Task reply, Lane lane, byte[] buffer, long offset, int length, Progress done, Action<long>? progress, CancellationTokenSource failed)
    {
        try
        {
            await reply;
            // Recorded whether or not anyone watches the progress: it is what a resumed copy starts from.
            var acknowledged = done.Acknowledge(offset, length);
            progress?.Invoke(acknowledged);
        }
        catch
        {
            failed.Cancel();
            throw;
        }
        finally
        {
            lane.Slots.Release();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The part file this process was writing for the same version of the source, when a failure cut
    /// the copy: continued from what the server acknowledged, if a few of its blocks read back match
    /// the source (the server kept what it acknowledged).
    /// </summary>
    /// <param name="flush">Whether the server flushes: then the copy resumes from its last flush, since bytes
    /// acknowledged but not flushed may be gone (a server that restarted), leaving a hole the samples could miss.</param>
    async Task<(byte[], long, XxHash3)?> ResumeAsync(SftpWire wire, SourceFile input, Progress earlier, bool flush, CancellationToken cancellationToken)
    {
        var part = earlier.Part;
        if (!earlier.Source.SameAs(input.Version))
            return null;
        var from = flush ? earlier.Durable : earlier.Acknowledged;
        if (from < ResumeFrom)
            return null;
        if (await wire.LStatAsync(part, cancellationToken) is not { IsRegularFile: true } found || found.Size < from)
            return null;
        var handle = await wire.OpenAsync(part, Access.Update, cancellationToken);
        try
        {
            if (await SameBlocksAsync(wire, handle, input, from, cancellationToken))
                return (handle, from, HashOf(input, from));
        }
        catch
        {
            _ = wire.CloseAsync(handle, CancellationToken.None).ContinueWith(t => t.Exception, TaskScheduler.Default);
            throw;
        }
        await wire.CloseAsync(handle, cancellationToken);
        return null;
    }

    static async Task<bool> SameBlocksAsync(SftpWire wire, byte[] handle, SourceFile input, long length, CancellationToken cancellationToken) =>
        await MatchAsync(await SendSamplesAsync(wire, handle, length, cancellationToken), input);

    /// <summary>Reads of a few blocks spread over the first <paramref name="length"/> bytes, and the last one, sent together.</summary>
    static async Task<(long Offset, Task<byte[]> Bytes)[]> SendSamplesAsync(SftpWire wire, byte[] handle, long length, CancellationToken cancellationToken)
    {
        var offsets = Enumerable.Range(0, CheckedBlocks).Select(i => length / CheckedBlocks * i).Append(length - ChunkSize)
            .Where(o => o >= 0).Distinct().ToArray();
        var reads = new (long, Task<byte[]>)[offsets.Length];
        for (var i = 0; i < offsets.Length; i++)
            reads[i] = (offsets[i], await wire.SendRead(handle, offsets[i], (int)Math.Min(ChunkSize, length - offsets[i]), cancellationToken));
        return reads;
    }

    /// <summary>Whether the blocks read on the server are the source's bytes at the same offsets.</summary>
    static async Task<bool> MatchAsync((long Offset, Task<byte[]> Bytes)[] samples, SourceFile input)
    {
        var local = new byte[ChunkSize];
        foreach (var (offset, bytes) in samples)
        {
            var remote = await bytes;
            var read = RandomAccess.Read(input.Handle, local.AsSpan(0, remote.Length), offset);
            if (remote.Length == 0 || read != remote.Length || !local.AsSpan(0, read).SequenceEqual(remote))
                return false;
        }
        return true;
    }

    /// <summary>
    /// A file that grew since the replica's recorded copy (a .bintel or .binlog being appended): if
    /// its first bytes still hash to that copy's recorded checksum, and sampled blocks of the copy
    /// still match them, the server copies them from the copy into a new part file (copy-data, in
    /// ranges) and only the rest is sent. Otherwise (rewritten, not appended; a copy that changed on
    /// the replica; a server without copy-data, or refusing it) null, and the file is sent whole.
    /// </summary>
    async Task<(byte[], long, XxHash3)?> AppendAsync(SftpWire wire, SourceFile input, string target, string part, HeldCopy? held, CancellationToken cancellationToken)
    {
        if (held is not { } copy || copy.Version.Size < ResumeFrom || copy.Version.Size >= input.Version.Size
            || !wire.Extensions.Contains(CopyDataExtension) || copyDataRefused)
            return null;
        var size = copy.Version.Size;
        var hash = HashOf(input, size);
        if (FileChecksum.Format(hash) != copy.Checksum)
            return null;
        // Two round trips before the appended bytes go: the old copy and the new part opened together,
        // then the old copy's samples read, its bytes copied and the part's size looked at, together.
        var opening = await wire.SendOpen(target, Access.Read, cancellationToken);
        var creating = CreateAsync(wire, part, cancellationToken);
        byte[]? old = null, handle = null;
        try
        {
            old = await opening;
            handle = await creating;
            var samples = await SendSamplesAsync(wire, old, size, cancellationToken);
            try
            {
                // One range at a time: each reply within the session's timeout, and other copies' requests served between them.
                for (long offset = 0; offset < size; offset += CopyDataStep)
                    await await wire.SendCopyData(old, offset, Math.Min(CopyDataStep, size - offset), handle, cancellationToken);
            }
            catch (Exception e) when (e is NotSupportedException or SftpPermissionDeniedException)
            {
                copyDataRefused = true;
                return null;
            }
            // The server answers OK for a range it copied only in part (the source's end): the size says.
            if (!await MatchAsync(samples, input) || (await wire.LStatAsync(part, cancellationToken))?.Size != size)
                return null;
            var appending = (handle, size, hash);
            handle = null;
            return appending;
        }
        catch (SshException e) when (e is not SshConnectionException)
        {
            return null; // a failure the server answered (the old copy gone meanwhile): sent whole
        }
        finally
        {
            if (old is not null)
                _ = wire.CloseAsync(old, CancellationToken.None).ContinueWith(t => t.Exception, TaskScheduler.Default);
            // A part created but not handed over (or created after a failure above) is closed; the whole-file path makes a new one.
            _ = creating.ContinueWith(t => t.IsCompletedSuccessfully && handle is not null || t.IsCompletedSuccessfully && old is null
                ? wire.CloseAsync(t.Result, CancellationToken.None) : Task.CompletedTask, TaskScheduler.Default);
        }
    }

    /// <summary>copy-data's ranges: the server serves nothing else on the session while it copies one.</summary>
    const long CopyDataStep = 64L << 20;

    /// <summary>Set when the server refused copy-data (sftp-server -P copy-data): appends are then sent whole.</summary>
    bool copyDataRefused;

    /// <summary>The hash of the source's first bytes, read here (not over the link).</summary>
    static XxHash3 HashOf(SourceFile input, long length)
    {
        var hash = new XxHash3();
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (long offset = 0; offset < length;)
            {
                var read = RandomAccess.Read(input.Handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset);
                if (read == 0)
                    throw new IOException($"{input.Path} is shorter than the {length} bytes it had");
                hash.Append(buffer.AsSpan(0, read));
                offset += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return hash;
    }

    /// <summary>The checksum of a file on the server, its reads pipelined.</summary>
    public static async Task<XxHash3> HashAsync(SftpWire wire, string path, CancellationToken cancellationToken)
    {
        var size = (await wire.LStatAsync(path, cancellationToken))?.Size ?? throw new SftpPathNotFoundException($"{path} does not exist");
        var hash = new XxHash3();
        var handle = await wire.OpenAsync(path, Access.Read, cancellationToken);
        try
        {
            var reads = new Queue<(long Offset, int Length, Task<byte[]> Data)>();
            for (long next = 0, hashed = 0; hashed < size;)
            {
                while (next < size && reads.Count < InFlightPerSession / 4)
                {
                    var length = (int)Math.Min(ChunkSize, size - next);
                    reads.Enqueue((next, length, await wire.SendRead(handle, next, length, cancellationToken)));
                    next += length;
                }
                var (offset, expected, data) = reads.Dequeue();
                var bytes = await data;
                if (bytes.Length != expected)
                    throw new IOException($"{path} gave {bytes.Length} bytes at offset {offset}, not {expected}: it changed while it was read");
                hash.Append(bytes);
                hashed += bytes.Length;
            }
        }
        finally
        {
            await wire.CloseAsync(handle, cancellationToken);
        }
        return hash;
    }

    /// <summary>One session's share of a transfer: its handle on the part file and its writes in flight.</summary>
    sealed class Lane(SftpWire wire, byte[] handle)
    {
        int closed;

        public SftpWire Wire => wire;
        public byte[] Handle => handle;
        public SemaphoreSlim Slots { get; } = new(InFlightPerSession, InFlightPerSession);
        public List<Task> Writes { get; } = [];

        /// <summary>
        /// Closes the handle, once (the server reuses a closed handle's number for another copy's
        /// file), and never cancelled: a close that was not sent would leave the handle open.
        /// </summary>
        public Task CloseAsync() =>
            Interlocked.Exchange(ref closed, 1) == 0 ? wire.CloseAsync(handle, CancellationToken.None) : Task.CompletedTask;
    }

    /// <summary>The bytes of a part file the server acknowledged without a gap from the start.</summary>
    sealed class Progress(string part, FileVersion source, long from, long durable)
    {
        readonly SortedDictionary<long, int> ahead = [];
        long acknowledged = from, durable = durable;

        public string Part => part;
        public FileVersion Source => source;

        public long Acknowledged
        {
            get { lock (ahead) return acknowledged; }
        }

        /// <summary>The bytes from the start known to be on the server's disk (flushed).</summary>
        public long Durable
        {
            get { lock (ahead) return durable; }
        }

        public void Flushed(long upTo)
        {
            lock (ahead)
                durable = Math.Max(durable, upTo);
        }

        /// <returns>The bytes acknowledged without a gap so far.</returns>
        public long Acknowledge(long offset, int length)
        {
            lock (ahead)
            {
                ahead[offset] = length;
                while (ahead.Remove(acknowledged, out var next))
                    acknowledged += next;
                return acknowledged;
            }
        }
    }
}
