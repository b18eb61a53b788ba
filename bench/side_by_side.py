#!/usr/bin/python3
"""Our worker against Codabench's Python worker, side by side, on one machine.

Both serve a Codabench stand-in (tests/standin) through real RabbitMQ and the
Docker engine, with the same images and programs; each has its own vhost and
stand-in, and their submissions alternate, so they never run at the same time.
Prints one row per measurement: ours, Python, ours/Python, and the target
(the targets of the project's performance issue, where it sets one).

    bench/side_by_side.py [--cases trivial,bigdata,...] [-n 10] [--quick] [--markdown]
                          [--ours BINARY] [--python-worker DIR | --no-python]

Exit status 1 when one of our cells FAILED (a Python one is a finding, not an error).

Cases (README "Performance" says what each row measures):
  trivial     a prediction + scoring pair that does nothing: site sends the job -> Finished
  bigdata     512 MiB of random input copied to the output: download, unzip, zip, upload, scoring
  twobundles  a 256 MiB submission (model weights) and 256 MiB of input data, both random,
              served at 64 MiB/s a stream as from a remote object store: the prediction
              job's downloads and unpacking, then a trivial scoring
  logburst    the program prints 200 MiB to stdout: time, and the worker's peak RSS
  idle        the worker's RSS once it consumes, and after one submission
  detailed    detailed_results.html written -> the stand-in has stored it
  startup     worker process start -> first submission Finished (it waited in the queue)
  throughput  submissions a minute: ours with 4 slots, 4 Python workers on one queue
  zip         zipping a 256 MiB random output: ours in run-local, the Python worker's calls
  floor       the engine alone (no worker, no site), each container with a network of its
              own as the Python worker runs them: the trivial pair's two containers back to
              back, and the throughput case's 24 on 4 threads; printed below the table with
              each worker against it (ours joins network holders, so it can go below)

"Finished" here means the site has the final status, the scores and the
scoring output: the Python worker sends Finished before it posts the scores and
uploads the output, ours after, so the later of the three ends the clock.

The Python worker is extracted at run time from a Codabench checkout or bare
git repository (--python-worker, CW_BENCH_PYTHON_WORKER, default a checkout
of github.com/codalab/codabench beside this one, ../codabench) and started through
bench/python_worker_shim.py; without it the Python column says why it is empty.
Needs /usr/bin/python3 with python3-celery, -docker, -websockets, -loguru,
-requests, -rich, RabbitMQ, dockerd, and the images of scripts/make-test-images
and scripts/build-python-image.
"""
import argparse
import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "standin"))
import harness  # noqa: E402

PYTHON = "/usr/bin/python3"
SHIM = ROOT / "bench" / "python_worker_shim.py"
DEFAULT_PYTHON_WORKER = os.environ.get("CW_BENCH_PYTHON_WORKER",
                                       str(ROOT.parent / "codabench"))
# CW_BENCH_BUSYBOX names the test image otherwise, e.g. under a registry
# name that fails to resolve at once: Podman retries a pull from `localhost`
# (where it files registry-less images) for 3 s before it gives up, which
# Docker's failed lookup of docker.io does not (README "Engines").
BUSYBOX = os.environ.get("CW_BENCH_BUSYBOX", harness.BUSYBOX_IMAGE)
PYIMAGE = harness.PYTHON_IMAGE
MIB = 1024 * 1024
# What one download stream gets from a remote object store (S3 and the like
# give a single stream tens of MiB/s), for the case that models one.
STREAM_RATE_MIB = 64
CASES = ("trivial", "bigdata", "twobundles", "logburst", "idle", "detailed", "startup",
         "throughput", "zip", "floor")
# Websocket text the stand-in keeps per submission: a log burst is counted, not kept.
WS_RECORD_LIMIT = 4 * MIB

_temp_dirs = []


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(d)
    return d


@atexit.register
def _remove_temp_dirs():
    if os.environ.get("CW_BENCH_KEEP"):  # the workers' logs and folders, for debugging
        print(f"kept: {' '.join(_temp_dirs)}", file=sys.stderr)
        return
    for d in _temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


class Failed(Exception):
    """A measurement that did not happen: its cell says FAILED, never a number."""


