#!/usr/bin/env python3
"""What bounds a figure: runs one bench scenario once and reports where the machine's CPU went.

    bench/profile.py sync [FILES]     initial sync of FILES small files, all-in-one
    bench/profile.py large [FILES]    initial sync of FILES files of 256 MiB, all-in-one
    bench/profile.py ingest [COUNT [PER_MESSAGE]]
                                      the inventory draining COUNT queued observations, sent
                                      PER_MESSAGE to a message (1: FileChanged; more: FilesChanged)

Prints the CPU each process group used while the scenario ran (100% = one core), the wall time,
and the rate. Run bench/run once first: it installs the peers and builds .build/bench.
"""
import os, re, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench

os.environ.setdefault("PGPASSWORD", "xtelem")


def cpu_seconds(pids):
    """Of processes that come and go (postgres back ends): one that ended meanwhile counts nothing."""
    total = 0
    for pid in pids:
        try:
            total += bench.cpu_seconds(pid)
        except FileNotFoundError:
            pass
    return total


def pids(pattern):
    return [int(p) for p in subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()]


def machine_ticks():
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(x) for x in fields) - int(fields[3]) - int(fields[4])  # all but idle and iowait


def measure(groups, until):
    """Runs until(), sampling each group's CPU; postgres back ends come and go, so they are re-listed."""
    hz = os.sysconf("SC_CLK_TCK")
    before = {name: cpu_seconds(find()) for name, find in groups.items()}
    machine = machine_ticks()
    start = time.monotonic()
    until()
    wall = time.monotonic() - start
    for name, find in groups.items():
        print(f"  {name:10} {(cpu_seconds(find()) - before[name]) / wall * 100:5.0f}% of a core")
    print(f"  {'machine':10} {(machine_ticks() - machine) / hz / wall * 100:5.0f}% of a core ({os.cpu_count()} cores)")
    return wall


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else "sync"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    work = tempfile.mkdtemp(prefix="xtelemdb-profile-")
    src, dst = os.path.join(work, "src"), os.path.join(work, "dst")
    if scenario in ("sync", "large"):
        if scenario == "sync":
            bench.make_tree(src, count, 1024, 65536)
        else:
            bench.make_large(src, count, 256 << 20)
        os.makedirs(dst)
        world = bench.World(work, [src], [dst])
    else:
        world = bench.World(work, [], [])
    try:
        groups = {"rabbitmq": lambda: pids("beam.smp"), "postgres": lambda: pids("postgres")}
        if scenario in ("sync", "large"):
            subprocess.run(["sync"])
            process = world.start("sync", "continuous=true", log=os.path.join(work, "xtelemdb.log"))
            groups["xtelemdb"] = lambda: [process.pid]
            wall = measure(groups, lambda: world.wait_count("select count(*) from file_replicas", count))
        else:
            per_message = sys.argv[3] if len(sys.argv) > 3 else "1"
            bench.sh(bench.BENCH, "ingest", str(count), per_message, "--config", world.config)
            process = world.start("run", "Inventory", log=os.path.join(work, "xtelemdb.log"))
            groups["xtelemdb"] = lambda: [process.pid]
            wall = measure(groups, lambda: world.wait_count("select count(*) from file_origins", count))
        print(f"  {count / wall:.0f}/s over {wall:.1f} s (start-up included); log in {work}/xtelemdb.log")
        with open(f"/proc/{process.pid}/status") as f:
            status = f.read()
        rss, peak = (int(re.search(rf"{key}:\s+(\d+)", status).group(1)) // 1024 for key in ("VmRSS", "VmHWM"))
        print(f"  xtelemdb resident memory {rss} MB, peak {peak} MB")
    finally:
        world.close()


if __name__ == "__main__":
    main()
