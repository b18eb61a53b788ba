"""A fleet of workers on one queue, crashing at random (issue "Drop-in to the letter", item 5).

Several `codabench-worker run` processes, each with its own node name
(`--nodename compute-worker-N@fleet-<id>`) and its own HOST_DIRECTORY, serve
one vhost of a real RabbitMQ while the stand-in sends a stream of
submissions (a prediction job, then the scoring job the site queues when the
prediction reports `Scoring`). Every few seconds one random live worker is
SIGKILLed and, as an admin's restart policy would, started again with the
same node name and folder. Then the killing stops, the survivors drain the
queue, and the test checks that nothing was lost: every submission ends
`Finished` with the right score, the queue is empty, and once the workers
are stopped and a fresh start of each node name has swept its orphans, no
job container is left. Runs that happened more than once are counted, and
each one must be explained by a kill.

Crash semantics the test relies on. A job's message is acked only after its
final report (acks late), so a SIGKILL leaves every message the process held
unacked; the kernel closes its socket, RabbitMQ sees the connection go and
puts those messages back, and another worker (or the restarted one) runs
them from the start. A SIGKILLed process keeps no memory: the worker's
"finish and report once" bookkeeping of task ids lives in the process and
dies with it. So delivery is at least once: a job killed mid-run runs again
(the site sees a second `Preparing`/`Running`), and a job killed after its
final PATCH but before its ack reached the broker runs again in full. For a
prediction job that final PATCH is `Scoring`, which makes the site send a
scoring job; the re-run PATCHes `Scoring` again, so the site sends a second
scoring job for the same submission. The site keeps the last status it was
sent, and every chain of jobs ends with a scoring job, so a drained queue
leaves each submission `Finished`. Containers of a killed process keep
running until a worker with the same node name starts: it removes every
container labelled with its own `org.codabench.node` (and only those; a
container of another node name is left alone, since a sibling worker on the
same engine may be running it). Folders of killed jobs still in
HOST_DIRECTORY/jobs at the end are counted and printed, not asserted.

A kill between the final PATCH and the ack is a window of about a
millisecond, which random kills rarely hit, so a few kills (HELD_KILLS) make
it happen: the node's AmqpRelay holds back what the worker sends to
RabbitMQ, the worker ends a job (final PATCH to the site, ack written to its
socket), and only then is it killed; the broker never got the ack and gives
the job to another worker.

What is asserted: every submission `Finished` (no `Failed` on the way) with
its expected score, every upload accepted, the queue empty with no
consumer, no container of the fleet's node names left after the sweep (and a
container labelled with another node name left alone), one prediction task
per submission and one scoring task per `Scoring` report. Runs that
happened more than once are printed, not limited: each must be a run of a
task whose other runs were all on killed processes (mid-job, after the final
report, or right after the ack was sent), and each extra scoring task must
come from a prediction that reported `Scoring` more than once. A task that
ran to its end on two processes that were not killed fails the test.

Run: CW_WORKER_BINARY=build/src/cli/codabench-worker \
       /usr/bin/python3 -m unittest tests/e2e/test_fleet.py -v
Settings: CW_E2E_FLEET_SEED (the random seed; printed either way),
CW_E2E_FLEET_KILL_S (how long the killing lasts, default 75).
"""

import os
import random
import re
import socket
import sys
import threading
import time
import unittest
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import summarize, wait_until  # noqa: E402

DATA = HERE / "data"
FINAL = {"Finished", "Failed"}

WORKERS = 4
SUBMISSIONS = 40
SUBMIT_OVER_S = 60.0             # submissions are spread over the first seconds of the killing
KILL_EVERY_S = (1.5, 4.0)        # a kill every uniform(a, b) seconds
RESTART_AFTER_S = (0.2, 1.5)     # the restart policy's delay
DRAIN_TIMEOUT_S = 150
HELD_KILLS = (4, 11, 18)         # these kills hold the worker's acks back first (see AmqpRelay)
HOLD_TIMEOUT_S = 20

RE_START = re.compile(r"slot \d+: submission (\d+) (prediction|scoring) job starts "
                      r"\(task ([0-9a-f-]+)\)")
