using System.Text.Encodings.Web;
using System.Text.Json;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Operations;

/// <summary>The purgeable files of one origin folder: how many, and the bytes deleting them would free.</summary>
public sealed record FolderTotal(string Host, string Folder, long Files, long Bytes);

/// <param name="Conflicts">Files whose copies disagree on their checksum: damage, never purgeable.</param>
public sealed record PurgeableSummary(long Files, long Bytes, long Folders, long Conflicts);

/// <summary>Where purgeable's listing goes, as it streams: every purgeable file in folder order, then the conflicts.</summary>
public interface IPurgeableOutput
{
    void File(PurgeCandidate file);
    void Folder(FolderTotal folder);
    /// <summary>Every purgeable file was given; the conflicts follow.</summary>
    void Purgeable(PurgeableSummary total);
    void Conflict(PurgeCandidate file);
    void End(PurgeableSummary summary);
}

/// <summary>
/// Streams the purgeable files into an output, totalling each folder as its last file passes (the
/// rows come ordered by host and folder), so that a million files take the memory of one.
/// </summary>
public static class PurgeableListing
{
    public static async Task<PurgeableSummary> RunAsync(PurgeableStore store, PurgeCriteria criteria, IPurgeableOutput output, CancellationToken cancellationToken)
    {
        FolderTotal? folder = null;
        long files = 0, bytes = 0, folders = 0, conflicts = 0;
        var purgeableDone = false;

        void EndFolder()
        {
            if (folder is null)
                return;
            output.Folder(folder);
            folders++;
            folder = null;
        }

        void EndPurgeable()
        {
            if (purgeableDone)
                return;
            EndFolder();
            output.Purgeable(new PurgeableSummary(files, bytes, folders, 0));
            purgeableDone = true;
        }

        await foreach (var file in store.CandidatesAsync(criteria, cancellationToken))
        {
            if (file.Conflict)
            {
                EndPurgeable();
                output.Conflict(file);
                conflicts++;
                continue;
            }
            if (folder is not null && (folder.Host != file.OriginHost || folder.Folder != file.Folder))
                EndFolder();
            folder = folder is null ? new FolderTotal(file.OriginHost, file.Folder, 1, file.Size) : folder with { Files = folder.Files + 1, Bytes = folder.Bytes + file.Size };
            output.File(file);
            files++;
            bytes += file.Size;
        }
        EndPurgeable();
        var summary = new PurgeableSummary(files, bytes, folders, conflicts);
        output.End(summary);
        return summary;
    }

    /// <summary>What the listing was asked for, in words, for its first line.</summary>
    public static string Describe(PurgeCriteria criteria, string olderThan) =>
        $"held by {criteria.Copies} or more copies of their current version that agree on its checksum, {criteria.Offsite} or more of them "
        + $"over SSH on another host than the file's; last modified more than {olderThan} ago (before {criteria.Before:yyyy-MM-dd HH:mm:ss}Z)"
        + (criteria.OriginHost is { } host ? $"; host {host}" : "")
        + (criteria.PathPrefix is { } prefix ? $"; in {prefix}" : "");
}

/// <summary>Per folder, the files and the bytes deleting them would free; a total line; the conflicts, each with its copies.</summary>
public sealed class PurgeableText(IReadOnlyDictionary<int, ReplicaRecord> replicas, string criteria) : IPurgeableOutput
{
    bool headed;

    public void File(PurgeCandidate file)
    {
    }

    public void Folder(FolderTotal folder)
    {
        Head();
        Output.Line(Output.IsTerminal
            ? $"{folder.Files,10:N0}  {Output.Bytes(folder.Bytes),10}  {folder.Host}:{folder.Folder}"
            : $"{folder.Files}\t{Output.Bytes(folder.Bytes)}\t{folder.Host}:{folder.Folder}");
    }