# --------------------------------------------------------------------- memory
def _children():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants (Celery's pool children)."""
    kids = _children()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, ()))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class PeakRss:
    """Samples a process tree's RSS every 50 ms in a thread; .peak_mib when stopped."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(tree_rss_kib(p) for p in self.pids))
            self._stop.wait(0.05)

    @property
    def peak_mib(self):
        return self.peak_kib / 1024


# --------------------------------------------------------------------- workers
class OursWorker:
    """`codabench-worker run`, through the harness (its own HOST_DIRECTORY)."""

    label = "ours"

    def __init__(self, site, binary, slots=1):
        env = {"WORKER_SLOTS": str(slots)}
        if slots > 1:
            # The Python workers it is compared with share every CPU.
            env["SPLIT_CPUS"] = "False"
        self.w = harness.Worker(site.broker_url, env=env, binary=binary,
                                host_dir=tempdir("cw-bench-ours-"))
        self.consumers = 1

    def start(self):
        self.w.start()
        return self

    def pids(self):
        return [self.w.proc.pid]

    def alive(self):
        return self.w.alive()

    def stop(self):
        self.w.stop(timeout=30, warm_wait=10)

    def log_tail(self):
        return self.w.log_tail(3000)


class PythonWorker:
    """Codabench's Celery worker (one process, concurrency 1, as its image runs it)
    or several, each with its own folder, on one queue."""

    label = "Python"

    def __init__(self, site, source, count=1):
        self.site, self.source, self.count = site, source, count
        self.procs = []
        self.consumers = count

    def start(self):
        for i in range(self.count):
            base = tempdir("cw-bench-python-")
            env = dict(os.environ, BROKER_URL=self.site.broker_url, HOST_DIRECTORY=base,
                       CW_BENCH_PYTHON_BASE=base, PYTHONUNBUFFERED="1",
                       PYTHONPATH=f"{self.source}:{self.source}/src/settings")
            env.pop("CODALAB_IGNORE_CLEANUP_STEP", None)
            log = open(os.path.join(base, "worker.log"), "ab")
            proc = subprocess.Popen(
                [PYTHON, str(SHIM), "-A", "compute_worker", "worker", "-l", "info",
                 "-Q", "compute-worker", "-n", f"bench-python-{i}@%h", "--concurrency=1"],
                cwd=os.path.join(self.source, "compute_worker"), env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self.procs.append((proc, log, base))
        return self

    def pids(self):
        return [p.pid for p, _, _ in self.procs]

    def alive(self):
        return all(p.poll() is None for p, _, _ in self.procs)

    def stop(self):
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        deadline = time.time() + 30
        for proc, log, _ in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the pool children too
                proc.wait(10)
            log.close()

    def log_tail(self):
        out = []
        for _, _, base in self.procs:
            try:
                out.append(Path(base, "worker.log").read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(out)


def extract_python_worker(where):
    """A private copy of compute_worker/ and the logging module it imports, or
    (None, reason). Nothing fetched is kept in the repository."""
    where = Path(where)
    dest = Path(tempdir("cw-bench-pysrc-"))
    wanted = ["compute_worker/compute_worker.py", "compute_worker/celery_config.py",
              "src/settings/logs_loguru.py"]
    if (where / wanted[0]).is_file():
        for rel in wanted:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(where / rel, dest / rel)
    elif where.is_dir():
        archive = subprocess.run(["git", "--git-dir", str(where), "archive", "HEAD", *wanted],
                                 capture_output=True)
        if archive.returncode != 0:
            return None, f"no Python worker in {where}: {archive.stderr.decode().strip()}"
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    else:
        return None, f"no Python worker at {where} (--python-worker, CW_BENCH_PYTHON_WORKER)"
    try:
        import docker, loguru, requests, rich, websockets  # noqa: F401,E401
    except ImportError as e:
        return None, (f"the Python worker needs {e.name} (apt-get install python3-celery "
                      "python3-docker python3-websockets python3-loguru python3-requests "
                      "python3-rich)")
    return str(dest), None


# --------------------------------------------------------------------- sites
class Site:
    """A vhost and a stand-in for one kind of worker, for the whole run."""

    def __init__(self, kombu=None):
        self.broker_url = harness.fresh_vhost()
        extra = ["--ws-record-limit", str(WS_RECORD_LIMIT)]
        if kombu:
            extra += ["--kombu", kombu]
        self.standin = harness.StandIn(self.broker_url, extra_args=extra)
        self.standin.start()
        self.submission_ids = []

    def close(self):
        self.standin.stop()
        for sid in self.submission_ids:
            remove_containers(sid)
        harness.delete_vhost(self.broker_url)

    def send(self, spec):
        sub = self.standin.create_submission(**spec)
        self.submission_ids.append(sub["id"])
        return sub["id"]


def purge(site):
    """Drops what a failed measurement left queued, so the next case starts empty."""
    harness.rabbitmqctl("purge_queue", "-p", harness.vhost_of(site.broker_url),
                        "compute-worker", check=False)


def remove_containers(sid):
    harness.remove_submission_containers(sid)  # ours: by label
    # Python's: named scoring_/ingestion_uPK-<user>_sID-<id>
    ids = harness.docker("ps", "-aq", "--filter", f"name=_sID-{sid}$").stdout.split()
    if ids:
        harness.docker("rm", "-f", *ids)


def finished(site, sid, worker, expect_scores, timeout, check=None):
    """Waits until the submission is Finished, its scores posted and its scoring
    output stored; returns (record, the time the last of them arrived)."""
    deadline = time.time() + timeout
    while True:
        rec = site.standin.submission(sid)
        if rec["status"] in ("Failed", "Cancelled"):
            raise Failed(f"submission {sid} {rec['status']}: {rec['status_details']}")
        done = [p for p in rec["puts"] if p["role"] == "scoring_result" and p.get("code") == 200]
        if rec["status"] == "Finished" and rec["scores"] and done:
            break
        if not worker.alive():
            raise Failed(f"the worker exited:\n{worker.log_tail()}")
        if time.time() > deadline:
            raise Failed(f"submission {sid} not done after {timeout}s "
                         f"(status {rec['status']}):\n{harness.summarize(rec)}")
        time.sleep(0.1)
    scores = rec["scores"][-1]["scores"]
    if {k: float(v) for k, v in scores.items()} != expect_scores:
        raise Failed(f"submission {sid} scored {scores}, expected {expect_scores}")
    if check:
        check(rec)
    t_finished = max(s["t"] for s in rec["statuses"] if s["status"] == "Finished")
    return rec, max(t_finished, rec["scores"][-1]["t"], max(p["t_done"] for p in done))


def sent_at(rec):
    return min(t["t"] for t in rec["tasks"])


# --------------------------------------------------------------------- bundles
def program(files, command):
    """A zip of one program: metadata.yaml with `command`, plus `files`."""
    d = Path(tempdir("cw-bench-prog-"))
    (d / "metadata.yaml").write_text("command: |-\n  " + command + "\n")
    for name, text in files.items():
        (d / name).write_text(text)
    return harness.make_zip(d, dest_dir=tempdir("cw-bench-zip-"))


# Commands run under `sh -c` in ours and are split without a shell by the
# Python worker (docker-py), so each is an explicit `sh -c '...'`: both run it alike.
TRIVIAL_PREDICT = "sh -c 'echo 1 > /app/output/prediction'"
TRIVIAL_SCORE = "sh -c 'cat /app/input/res/prediction && echo score: 1 > /app/output/scores.txt'"


class Bundles:
    def __init__(self, quick):
        self.quick = quick
        self.trivial_sub = program({}, TRIVIAL_PREDICT)
        self.trivial_score = program({}, TRIVIAL_SCORE)
        self.big_mib = 32 if quick else 512
        self.burst_mib = 20 if quick else 200
        self._random = None
        self._short = None

    def trivial(self):
        # Detailed results off, as a competition has them by default: with them on,
        # the Python worker's scoring step lasts at least its watcher's 5 s sleep.
        return dict(submission=self.trivial_sub, scoring_program=self.trivial_score,
                    docker_image=BUSYBOX, execution_time_limit=600,
                    enable_detailed_results=False)

    def short(self):
        """A submission whose program runs a second: what a batch is made of."""
        if self._short is None:
            self._short = program({}, "sh -c 'sleep 1 && echo 1 > /app/output/prediction'")
        return dict(self.trivial(), submission=self._short)

    def bigdata(self):
        """Random bytes (they neither deflate nor cache): a fresh zip each call,
        so the worker's input cache never has it."""
        if self._random is None:
            self._random = os.path.join(tempdir("cw-bench-rand-"), "data.bin")
            with open(self._random, "wb") as f:
                for _ in range(self.big_mib):
                    f.write(os.urandom(MIB))
            md5 = subprocess.run(["md5sum", self._random], capture_output=True, text=True,
                                 check=True).stdout.split()[0]
            ref = Path(tempdir("cw-bench-ref-"))
            (ref / "md5").write_text(md5 + "\n")
            self._reference = harness.make_zip(ref, dest_dir=tempdir("cw-bench-zip-"))
            self._copy = program({}, "sh -c 'cp /app/input_data/data.bin /app/output/'")
            self._check = program({}, (
                "sh -c 'test \"$(md5sum < /app/input/res/data.bin | cut -c1-32)\" = "
                "\"$(cat /app/input/ref/md5)\" && echo score: 1 > /app/output/scores.txt'"))
        data = os.path.join(tempdir("cw-bench-zip-"), "input_data.zip")
        with zipfile.ZipFile(data, "w", zipfile.ZIP_STORED) as z:
            z.write(self._random, "data.bin")
            z.writestr("nonce", secrets.token_hex(8))
        return dict(submission=self._copy, scoring_program=self._check, input_data=data,
                    reference_data=self._reference, docker_image=BUSYBOX,
                    execution_time_limit=600, enable_detailed_results=False)

    def twobundles(self):
        """A submission that carries its weights, and a dataset: the prediction
        job needs both before it starts. Fresh zips each call (no cache)."""
        mib = self.big_mib // 2
        self.bigdata()  # makes the random file
        d = Path(tempdir("cw-bench-two-"))
        (d / "metadata.yaml").write_text(
            "command: |-\n  sh -c 'test -s /app/program/weights.bin && "
            "test -s /app/input_data/data.bin && echo 1 > /app/output/prediction'\n")
        sub = os.path.join(tempdir("cw-bench-zip-"), "submission.zip")
        data = os.path.join(tempdir("cw-bench-zip-"), "input_data.zip")
        with open(self._random, "rb") as f:
            chunk = f.read(mib * MIB)
        for path, name in ((sub, "weights.bin"), (data, "data.bin")):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
                if name == "weights.bin":
                    z.write(d / "metadata.yaml", "metadata.yaml")
                z.writestr(name, chunk)
                z.writestr("nonce", secrets.token_hex(8))
        return dict(self.trivial(), submission=sub, input_data=data), mib

    def logburst(self):
        n = self.burst_mib * MIB
        sub = program({}, f"sh -c 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {n} "
                          "&& echo 1 > /app/output/prediction'")
        # The time limit bounds a worker that never sees the program end.
        return dict(self.trivial(), submission=sub,
                    execution_time_limit=60 if self.quick else 300), n

    def detailed(self, wait_s):
        # The time of writing goes into the page itself: the stand-in keeps what
        # was uploaded, whatever becomes of the program's log.
        score = program({"score.py": (
            "import time\n"
            "with open('/app/output/detailed_results.html', 'w') as f:\n"
            "    f.write('<html><body>WROTE %.6f</body></html>' % time.time())\n"
            f"for i in range({wait_s}):\n"
            "    time.sleep(1)\n"
            "    print('still scoring', i, flush=True)\n"
            "with open('/app/output/scores.json', 'w') as f:\n"
            "    f.write('{\"score\": 1}')\n")}, "python3 /app/program/score.py")
        return dict(submission=self.trivial_sub, scoring_program=score, docker_image=PYIMAGE,
                    execution_time_limit=600, enable_detailed_results=True)