RE_STATUS = re.compile(r"submission (\d+) \((prediction|scoring)\): status update \((\w+)\) sent")
RE_DONE = re.compile(r"slot \d+: submission (\d+) job (finished|failed|was cancelled) in")
RE_ACK = re.compile(r"\back of delivery \d+ sent")
FINAL_OF = {"prediction": {"Scoring", "Failed"}, "scoring": {"Finished", "Failed"}}


class Incarnation:
    """One process of one node: its log file, and how it ended."""

    def __init__(self, node, gen, worker):
        self.node, self.gen, self.worker = node, gen, worker
        self.started = time.time()
        self.ended = None
        self.fate = None  # "killed" or "stopped"
        self.hold_offset = None  # where its log was when its relay began holding its acks

    @property
    def name(self):
        return f"{self.node}#{self.gen}"

    def attempts(self):
        """The jobs this process started, from its debug log (one slot, so in order)."""
        out = []
        current = None
        offset = 0
        for line in self.worker.stderr_text().splitlines(keepends=True):
            offset += len(line)
            m = RE_START.search(line)
            if m:
                current = dict(inc=self, sid=int(m.group(1)), stage=m.group(2), task=m.group(3),
                               finals=[], done=False, acked=False)
                out.append(current)
                continue
            m = RE_STATUS.search(line)
            if m and current and int(m.group(1)) == current["sid"] and \
                    m.group(3) in FINAL_OF[m.group(2)]:
                current["finals"].append(m.group(3))
                continue
            m = RE_DONE.search(line)
            if m and current and int(m.group(1)) == current["sid"]:
                current["done"] = True
                continue
            if RE_ACK.search(line):
                if self.hold_offset is not None and offset > self.hold_offset:
                    continue  # written to the relay, which never passed it on
                # With one slot (prefetch 1) the only unacked message is the last job's.
                for a in reversed(out):
                    if a["done"] and not a["acked"]:
                        a["acked"] = True
                        break
        return out


class AmqpRelay:
    """A TCP relay between one node's worker processes and RabbitMQ.

    `hold()` keeps what the worker sends from reaching the broker (its acks,
    its heartbeats) while the broker's frames still reach the worker: an ack
    "in flight". When the worker's socket closes, held bytes are dropped and
    the broker side is closed, as a crash would leave it. So a worker that
    finishes a job while held and is then SIGKILLed has sent its final
    report to the site, but the broker never got its ack.
    """

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = threading.Event()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, vhost_url):
        return vhost_url.replace(f"@{harness.AMQP_HOST}:{harness.AMQP_PORT}/",
                                 f"@127.0.0.1:{self.port}/")

    def hold(self):
        self.held.set()

    def release(self):
        self.held.clear()

    def close(self):
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((harness.AMQP_HOST, harness.AMQP_PORT), 10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, client, upstream):
        held = []
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if self.held.is_set():
                    held.append(data)
                    continue
                for chunk in held:
                    upstream.sendall(chunk)
                held.clear()
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)  # whatever was held dies with the worker

    def _down(self, upstream, client):
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)


class FleetTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        harness.require_worker_and_rabbitmq()
        harness.require_engine_and_busybox()
        cls.results = harness.make_zip(DATA / "results_submission")
        cls.reference = harness.make_zip(DATA / "reference_data")
        cls.scoring = harness.make_zip(DATA / "scoring_program")
        original = (DATA / "scoring_program" / "score.sh").read_text()
        cls.slow_scoring = harness.make_zip(DATA / "scoring_program",
                                            overrides={"score.sh": "sleep 2\n" + original})
        cls.slow = {s: harness.make_zip(DATA / "slow_submission",
                                        overrides={"metadata.yaml": f"command: sh run.sh {s}\n"})
                    for s in (1, 2, 3)}

    def setUp(self):
        self.vhost, self.site = harness.fresh_site(self)
        self.fleet_id = harness.secrets.token_hex(3)
        self.incarnations = []
        self.live = {}  # node -> Incarnation
        self.relays = {node: AmqpRelay() for node in self.nodes()}
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for inc in self.incarnations:
            if inc.worker.alive():
                inc.worker.stop(timeout=20, warm_wait=1.0)
        for relay in self.relays.values():
            relay.close()
        for node in self.nodes() + [self.decoy_node()]:
            ids = self.node_containers(node)
            if ids:
                harness.docker("rm", "-f", *ids)

    # ------------------------------------------------------------------ helpers
    def nodes(self):
        return [f"compute-worker-{i}@fleet-{self.fleet_id}" for i in range(1, WORKERS + 1)]

    def decoy_node(self):
        return f"compute-worker-99@fleet-{self.fleet_id}"

    def node_containers(self, node):
        proc = harness.docker("ps", "-a", "-q", "--filter", f"label=org.codabench.node={node}")
        return [line for line in proc.stdout.split() if line]

    def start(self, node, host_dir):
        gen = sum(1 for inc in self.incarnations if inc.node == node)
        worker = harness.Worker(self.relays[node].url(self.vhost), env={"LOG_LEVEL": "debug"},
                                args=["--nodename", node], host_dir=host_dir)
        # One log per process, so each job is traced to the process that ran it.
        worker.stdout_path = os.path.join(host_dir, f"worker.{gen}.stdout")
        worker.stderr_path = os.path.join(host_dir, f"worker.{gen}.stderr")
        worker.start()
        inc = Incarnation(node, gen, worker)
        self.incarnations.append(inc)
        self.live[node] = inc
        return inc

    def kill(self, node):
        inc = self.live.pop(node)
        inc.worker.kill()
        inc.ended, inc.fate = time.time(), "killed"
        return inc

    @staticmethod
    def busy(inc):
        """Whether the process's last job has started and not ended."""
        starts = [m.start() for m in RE_START.finditer(inc.worker.stderr_text())]
        ends = [m.start() for m in RE_DONE.finditer(inc.worker.stderr_text())]
        return bool(starts) and (not ends or starts[-1] > ends[-1])

    def queue_drained(self):
        counts = harness.queue_counts(self.vhost)
        return counts is not None and counts["messages"] == 0

    # ------------------------------------------------------------------ the test
    def test_a_fleet_survives_random_sigkills(self):
        seed = int(os.environ.get("CW_E2E_FLEET_SEED") or random.SystemRandom().randrange(1 << 31))
        kill_s = float(os.environ.get("CW_E2E_FLEET_KILL_S") or 75)
        rng = random.Random(seed)
        print(f"\nfleet: seed {seed} (CW_E2E_FLEET_SEED={seed} repeats it), {WORKERS} workers, "
              f"{SUBMISSIONS} submissions, killing for {kill_s:.0f} s", file=sys.stderr)
        t_begin = time.time()

        # What each submission is, and the accuracy its scoring must post.
        plan = []
        for i in range(SUBMISSIONS):
            kind = ("results", "slow", "slow-scoring")[i % 3]
            at = rng.uniform(0, min(SUBMIT_OVER_S, 0.8 * kill_s))
            if kind == "slow":
                plan.append((at, dict(submission=self.slow[rng.choice((1, 2, 3))],
                                      scoring_program=self.scoring), kind, 1.0))
            elif kind == "slow-scoring":
                plan.append((at, dict(submission=self.results, scoring_program=self.slow_scoring),
                             kind, 2 / 3))
            else:
                plan.append((at, dict(submission=self.results, scoring_program=self.scoring),
                             kind, 2 / 3))
        plan.sort(key=lambda p: p[0])

        host_dirs = {node: harness._tempdir("cw-e2e-fleet-") for node in self.nodes()}
        for node in self.nodes():
            self.start(node, host_dirs[node])

        # ---- jobs flow while random workers crash and come back
        subs = {}  # sid -> (kind, expected accuracy)
        kills = []
        pending_restarts = []  # (when, node)
        t0 = time.time()
        next_kill = t0 + rng.uniform(*KILL_EVERY_S)
        holding = None  # (node, since): a kill waiting for that worker to end a job
        held_kills = held_owed = 0
        todo = list(plan)
        while True:
            now = time.time()
            if now - t0 >= kill_s and not todo and not holding:
                break
            while todo and now - t0 >= todo[0][0]:
                _, spec, kind, accuracy = todo.pop(0)
                created = self.site.create_submission(reference_data=self.reference,
                                                      execution_time_limit=60, **spec)
                subs[created["id"]] = (kind, accuracy)
            for when, node in list(pending_restarts):
                if now >= when:
                    pending_restarts.remove((when, node))
                    self.start(node, host_dirs[node])
            if holding:
                node, since = holding
                inc = self.live[node]
                done = RE_DONE.search(inc.worker.stderr_text()[inc.hold_offset:])
                if done or now - since > HOLD_TIMEOUT_S:
                    time.sleep(0.2)  # the ack leaves the worker, into the relay
                    self.kill(node)
                    self.relays[node].release()
                    held_kills += bool(done)
                    got = len(RE_START.findall(inc.worker.stderr_text()[inc.hold_offset:]))
                    kills.append((round(now - t0, 1), inc.name + (
                        " (ack held)" if done else f" (held {HOLD_TIMEOUT_S} s, {got} job(s) "
                                                   f"started, none ended)")))
                    pending_restarts.append((now + rng.uniform(*RESTART_AFTER_S), node))
                    next_kill = now + rng.uniform(*KILL_EVERY_S)
                    holding = None
            elif now >= next_kill and now - t0 < kill_s and self.live:
                node = rng.choice(sorted(self.live))
                held_owed += len(kills) + 1 in HELD_KILLS
                # A held kill goes to a worker in the middle of a job, so it ends one
                # soon; with none busy, this kill is a plain one and the next tries.
                busy = sorted(n for n, i in self.live.items() if self.busy(i))
                if held_owed and busy:
                    held_owed -= 1
                    node = rng.choice(busy)
                    # Its next final report reaches the site, its ack never the broker.
                    inc = self.live[node]
                    inc.hold_offset = len(inc.worker.stderr_text())
                    self.relays[node].hold()
                    holding = (node, now)
                else:
                    inc = self.kill(node)
                    kills.append((round(now - t0, 1), inc.name))
                    pending_restarts.append((now + rng.uniform(*RESTART_AFTER_S), node))
                    next_kill = now + rng.uniform(*KILL_EVERY_S)
            time.sleep(0.05)
        for _, node in pending_restarts:
            self.start(node, host_dirs[node])
        for inc in self.live.values():
            self.assertTrue(inc.worker.alive(), f"{inc.name} died on its own:\n"
                            f"{inc.worker.log_tail()}")
        t_killing_over = time.time()

        # ---- the survivors drain the queue
        def drained():
            if not self.queue_drained():
                return False
            records = {sid: self.site.submission(sid) for sid in subs}
            if not all(r["status"] in FINAL for r in records.values()):
                return False
            time.sleep(1.0)  # counts again: nothing may be in flight
            return self.queue_drained() and records
        try:
            wait_until(drained, DRAIN_TIMEOUT_S, interval=1.0, message="the fleet to drain")
        except AssertionError:
            stuck = [summarize(self.site.submission(sid)) for sid in subs
                     if self.site.submission(sid)["status"] not in FINAL]
            raise AssertionError(f"seed {seed}: not drained after {DRAIN_TIMEOUT_S}s; queue "
                                 f"{harness.queue_counts(self.vhost)}; stuck:\n"
                                 + "\n".join(stuck[:5]))
        t_drained = time.time()
        for node, inc in sorted(self.live.items()):
            self.assertTrue(inc.worker.alive(), inc.worker.log_tail())
            code = inc.worker.stop(timeout=30, warm_wait=10.0)
            inc.ended, inc.fate = time.time(), "stopped"
            self.assertEqual(code, 0, f"{inc.name} did not stop cleanly:\n{inc.worker.log_tail()}")
        self.live.clear()
        records = {sid: self.site.submission(sid) for sid in subs}

        # ---- containers: what the crashes left, then a fresh start of each node sweeps it
        decoy = harness.docker("create", "--label", "org.codabench.worker=codabench-worker",
                               "--label", f"org.codabench.node={self.decoy_node()}",
                               harness.BUSYBOX_IMAGE, "true")
        self.assertEqual(decoy.returncode, 0, decoy.stderr)
        left_before_sweep = {node: len(self.node_containers(node)) for node in self.nodes()}
        for node in self.nodes():
            inc = self.start(node, host_dirs[node])
            wait_until(lambda: "consuming compute-worker" in inc.worker.stderr_text(), 60,
                       message=f"{inc.name} to start consuming")
            self.assertEqual(inc.worker.stop(timeout=30), 0, inc.worker.log_tail())
            inc.ended, inc.fate = time.time(), "stopped"
            self.live.pop(node, None)
        for node in self.nodes():
            left = harness.docker("ps", "-a", "--filter", f"label=org.codabench.node={node}",
                                  "--format", "{{.Names}} {{.Status}}").stdout.strip()
            self.assertEqual(left, "", f"containers of {node} left after its sweep")
            # The network holders of its slots too (those the killed runs left).
            holders = harness.docker("ps", "-a", "--filter",
                                     f"label=org.codabench.network-holder-node={node}",
                                     "--format", "{{.Names}} {{.Status}}").stdout.strip()
            self.assertEqual(holders, "", f"network holders of {node} left after its sweep")
        for sid in subs:
            self.assertEqual(harness.submission_containers(sid), [],
                             f"containers of submission {sid} left behind")
        # Another node name's container is not this node's to remove.
        self.assertEqual(len(self.node_containers(self.decoy_node())), 1,
                         "a worker removed a container of another node name")
        harness.docker("rm", "-f", *self.node_containers(self.decoy_node()))

        # ---- the queue is empty, nobody consumes
        counts = harness.queue_counts(self.vhost)
        self.assertEqual((counts["messages"], counts["messages_ready"],
                          counts["messages_unacknowledged"], counts["consumers"]),
                         (0, 0, 0, 0), counts)

        # ---- every submission: one final status, the right score
        problems = []
        for sid, (kind, accuracy) in sorted(subs.items()):
            rec = records[sid]
            names = [s["status"] for s in rec["statuses"]]
            if rec["status"] != "Finished" or names[-1] != "Finished":
                problems.append(f"{kind}: not Finished\n{summarize(rec)}")
                continue
            if not rec["scores"] or abs(float(rec["scores"][-1]["scores"]["accuracy"]) -
                                        accuracy) > 1e-4:
                problems.append(f"{kind}: wrong or no score {rec['scores'][-1:]}\n{summarize(rec)}")
            if "Failed" in names:
                problems.append(f"{kind}: a Failed status on the way\n{summarize(rec)}")
            refused = [p for p in rec["puts"] if p["code"] != 200]
            if refused:
                problems.append(f"{kind}: storage refused {refused}")
        self.assertEqual(problems, [], f"seed {seed}:\n" + "\n".join(problems))

        # ---- duplicates: counted from what the site saw, explained from the workers' logs
        attempts = defaultdict(list)  # (sid, stage) -> attempts in order of start
        last_attempt = {}  # incarnation -> the job it was in when it ended
        for inc in self.incarnations:
            for a in inc.attempts():
                attempts[(a["sid"], a["stage"])].append(a)
                last_attempt[inc.name] = a
        causes = Counter()
        unexplained = []
        dup_pred = dup_score = pred_runs = score_runs = extra_tasks = 0
        refinished = 0  # submissions the site was told "Finished" more than once
        for sid, (kind, _) in sorted(subs.items()):
            rec = records[sid]
            st = rec["statuses"]
            site_pred = sum(1 for s in st if s["status"] == "Preparing" and
                            (s["details"] or "").startswith("ingestion_hostname-"))
            site_score = sum(1 for s in st if s["status"] == "Running" and
                             (s["details"] or "").startswith("scoring_hostname-"))
            scoring_patches = sum(1 for s in st if s["status"] == "Scoring")
            scoring_tasks = [t for t in rec["tasks"] if t["is_scoring"]]
            pred_tasks = [t for t in rec["tasks"] if not t["is_scoring"]]
            pred_runs += site_pred
            score_runs += site_score
            self.assertEqual(len(pred_tasks), 1, summarize(rec))
            self.assertEqual(len(scoring_tasks), scoring_patches, summarize(rec))
            self.assertGreaterEqual(site_pred, 1, summarize(rec))
            self.assertGreaterEqual(site_score, 1, summarize(rec))
            extra_tasks += len(scoring_tasks) - 1
            refinished += sum(1 for s in st if s["status"] == "Finished") > 1
            dup_pred += site_pred > 1
            dup_score += site_score > 1
            logged = {stage: attempts.get((sid, stage), []) for stage in ("prediction", "scoring")}
            # The site saw no run the logs do not show.
            if site_pred > len(logged["prediction"]) or site_score > len(logged["scoring"]):
                unexplained.append(f"{sid}: the site saw {site_pred}/{site_score} runs, the logs "
                                   f"{len(logged['prediction'])}/{len(logged['scoring'])}")
            # Runs of one task: at most one on a process that was not killed
            # (it ran to the end and acked); every other run died with a SIGKILL.
            for stage, runs in logged.items():
                by_task = defaultdict(list)
                for a in runs:
                    by_task[a["task"]].append(a)
                for task, task_runs in by_task.items():
                    if len(task_runs) < 2:
                        continue
                    alive = [a for a in task_runs if a["inc"].fate != "killed"]
                    if len(alive) > 1:
                        unexplained.append(f"{sid} {stage} task {task} ran to the end on "
                                           f"{[a['inc'].name for a in alive]}: no kill explains it")
                        continue
                    # The run that counted: the surviving process's, else the acked one,
                    # else the last to start.
                    kept = (alive or [a for a in task_runs if a["acked"]] or task_runs)[-1]
                    for a in task_runs:
                        if a is kept:
                            continue
                        if a["acked"]:
                            causes[f"{stage}: killed right after its ack was sent"] += 1
                        elif a["finals"]:
                            causes[f"{stage}: killed after its final report ({a['finals'][-1]}), "
                                   f"before its ack reached the broker"] += 1
                        else:
                            causes[f"{stage}: killed mid-job"] += 1
            # A second scoring task comes from a second `Scoring` report of the prediction.
            reported_scoring = sum(1 for a in logged["prediction"] if "Scoring" in a["finals"])
            # The worker logs a report once the site answered it: a SIGKILL between
            # the two leaves a Scoring the site saw (and a scoring task) that no log
            # line shows. Only a run its process died in, before any final line.
            unlogged = sum(1 for a in logged["prediction"]
                           if a["inc"].fate == "killed" and not a["finals"] and not a["done"]
                           and a is last_attempt[a["inc"].name])
            if len(scoring_tasks) > 1:
                if reported_scoring >= len(scoring_tasks):
                    causes["extra scoring task: the prediction re-ran and reported Scoring again"] \
                        += len(scoring_tasks) - 1
                elif reported_scoring + unlogged >= len(scoring_tasks):
                    causes["extra scoring task: a prediction killed after the site took its "
                           "Scoring, before the worker logged it"] += len(scoring_tasks) - 1
                else:
                    unexplained.append(f"{sid}: {len(scoring_tasks)} scoring tasks, but the logs "
                                       f"show {reported_scoring} Scoring report(s)")
        # jobs/job-* (or jobs/<node>/job-*, where the worker keeps one folder per node)
        left_job_dirs = sum(len(list((Path(d) / "jobs").glob(pattern)))
                            for d in host_dirs.values() for pattern in ("job-*", "*/job-*"))
        swept_at_restart = sum(inc.worker.stderr_text().count("left by an earlier run of")
                               for inc in self.incarnations)
        elapsed = time.time() - t_begin
        print(f"fleet: seed {seed}: {len(kills)} kills ({held_kills} with the ack held), "
              f"{len(subs)} submissions all Finished; "
              f"prediction runs {pred_runs} ({dup_pred} submissions ran it more than once), "
              f"scoring runs {score_runs} ({dup_score} more than once, {extra_tasks} extra "
              f"scoring tasks sent, {refinished} told Finished more than once); causes: "
              + (", ".join(f"{n} x {c}" for c, n in sorted(causes.items())) or "none")
              + f"; unexplained {len(unexplained)}; containers of killed processes removed by "
              f"the next start {swept_at_restart}, left at the end before the sweep "
              f"{sum(left_before_sweep.values())}; job folders left in HOST_DIRECTORY "
              f"{left_job_dirs}; killing {t_killing_over - t0:.0f} s, drain "
              f"{t_drained - t_killing_over:.0f} s, total {elapsed:.0f} s", file=sys.stderr)
        print(f"fleet: kills (s, process): {kills}", file=sys.stderr)
        self.assertEqual(unexplained, [], f"seed {seed}: runs no kill explains")


if __name__ == "__main__":
    unittest.main(verbosity=2)
