using Dapper;
using Npgsql;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// Makes a test's database refuse the rows of chosen paths, with an error no retry mends
/// ("the test refuses PATH", P0001), until the test lifts it: a cause an operator could mend.
/// </summary>
static class RefusingTrigger
{
    public static async Task InstallAsync(string connectionString, params string[] paths)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("""
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
            insert into test_refused select unnest(@Paths);
            """, new { Paths = paths });
    }

    public static async Task LiftAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("delete from test_refused");
    }
}