# --------------------------------------------------------------------- cases
ONE = {"score": 1.0}


def wait_consuming(site, n, worker, timeout=120):
    """Until the broker lists n consumers on compute-worker: the worker is ready."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            counts = harness.queue_counts(site.broker_url)
        except RuntimeError:
            # RabbitMQ may be shared with tests that stop its app for a while.
            counts = None
        if counts and (counts["consumers"] or 0) >= n:
            return
        if not worker.alive():
            raise Failed(f"the worker exited:\n{worker.log_tail()}")
        time.sleep(0.5)
    raise Failed(f"no {n} consumer(s) after {timeout}s:\n{worker.log_tail()}")


def one(site, worker, spec, timeout=600, check=None):
    sid = site.send(spec)
    rec, t_done = finished(site, sid, worker, ONE, timeout, check)
    return rec, t_done - sent_at(rec)


class Bench:
    def __init__(self, args, kinds):
        self.args = args
        self.kinds = kinds  # label -> (Site, factory(site, **kw) -> worker) or None
        self.bundles = Bundles(args.quick)
        self.rows = []  # (case, what, {label: value or Failed}, unit, target)
        self.floors = {}  # case -> what the engine alone takes for its containers
        self.floor_failed = False
        self.notes = []  # why a cell says FAILED, and what was seen anyway

    def workers_of(self, label, **kw):
        site, factory = self.kinds[label]
        return site, factory(site, **kw)

    def row(self, case, what, values, unit, target):
        self.rows.append((case, what, values, unit, target))

    def fail(self, case, label, e):
        text = str(e) or type(e).__name__
        print(f"  {label}: FAILED: {text}", file=sys.stderr)
        self.notes.append(f"{case}, {label}: {text.splitlines()[0]}")
        return Failed(text.splitlines()[0])

    def each(self, case, fn):
        """fn(label) for each kind, ours first: {label: value or Failed}."""
        out = {}
        for label, kind in self.kinds.items():
            if isinstance(kind, str):
                out[label] = kind  # why that column is empty
                continue
            try:
                out[label] = fn(label)
            except Exception as e:  # noqa: BLE001 - one cell fails, the run goes on
                out[label] = self.fail(case, label, e)
            finally:
                purge(self.kinds[label][0])
        return out

    def running(self, label, **kw):
        site, worker = self.workers_of(label, **kw)
        worker.start()
        return site, worker

    # 1
    def case_trivial(self):
        n = self.args.n
        live = {label: self.running(label) for label, k in self.kinds.items()
                if not isinstance(k, str)}
        times = {label: [] for label in live}
        failed = {}
        try:
            for label, (site, worker) in live.items():
                try:
                    wait_consuming(site, 1, worker)
                    one(site, worker, self.bundles.trivial())  # warm-up, not counted
                except Failed as e:
                    failed[label] = self.fail("trivial", label, e)
            for i in range(n):
                order = list(live) if i % 2 == 0 else list(reversed(live))
                for label in order:
                    if label in failed:
                        continue
                    site, worker = live[label]
                    try:
                        times[label].append(one(site, worker, self.bundles.trivial())[1])
                    except Failed as e:
                        failed[label] = self.fail("trivial", label, e)
        finally:
            for site, worker in live.values():
                worker.stop()
                purge(site)
        values = {}
        for label, kind in self.kinds.items():
            if isinstance(kind, str):
                values[label] = kind
            elif label in failed:
                values[label] = failed[label]
            else:
                values[label] = Spread(times[label])
        self.row("trivial", f"sent -> Finished, median [min-max] of {n}", values, "s",
                 "<= 0.8x Python")

    # 2
    def case_bigdata(self):
        mib = self.bundles.big_mib

        def run(label):
            site, worker = self.running(label)
            try:
                wait_consuming(site, 1, worker)
                spec = self.bundles.bigdata()

                def check(rec):
                    size = rec["objects"]["prediction_result"]["size"]
                    if size < mib * MIB:
                        raise Failed(f"prediction output is {size} bytes")
                return one(site, worker, spec, check=check)[1]
            finally:
                worker.stop()
        self.row("bigdata", f"{mib} MiB random input -> output, sent -> Finished",
                 self.each("bigdata", run), "s", "<= 0.33x Python")

    # 2b
    def case_twobundles(self):
        rate = STREAM_RATE_MIB * MIB

        def run(label):
            site, worker = self.running(label)
            site.standin.faults(storage_stream_rate=rate)
            try:
                wait_consuming(site, 1, worker)
                spec, self._two_mib = self.bundles.twobundles()
                return one(site, worker, spec)[1]
            finally:
                site.standin.faults(storage_stream_rate=0)
                worker.stop()
        values = self.each("twobundles", run)
        mib = getattr(self, "_two_mib", self.bundles.big_mib // 2)
        self.row("twobundles", f"{mib} MiB submission + {mib} MiB input data at "
                 f"{STREAM_RATE_MIB} MiB/s a stream, sent -> Finished", values, "s", "< Python")

    # 3
    def case_logburst(self):
        spec, nbytes = self.bundles.logburst()
        peaks = {}

        def run(label):
            site, worker = self.running(label)
            try:
                wait_consuming(site, 1, worker)

                def check(rec):
                    size = rec["objects"]["prediction_stdout"]["size"]
                    if size < nbytes:
                        raise Failed(f"stdout log is {size} bytes, the program wrote {nbytes}")
                with PeakRss(worker.pids()) as rss:
                    try:
                        t = one(site, worker, spec, check=check)[1]
                    except Failed as e:
                        raise Failed(f"{e} (peak RSS seen: {rss.peak_mib:.0f} MiB)") from None
                peaks[label] = rss.peak_mib
                return t
            finally:
                worker.stop()
        times = self.each("logburst", run)
        what = f"{self.bundles.burst_mib} MiB on stdout"
        self.row("logburst", f"{what}, sent -> Finished", times, "s", "< Python")
        self.row("logburst", f"{what}, worker peak RSS",
                 {label: peaks.get(label, v) for label, v in times.items()}, "MiB", "< 32 MiB")

    # 4
    def case_idle(self):
        after = {}

        def run(label):
            site, worker = self.running(label)
            try:
                wait_consuming(site, 1, worker)
                time.sleep(2)
                idle = sum(tree_rss_kib(p) for p in worker.pids()) / 1024
                one(site, worker, self.bundles.trivial())
                time.sleep(2)
                after[label] = sum(tree_rss_kib(p) for p in worker.pids()) / 1024
                return idle
            finally:
                worker.stop()
        started = self.each("idle", run)
        self.row("idle", "RSS once consuming", started, "MiB", "< 16 MiB")
        self.row("idle", "RSS after one submission",
                 {k: after.get(k, v) for k, v in started.items()}, "MiB", "< 24 MiB")

    # 5
    def case_detailed(self):
        wait_s = 4 if self.args.quick else 8

        def run(label):
            site, worker = self.running(label)
            try:
                wait_consuming(site, 1, worker)
                rec, _ = one(site, worker, self.bundles.detailed(wait_s))
                page = rec["detailed_results"] or ""
                if "WROTE " not in page:
                    raise Failed(f"detailed_results.html was not stored (the site has {page!r})")
                wrote = float(page.split("WROTE ", 1)[1].split("<", 1)[0])
                stored = [p["t_done"] for p in rec["puts"] if p["role"] == "detailed_results"
                          and p.get("code") == 200]
                return min(stored) - wrote
            finally:
                worker.stop()
        self.row("detailed", f"detailed_results.html written -> stored (program runs "
                 f"{wait_s} s more)", self.each("detailed", run), "s", "< 1 s")

    # 6
    def case_startup(self):
        def run(label):
            site, worker = self.workers_of(label)
            sid = site.send(self.bundles.trivial())  # waits in the queue
            t0 = time.time()
            worker.start()
            try:
                _, t_done = finished(site, sid, worker, ONE, 300)
                return t_done - t0
            finally:
                worker.stop()
        self.row("startup", "worker start -> first submission Finished", self.each("startup", run), "s",
                 "< Python")

    # 7
    def case_throughput(self):
        count = 4 if self.args.quick else 12

        def run(label):
            site, worker = self.running(label, parallel=4)
            try:
                wait_consuming(site, worker.consumers, worker)
                sids = [site.send(self.bundles.short()) for _ in range(count)]
                t0, t_end = None, 0
                for sid in sids:
                    rec, t_done = finished(site, sid, worker, ONE, 900)
                    t0 = min(t0 or sent_at(rec), sent_at(rec))
                    t_end = max(t_end, t_done)
                return 2 * count / (t_end - t0) * 60
            finally:
                worker.stop()
        self.row("throughput", f"jobs a minute, {count} submissions (1 s programs), "
                 "4 slots / 4 processes", self.each("throughput", run), "jobs/min", ">= 1.2x Python")


    # 9
    def case_floor(self):
        run_id = secrets.token_hex(4)
        try:
            bare_container("true", run_id)  # warm-up, not counted
            pairs = []
            for _ in range(self.args.n):
                t0 = time.time()
                bare_container("echo 1 > /dev/null", run_id)
                bare_container("cat /dev/null && echo score: 1 > /dev/null", run_id)
                pairs.append(time.time() - t0)
            count = 4 if self.args.quick else 12

            def slot(share):
                for _ in range(share):
                    bare_container("sleep 1 && echo 1 > /dev/null", run_id)
                for _ in range(share):
                    bare_container("echo score: 1 > /dev/null", run_id)
            threads = [threading.Thread(target=slot, args=(count // 4,)) for _ in range(4)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.floors["trivial"] = Spread(pairs)
            self.floors["throughput"] = 2 * count / (time.time() - t0) * 60
        except Exception as e:  # noqa: BLE001 - the table goes on without a floor
            self.notes.append(f"floor: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            self.floor_failed = True
        finally:
            remove_floor_containers(run_id)

    # 8
    def case_zip(self):
        mib = 32 if self.args.quick else 256
        out = Path(tempdir("cw-bench-zipcase-"))
        bundle, sub = out / "bundle", out / "submission"
        (bundle / "scoring_program").mkdir(parents=True)
        sub.mkdir()
        (bundle / "competition.yaml").write_text(
            f"version: 2\ntitle: zip\ndocker_image: {BUSYBOX}\n"
            "tasks:\n  - {index: 0, name: t, scoring_program: scoring_program/}\n"
            "phases:\n  - {index: 0, name: Dev, execution_time_limit: 600, tasks: [0]}\n"
            "leaderboards:\n  - {index: 0, title: R, key: R, "
            "columns: [{title: S, key: score, index: 0}]}\n")
        (bundle / "scoring_program" / "metadata.yaml").write_text(
            "command: |-\n  echo 'score: 1' > /app/output/scores.txt\n")
        (sub / "metadata.yaml").write_text(
            f"command: |-\n  head -c {mib * MIB} /dev/urandom > /app/output/random.bin\n")
        output = out / "run" / "prediction" / "output"

        def run(label):
            if label == "ours":
                proc = subprocess.run(
                    [self.args.ours, "run-local", str(bundle), str(sub), "--pull", "missing",
                     "--out", str(out / "run")], capture_output=True, text=True, timeout=600)
                line = [x for x in proc.stderr.splitlines() if "prediction timings:" in x]
                if proc.returncode != 0 or not line:
                    raise Failed(f"run-local exited {proc.returncode}: {proc.stderr[-500:]}")
                # The upload stage: the output zipped, then copied to run-local's storage.
                return float(line[0].split("upload ")[1].split("s")[0])
            if not (output / "random.bin").is_file():
                raise Failed("no output to zip (ours' run-local runs first and leaves it)")
            # Run._put_dir's calls, on the same folder: make_archive, then is_valid_zip.
            code = ("import shutil, sys, time, zipfile\n"
                    "t = time.time()\n"
                    "p = shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])\n"
                    "ok = zipfile.ZipFile(p).testzip() is None\n"
                    "print(time.time() - t if ok else 'corrupt')\n")
            proc = subprocess.run([PYTHON, "-c", code, str(out / "python-output"), str(output)],
                                  capture_output=True, text=True, timeout=600)
            with zipfile.ZipFile(out / "python-output.zip") as z:
                size = z.getinfo("random.bin").file_size
            if proc.returncode != 0 or size != mib * MIB:
                raise Failed(f"make_archive: {proc.stdout.strip()} {proc.stderr[-300:]}")
            return float(proc.stdout)
        self.row("zip", f"zip a {mib} MiB random output (ours: run-local's upload stage)",
                 self.each("zip", run), "s", "< 0.5x Python")


# --------------------------------------------------------------------- engine floor
class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _engine_socket():
    url = os.environ.get("CONTAINER_SOCKET", "unix:///var/run/docker.sock")
    return url[len("unix://"):] if url.startswith("unix://") else url


FLOOR_LABEL = "codabench-worker-bench.floor"


def engine_call(method, path, body=None):
    conn = _UnixHTTP(_engine_socket())
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        reply = conn.getresponse()
        data = reply.read()
    finally:
        conn.close()
    if reply.status >= 300:
        raise Failed(f"engine {method} {path}: {reply.status} {data[:200]!r}")
    return json.loads(data) if data else None


def bare_container(command, run_id):
    """What a worker that gives each program a network of its own must ask of
    the engine: create, start, wait (the default bridge network, as the
    Python worker's programs get; no removal, which ours does after the job
    and the Python worker before its next step)."""
    created = engine_call("POST", "/containers/create", {
        "Image": BUSYBOX, "Cmd": ["sh", "-c", command], "Labels": {FLOOR_LABEL: run_id},
        "HostConfig": {"LogConfig": {"Type": "none"}}})
    cid = created["Id"]
    engine_call("POST", f"/containers/{cid}/start")
    engine_call("POST", f"/containers/{cid}/wait")
    return cid


def remove_floor_containers(run_id):
    ids = harness.docker("ps", "-aq", "--filter", f"label={FLOOR_LABEL}={run_id}").stdout.split()
    if ids:
        harness.docker("rm", "-f", *ids)


class Spread:
    def __init__(self, xs):
        self.xs = sorted(xs)

    @property
    def median(self):
        return statistics.median(self.xs)

    def text(self, unit):
        return f"{self.median:.2f} [{self.xs[0]:.2f}-{self.xs[-1]:.2f}]"


# --------------------------------------------------------------------- table
def cell(v, unit):
    if isinstance(v, Failed):
        return "FAILED"
    if isinstance(v, str):
        return "-"
    if isinstance(v, Spread):
        return v.text(unit)
    return f"{v:.2f}" if unit in ("s", "jobs/min") else f"{v:.1f}"


def ratio(ours, theirs):
    if not all(isinstance(v, (float, int, Spread)) for v in (ours, theirs)):
        return "-"
    a = ours.median if isinstance(ours, Spread) else ours
    b = theirs.median if isinstance(theirs, Spread) else theirs
    if not b:
        return "-"
    return f"{a / b:.2f}x" if a / b >= 0.1 else f"{a / b:.3f}x"


def table(rows, markdown):
    head = ["case", "measure", "unit", "ours", "Python", "ours/Python", "target"]
    body = [[case, what, unit, cell(v.get("ours"), unit), cell(v.get("Python"), unit),
             ratio(v.get("ours"), v.get("Python")), target]
            for case, what, v, unit, target in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join(fmt.format(*r) for r in [head] + body)


def floor_table(rows, floors, markdown):
    """Each worker against what the engine alone takes for the same containers."""
    head = ["case", "engine alone", "ours", "Python", "ours - floor", "Python - floor"]
    body = []
    values = {case: v for case, _, v, _, _ in rows}

    def num(v):
        return v.median if isinstance(v, Spread) else v if isinstance(v, (int, float)) else None
    if "trivial" in floors:
        f = floors["trivial"].median
        o, p = (num(values.get("trivial", {}).get(k)) for k in ("ours", "Python"))
        body.append(["trivial (s)", floors["trivial"].text("s"),
                     f"{o:.2f}" if o is not None else "-", f"{p:.2f}" if p is not None else "-",
                     f"{o - f:+.2f} s" if o is not None else "-",
                     f"{p - f:+.2f} s" if p is not None else "-"])
    if "throughput" in floors:
        f = floors["throughput"]
        o, p = (num(values.get("throughput", {}).get(k)) for k in ("ours", "Python"))
        body.append(["throughput (jobs/min)", f"{f:.2f}",
                     f"{o:.2f}" if o is not None else "-", f"{p:.2f}" if p is not None else "-",
                     f"{o / f:.2f}x of it" if o is not None else "-",
                     f"{p / f:.2f}x of it" if p is not None else "-"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join(fmt.format(*r) for r in [head] + body)


# --------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, of {', '.join(CASES)} (default: all)")
    p.add_argument("-n", type=int, default=None,
                   help="submissions per worker in the trivial case (default 10; --quick 3)")
    p.add_argument("--ours", default=str(ROOT / "build/src/cli/codabench-worker"))
    p.add_argument("--python-worker", default=DEFAULT_PYTHON_WORKER,
                   help="a Codabench checkout or bare git repository (default %(default)s)")
    p.add_argument("--no-python", action="store_true", help="measure ours only")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for a smoke run (32 MiB, 20 MiB, 4 submissions)")
    p.add_argument("--markdown", action="store_true", help="print the table for the README")
    args = p.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.n is None:
        args.n = 3 if args.quick else 10
    if not os.access(args.ours, os.X_OK):
        p.error(f"no worker binary at {args.ours} (build it, or pass --ours)")

    # Ctrl-C and SIGTERM unwind through every `finally`: workers stopped,
    # containers and vhosts removed, folders deleted.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    harness.ensure_rabbitmq()
    for image, how in ((BUSYBOX, "scripts/make-test-images"),
                       (PYIMAGE if "detailed" in cases else None, "scripts/build-python-image")):
        if image and not harness.have_image(image):
            sys.exit(f"no image {image} ({how})")

    sites = []
    started = time.time()
    try:
        ours_site = Site()
        sites.append(ours_site)
        kinds = {"ours": (ours_site, lambda site, parallel=1:
                          OursWorker(site, args.ours, slots=parallel))}
        if args.no_python:
            kinds["Python"] = "--no-python"
        else:
            source, why = extract_python_worker(args.python_worker)
            if source is None:
                print(f"Python column skipped: {why}", file=sys.stderr)
                kinds["Python"] = why
            else:
                # The Python worker runs here on Debian's kombu 5.2, which reads
                # no typed values: its site sends as a Celery 5.2 site did.
                py_site = Site(kombu="5.2")
                sites.append(py_site)
                kinds["Python"] = (py_site, lambda site, parallel=1:
                                   PythonWorker(site, source, count=parallel))
        bench = Bench(args, kinds)
        for case in cases:
            print(f"== {case}", file=sys.stderr, flush=True)
            getattr(bench, f"case_{case}")()
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        raise SystemExit(130)
    finally:
        for site in sites:
            site.close()
    print(table(bench.rows, args.markdown))
    if bench.floors:
        print("\n" + floor_table(bench.rows, bench.floors, args.markdown))
    if bench.notes:
        print("\nFAILED cells:\n" + "\n".join(f"- {n}" for n in bench.notes))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"{time.time() - started:.0f} s"
          + ("; --quick sizes" if args.quick else ""))
    # A Python cell that fails is a finding; one of ours is a bug (or a broken set-up).
    if any(isinstance(v.get("ours"), Failed) for _, _, v, _, _ in bench.rows) or bench.floor_failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
