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
/// spread over several sessions, each with a window of its own. What the server acknowledged is
/// remembered per part file, so that a transfer cut by a failure resumes from there (after a few
/// of its blocks, read back, match the source). A file that grew since the replica's recorded copy,
/// whose first bytes still hash to that copy's recorded checksum, has those bytes copied on the
/// server (copy-data) and only the rest sent.
/// </summary>
sealed class SftpTransfer(SftpSessions sessions, BandwidthLimit? limit)
{
    const int ChunkSize = 64 * 1024;
    const int InFlightPerSession = 64;
    /// <summary>Files from this size on go over several sessions.</summary>
    public const long SpreadFrom = 16L << 20;
    const int MaxLanes = 4;
    /// <summary>Less than this acknowledged is sent again from the start rather than checked.</summary>
    const long ResumeFrom = 1L << 20;
    const int CheckedBlocks = 8;

    /// <summary>Part files this process was writing when their copy failed: the source version and the bytes acknowledged.</summary>
    readonly ConcurrentDictionary<string, Progress> unfinished = new(StringComparer.Ordinal);

    /// <summary>The copy is in place: nothing of it is left to resume, and a copy the next version may append to.</summary>
    public void Done(string part, string target, HeldCopy copy)
    {
        unfinished.TryRemove(part, out _);
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

    /// <summary>Bytes sent over the link by this process's copies, for the metrics and the benchmarks.</summary>
    public static long BytesSent => Interlocked.Read(ref bytesSent);
    static long bytesSent;

    /// <returns>The checksum of the part's bytes; null when the source changed meanwhile (the part is then to be removed).</returns>
    public async Task<string?> SendAsync(SftpWire wire, SourceFile input, string target, string part, HeldCopy? held, bool flush,
        Action<long>? progress, CancellationToken cancellationToken)
    {
        var size = input.Version.Size;
        var start = await ResumeAsync(wire, input, part, cancellationToken)
            ?? await AppendAsync(wire, input, target, part, held, cancellationToken)
            ?? (await wire.OpenAsync(part, Access.Create, cancellationToken), 0L, new XxHash3());
        var (handle, from, hash) = start;
        var done = new Progress(input.Version, from);
        unfinished[part] = done;
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
            var read = await WriteAsync(lanes, input, from, hash, done, progress, cancellationToken);
            // One session serves its requests in order: its part's last writes, mtime, fsync and close go out together.
            // Several sessions' writes are all answered first, so that the fsync finds them written.
            if (lanes.Count > 1)
            {
                await Task.WhenAll(lanes.SelectMany(l => l.Writes));
                await Task.WhenAll(lanes.Skip(1).Select(l => l.Wire.CloseAsync(l.Handle, cancellationToken)));
            }
            var finishing = new List<Task>(lanes[0].Writes) { await wire.SendSetTimes(handle, input.Version.Mtime, cancellationToken) };
            if (flush)
                finishing.Add(await wire.SendFsync(handle, cancellationToken));
            lanes.Clear();
            finishing.Add(await wire.SendClose(handle, cancellationToken));
            await Task.WhenAll(finishing);
            if (!input.Unchanged(read))
            {
                unfinished.TryRemove(part, out _);
                return null;
            }
            return FileChecksum.Format(hash);
        }
        finally
        {
            // A failure with handles open: closed as far as the session still answers, without waiting.
            foreach (var lane in lanes)
                _ = lane.Wire.SendClose(lane.Handle, CancellationToken.None).ContinueWith(t => t.Exception, TaskScheduler.Default);
            foreach (var lease in leases)
                lease.Dispose();
        }
    }

