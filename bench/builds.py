#!/usr/bin/env python3
"""Times builds of xtelemdb against each other: what a build setting changes, not what a commit does.

    bench/builds.py FILES ROUNDS NAME=PATH [NAME=PATH ...]

Each PATH is an xtelemdb executable, e.g. the published one (bench/run leaves it in .build/bench)
and a plain build of the same commit:

    dotnet build src/Cli -c Release -o /tmp/plain
    bench/builds.py 300 8 published=.build/bench/xtelemdb plain=/tmp/plain/xtelemdb

Each round runs every build once, in turn (every other round in the opposite order), on the same
tree of FILES small files: the all-in-one
pipeline from a standing start (its database and empty replica prepared, and the page cache
emptied, outside the clock, as in bench/run's initial sync) until every file is recorded on the
replica. Then, in the same process, warm: a second tree of FILES files is renamed into the watched
folder and timed until it is recorded too, as a service that has run for a while meets a night's
files. A build setting that only trades start-up for steady speed shows there. Prints each run, then
per build the medians and spreads of the start-up (until the replica is registered), the whole cold
run, the warm batch, and the CPU time of the process in each (the warm batch's also in the kernel:
system time, the file work a copy tool cannot avoid).
"""
import os, shutil, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench

os.environ.setdefault("PGPASSWORD", "xtelem")


def main():
    if len(sys.argv) < 4 or not all("=" in a for a in sys.argv[3:]):
        raise SystemExit(__doc__)
    files, rounds = int(sys.argv[1]), int(sys.argv[2])
    builds = dict(a.split("=", 1) for a in sys.argv[3:])
    for name, path in builds.items():
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{name}={path}: not an executable")
    work = tempfile.mkdtemp(prefix="xtelemdb-builds-")
    try:
        run_rounds(work, files, rounds, builds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_rounds(work, files, rounds, builds):
    src, dst = os.path.join(work, "src"), os.path.join(work, "dst")
    # The warm batch waits beside the watched folder, on the same file system, for its rename.
    waiting, arrived = os.path.join(work, "night"), os.path.join(src, "night")
    bench.make_tree(src, files, 1024, 65536)
    # Names of their own: a night's new files, not candidates for a move of the first tree's.
    bench.make_tree(waiting, files, 1024, 65536, name="night")
    runs = {name: [] for name in builds}
    for round in range(rounds):
        # Every other round in the opposite order: no build always runs right after the same one.
        order = list(builds.items())
        for name, xt in order if round % 2 == 0 else reversed(order):
            world = bench.World(work, [src], [bench.fresh(dst)])
            try:
                # The binary and the source files read from the disk, for every build alike.
                bench.drop_caches()
                start = time.monotonic()
                process = world.start("sync", "continuous=true", xt=xt)
                world.wait_count("select count(*) from replicas", 1)
                startup = time.monotonic() - start
                world.wait_count("select count(*) from file_replicas", files)
                whole = time.monotonic() - start
                user, system = bench.cpu_times(process.pid)
                cpu = user + system
                bench.drop_caches()
                start = time.monotonic()
                os.rename(waiting, arrived)
                world.wait_count("select count(*) from file_replicas", 2 * files)
                warm = time.monotonic() - start
                warm_user, warm_system = (after - before for after, before in zip(bench.cpu_times(process.pid), (user, system)))
                warm_cpu = warm_user + warm_system
            finally:
                try:
                    world.close()
                finally:
                    if os.path.exists(arrived):
                        os.rename(arrived, waiting)
            runs[name].append((startup, whole, cpu, warm, warm_cpu, warm_system))
            print(f"{name}: start-up {startup:.2f} s, {files} files in {whole:.2f} s, CPU {cpu:.2f} s "
                  f"(system {system:.2f}); warm, {files} more in {warm:.2f} s, CPU {warm_cpu:.2f} s (system {warm_system:.2f})", flush=True)
    for name, values in runs.items():
        figures = []
        for label, column in (("start-up", 0), ("whole cold run", 1), ("CPU", 2), ("warm batch", 3), ("its CPU", 4), ("of which the kernel's", 5)):
            column = sorted(v[column] for v in values)
            figures.append(f"{label} {bench.percentile(column, 50):.2f} s ({column[0]:.2f}-{column[-1]:.2f})")
        print(f"{name}, medians of {rounds}: " + ", ".join(figures))


if __name__ == "__main__":
    main()
