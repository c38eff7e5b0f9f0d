namespace Xtelemdb.Storage;

/// <summary>
/// The statements that let a file moved on its origin cost a rename on each replica, as rclone's
/// --track-renames: the inventory pairs a new path with the one that vanished, and forgets the old
/// path's record once the replica's copy was renamed.
/// </summary>
static class MoveSql
{
    /// <summary>
    /// How far apart an old path's disappearance and the new path's observation may be. A live move
    /// reports both paths in one list (the same observed_at); a poll reports the new path as it walks
    /// and the old one at its end, seconds later even for a million files. Five minutes covers both
    /// with room, yet a file restored from a backup long after its original was deleted is not taken
    /// for a move. (A new path reported while its old one is still known needs no window: the
    /// replicator looks at the origin.)
    /// </summary>
    const string Window = "interval '5 minutes'";

    /// <summary>
    /// NeedsOf, each need with MovedFrom where the replica records no copy of the path at all, and
    /// does record, with a checksum and not found damaged, the same version of another path of the
    /// same host and file name: one that went missing within the window, or one still present here.
    /// A present one is what a move looks like when the new path is reported first (the scan of a
    /// day folder just made finds the files moved into it before their old paths are reported gone):
    /// the replicator renames only where the old path is gone from the origin, and copies otherwise.
    /// One new path per old one and one old path per new one (the first by path; a vanished one
    /// before a present one, the latest gone first): the others are copied.
    /// </summary>
    public const string NeedsOrMovesOf = $"""
        with needs as ({Sql.NeedsOf}),
        moves as (
            select n.replicaid, n.originhost, n.originpath, gone.origin_path as moved_from,
                   row_number() over (partition by n.replicaid, n.originhost, gone.origin_path order by n.originpath) as taker,
                   row_number() over (partition by n.replicaid, n.originhost, n.originpath order by gone.missing_since desc nulls last, gone.origin_path) as taken
              from needs n
              join file_origins o on o.origin_host = n.originhost and o.origin_path = n.originpath
              join file_origins gone
                on gone.origin_host = n.originhost and split_part(gone.origin_path, '/', -1) = split_part(n.originpath, '/', -1)
               and gone.origin_path <> n.originpath
               and (gone.missing_since is null or gone.missing_since between o.observed_at - {Window} and o.observed_at + {Window})
               and gone.mtime = n.mtime and gone.size_bytes = n.size
              join file_replicas held
                on held.replica_id = n.replicaid and held.origin_host = gone.origin_host and held.origin_path = gone.origin_path
               and held.mtime = gone.mtime and held.size_bytes = gone.size_bytes and held.checksum is not null and held.damaged_at is null
             where not exists (select 1 from file_replicas fr
                                where fr.replica_id = n.replicaid and fr.origin_host = n.originhost and fr.origin_path = n.originpath)
        )
        select n.*, m.moved_from as MovedFrom
          from needs n
          left join moves m on m.replicaid = n.replicaid and m.originhost = n.originhost and m.originpath = n.originpath
                           and m.taker = 1 and m.taken = 1
        """;

    /// <summary>The checksum a replica records for its copy of this version, where it may be moved: not found damaged.</summary>
    public const string MovableChecksum = """
        select checksum from file_replicas
         where replica_id = @Id and origin_host = @Host and origin_path = @Path and mtime = @Mtime and size_bytes = @Size
           and checksum is not null and damaged_at is null
        """;

    /// <summary>
    /// The old paths' records of copies renamed away (or found gone): only a record of that version
    /// made before the move was stated. A later copy of the old path (moved back, copied again) stays.
    /// </summary>
    public const string ForgetMovedCopies = """
        delete from file_replicas fr
         using unnest(@ReplicaIds::integer[], @Hosts::text[], @Paths::text[], @Mtimes::timestamptz[], @Sizes::bigint[], @CopiedAts::timestamptz[])
               as m (replica_id, origin_host, origin_path, mtime, size_bytes, copied_at)
         where fr.replica_id = m.replica_id and fr.origin_host = m.origin_host and fr.origin_path = m.origin_path
           and fr.mtime = m.mtime and fr.size_bytes = m.size_bytes and fr.copied_at < m.copied_at
        """;
}
