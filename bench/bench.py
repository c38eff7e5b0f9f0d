#!/usr/bin/env python3
"""bench/run's driver: makes the data, runs each tool several times in one session, writes the tables.

Every figure is the median of at least 3 runs with its spread (min-max); ratios are taken within
this run. Nothing here is part of the test suite, and no test asserts a time.
"""
import argparse, csv, datetime, os, platform, random, re, shutil, signal, socket, statistics, subprocess, tempfile, threading, time, urllib.request, base64, json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, ".build", "bench")
XT = os.path.join(BUILD, "xtelemdb")
BENCH = os.path.join(BUILD, "xtelemdb-bench")
HOST = "benchhost"
PG = dict(host="127.0.0.1", user="xtelem")
WATCHER_LIST = 250  # FileWatchService.PublishBatch
results = []  # (section, figure, tool, values, unit)
notes = {}  # section: what its table needs said beside it


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def psql(sql, db="postgres"):
    return sh("psql", "-qtA", "-h", PG["host"], "-U", PG["user"], "-d", db, "-c", sql).stdout.strip()


def management(method, path, body=None):
    request = urllib.request.Request("http://127.0.0.1:15672/api/" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    answer = urllib.request.urlopen(request).read()
    return json.loads(answer) if answer else None


class Build:
    """One build of xtelemdb: its binaries and the commit they were built from."""

    def __init__(self, folder, commit, label):
        self.xt = os.path.join(folder, "xtelemdb")
        self.bench = os.path.join(folder, "xtelemdb-bench")
        self.commit = commit
        self.label = label


def git(*args):
    return sh("git", "-C", ROOT, *args).stdout.strip()


def current_build():
    dirty = sh("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if dirty else "")
    return Build(BUILD, commit, "")


def baseline_build(rev):
    """xtelemdb as built from another commit, into .build/bench-baseline, as bench/run builds the
    current one: its own bench/Bench, so that its copy engine is its own too. Built once per commit."""
    found = sh("git", "-C", ROOT, "rev-parse", "--verify", "--quiet", rev + "^{commit}", check=False)
    if found.returncode != 0:
        raise SystemExit(f"--baseline {rev}: not a commit of {ROOT}")
    full = found.stdout.strip()
    short = git("rev-parse", "--short", full)
    folder = os.path.join(ROOT, ".build", "bench-baseline")
    stamp = os.path.join(folder, ".commit")
    built_as = f"{full} published ready-to-run"  # a folder built otherwise (an older bench) is built again
    if not (os.path.exists(stamp) and open(stamp).read().strip() == built_as):
        print(f"building the baseline {short} into {folder}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        source = tempfile.mkdtemp(prefix="xtelemdb-baseline-")
        try:
            archive = subprocess.Popen(["git", "-C", ROOT, "archive", full], stdout=subprocess.PIPE)
            sh("tar", "-x", "-C", source, stdin=archive.stdout)
            if archive.wait() != 0:
                raise SystemExit(f"--baseline {rev}: git archive failed")
            project = os.path.join(source, "bench", "Bench")
            if not os.path.isdir(project):
                project = os.path.join(source, "src", "Cli")  # before bench/Bench: no copy engine alone
            # As bench/run publishes the current one: precompiled, whatever the commit's project said.
            built = sh("dotnet", "publish", project, "-c", "Release", "--use-current-runtime", "--self-contained", "false",
                       "-p:PublishReadyToRun=true", "-o", folder, "-v", "quiet", "-nologo", check=False)
            if built.returncode != 0:
                raise SystemExit(f"--baseline {rev}: {short} does not build:\n{built.stdout[-3000:]}{built.stderr[-2000:]}")
        finally:
            shutil.rmtree(source, ignore_errors=True)
        with open(stamp, "w") as f:
            f.write(built_as + "\n")
    subject = git("log", "-1", "--format=%s", full)
    build = Build(folder, f"{short} ({subject if len(subject) <= 80 else subject[:79] + '…'})", short)
    if not os.path.exists(build.bench) or "copy-engine".encode("utf-16-le") not in open(build.bench + ".dll", "rb").read():
        build.bench = None
    return build


class World:
    """A fresh database and RabbitMQ virtual host, and a TOML file naming them."""
    made = 0

    def __init__(self, work, roots, replicas, settle="200ms", poll="5m", tables=None):
        World.made += 1
        self.name = f"bench_{os.getpid()}_{World.made}"
        psql(f"create database {self.name}")
        management("PUT", f"vhosts/{self.name}")
        management("PUT", f"permissions/{self.name}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        self.config = os.path.join(work, self.name + ".toml")
        text = f'host = "{HOST}"\n[database]\nconnection = "Host=127.0.0.1;Database={self.name};Username=xtelem"\n'
        text += f'[broker]\nuri = "amqp://127.0.0.1:5672/{self.name}"\n'
        text += f'[watch]\nroots = {json.dumps(roots)}\nsettle = "{settle}"\nmax_interval = "1m"\npoll_interval = "{poll}"\n'
        for replica in replicas:
            body = (tables or {}).get(replica, "local = true")
            text += f'[replicas."{replica}"]\n{body}\n'
            if os.path.isdir(replica):
                mark(replica)
        with open(self.config, "w") as f:
            f.write(text)
        self.processes = []
        self.session = None

    def start(self, *args, log=None, xt=XT):
        out = open(log, "w") if log else subprocess.DEVNULL
        process = subprocess.Popen([xt, *args, "--config", self.config], stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def run(self, *args, xt=XT):
        return sh(xt, *args, "--config", self.config, check=False)

    def rows(self, sql):
        """One persistent psql session: a new one per poll would fork a back end 20 times a second,
        and that load would be charged to whatever is being measured. Not for two threads at once."""
        if self.session is None:
            self.session = subprocess.Popen(["psql", "-qtA", "-h", PG["host"], "-U", PG["user"], "-d", self.name],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.session.stdin.write(sql.rstrip(";") + ";\n\\echo --end--\n")
        self.session.stdin.flush()
        lines = []
        while (line := self.session.stdout.readline()) and line.strip() != "--end--":
            lines.append(line.strip())
        if not line:
            raise RuntimeError(f"psql ended: {lines}")
        return lines

    def count(self, sql):
        lines = self.rows(sql)
        try:
            return int(lines[-1])
        except (ValueError, IndexError):
            return -1  # not migrated yet: psql printed the error instead

    def wait_count(self, sql, n, timeout=1800):
        """Polls until the count reaches n. A count(*) of a large table is itself work for PostgreSQL,
        so the polls thin out while far from n (a third of the time still to go, at the rate so far)
        and close in to every 50 ms near the end."""
        start = time.time()
        first = None
        while time.time() < start + timeout:
            now, count = time.time(), self.count(sql)
            if count >= n:
                return
            if first is None and count > 0:
                first = (now, count)
            pause = 0.05
            if first and count > first[1]:
                rate = (count - first[1]) / (now - first[0])
                pause = min(max((n - count) / rate / 3, 0.05), 2.0)
            time.sleep(pause)
        raise TimeoutError(f"{sql} did not reach {n}")

    def close(self):
        if self.session is not None:
            self.session.stdin.close()
            self.session.wait()
        for p in self.processes:
            p.kill()
            p.wait()
        for attempt in range(10):
            # A killed process's back ends can still be ending: (force) then fails for a moment.
            dropped = sh("psql", "-qtA", "-h", PG["host"], "-U", PG["user"], "-d", "postgres", "-c",
                         f"drop database if exists {self.name} with (force)", check=False)
            if dropped.returncode == 0:
                break
            time.sleep(1)
        else:
            print(f"  (could not drop database {self.name}: {dropped.stderr.strip()})", flush=True)
        management("DELETE", f"vhosts/{self.name}")


def make_tree(folder, files, low, high, depth=3, fanout=10, name="f"):
    rng = random.Random(7)
    total = 0
    for i in range(files):
        parts = [f"d{(i // fanout ** (level + 1)) % fanout}" for level in range(depth)]
        path = os.path.join(folder, *parts, f"{name}{i}.dat")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        size = rng.randint(low, high)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    return total


def make_large(folder, files, size):
    os.makedirs(folder, exist_ok=True)
    chunk = os.urandom(1 << 20)
    for i in range(files):
        with open(os.path.join(folder, f"big{i}.raw"), "wb") as f:
            for _ in range(size >> 20):
                f.write(chunk)
    return files * size


class Clock:
    """Whether a timed region is running: preparation (fresh) refuses to run inside one."""
    running = False


def cpu_times(pid):
    """The user and the system CPU time a process has used, in seconds (utime, stime of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """The user and system CPU time a process has used, in seconds."""
    return sum(cpu_times(pid))


def drop_caches():
    """The same cache state for every run of every tool: the previous run's writes flushed, and
    (as root) the page cache emptied, so that no tool reads what another left in memory."""
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def timed(fn):
    subprocess.run(["sync"])  # the previous run's writes are not this run's cost
    Clock.running = True
    start = time.monotonic()
    try:
        fn()
    finally:
        Clock.running = False
    return time.monotonic() - start


def interleaved(trials, runs):
    """Each tool once per round (A, B, C, A, B, C…), so that a slow minute of this shared machine
    hits every tool alike. A trial is (prepare, run[, clean]): prepare and clean run outside the
    clock for every tool, and fresh() refuses to run inside it, so no tool is timed differently."""
    times = {tool: [] for tool in trials}
    for _ in range(runs):
        for tool, trial in trials.items():
            prepare, run, clean = (tuple(trial) + (None,))[:3]
            prepare()
            drop_caches()
            try:
                times[tool].append(timed(run))
            finally:
                if clean:
                    clean()
    return times


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def paired(times, peer, tool):
    """peer time / tool time, round by round: both ran in the same minute of the machine."""
    return [p / t for p, t in zip(times[peer], times[tool])]


def record(section, figure, tool, values, unit):
    results.append((section, figure, tool, values, unit))
    print(f"  {figure:40} {tool:28} median {statistics.median(values):10.2f} {unit}  ({min(values):.2f}-{max(values):.2f})", flush=True)


def mark(path):
    """The marker add_replica writes at a replica's root: without it nothing is written there."""
    with open(os.path.join(path, ".xtelemdb-replica"), "w") as f:
        f.write("bench replica\n")
    return path


def fresh(path):
    if Clock.running:
        raise RuntimeError(f"fresh({path}) inside a timed region: every tool's preparation runs outside the clock")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def initial_sync(work, src, files, nbytes, label, runs, baseline=None):
    """baseline: another commit's build, timed in the same rounds, with its ratios after / before."""
    section = f"1. initial sync: {label}"
    print(section, flush=True)
    dst = os.path.join(work, "dst")
    empty = lambda: fresh(dst)
    startups = {}
    engine = World(work, [], [dst])  # the copy engine's settings; the engine checks no marker

    def pipeline(*commands, xt=XT):
        """xtelemdb from a standing start: its database, virtual host and empty replica are prepared
        outside the clock, as the peers' empty folders are; starting its processes is timed."""
        state = {}

        def prepare():
            state["world"] = World(work, [src], [fresh(dst)])

        def run():
            world, start = state["world"], time.monotonic()
            for command in commands:
                world.start(*command, xt=xt)
            world.wait_count("select count(*) from replicas", 1)
            startups.setdefault((commands, xt), []).append(time.monotonic() - start)
            world.wait_count("select count(*) from file_replicas", files)
        return prepare, run, lambda: state["world"].close()

    def copy_engine(bench):
        return empty, lambda: sh(bench, "copy-engine", src, dst, "--config", engine.config)

    all_in_one = ("sync", "continuous=true")
    trials = {
        "cp -a": (empty, lambda: sh("cp", "-a", src, dst)),
        # cp and rsync leave their copies in the page cache; these are on the disk when they end, as xtelemdb's are.
        "cp -a, then sync": (empty, lambda: (sh("cp", "-a", src, dst), sh("sync"))),
        "rsync -a": (empty, lambda: sh("rsync", "-a", src + "/", dst + "/")),
        "rsync -a, then sync": (empty, lambda: (sh("rsync", "-a", src + "/", dst + "/"), sh("sync"))),
        "rsync -a --fsync": (empty, lambda: sh("rsync", "-a", "--fsync", src + "/", dst + "/")),
        "rclone copy": (empty, lambda: sh("rclone", "copy", "--config", "/dev/null", src, dst)),
        # xtelemdb's copying alone, without messages or database: what the pipeline adds is the rest.
        "xtelemdb copy engine alone": copy_engine(BENCH),
        "xtelemdb all-in-one": pipeline(all_in_one),
        "xtelemdb 3 processes": pipeline(("run", "Inventory"), ("run", "Replicator"), ("run", "Watcher")),
    }
    before = {}  # the current tool's name: the baseline's same tool
    if baseline:
        before["xtelemdb all-in-one"] = f"xtelemdb all-in-one, {baseline.label}"
        trials[before["xtelemdb all-in-one"]] = pipeline(all_in_one, xt=baseline.xt)
        if baseline.bench:
            before["xtelemdb copy engine alone"] = f"xtelemdb copy engine alone, {baseline.label}"
            trials[before["xtelemdb copy engine alone"]] = copy_engine(baseline.bench)
    try:
        times = interleaved(trials, runs)
    finally:
        engine.close()
    alone = startups[((all_in_one,), XT)]
    # The same runs without the time to start the .NET processes and reach the broker and database.
    times["xtelemdb all-in-one, after start-up"] = [t - s for t, s in zip(times["xtelemdb all-in-one"], alone)]
    record(section, "start-up until the replica is registered", "xtelemdb all-in-one", alone, "s")
    if baseline:
        record(section, "start-up until the replica is registered", before["xtelemdb all-in-one"], startups[((all_in_one,), baseline.xt)], "s")
    for tool, values in times.items():
        record(section, "files/s", tool, [files / t for t in values], "files/s")
        record(section, "MB/s", tool, [nbytes / 1e6 / t for t in values], "MB/s")
    for tool in ("xtelemdb all-in-one", "xtelemdb 3 processes", "xtelemdb all-in-one, after start-up", "xtelemdb copy engine alone"):
        for peer in ("rsync -a", "rsync -a, then sync", "rsync -a --fsync", "cp -a", "cp -a, then sync"):
            record(section, f"speed relative to {peer}", tool, paired(times, peer, tool), "x")
    for after, baseline_tool in before.items():
        record(section, f"speed after / before ({baseline.label}), paired per round", after, paired(times, baseline_tool, after), "x")


def latency(work, count):
    section = "2. change latency, close to complete replica"
    print(section, flush=True)
    rng = random.Random(11)

    def measure(src, target_of):
        waits = []
        pending = {}
        lock = threading.Lock()
        done = threading.Event()

        def poll():
            while not done.is_set() or pending:
                with lock:
                    items = list(pending.items())
                for path, (target, size, closed) in items:
                    try:
                        if os.stat(target).st_size == size:
                            with lock:
                                del pending[path]
                            waits.append(time.monotonic() - closed)
                    except FileNotFoundError:
                        pass
                time.sleep(0.002)
        thread = threading.Thread(target=poll)
        thread.start()
        for i in range(count):
            path = os.path.join(src, f"l{i}.dat")
            data = rng.randbytes(rng.randint(4096, 65536))
            with open(path, "wb") as f:
                f.write(data)
            closed = time.monotonic()
            with lock:
                pending[path] = (target_of(path), len(data), closed)
            time.sleep(rng.uniform(0.05, 0.25))
        done.set()
        thread.join(timeout=120)
        return waits

    def percentiles(tool, waits):
        for p in (50, 95, 99):
            record(section, f"p{p}", tool, [percentile(waits, p) * 1000], "ms")

    src, dst = fresh(os.path.join(work, "lat-src")), fresh(os.path.join(work, "lat-dst"))
    world = World(work, [src], [dst], settle="20ms")
    try:
        world.start("sync", "continuous=true")
        world.wait_count("select count(*) from replicas", 1)
        time.sleep(2)
        percentiles("xtelemdb, settle 20ms", measure(src, lambda p: dst + "/" + HOST + p))
    finally:
        world.close()

    src, dst = fresh(os.path.join(work, "lat-src2")), fresh(os.path.join(work, "lat-dst2"))
    config = os.path.join(work, "lsyncd.lua")
    with open(config, "w") as f:
        f.write(f'settings {{ nodaemon = true }}\nsync {{ default.rsync, source = "{src}", target = "{dst}", delay = 0 }}\n')
    lsyncd = subprocess.Popen(["lsyncd", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        percentiles("lsyncd + rsync, delay 0", measure(src, lambda p: dst + "/" + os.path.basename(p)))
    finally:
        lsyncd.kill()


def steady_state(work, files, idle_seconds=30):
    section = f"3. steady state, {files:,} files in sync"
    print(section, flush=True)
    src = os.path.join(work, "steady")
    make_tree(src, files, 1, 1, depth=3, fanout=20)
    find = [timed(lambda: subprocess.run(["find", src, "-printf", "%s %T@\n"], stdout=subprocess.DEVNULL, check=True)) for _ in range(3)]
    record(section, "full stat poll, wall", "find -printf", [t * 1000 for t in find], "ms")
    log = os.path.join(work, "watcher.log")
    world = World(work, [src], [], poll="4s")
    try:
        watcher = world.start("run", "Watcher", log=log)
        deadline = time.time() + 600
        polls = []
        while len(polls) < 3 and time.time() < deadline:
            time.sleep(1)
            polls = re.findall(r"Poll: \d+ files in (\d+):(\d+):([\d.]+)", open(log).read())
        poll_ms = [(int(h) * 3600 + int(m) * 60 + float(s)) * 1000 for h, m, s in polls]
        record(section, "full stat poll, wall", "xtelemdb watcher", poll_ms, "ms")
        record(section, "poll cost relative to find", "xtelemdb watcher", [t / statistics.median(find) / 1000 for t in poll_ms], "x")
        rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{watcher.pid}/status").read()).group(1)) / 1024
        record(section, "resident memory", "xtelemdb watcher", [rss], "MB")
    finally:
        world.close()
    idle_log = os.path.join(work, "idle.log")
    world = World(work, [src], [], poll="1h")
    try:
        watcher = world.start("run", "Watcher", log=idle_log)
        while "Initial scan" not in open(idle_log).read():  # the initial scan is not idleness
            time.sleep(1)
        time.sleep(5)
        before = cpu_seconds(watcher.pid)
        time.sleep(idle_seconds)
        record(section, "idle CPU", "xtelemdb watcher", [(cpu_seconds(watcher.pid) - before) / idle_seconds * 100], "% of a core")
    finally:
        world.close()


def ingest(work, count, runs):
    section = f"4. inventory ingest, {count:,} FileChanged"
    print(section, flush=True)
    sends, rates, ceiling, drains, list_sends, list_rates = [], [], [], [], [], []

    def drain(world, per_list):
        """Queued first, as a watcher's initial scan would leave them, then drained by the inventory."""
        out = sh(BENCH, "ingest", str(count), str(per_list), "--config", world.config).stdout
        process = world.start("run", "Inventory")
        # Timed from the first row: the process's start-up is not the ingest rate.
        world.wait_count("select count(*) from file_origins", 1)
        rate = count / timed(lambda: world.wait_count("select count(*) from file_origins", count))
        process.kill()
        process.wait()
        psql("truncate file_origins cascade", world.name)
        return float(re.search(r"send_rate (\d+)", out).group(1)), rate

    for _ in range(runs):
        world = World(work, [], [])
        try:
            # The broker's own ceiling first: the same queue drained by a bare consumer.
            sh(BENCH, "ingest", str(count), "--config", world.config)
            out = sh(BENCH, "drain-ceiling", str(count), "--config", world.config).stdout
            drains.append(float(re.search(r"drain_rate (\d+)", out).group(1)))
            send, rate = drain(world, 1)
            sends.append(send), rates.append(rate)
            send, rate = drain(world, WATCHER_LIST)
            list_sends.append(send), list_rates.append(rate)
            out = sh(BENCH, "copy-ceiling", str(count), "--config", world.config).stdout
            ceiling.append(float(re.search(r"copy_rate (\d+)", out).group(1)))
        finally:
            world.close()
    single, lists = "xtelemdb inventory, one per message", f"xtelemdb inventory, {WATCHER_LIST} per message (as the watcher sends)"
    record(section, "FileChanged/s", single, rates, "msg/s")
    record(section, "FileChanged/s", lists, list_rates, "msg/s")
    record(section, "rows/s", "binary COPY (ceiling)", ceiling, "rows/s")
    record(section, "messages/s", "bare RabbitMQ.Client consumer, ack each (broker ceiling)", drains, "msg/s")
    record(section, "relative to COPY", single, [r / c for r, c in zip(rates, ceiling)], "x")
    record(section, "relative to COPY", lists, [r / c for r, c in zip(list_rates, ceiling)], "x")
    record(section, "FileChanged sent/s", "one per message (publisher confirms)", sends, "msg/s")
    record(section, "FileChanged sent/s", f"{WATCHER_LIST} per message, as the watcher sends (publisher confirms)", list_sends, "msg/s")


def resync(work, src, files, runs):
    section = f"5. resync of a new replica, {files:,} files"
    print(section, flush=True)
    times = []
    for _ in range(runs):
        first, second = fresh(os.path.join(work, "rs-a")), fresh(os.path.join(work, "rs-b"))
        world = World(work, [src], [first])
        try:
            world.start("sync", "continuous=true")
            world.wait_count("select count(*) from file_replicas", files)
            world.run("add_replica", f"prefix={second}")
            result = []
            times.append(timed(lambda: result.append(world.run("sync", f"replica={second}"))))
            assert result[0].returncode == 0, result[0].stdout + result[0].stderr
        finally:
            world.close()
    record(section, "files/s", "xtelemdb sync", [files / t for t in times], "files/s")


def sftp(work, large, small, runs):
    section = "6. SFTP to sshd on 127.0.0.1"
    print(section, flush=True)
    keys = os.path.join(work, "ssh")
    fresh(keys)
    home = fresh(os.path.join(keys, "home"))
    for name in ("host_key", "user_key"):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(keys, name))
    shutil.copy(os.path.join(keys, "user_key.pub"), os.path.join(keys, "authorized_keys"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(keys, "sshd_config"), "w") as f:
        f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys}/host_key\nAuthorizedKeysFile {keys}/authorized_keys\n"
                f"PidFile {keys}/sshd.pid\nPasswordAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                f"MaxStartups 100\nSubsystem sftp internal-sftp -d {home}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(keys, "sshd_config")], stderr=subprocess.DEVNULL)
    time.sleep(1)
    host_key = open(os.path.join(keys, "host_key.pub")).read().split()
    known = os.path.join(keys, "known_hosts")
    with open(known, "w") as f:
        f.write(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    user = os.environ.get("USER", "root")
    ssh_opts = ["-P", str(port), "-i", os.path.join(keys, "user_key"), "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes"]
    try:
        for label, src, nbytes, files in (("256 MiB files", large[0], large[1], large[2]), ("4 KiB files", small[0], small[1], small[2])):
            batch = os.path.join(keys, "batch")
            with open(batch, "w") as f:
                f.write(f"put -r {src} sftp-peer\n")
            ssh_cmd = f"ssh -p {port} -i {keys}/user_key -o UserKnownHostsFile={known} -o BatchMode=yes"
            trials = {
                "OpenSSH sftp -b": (lambda: fresh(os.path.join(home, "sftp-peer")),
                                    lambda: sh("sftp", *ssh_opts, "-b", batch, f"{user}@127.0.0.1")),
                "rsync -e ssh": (lambda: fresh(os.path.join(home, "rsync-peer")),
                                 lambda: sh("rsync", "-a", "-e", ssh_cmd, src + "/", f"{user}@127.0.0.1:{home}/rsync-peer/")),
            }
            worlds = []
            for connections in (1, 4):
                url = f"ssh://{user}@127.0.0.1:{port}/xt{connections}"
                world = World(work, [], [url], tables={url: f'identity_file = "{keys}/user_key"\nknown_hosts = "{known}"\nconnections = {connections}'})
                worlds.append(world)
                # The copy engine alone checks no marker: its folder is prepared exactly as the peers' are.
                trials[f"xtelemdb SFTP, {connections} session{'s' if connections > 1 else ''}"] = (
                    lambda c=connections: fresh(os.path.join(home, f"xt{c}")),
                    lambda u=url, w=world: sh(BENCH, "copy-engine", src, u, "--config", w.config))
            try:
                times = interleaved(trials, runs)
            finally:
                for world in worlds:
                    world.close()
            for tool, values in times.items():
                record(f"{section}: {label}", "MB/s" if files < 100 else "files/s", tool,
                       [nbytes / 1e6 / t for t in values] if files < 100 else [files / t for t in values], "MB/s" if files < 100 else "files/s")
            for tool in [t for t in times if t.startswith("xtelemdb")]:
                record(f"{section}: {label}", "relative to OpenSSH sftp", tool, paired(times, "OpenSSH sftp -b", tool), "x")
                record(f"{section}: {label}", "relative to rsync -e ssh", tool, paired(times, "rsync -e ssh", tool), "x")
    finally:
        sshd.kill()


LINK = os.path.join(ROOT, "scripts", "wan-link")
WAN_RTT = "150ms"


class Wan:
    """sshd across a long link (scripts/wan-link): in a network namespace of its own behind a veth
    pair, rate-limited by tbf both ways where a rate is given, and reached through a proxy on
    127.0.0.1 that holds every byte for half the round trip each way."""
    made = 0

    def __init__(self, work, rate=None):
        Wan.made += 1
        self.name, address = f"xtbench{Wan.made}", f"10.232.{Wan.made}"
        self.keys = fresh(os.path.join(work, self.name))
        self.home = fresh(os.path.join(self.keys, "home"))
        for key in ("host_key", "user_key"):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.keys, key))
        shutil.copy(os.path.join(self.keys, "user_key.pub"), os.path.join(self.keys, "authorized_keys"))
        config = os.path.join(self.keys, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port 22\nListenAddress {address}.2\nHostKey {self.keys}/host_key\nAuthorizedKeysFile {self.keys}/authorized_keys\n"
                    f"PidFile {self.keys}/sshd.pid\nPasswordAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                    f"MaxStartups 100\nMaxSessions 100\nSubsystem sftp internal-sftp -d {self.home}\n")
        sh(LINK, "down", self.name, check=False)
        sh(LINK, "up", self.name, address, *([rate] if rate else []))
        os.makedirs("/run/sshd", exist_ok=True)
        self.sshd = subprocess.Popen(["ip", "netns", "exec", self.name, "/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex((f"{address}.2", 22)) == 0:
                    break
            time.sleep(0.05)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proxy = subprocess.Popen([LINK, "proxy", f"127.0.0.1:{self.port}", f"{address}.2:22", WAN_RTT], stdout=subprocess.PIPE, text=True)
        assert self.proxy.stdout.readline().strip() == "ready"
        self.known = os.path.join(self.keys, "known_hosts")
        with open(self.known, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} " + " ".join(open(os.path.join(self.keys, "host_key.pub")).read().split()[:2]) + "\n")
        self.user = os.environ.get("USER", "root")
        self.ssh = f"ssh -p {self.port} -i {self.keys}/user_key -o UserKnownHostsFile={self.known} -o BatchMode=yes"

    def sent(self):
        """Bytes sent into the server's namespace so far: the veth's own counter, SSH's overhead included."""
        with open(f"/sys/class/net/{self.name[:10]}-h/statistics/tx_bytes") as f:
            return int(f.read())

    def cut(self):
        """Every connection across the link dropped at once."""
        self.proxy.send_signal(signal.SIGUSR1)

    def url(self, folder):
        return f"ssh://{self.user}@127.0.0.1:{self.port}/{folder}"

    def table(self):
        return f'identity_file = "{self.keys}/user_key"\nknown_hosts = "{self.known}"'

    def rsync(self, src, folder, *options):
        return sh("rsync", "-a", *options, "-e", self.ssh, src + "/", f"{self.user}@127.0.0.1:{self.home}/{folder}/", check=False)

    def close(self):
        for p in (self.proxy, self.sshd):
            p.kill()
            p.wait()
        sh(LINK, "down", self.name, check=False)


def make_random(folder, files, size):
    """Random bytes throughout: rsync's delta transfer finds no block twice, as in real camera frames."""
    os.makedirs(folder, exist_ok=True)
    for i in range(files):
        with open(os.path.join(folder, f"frame{i}.raw"), "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
    return files * size


def wan(work, runs, quick):
    """SFTP replicas across a 150 ms round trip: the copy engine from a standing start (its process,
    its SSH handshakes and its copies; a replicator keeps its sessions open, so this is its worst
    case) beside rsync -a -e ssh (its handshake likewise). Targets: small files >= 1.0x rsync's
    files/s; large files >= 0.9x rsync's MB/s and >= 0.9x the link's rate under tbf; a growing .bintel
    sends <= 1.5x its final size; a 256 MiB transfer cut at 80% sends <= 30% of it again."""
    section = f"7. SFTP across a {WAN_RTT} round trip"
    print(section, flush=True)
    small = os.path.join(work, "wan-small")
    small_files = 300
    make_tree(small, small_files, 2048, 32768, depth=1)
    large = os.path.join(work, "wan-large")
    large_bytes = make_random(large, 1, (64 if quick else 128) << 20)
    for rate, label in ((None, "delay only"), ("100mbit", "tbf 100 Mbit/s")):
        link = Wan(work, rate)
        world = None
        try:
            url = link.url("xt")
            world = World(work, [], [url], tables={url: link.table()})
            engine = lambda src: sh(BENCH, "copy-engine", src, url, "--config", world.config)

            def target(folder):
                return lambda: mark(fresh(os.path.join(link.home, folder)))
            trials = {"rsync -a -e ssh": (target("rsync"), lambda: link.rsync(small, "rsync")),
                      "xtelemdb SFTP copy engine": (target("xt"), lambda: engine(small))}
            if rate is None:
                times = interleaved(trials, runs)
                record(f"{section}: {small_files} files of 2-32 KiB, {label}", "files/s", "rsync -a -e ssh", [small_files / t for t in times["rsync -a -e ssh"]], "files/s")
                record(f"{section}: {small_files} files of 2-32 KiB, {label}", "files/s", "xtelemdb SFTP copy engine", [small_files / t for t in times["xtelemdb SFTP copy engine"]], "files/s")
                record(f"{section}: {small_files} files of 2-32 KiB, {label}", "relative to rsync -a -e ssh", "xtelemdb SFTP copy engine", paired(times, "rsync -a -e ssh", "xtelemdb SFTP copy engine"), "x")
            trials = {"rsync -a -e ssh": (target("rsync"), lambda: link.rsync(large, "rsync")),
                      "xtelemdb SFTP copy engine": (target("xt"), lambda: engine(large))}
            times = interleaved(trials, runs)
            figure = f"{section}: 1 file of {large_bytes >> 20} MiB, {label}"
            for tool, values in times.items():
                record(figure, "MB/s", tool, [large_bytes / 1e6 / t for t in values], "MB/s")
            record(figure, "relative to rsync -a -e ssh", "xtelemdb SFTP copy engine", paired(times, "rsync -a -e ssh", "xtelemdb SFTP copy engine"), "x")
            if rate:
                record(figure, "relative to the link's 12.5 MB/s", "xtelemdb SFTP copy engine", [large_bytes / 1e6 / t / 12.5 for t in times["xtelemdb SFTP copy engine"]], "x")
                cut_resumed(section, work, link, world, url, 128 if quick else 256)
            else:
                growing(section, work, link)
        finally:
            if world:
                world.close()
            link.close()


def growing(section, work, link):
    """A .bintel appended with 1 MiB every second to 10 MiB, the whole pipeline watching it; the
    bytes that crossed the link, over the file's final size. Beside it, rsync -a -e ssh after
    each append, as a cron job or lsyncd would run it."""
    figure = f"{section}: a .bintel growing to 10 MiB, 1 MiB a second"
    src = fresh(os.path.join(work, "wan-grow"))
    url = link.url("xtgrow")
    mark(fresh(os.path.join(link.home, "xtgrow")))
    world = World(work, [src], [url], tables={url: link.table()})
    path = os.path.join(src, "stream.bintel")
    try:
        world.start("sync", "continuous=true")
        world.wait_count("select count(*) from replicas", 1)
        before = link.sent()
        for i in range(10):
            with open(path, "ab") as f:
                f.write(os.urandom(1 << 20))
            time.sleep(1)
        world.wait_count(f"select count(*) from file_replicas where size_bytes = {10 << 20}", 1, timeout=300)
        record(figure, "bytes over the link / final size", "xtelemdb all-in-one", [(link.sent() - before) / (10 << 20)], "x")
    finally:
        world.close()
    os.remove(path)
    fresh(os.path.join(link.home, "rsync-grow"))
    before = link.sent()
    for i in range(10):
        with open(path, "ab") as f:
            f.write(os.urandom(1 << 20))
        link.rsync(src, "rsync-grow")
    record(figure, "bytes over the link / final size", "rsync -a -e ssh after each append", [(link.sent() - before) / (10 << 20)], "x")


def cut_resumed(section, work, link, world, url, mib):
    """A transfer of mib MiB cut at 80% (every connection dropped, watched on the server's side),
    then completed: the bytes that crossed the link after the cut, over the file's size."""
    figure = f"{section}: {mib} MiB cut at 80%, tbf 100 Mbit/s"
    src = os.path.join(work, "wan-cut")
    size = make_random(src, 1, mib << 20)

    def cut_when(folder, pattern):
        """Cuts the link once a file matching pattern under folder holds 80%; returns the bytes sent by then."""
        while True:
            for root, _, names in os.walk(folder):
                for name in names:
                    if re.fullmatch(pattern, name):
                        try:
                            if os.path.getsize(os.path.join(root, name)) >= 0.8 * size:
                                sent = link.sent()
                                link.cut()
                                return sent
                        except OSError:
                            pass
            time.sleep(0.02)

    def same(copy):
        """A figure counts only for a copy that completed with the source's bytes."""
        name = os.listdir(src)[0]
        with open(os.path.join(src, name), "rb") as a, open(copy, "rb") as b:
            if a.read() != b.read():
                raise RuntimeError(f"{copy} differs from the source after the cut and the retry")

    xt = mark(fresh(os.path.join(link.home, "xt")))
    process = subprocess.Popen([BENCH, "copy-engine", src, url, "--config", world.config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    at_cut = cut_when(xt, r"\..*\.xtelemdb-part")
    _, errors = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the copy engine failed after the cut: {errors[-2000:]}")
    same(os.path.join(xt, "bench" + os.path.join(src, os.listdir(src)[0])))  # the copy engine copies as host "bench"
    record(figure, "sent again after the cut / file size", "xtelemdb SFTP copy engine", [(link.sent() - at_cut) / size], "x")
    dst = fresh(os.path.join(link.home, "rsync-cut"))
    process = subprocess.Popen(["rsync", "-a", "--partial", "-e", link.ssh, src + "/", f"{link.user}@127.0.0.1:{dst}/"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    at_cut = cut_when(dst, r"\..*\.\w{6}")  # rsync's temporary name, kept by --partial when cut
    process.wait()
    if link.rsync(src, "rsync-cut", "--partial").returncode != 0:
        raise RuntimeError("rsync --partial failed after the cut")
    same(os.path.join(dst, os.listdir(src)[0]))
    record(figure, "sent again after the cut / file size", "rsync -a --partial -e ssh, run again", [(link.sent() - at_cut) / size], "x")


def memory(work, files):
    """The services' resident memory with a million files in the inventory and under the watch.

    The backup is a hard-linked copy of the tree (same versions, no bytes written), enrolled with
    add_replica import_origins=true; then the watcher, inventory and replicator run as three
    processes while the watcher's start-up scan reports every file and the inventory upserts them."""
    section = f"7. memory, {files:,} files in the inventory"
    print(section, flush=True)
    src, prefix = os.path.join(work, "million"), os.path.join(work, "million-backup")
    make_tree(src, files, 1, 1, depth=3, fanout=100)
    os.makedirs(os.path.join(prefix, HOST) + os.path.dirname(src), exist_ok=True)
    sh("cp", "-al", src, os.path.join(prefix, HOST) + src)
    world = World(work, [src], [prefix])
    try:
        result = []
        took = timed(lambda: result.append(world.run("add_replica", f"prefix={prefix}", "import_origins=true")))
        assert result[0].returncode == 0, result[0].stdout + result[0].stderr
        record(section, "import of an existing backup", "xtelemdb add_replica import_origins=true", [files / took], "files/s")
        assert world.count("select count(*) from file_replicas") == files
        services = {name: world.start("run", name, log=os.path.join(work, f"million-{name}.log"))
                    for name in ("Inventory", "Replicator", "Watcher")}
        log = os.path.join(work, "million-Watcher.log")
        deadline = time.time() + 1800
        while "Initial scan" not in open(log).read():
            assert time.time() < deadline, "the watcher's initial scan did not end"
            time.sleep(1)
        # Every observation taken by the inventory: every origin row seen since the scan began.
        world.wait_count("select count(*) from file_origins where seen_at is not null", files)
        time.sleep(5)
        for name, process in services.items():
            status = open(f"/proc/{process.pid}/status").read()
            rss, peak = (int(re.search(rf"{key}:\s+(\d+)", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM"))
            record(section, "resident memory", f"xtelemdb {name.lower()}", [rss], "MB")
            record(section, "peak resident memory", f"xtelemdb {name.lower()}", [peak], "MB")
    finally:
        world.close()
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)


STREAMS = 30
ROTATE_AT = 10 << 20  # a telemetry stream starts a new .bintel file once its current one holds this
CAMERA_BYTES = 236_000_000
CAMERA_PERIOD = 2.3  # seconds per camera file, written throughout the period: about 103 MB/s
CAMERA_KEPT = 3  # camera files kept on the origin; the older ones are removed once replicated
DISK_RESERVE = 20e9  # the camera stops rather than fill a disk others share
# Origins whose current version the replica lacks: replica-list's "behind" (Sql.ReplicaStatus), one replica.
FILES_BEHIND = """select count(*) from file_origins o cross join replicas r
    left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
    where r.enabled and o.missing_since is null and (fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes)"""


class Lags:
    """Close-to-replica lags: each write closed on the origin waits until the replica's file holds at
    least its size; one thread stats the replica's files every 20 ms (the lags' resolution)."""

    def __init__(self):
        self.pending = {}  # replica path: [(size, closed, kind)], sizes growing
        self.waits = {"telemetry": [], "camera": []}
        self.arrived_camera = []  # replica paths of camera files whose lag is measured
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def expect(self, target, size, closed, kind):
        with self.lock:
            self.pending.setdefault(target, []).append((size, closed, kind))

    def waiting(self):
        with self.lock:
            return sum(len(writes) for writes in self.pending.values())

    def poll(self):
        while not self.stopping.is_set():
            with self.lock:
                items = [(target, list(writes)) for target, writes in self.pending.items()]
            for target, writes in items:
                try:
                    size = os.stat(target).st_size
                except FileNotFoundError:
                    continue
                seen = time.monotonic()
                reached = [w for w in writes if w[0] <= size]  # a prefix: the sizes grow
                if not reached:
                    continue
                with self.lock:
                    del self.pending[target][:len(reached)]
                    if not self.pending[target]:
                        del self.pending[target]
                    for _, closed, kind in reached:
                        self.waits[kind].append(seen - closed)
                        if kind == "camera":
                            self.arrived_camera.append(target)
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.thread.join()


class Generator:
    """What the writers achieved against their schedule."""

    def __init__(self, scheduled):
        self.scheduled = scheduled  # bytes per second
        self.written = 0
        self.late = []  # seconds behind schedule at each tick or file
        self.elapsed = 0.0
        self.stopped = None  # why the writer stopped before the end, if it did


def telemetry_writer(src, target_of, lags, start, end, generator, rotations):
    """30 streams, each appending one record a second to its current .bintel file."""
    sizes = [int(1024 * 200 ** (i / (STREAMS - 1))) for i in range(STREAMS)]  # 1 KiB to 200 KiB, spread evenly in log
    payload = os.urandom(max(sizes))
    held, files = [0] * STREAMS, [0] * STREAMS
    tick = 0
    while (due := start + tick) < end and time.monotonic() < end:
        time.sleep(max(0.0, due - time.monotonic()))
        generator.late.append(max(0.0, time.monotonic() - due))
        for stream, size in enumerate(sizes):
            if held[stream] >= ROTATE_AT:
                files[stream], held[stream] = files[stream] + 1, 0
                rotations.append(stream)
            path = os.path.join(src, "telem", f"s{stream:02}", f"s{stream:02}_{files[stream]:04}.bintel")
            with open(path, "ab") as f:
                f.write(payload[:size])
            closed = time.monotonic()
            held[stream] += size
            generator.written += size
            lags.expect(target_of(path), held[stream], closed, "telemetry")
        tick += 1
    generator.elapsed = time.monotonic() - start


def camera_writer(src, target_of, lags, start, end, generator, written_files):
    """One camera: a 236 MB file every 2.3 s, written in 4 MiB chunks paced across the period, closed, the next one."""
    chunk = memoryview(os.urandom(4 << 20))
    number = 0
    while (due := start + number * CAMERA_PERIOD) < end and time.monotonic() < end:
        time.sleep(max(0.0, due - time.monotonic()))
        generator.late.append(max(0.0, time.monotonic() - due))
        if shutil.disk_usage(src).free < DISK_RESERVE:
            generator.stopped = f"stopped after {number} files: less than {DISK_RESERVE / 1e9:.0f} GB free on the disk"
            break
        path = os.path.join(src, "cam", f"camsci_{number:05}.raw")
        with open(path, "wb") as f:
            done = 0
            while done < CAMERA_BYTES:
                n = min(len(chunk), CAMERA_BYTES - done)
                f.write(chunk[:n])
                done += n
                generator.written += n
                time.sleep(max(0.0, due + CAMERA_PERIOD * done / CAMERA_BYTES - time.monotonic()))
        closed = time.monotonic()
        lags.expect(target_of(path), CAMERA_BYTES, closed, "camera")
        written_files.append(path)
        number += 1
    generator.elapsed = time.monotonic() - start


def slope_per_minute(samples):
    """Least-squares slope of (seconds, value) samples, per minute; 0 for fewer than two."""
    if len(samples) < 2:
        return 0.0
    mean_t = statistics.mean(t for t, _ in samples)
    mean_v = statistics.mean(v for _, v in samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread if spread else 0.0


def sustained(work, minutes):
    """A MagAO-X-like night on the all-in-one pipeline with one local replica: 30 telemetry streams
    and a camera, for minutes; the lag from each close to the replica, and whether a backlog grows."""
    section = f"8. sustained MagAO-X-like load, {minutes:g} min (targets: p99 lag < 10 s, no backlog growth)"
    print(section, flush=True)
    duration = minutes * 60
    src, dst = fresh(os.path.join(work, "sus-src")), fresh(os.path.join(work, "sus-dst"))
    for stream in range(STREAMS):
        os.makedirs(os.path.join(src, "telem", f"s{stream:02}"))
    os.makedirs(os.path.join(src, "cam"))
    target_of = lambda path: dst + "/" + HOST + path
    log = os.path.join(work, "sustained.log")
    world = World(work, [src], [dst])
    lags = Lags()
    try:
        pipeline = world.start("sync", "continuous=true", log=log)
        world.wait_count("select count(*) from replicas", 1)
        time.sleep(2)
        telemetry = Generator(sum(int(1024 * 200 ** (i / (STREAMS - 1))) for i in range(STREAMS)))
        camera = Generator(CAMERA_BYTES / CAMERA_PERIOD)
        rotations, camera_files = [], []
        start = time.monotonic()
        end = start + duration
        failures = []

        def writer(write, *args):
            try:
                write(*args)
            except Exception as e:
                failures.append(f"{write.__name__}: {e!r}")
        writers = [threading.Thread(target=writer, args=(telemetry_writer, src, target_of, lags, start, end, telemetry, rotations)),
                   threading.Thread(target=writer, args=(camera_writer, src, target_of, lags, start, end, camera, camera_files))]
        for writer in writers:
            writer.start()
        queue_depths, behind = [], []  # (seconds since start, value)
        removed = set()
        next_sample = start + 10
        drain_until = None

        def tidy():
            """Outside anything measured: a camera file's replica copy goes once its lag is measured and
            the inventory records it (the replicator is done with it), the origin's once CAMERA_KEPT newer exist."""
            with lags.lock:
                arrived = [t for t in lags.arrived_camera if t not in removed]
            for target in arrived:
                origin = target[len(dst + "/" + HOST):]
                if world.count(f"select count(*) from file_replicas where origin_path = '{origin}' and size_bytes = {CAMERA_BYTES}") > 0:
                    os.remove(target)
                    removed.add(target)
            for origin in camera_files[:-CAMERA_KEPT]:
                if target_of(origin) in removed and os.path.exists(origin):
                    os.remove(origin)

        while True:
            now = time.monotonic()
            if pipeline.poll() is not None:
                raise RuntimeError(f"xtelemdb sync ended with {pipeline.returncode} during the sustained load: {open(log).read()[-3000:]}")
            if failures:
                raise RuntimeError(f"a writer of the sustained load failed: {failures}")
            if now >= next_sample and now <= end + 1:
                queues = management("GET", f"queues/{world.name}?columns=name,messages") or []
                depth = sum(q.get("messages", 0) for q in queues
                            if q["name"].startswith("replicate-") and not q["name"].endswith(("_error", "_skipped")))
                queue_depths.append((now - start, depth))
                behind.append((now - start, world.count(FILES_BEHIND)))
                next_sample += 10
            tidy()
            if drain_until is None and not any(w.is_alive() for w in writers):
                drain_until = time.monotonic() + 120
            if drain_until is not None and (lags.waiting() == 0 or time.monotonic() > drain_until):
                break
            time.sleep(1)
        missing = lags.waiting()
        lags.stop()
        tidy()
    finally:
        lags.stopping.set()
        world.close()
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)

    for kind, label in (("telemetry", f"telemetry appends ({STREAMS} streams)"), ("camera", "camera files (236 MB)")):
        waits = lags.waits[kind]
        tool = f"xtelemdb all-in-one: {label}"
        if waits:
            for p in (50, 95, 99):
                record(section, f"close-to-replica lag p{p}", tool, [percentile(waits, p)], "s")
            record(section, "close-to-replica lag max", tool, [max(waits)], "s")
        record(section, "writes measured", tool, [len(waits)], "writes")
    record(section, "writes not on the replica 120 s after the writers stopped", "xtelemdb all-in-one", [missing], "writes")
    half = duration / 2
    for figure, samples, unit in (("replicate queue depth (management API)", queue_depths, "messages"),
                                  ("files behind (SQL, as replica-list counts)", behind, "files")):
        if samples:
            record(section, f"{figure}, every 10 s", "xtelemdb all-in-one", [v for _, v in samples], unit)
            record(section, f"{figure}, slope over the second half", "xtelemdb all-in-one",
                   [slope_per_minute([(t, v) for t, v in samples if t >= half])], unit + "/min")
    for name, generator in (("generator: telemetry", telemetry), ("generator: camera", camera)):
        record(section, f"written (scheduled {generator.scheduled / 1e6:.1f})", name, [generator.written / 1e6 / generator.elapsed], "MB/s")
        record(section, "behind its schedule, at a tick or file start", name, generator.late, "s")
    record(section, "telemetry files started by rotation at 10 MiB", "generator: telemetry", [len(rotations)], "files")

    fell_behind = [f"the {name} wrote {g.written / 1e6 / g.elapsed:.1f} MB/s of the {g.scheduled / 1e6:.1f} scheduled"
                   + (f" ({g.stopped})" if g.stopped else "")
                   for name, g in (("telemetry", telemetry), ("camera", camera))
                   if g.stopped or g.written / g.elapsed < 0.95 * g.scheduled or max(g.late, default=0) > 1]
    notes[section] = (
        f"`xtelemdb sync continuous=true` with one local replica, for {minutes:g} min: {STREAMS} telemetry streams each append "
        f"one record a second (1 KiB to 200 KiB, spread evenly in log) to its current `.bintel` file and start a new one at 10 MiB, "
        f"and one camera writes a {CAMERA_BYTES / 1e6:.0f} MB file every {CAMERA_PERIOD} s in 4 MiB chunks paced across the period. "
        "Lag: from the writer's close to the replica's file (`<replica>/<host><origin path>`) holding at least that size, "
        "polled every 20 ms. Backlog: sampled every 10 s; the slope is a least-squares line over the second half of the run. "
        f"To stay within the disk, only the last {CAMERA_KEPT} camera files stay on the origin and a camera file's replica "
        "copy is removed once its lag is measured and the inventory has recorded it: both outside anything measured, "
        "though their unlinks share the disk with the pipeline. "
        + ("The generator fell behind its schedule: " + "; ".join(fell_behind) + ". The lags are for the load it did write."
           if fell_behind else "The generator kept its schedule."))
    print("  " + ("generator fell behind: " + "; ".join(fell_behind) if fell_behind else "the generator kept its schedule"), flush=True)


SCALE_HOSTS = ["aoc", "rtc", "icc"]
SCALE_OFFSITE = "ssh://popeye/ceph/magao-x"  # selects telem and logs; a ssh:// replica's name is its URL


def psql_script(sql, db):
    """Statements one after another, each in its own transaction (VACUUM needs that), stopping at the first error."""
    return sh("psql", "-qtA", "-v", "ON_ERROR_STOP=1", "-h", PG["host"], "-U", PG["user"], "-d", db, input=sql).stdout.strip()


def scale_generate(world, files):
    """files origin rows shaped like MagAO-X's (three hosts; telem/<device>/, rawimages/<camera>/ and
    logs/<device>/, each in day folders of files named device_YYYYMMDDHHMMSSNNNNNNNNN; half a year of
    mtimes; 2% missing) and two replicas: the backup holds all but the newest 0.1% and a few older
    versions, the offsite copy selects telem and logs and holds 70% of them. Written by SQL alone:
    the keys and indexes are dropped, the rows inserted, then the indexes built and the keys checked
    once, which takes minutes at ten million where row-by-row checks take far longer."""
    tables = "'file_origins'::regclass, 'file_replicas'::regclass"
    keys = world.rows(f"select format('alter table %s add constraint %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) "
                      f"from pg_constraint where conrelid in ({tables}) and contype in ('p', 'f') order by contype desc, conrelid")
    standalone = f"from pg_index where indrelid in ({tables}) and indexrelid not in (select conindid from pg_constraint where conrelid in ({tables})) order by indexrelid"
    indexes = world.rows(f"select pg_get_indexdef(indexrelid) {standalone}")
    drops = world.rows(f"select format('alter table %s drop constraint %I', conrelid::regclass, conname) "
                       f"from pg_constraint where conrelid in ({tables}) and contype in ('p', 'f') order by contype, conrelid")
    drops += world.rows(f"select format('drop index %s', indexrelid::regclass) {standalone}")
    # Migration 009's triggers (where the schema has them) would recount each row: the backlog is rebuilt once at the end instead.
    triggers = "alter table file_origins {0} trigger user; alter table file_replicas {0} trigger user; alter table replicas {0} trigger user"
    rebuild = "select rebuild_replica_backlog(id) from replicas" if world.count("select count(*) from pg_proc where proname = 'rebuild_replica_backlog'") > 0 else "select 1"
    psql_script(";\n".join([triggers.format("disable")] + drops) + ";\n" + f"""
        insert into replicas (url, kind, host, include, include_regex)
        values ('/backup', 'local', '{HOST}', '{{}}', null),
               ('{SCALE_OFFSITE}', 'ssh', 'popeye', '{{/opt/MagAOX/telem/**,/opt/MagAOX/logs/**}}', '^/opt/MagAOX/(telem|logs)/');
        create unlogged table scale_rows as
        select i, (array['aoc', 'rtc', 'icc'])[i % 3 + 1] as host,
               '/opt/MagAOX/' || folder || '/' || device || '/' || to_char(t, 'YYYY_MM_DD') || '/' || device || '_'
                 || to_char(t, 'YYYYMMDDHH24MISS') || lpad((i % 1000000000)::text, 9, '0') || ext as path,
               date_trunc('milliseconds', t) as mtime, size, case when i % 50 = 0 then t + interval '1 day' end as missing_since
          from (select i, timestamptz '2026-05-01' + (i::float8 / {max(files, 1)}) * interval '180 days' as t,
                       case when i % 20 < 12 then 'telem' when i % 20 < 17 then 'rawimages' else 'logs' end as folder,
                       case when i % 20 between 12 and 16 then (array['camwfs', 'camsci1', 'camsci2', 'camlowfs', 'camtip', 'camacq'])[i / 20 % 6 + 1]
                            else (array['tweeterSpeck', 'woofer', 'ttmpupil', 'camwfs', 'fxngenmodwfs', 'modwfs', 'pdu0', 'tcsi', 'observers',
                                        'dmtweeter-avg', 'hsfw', 'stagebs'])[i / 20 % 12 + 1] end as device,
                       case when i % 20 < 12 then '.bintel' when i % 20 < 17 then '.xrif' else '.binlog' end as ext,
                       case when i % 20 < 12 then 10485760 - i % 100000 when i % 20 < 17 then 236000000 + i % 1000 else 2000000 - i % 100000 end as size
                  from generate_series(1, {files}) i) s;
        insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at, first_seen, seen_at, missing_since)
        select host, path, mtime, size, mtime, mtime, mtime, missing_since from scale_rows;
        insert into file_replicas (replica_id, origin_host, origin_path, mtime, size_bytes, replica_path, checksum, copied_at)
        select r.id, s.host, s.path, s.mtime, s.size - (s.i % 997 = 0)::int, '/backup/' || s.host || s.path, 'xxh3:' || lpad(to_hex(s.i), 16, '0'),
               s.mtime + interval '2 minutes'
          from scale_rows s, replicas r where r.url = '/backup' and s.i <= {files} * 0.999
        union all
        select r.id, s.host, s.path, s.mtime, s.size, 'ceph/magao-x/' || s.host || s.path, 'xxh3:' || lpad(to_hex(s.i), 16, '0'), s.mtime + interval '5 minutes'
          from scale_rows s, replicas r where r.url = '{SCALE_OFFSITE}' and s.path ~ '^/opt/MagAOX/(telem|logs)/' and s.i % 10 < 7;
        drop table scale_rows;
        set maintenance_work_mem = '512MB';
        """ + ";\n".join(keys + indexes + [triggers.format("enable"), rebuild]) + """;
        vacuum analyze file_origins;
        vacuum analyze file_replicas;
        vacuum analyze replicas;
        """ + ("vacuum analyze replica_backlog;\nvacuum analyze replica_counts;\n" if "rebuild_replica" in rebuild else ""), world.name)


def scale_quiet(world, timeout=180):
    """Until no other back end works in this database (the inventory's start-up counts): twice in a row, a
    second apart; at most timeout seconds (the count before 009 takes minutes at ten million rows here)."""
    quiet, start = 0, time.time()
    while quiet < 2 and time.time() < start + timeout:
        busy = world.count(f"select count(*) from pg_stat_activity where datname = '{world.name}' and state = 'active' and pid <> pg_backend_pid()")
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(1)


def scale_purge(world):
    """The requests the inventory sent: gone before the next run, so that none is left to count against it."""
    for queue in management("GET", f"queues/{world.name}") or []:
        if queue["name"].startswith("replicate-") or queue["name"] == Queues_RESYNC:
            management("DELETE", f"queues/{world.name}/{queue['name']}/contents")


Queues_RESYNC = "resync-requested"


def scale_inventory(world, xt):
    """The inventory started and its queues consumed, its start-up work in the database (the backlog's first count) done."""
    process = world.start("run", "Inventory", xt=xt)
    deadline = time.time() + 300
    while time.time() < deadline:
        queues = {q["name"]: q for q in management("GET", f"queues/{world.name}") or []}
        if queues.get(Queues_RESYNC, {}).get("consumers", 0) > 0:
            break
        time.sleep(0.5)
    scale_quiet(world)
    return process


def scale_stop(process):
    process.kill()
    process.wait()


def scale_first_request(world, xt, runs):
    """A resync of the offsite replica published as an operator does, to the first copy request in its queues."""
    times = []
    for _ in range(runs):
        inventory = scale_inventory(world, xt)
        try:
            out = sh(BENCH, "first-request", SCALE_OFFSITE, ",".join(SCALE_HOSTS), "--config", world.config).stdout
            times.append(float(re.search(r"first_request ([\d.]+)", out).group(1)))
        finally:
            scale_stop(inventory)
            scale_purge(world)
    return times


def scale_ingest_run(world, xt, count):
    """count FileChanged of a new host, queued as the watcher sends them (lists of 250), drained by the inventory; then forgotten again."""
    sh(BENCH, "ingest", str(count), str(WATCHER_LIST), "--config", world.config)
    # Timed from the first row, as section 4: the process's start-up is not the ingest rate.
    inventory = world.start("run", "Inventory", xt=xt)
    try:
        counted = "select count(*) from file_origins where origin_host = 'bench'"
        world.wait_count(counted, 1)
        rate = count / timed(lambda: world.wait_count(counted, count))
    finally:
        scale_stop(inventory)
    kept = world.count("select count(*) from pg_class where relname = 'replica_backlog'")
    psql_script(("delete from replica_backlog where origin_host = 'bench';\ndelete from replica_counts where origin_host = 'bench';\n" if kept else "")
                + "delete from file_origins where origin_host = 'bench';\nvacuum file_origins;\n", world.name)
    scale_purge(world)
    return rate


def scale(work, sizes, runs, ingest_count, baseline=None):
    """replica_list, a resync's first request and the ingest rate at millions of origin rows with two
    replicas: before (baseline's SQL) and after in one run, on a database of the section's own."""
    for files in sizes:
        section = f"9. the inventory at scale, {files:,} origin rows, 2 replicas"
        print(section, flush=True)
        notes[section] = (f"A database of its own: {files:,} origin rows of three hosts (telem, rawimages/<camera>, logs, day folders), "
                          "a backup replica holding all but the newest 0.1% and a few old versions, an offsite replica selecting telem and "
                          "logs and holding 70% of them; beside it an empty database with the same two replicas. replica_list is the CLI "
                          "from a standing start (process start-up included; the empty database shows that part). The first request: a "
                          "resync of the offsite replica published as plain JSON, to the first copy request in its queues, the inventory "
                          "running and idle. Ingest: 'ingest' FileChanged of a new host in lists of 250, drained by the inventory, the big "
                          "and the empty database in alternate rounds, each run's rows deleted afterwards. Before and after are timed "
                          "one after the other on the same database (the after schema is the before schema migrated), not interleaved.")
        phases = [("before", baseline), ("after", current_build())] if baseline else [("after", current_build())]
        big, empty = World(work, [], []), World(work, [], [])
        try:
            for world in (big, empty):
                assert world.run("migrate", xt=phases[0][1].xt).returncode == 0
            record(section, "generating the rows (SQL)", "generate_series, indexes built after", [timed(lambda: scale_generate(big, files))], "s")
            scale_generate(empty, 0)
            record(section, "database size", "pg_database_size", [int(psql(f"select pg_database_size('{big.name}')")) / 2**30], "GiB")
            for label, build in phases:
                tool = f"xtelemdb {label}" + (f" ({build.label})" if build.label else "")
                if label == "after" and baseline:
                    migrated = []
                    record(section, "migration 009 (back-fill)", tool, [timed(lambda: migrated.append(big.run("migrate", xt=build.xt)))], "s")
                    assert migrated[0].returncode == 0, migrated[0].stdout + migrated[0].stderr
                    assert empty.run("migrate", xt=build.xt).returncode == 0
                lists = {"big": [], "empty": []}
                for _ in range(runs):
                    for name, world in (("big", big), ("empty", empty)):
                        done = []
                        lists[name].append(timed(lambda: done.append(world.run("replica_list", xt=build.xt))))
                        if done[0].returncode != 0:
                            # Before 009 the counting query outlasts Npgsql's 30 s command timeout at ten million rows: said, and timed as it failed.
                            notes[section] += f"\n\n{tool}: replica_list on the {name} database failed after {lists[name][-1]:.1f} s: {(done[0].stdout + done[0].stderr).strip()[-300:]}"
                record(section, "replica_list", tool, lists["big"], "s")
                record(section, "replica_list, empty database", tool, lists["empty"], "s")
                record(section, "replica_list, at scale minus empty, paired per round", tool, [b - e for b, e in zip(lists["big"], lists["empty"])], "s")
                record(section, "resync: first copy request", tool, scale_first_request(big, build.xt, runs), "s")
                rates = {"big": [], "empty": []}
                for _ in range(runs):
                    for name, world in (("big", big), ("empty", empty)):
                        rates[name].append(scale_ingest_run(world, build.xt, ingest_count))
                record(section, f"ingest, {ingest_count:,} FileChanged in lists of {WATCHER_LIST}", tool + f", {files:,} rows", rates["big"], "msg/s")
                record(section, f"ingest, {ingest_count:,} FileChanged in lists of {WATCHER_LIST}", tool + ", empty", rates["empty"], "msg/s")
                record(section, "ingest at scale / empty, paired per round", tool, [b / e for b, e in zip(rates["big"], rates["empty"])], "x")
        finally:
            big.close()
            empty.close()


def accepts_settings(build, work):
    """The settings World writes, as that version reads them: its migrate command loads the TOML
    file first and names a key it does not know."""
    world = World(work, [work], [fresh(os.path.join(work, "baseline-check"))])
    try:
        result = world.run("migrate", xt=build.xt)
        if result.returncode != 0:
            raise SystemExit(f"--baseline: {build.commit} refuses the bench's settings {world.config}: {(result.stdout + result.stderr).strip()[-2000:]}")
    finally:
        world.close()


def write(args, started, builds):
    folder = os.path.join(ROOT, "bench", "results")
    os.makedirs(folder, exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H%M")
    name = os.path.join(folder, f"{stamp}{'-quick' if args.quick else ''}")
    def version(*cmd):
        try:
            return sh(*cmd, check=False).stdout.splitlines()[0] or sh(*cmd, check=False).stderr.splitlines()[0]
        except (IndexError, FileNotFoundError):
            return "?"
    machine = {
        "cores": os.cpu_count(),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "dotnet": version("dotnet", "--version"),
        "rsync": version("rsync", "--version"),
        "rclone": version("rclone", "version"),
        "lsyncd": version("lsyncd", "--version"),
        "openssh": sh("ssh", "-V", check=False).stderr.strip(),
        "postgresql": psql("show server_version"),
        "rabbitmq": version("rabbitmqctl", "version"),
    }
    with open(name + ".csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["section", "figure", "tool", "median", "min", "max", "runs", "unit"])
        for section, figure, tool, values, unit in results:
            out.writerow([section, figure, tool, f"{statistics.median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}", len(values), unit])
    with open(name + ".md", "w") as f:
        f.write(f"# xtelemdb benchmarks, {started:%Y-%m-%d %H:%M} UTC{' (quick)' if args.quick else ''}\n\n")
        f.write("Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "\n\n")
        f.write(f"xtelemdb published ready-to-run (as the image is) from {builds[0].commit}")
        f.write(f"; baseline (\"before\", rows labelled {builds[1].label}) built from {builds[1].commit}.\n\n" if len(builds) > 1 else ".\n\n")
        f.write("Each figure: the median of the runs, and the spread (min-max). Ratios are within this run.\n\n")
        current = None
        for section, figure, tool, values, unit in results:
            if section != current:
                f.write(f"\n## {section}\n\n")
                if section in notes:
                    f.write(notes[section] + "\n\n")
                f.write("| figure | tool | median | spread | runs |\n|---|---|---|---|---|\n")
                current = section
            f.write(f"| {figure} | {tool} | {statistics.median(values):.2f} {unit} | {min(values):.2f}-{max(values):.2f} | {len(values)} |\n")
    print(f"wrote {name}.md and {name}.csv")


def main():
    sections = ["sync", "latency", "steady", "ingest", "resync", "sftp", "wan", "memory", "sustained", "scale"]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, a smoke check in under 3 minutes")
    parser.add_argument("--runs", type=int, help="runs per figure: 3 by default, 1 with --quick")
    parser.add_argument("--only", help="comma-separated sections to run: " + ",".join(sections))
    parser.add_argument("--baseline", metavar="REV", help="also time xtelemdb as built from commit REV in the initial sync, in the same rounds")
    parser.add_argument("--minutes", type=float, help="length of the sustained load: 10 by default, 1 with --quick")
    parser.add_argument("--rows", help="origin rows of the scale section, comma-separated: 1000000,10000000 by default, 100000 with --quick")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else set(sections)
    if unknown := only - set(sections):
        parser.error(f"--only: unknown section {', '.join(sorted(unknown))}; expected some of {','.join(sections)}")
    if args.baseline and not only & {"sync", "scale"}:
        parser.error("--baseline times the initial sync or the scale section: it needs section sync or scale")
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    minutes = args.minutes or (1 if q else 10)
    if minutes <= 0:
        parser.error(f"--minutes: expected a positive number, got {args.minutes}")
    started = datetime.datetime.now(datetime.UTC)
    builds = [current_build()]
    if args.baseline:
        builds.append(baseline_build(args.baseline))
    work = tempfile.mkdtemp(prefix="xtelemdb-bench-")
    try:
        if args.baseline:
            accepts_settings(builds[1], work)
        small = os.path.join(work, "small")
        small_files = 1000 if q else 20000
        if only & {"sync", "resync"}:
            small_bytes = make_tree(small, small_files, 1024, 65536)
        large = os.path.join(work, "large")
        large_files, large_size = (2, 64 << 20) if q else (8, 256 << 20)
        if only & {"sync", "sftp"}:
            large_bytes = make_large(large, large_files, large_size)
        if "sync" in only:
            baseline = builds[1] if args.baseline else None
            initial_sync(work, small, small_files, small_bytes, f"{small_files:,} files of 1-64 KiB", args.runs, baseline)
            initial_sync(work, large, large_files, large_bytes, f"{large_files} files of {large_size >> 20} MiB", args.runs, baseline)
        if "latency" in only:
            latency(work, 40 if q else 500)
        if "steady" in only:
            steady_state(work, 10000 if q else 200000, idle_seconds=10 if q else 30)
        if "ingest" in only:
            ingest(work, 20000 if q else 200000, args.runs)
        if "resync" in only:
            resync(work, small, small_files, args.runs)
        if "sftp" in only:
            tiny = os.path.join(work, "tiny")
            tiny_files = 300 if q else 3000
            make_tree(tiny, tiny_files, 4096, 4096, depth=1)
            sftp(work, (large, large_bytes, large_files), (tiny, tiny_files * 4096, tiny_files), args.runs)
        if "wan" in only:
            wan(work, args.runs, q)
        if "memory" in only:
            memory(work, 20000 if q else 1000000)
        if "sustained" in only:
            sustained(work, minutes)
        if "scale" in only:
            sizes = [int(n) for n in args.rows.split(",")] if args.rows else [100000] if q else [1000000, 10000000]
            scale(work, sizes, args.runs, 5000 if q else 50000, builds[1] if args.baseline else None)
    finally:
        write(args, started, builds)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
