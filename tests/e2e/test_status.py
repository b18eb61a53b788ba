"""End-to-end test of `codabench-worker status` (README "status").

A real worker serves a RabbitMQ vhost for the Codabench stand-in, with
METRICS_ADDRESS on. While a submission's program sleeps, the `status` binary
(run as a subprocess, finding the worker from the same HOST_DIRECTORY) must
show that job in slot 0 with its stage, in text and with --json, and /status
on the metrics address must say the same; after the job, the last jobs hold
it with its outcome and duration, and /metrics has the job's resource use and
transfers. Without a worker, or with a killed worker's socket left behind,
`status` exits 1 with one line; two workers of different node names on one
base directory each answer on their own socket.

Run: /usr/bin/python3 -m unittest discover -s tests/e2e -p test_status.py -v
Needs what test_queue_worker.py needs.
"""

import json
import urllib.error
import urllib.request
import os
import socket
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import summarize, wait_for_status, wait_until  # noqa: E402

DATA = HERE / "data"
FINAL = {"Finished", "Failed"}
SLEEP_S = 5


def status(host_dir, *args, env=None):
    """Runs `codabench-worker status` as an admin would, with the worker's
    HOST_DIRECTORY; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("BROKER_URL", "METRICS_ADDRESS", "WORKER_BASE_DIRECTORY")}
    full_env["HOST_DIRECTORY"] = host_dir
    full_env.update(env or {})
    return subprocess.run([harness.worker_binary(), "status", *args], env=full_env,
                          cwd=host_dir, capture_output=True, text=True, timeout=30)


def http_get(url, headers):
    """(status, body text) of a GET with these headers."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class StatusTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        harness.require_worker_and_rabbitmq()
        harness.require_engine_and_busybox()

    def setUp(self):
        self.vhost, self.site = harness.fresh_site(self)

    def start_worker(self, env=None, args=(), host_dir=None):
        worker = harness.Worker(self.vhost, env=env, args=args, host_dir=host_dir)
        worker.start()
        self.addCleanup(worker.stop)
        return worker

    def wait_answering(self, worker, *args):
        def answered():
            done = status(worker.host_dir, "--json", *args)
            return done.returncode == 0 and json.loads(done.stdout)
        return wait_until(answered, 30,
                          message=f"status to answer (worker log:\n{worker.log_tail()})")

    def test_status_shows_the_running_job_then_the_last_jobs(self):
        address = f"127.0.0.1:{harness.free_port()}"
        token = "tok-" + os.urandom(8).hex()
        worker = self.start_worker(env={"METRICS_ADDRESS": address, "METRICS_TOKEN": token})
        first = self.wait_answering(worker)
        self.assertEqual(first["node"], f"compute-worker@{socket.gethostname()}")
        self.assertEqual(len(first["slots"]), 1)
        self.assertEqual(first["last_jobs"], [])
        wait_until(lambda: json.loads(status(worker.host_dir, "--json").stdout)
                   ["broker"]["connected"], 30, message="the broker connected in status")

        # The submission sleeps; the scoring program fails, so the last jobs
        # show both outcomes and a reason.
        created = self.site.create_submission(
            submission=harness.make_zip(DATA / "slow_submission",
                                        {"metadata.yaml": f"command: sh run.sh {SLEEP_S}\n"}),
            scoring_program=harness.make_zip(
                DATA / "scoring_program", {"metadata.yaml": "command: echo failing; exit 3\n"}),
            reference_data=harness.make_zip(DATA / "reference_data"))
        sid = created["id"]
        self.addCleanup(harness.remove_submission_containers, sid)

        def running():
            s = json.loads(status(worker.host_dir, "--json").stdout)
            job = s["slots"][0]["job"]
            return job and job["site_status"] == "Running" and s
        s = wait_until(running, 60, interval=0.3,
                       message=f"status to show the job running (log:\n{worker.log_tail()})")
        job = s["slots"][0]["job"]
        self.assertEqual((job["submission"], job["stage"]), (sid, "prediction"))
        self.assertTrue(job["task_id"])
        self.assertGreaterEqual(job["running_s"], 0)
        self.assertAlmostEqual(job["started_at"], s["now"], delta=SLEEP_S + 30)

        text = status(worker.host_dir)
        self.assertEqual(text.returncode, 0, text.stderr)
        slot_line = [ln for ln in text.stdout.splitlines() if ln.startswith("  0  ")]
        self.assertEqual(len(slot_line), 1, text.stdout)
        self.assertIn(f"submission {sid} prediction, Running for ", slot_line[0])
        self.assertIn(f"task {job['task_id']}", slot_line[0])
        self.assertIn("broker    connected", text.stdout)

        # The same answer through the metrics server, to who holds the token
        # only: a program that reaches the address learns nothing.
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            code, body = http_get(f"http://{address}/status", headers)
            self.assertEqual(code, 401, body)
            self.assertNotIn(str(sid), body)
        code, body = http_get(f"http://{address}/status", {"Authorization": f"Bearer {token}"})
        self.assertEqual(code, 200, body)
        over_http = json.loads(body)
        self.assertEqual(over_http["slots"][0]["job"]["submission"], sid)
        self.assertEqual(http_get(f"http://{address}/healthz", {})[0], 200)  # no token needed
        no_token = status(worker.host_dir, "--json", "--address", address)
        self.assertEqual(no_token.returncode, 1)
        self.assertIn("METRICS_TOKEN", no_token.stderr)
        by_address = status(worker.host_dir, "--json", "--address", address,
                            env={"METRICS_TOKEN": token})
        self.assertEqual(by_address.returncode, 0, by_address.stderr)
        self.assertEqual(json.loads(by_address.stdout)["slots"][0]["job"]["task_id"],
                         job["task_id"])

        rec = wait_for_status(self.site, sid, FINAL, 120, worker=worker)
        self.assertEqual(rec["status"], "Failed", summarize(rec))
        s = wait_until(lambda: (lambda j: len(j["last_jobs"]) == 2 and j)(
            json.loads(status(worker.host_dir, "--json").stdout)), 20,
            message="both jobs in the last jobs")
        self.assertIsNone(s["slots"][0]["job"])
        scoring, prediction = s["last_jobs"]  # newest first
        self.assertEqual((prediction["submission"], prediction["stage"], prediction["outcome"]),
                         (sid, "prediction", "succeeded"))
        self.assertEqual(prediction["reason"], "")
        self.assertGreaterEqual(prediction["duration_s"], SLEEP_S)
        self.assertEqual((scoring["stage"], scoring["outcome"]), ("scoring", "failed"))
        self.assertIn("exited with code 3", scoring["reason"])
        self.assertGreater(scoring["ended_at"], prediction["ended_at"])
        self.assertEqual(s["jobs_done"], 2)

        text = status(worker.host_dir).stdout
        self.assertIn("last jobs (newest first)", text)
        lines = [ln for ln in text.splitlines() if f"  {sid}  " in ln]
        self.assertEqual(len(lines), 2, text)
        self.assertRegex(lines[0], r"scoring +0 +failed +[0-9.]+s +The scoring program exited "
                                   r"with code 3")
        self.assertRegex(lines[1], r"prediction +0 +succeeded +[0-9.]+s$")
        # Signed URLs and the secret stay out of it.
        self.assertNotIn("sig=", text + json.dumps(s))
        self.assertNotIn("/storage/", text + json.dumps(s))
        self.assertNotIn("secret", json.dumps(s))

        # The job's use, wall time and transfers in /metrics.
        code, metrics = harness.http_get(f"http://{address}/metrics")
        self.assertEqual(code, 200)
        v = lambda series: harness.scraped_value(metrics, "codabench_worker_" + series)  # noqa: E731
        self.assertEqual(v('job_peak_memory_bytes_count{stage="prediction"}'), 1, metrics)
        self.assertGreater(v('job_peak_memory_bytes_sum{stage="prediction"}'), 0, metrics)
        self.assertEqual(v('job_cpu_seconds_count{stage="prediction"}'), 1, metrics)
        self.assertGreater(v('job_cpu_seconds_sum{stage="prediction"}'), 0, metrics)
        self.assertEqual(v('job_seconds_count{stage="prediction",outcome="succeeded"}'), 1)
        self.assertGreaterEqual(v('job_seconds_sum{stage="prediction",outcome="succeeded"}'),
                                SLEEP_S)
        self.assertEqual(v('job_seconds_count{stage="scoring",outcome="failed"}'), 1, metrics)
        self.assertGreater(v("downloaded_bytes_total"), 0, metrics)
        self.assertGreater(v("uploaded_bytes_total"), 0, metrics)
        self.assertGreater(v("cache_bytes"), 0, metrics)  # the reference data
        self.assertGreater(v("process_resident_memory_bytes"), 1e6, metrics)
        self.assertNotIn('site_errors_total{call="download"}', metrics)
        self.assertNotIn('site_errors_total{call="upload"}', metrics)

    def test_no_worker_or_a_dead_one_is_one_line_and_exit_1(self):
        empty = tempfile.mkdtemp(prefix="cw-e2e-status-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", empty]))
        none = status(empty)
        self.assertEqual(none.returncode, 1, none.stdout)
        self.assertEqual(none.stdout, "")
        self.assertRegex(none.stderr, r"^error: no worker is running here: no status socket in "
                                      r".*/status \(.*\)\n$")
        port = harness.free_port()
        by_address = status(empty, "--address", f"127.0.0.1:{port}")
        self.assertEqual(by_address.returncode, 1)
        self.assertEqual(by_address.stderr,
                         f"error: no worker answers at 127.0.0.1:{port}: Connection refused\n")

        # A SIGKILLed worker leaves its socket; status says so, and the next
        # start replaces it.
        worker = self.start_worker()
        self.wait_answering(worker)
        worker.kill()
        dead = status(worker.host_dir)
        self.assertEqual(dead.returncode, 1)
        self.assertIn("is left from a worker that stopped", dead.stderr)
        self.assertEqual(len(dead.stderr.splitlines()), 1, dead.stderr)
        again = self.start_worker(host_dir=worker.host_dir)
        self.assertEqual(self.wait_answering(again)["pid"], again.proc.pid)
        # A warm stop removes the socket: no worker, not a stale one.
        self.assertEqual(again.stop(), 0, again.log_tail())
        gone = status(again.host_dir)
        self.assertEqual(gone.returncode, 1)
        self.assertIn("no worker is running here: no status socket in", gone.stderr)

    def test_two_workers_on_one_host_each_answer_for_itself(self):
        host_dir = tempfile.mkdtemp(prefix="cw-e2e-status-two-")
        a = self.start_worker(args=["--nodename", "worker-a@here"], host_dir=host_dir)
        b = self.start_worker(args=["--nodename", "worker-b@here"], host_dir=host_dir)
        for worker, node in ((a, "worker-a@here"), (b, "worker-b@here")):
            answer = self.wait_answering(worker, "--nodename", node)
            self.assertEqual((answer["node"], answer["pid"]), (node, worker.proc.pid))
        both = status(host_dir)
        self.assertEqual(both.returncode, 1)
        self.assertIn("several workers use", both.stderr)
        self.assertIn("worker-a@here", both.stderr)
        self.assertIn("choose one with --nodename", both.stderr)
        sock = Path(host_dir) / "status" / "worker-a@here.sock"
        self.assertEqual(oct(sock.stat().st_mode & 0o777), "0o600")
        by_socket = status(host_dir, "--json", "--socket", str(sock))
        self.assertEqual(json.loads(by_socket.stdout)["node"], "worker-a@here")


if __name__ == "__main__":
    unittest.main()