    public void Purgeable(PurgeableSummary total)
    {
        Head();
        Output.Line($"Total: {total.Files:N0} files, {Output.Bytes(total.Bytes)} ({total.Bytes:N0} bytes), in {total.Folders:N0} folders.");
        Output.Line("Nothing was deleted. Delete a file on the instrument only while its size and mtime there are still the ones listed (--json lists them).");
    }

    public void Conflict(PurgeCandidate file) =>
        Output.Line($"CONFLICT: {file.OriginHost}:{file.OriginPath} ({file.Size:N0} bytes, mtime {file.Mtime:yyyy-MM-dd HH:mm:ss.ffffff}Z): its copies disagree: "
            + string.Join(", ", file.Copies.Select(c => $"{NameOf(c.ReplicaId)} {c.Checksum}"))
            + ". A copy is damaged: keep the file, and run 'xtelemdb verify checksum=true' on these replicas.");

    public void End(PurgeableSummary summary)
    {
        if (summary.Conflicts > 0)
            Output.Line($"{summary.Conflicts:N0} files are not purgeable because their copies disagree (CONFLICT above).");
    }

    void Head()
    {
        if (headed)
            return;
        headed = true;
        Output.Line($"Purgeable: the files {criteria}.");
        Output.Line(Output.IsTerminal ? $"{"files",10}  {"bytes",10}  folder" : "files\tbytes\tfolder");
    }

    string NameOf(int replicaId) => replicas.TryGetValue(replicaId, out var replica) ? replica.Name : $"replica {replicaId}";
}

/// <summary>
/// One JSON object, written as the rows come: the criteria, every purgeable file with the replicas
/// holding it and their checksums, the per-folder totals (held until the files end: one small
/// record per folder), the total, and the conflicts.
/// </summary>
public sealed class PurgeableJson : IPurgeableOutput, IDisposable
{
    const int FlushAt = 1 << 16;
    static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    readonly IReadOnlyDictionary<int, ReplicaRecord> replicas;
    readonly Stream stdout = Console.OpenStandardOutput();
    readonly Utf8JsonWriter writer;
    readonly List<FolderTotal> folders = [];

    public PurgeableJson(IReadOnlyDictionary<int, ReplicaRecord> replicas, PurgeCriteria criteria, string olderThan)
    {
        this.replicas = replicas;
        writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.Default });
        writer.WriteStartObject();
        writer.WritePropertyName("criteria");
        JsonSerializer.Serialize(writer, new
        {
            Host = criteria.OriginHost, Prefix = criteria.PathPrefix, OlderThan = olderThan, criteria.Before, criteria.Copies, criteria.Offsite,
        }, Options);
        writer.WriteStartArray("files");
    }

    public void File(PurgeCandidate file) => Write(file);

    public void Folder(FolderTotal folder) => folders.Add(folder);

    public void Purgeable(PurgeableSummary total)
    {
        writer.WriteEndArray();
        writer.WritePropertyName("folders");
        JsonSerializer.Serialize(writer, folders, Options);
        writer.WritePropertyName("total");
        JsonSerializer.Serialize(writer, new { total.Files, total.Bytes, total.Folders }, Options);
        writer.WriteStartArray("conflicts");
    }

    public void Conflict(PurgeCandidate file) => Write(file);

    public void End(PurgeableSummary summary)
    {
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
        stdout.Write("\n"u8);
        stdout.Flush();
    }

    void Write(PurgeCandidate file)
    {
        JsonSerializer.Serialize(writer, new
        {
            Host = file.OriginHost, Path = file.OriginPath, file.Folder, file.Mtime, file.Size,
            Replicas = file.Copies.Select(c => replicas.GetValueOrDefault(c.ReplicaId) is { } replica
                ? new { Replica = replica.Name, replica.Kind, c.Checksum }
                : new { Replica = $"replica {c.ReplicaId}", Kind = "", c.Checksum }),
        }, Options);
        if (writer.BytesPending >= FlushAt)
            writer.Flush();
    }

    public void Dispose()
    {
        writer.Dispose();
        stdout.Dispose();
    }
}