    /// <summary>Reads, hashes and sends the source from <paramref name="from"/>; returns the bytes read in all (to compare with the size).</summary>
    async Task<long> WriteAsync(List<Lane> lanes, SourceFile input, long from, XxHash3 hash, Progress done, Action<long>? progress, CancellationToken cancellationToken)
    {
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
            Interlocked.Add(ref bytesSent, read);
            offset += read;
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (failed.IsCancellationRequested)
            await Task.WhenAll(lanes.SelectMany(l => l.Writes)); // throws the write's failure
        return offset;
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
    async Task<(byte[], long, XxHash3)?> ResumeAsync(SftpWire wire, SourceFile input, string part, CancellationToken cancellationToken)
    {
        if (!unfinished.TryGetValue(part, out var earlier) || !earlier.Source.SameAs(input.Version) || earlier.Acknowledged < ResumeFrom)
            return null;
        if (await wire.LStatAsync(part, cancellationToken) is not { IsRegularFile: true } found || found.Size < earlier.Acknowledged)
            return null;
        var handle = await wire.OpenAsync(part, Access.Update, cancellationToken);
        var from = earlier.Acknowledged;
        if (!await SameBlocksAsync(wire, handle, input, from, cancellationToken))
        {
            await wire.CloseAsync(handle, cancellationToken);
            return null;
        }
        return (handle, from, HashOf(input, from));
    }

    static async Task<bool> SameBlocksAsync(SftpWire wire, byte[] handle, SourceFile input, long length, CancellationToken cancellationToken)
    {
        var offsets = Enumerable.Range(0, CheckedBlocks).Select(i => length / CheckedBlocks * i).Append(length - ChunkSize)
            .Where(o => o >= 0).Distinct().ToArray();
        var reads = new List<Task<byte[]>>();
        foreach (var offset in offsets)
            reads.Add(await wire.SendRead(handle, offset, (int)Math.Min(ChunkSize, length - offset), cancellationToken));
        var local = new byte[ChunkSize];
        for (var i = 0; i < offsets.Length; i++)
        {
            var remote = await reads[i];
            var read = RandomAccess.Read(input.Handle, local.AsSpan(0, remote.Length), offsets[i]);
            if (remote.Length == 0 || read != remote.Length || !local.AsSpan(0, read).SequenceEqual(remote))
                return false;
        }
        return true;
    }

    /// <summary>
    /// A file that grew since the replica's recorded copy (a .bintel or .binlog being appended): if
    /// its first bytes still hash to that copy's recorded checksum, the server copies them from the
    /// copy into the part file (copy-data) and only the rest is sent. Otherwise (rewritten, not
    /// appended; or a server without copy-data) null, and the file is sent whole.
    /// </summary>
    static async Task<(byte[], long, XxHash3)?> AppendAsync(SftpWire wire, SourceFile input, string target, string part, HeldCopy? held, CancellationToken cancellationToken)
    {
        if (held is not { } copy || copy.Version.Size < ResumeFrom || copy.Version.Size >= input.Version.Size || !wire.Extensions.Contains(CopyDataExtension))
            return null;
        var hash = HashOf(input, copy.Version.Size);
        if (FileChecksum.Format(hash) != copy.Checksum)
            return null;
        var opening = await wire.SendOpen(target, Access.Read, cancellationToken);
        var creating = await wire.SendOpen(part, Access.Create, cancellationToken);
        var (old, handle) = (await opening, await creating);
        var copied = await wire.SendCopyData(old, copy.Version.Size, handle, cancellationToken);
        var closed = await wire.SendClose(old, cancellationToken);
        try
        {
            await Task.WhenAll(copied, closed);
        }
        catch
        {
            await wire.CloseAsync(handle, cancellationToken);
            throw;
        }
        return (handle, copy.Version.Size, hash);
    }

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
        public SftpWire Wire => wire;
        public byte[] Handle => handle;
        public SemaphoreSlim Slots { get; } = new(InFlightPerSession, InFlightPerSession);
        public List<Task> Writes { get; } = [];
    }

    /// <summary>The bytes of a part file the server acknowledged without a gap from the start.</summary>
    sealed class Progress(FileVersion source, long from)
    {
        readonly SortedDictionary<long, int> ahead = [];
        long acknowledged = from;

        public FileVersion Source => source;

        public long Acknowledged
        {
            get { lock (ahead) return acknowledged; }
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
