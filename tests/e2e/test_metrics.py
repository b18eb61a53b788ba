"""End-to-end test of METRICS_ADDRESS (README "Metrics and health").

`codabench-worker run` with METRICS_ADDRESS on a free loopback port runs a
submission (prediction, then scoring) sent by the Codabench stand-in; then a
real Prometheus (Debian package `prometheus`) scrapes the worker every second,
and its query API must return the jobs' counters. /healthz and /readyz are
checked, and /readyz must turn 503 while RabbitMQ's app is stopped and 200
again once it is back (every vhost sees that stop: a few seconds).

Run: /usr/bin/python3 -m unittest discover -s tests/e2e -p test_metrics.py -v
Needs what test_queue_worker.py needs, plus /usr/bin/prometheus.
"""

import json
import os
import shutil
import subprocess
import socket
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import summarize, wait_for_status, wait_until  # noqa: E402

DATA = HERE / "data"
FINAL = {"Finished", "Failed"}
PROMETHEUS = os.environ.get("CW_PROMETHEUS", "/usr/bin/prometheus")


class Prometheus:
    """A real Prometheus scraping `target` every second, for one test."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="cw-e2e-prometheus-")
        self.port = harness.free_port()
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: codabench-worker\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=3000):
        try:
            return Path(self.log_path).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def query(self, promql):
        """The result list of an instant query ([] when Prometheus is not up yet)."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": promql}))
        status, body = harness.http_get(url)
        if status != 200:
            return []
        reply = json.loads(body)
        return reply["data"]["result"] if reply.get("status") == "success" else []


class MetricsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(PROMETHEUS, os.X_OK):
            # Not missing(): a machine without Prometheus can still run the rest.
            raise unittest.SkipTest(f"no Prometheus at {PROMETHEUS} (apt-get install prometheus; "
                                    "scripts/setup installs it)")
        harness.require_worker_and_rabbitmq()
        harness.require_engine_and_busybox()
        cls.zips = {name: harness.make_zip(DATA / name) for name in (
            "code_submission", "ingestion_program", "scoring_program", "input_data",
            "reference_data")}

    def setUp(self):
        self.vhost, self.site = harness.fresh_site(self)
        self.address = f"127.0.0.1:{harness.free_port()}"
        self.base = f"http://{self.address}"
        self.worker = harness.Worker(self.vhost, env={"METRICS_ADDRESS": self.address})
        self.worker.start()
        self.addCleanup(self.worker.stop)

    def scrape(self):
        status, text = harness.http_get(self.base + "/metrics")
        self.assertEqual(status, 200, self.worker.log_tail())
        return text

    def test_prometheus_scrapes_the_jobs_and_readyz_follows_the_broker(self):
        # Up and ready once the broker connection is there.
        wait_until(lambda: harness.http_get(self.base + "/healthz")[0] == 200, 30,
                   message="/healthz 200")
        self.assertEqual(harness.http_get(self.base + "/healthz"), (200, "ok\n"))
        wait_until(lambda: harness.http_get(self.base + "/readyz")[0] == 200, 30,
                   message=f"/readyz 200 (worker log:\n{self.worker.log_tail()})")
        self.assertEqual(harness.http_get(self.base + "/nope")[0], 404)

        # A submission: a prediction job, then a scoring job.
        created = self.site.create_submission(
            submission=self.zips["code_submission"],
            scoring_program=self.zips["scoring_program"],
            ingestion_program=self.zips["ingestion_program"],
            input_data=self.zips["input_data"],
            reference_data=self.zips["reference_data"])
        sid = created["id"]
        self.addCleanup(harness.remove_submission_containers, sid)
        rec = wait_for_status(self.site, sid, FINAL, 120, worker=self.worker)
        self.assertEqual(rec["status"], "Finished", summarize(rec))

        finished = 'codabench_worker_jobs_finished_total{stage="%s",outcome="succeeded"}'
        wait_until(lambda: harness.scraped_value(self.scrape(), finished % "scoring") == 1, 15,
                   message="the scoring job in /metrics")
        text = self.scrape()
        self.assertEqual(harness.scraped_value(text, finished % "prediction"), 1, text)
        self.assertEqual(harness.scraped_value(
            text, 'codabench_worker_jobs_started_total{stage="prediction"}'), 1, text)
        self.assertEqual(harness.scraped_value(
            text, 'codabench_worker_job_stage_seconds_count{stage="scoring",step="total"}'), 1,
            text)
        self.assertGreater(harness.scraped_value(
            text, 'codabench_worker_job_stage_seconds_sum{stage="prediction",step="programs"}'),
            0, text)
        self.assertEqual(harness.scraped_value(text, "codabench_worker_slots"), 1, text)
        self.assertEqual(harness.scraped_value(text, "codabench_worker_slots_busy"), 0, text)
        self.assertEqual(harness.scraped_value(text, "codabench_worker_broker_connected"), 1, text)
        self.assertGreater(harness.scraped_value(text, "codabench_worker_process_resident_memory_bytes"),
                           1e6, text)
        self.assertIn('codabench_worker_build_info{version="', text)
        # Prometheus' own linter passes the exposition (format, names, HELP/TYPE).
        promtool = shutil.which("promtool") or "/usr/bin/promtool"
        if os.access(promtool, os.X_OK):
            lint = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                  capture_output=True, timeout=30)
            self.assertEqual((lint.returncode, lint.stdout + lint.stderr), (0, ""), text)

        # A real Prometheus scrapes it, and its query API has the counters.
        prom = Prometheus(self.address)
        prom.start()
        self.addCleanup(prom.stop)

        def by_stage():
            result = prom.query("codabench_worker_jobs_finished_total")
            return {(r["metric"]["stage"], r["metric"]["outcome"]): float(r["value"][1])
                    for r in result}
        try:
            got = wait_until(lambda: len(by_stage()) == 2 and by_stage(), 30, interval=0.5,
                             message="Prometheus to have scraped jobs_finished_total")
        except AssertionError as e:
            raise AssertionError(f"{e}\nprometheus log:\n{prom.log_tail()}") from None
        self.assertEqual(got, {("prediction", "succeeded"): 1.0, ("scoring", "succeeded"): 1.0})
        up = prom.query('up{job="codabench-worker"}')
        self.assertEqual([float(r["value"][1]) for r in up], [1.0])
        p95 = prom.query('histogram_quantile(0.95, sum by (le) '
                         '(codabench_worker_job_stage_seconds_bucket{step="total"}))')
        self.assertEqual(len(p95), 1, p95)
        self.assertGreater(float(p95[0]["value"][1]), 0)

        # The broker goes away: not ready (with the reason), then ready again.
        harness.stop_rabbitmq_app()
        try:
            wait_until(lambda: harness.http_get(self.base + "/readyz")[0] == 503, 20,
                       message="/readyz 503 with the broker down")
            status, body = harness.http_get(self.base + "/readyz")
            self.assertEqual((status, body), (503, "the broker connection is down\n"))
            self.assertEqual(harness.scraped_value(self.scrape(), "codabench_worker_broker_connected"), 0)
            self.assertEqual(harness.http_get(self.base + "/healthz")[0], 200)
        finally:
            harness.start_rabbitmq_app()
        wait_until(lambda: harness.http_get(self.base + "/readyz")[0] == 200, 45,
                   message="/readyz 200 after the broker came back")
        self.assertEqual(harness.scraped_value(self.scrape(), "codabench_worker_broker_reconnects_total"),
                         1)
        self.assertTrue(self.worker.alive(), self.worker.log_tail())

    # One connection at a time used to let a few idle connections hold a
    # probe for seconds each, until an orchestrator restarted the worker.
    def test_healthz_answers_while_200_idle_connections_are_held(self):
        wait_until(lambda: harness.http_get(self.base + "/healthz")[0] == 200, 30,
                   message="/healthz 200")
        host, port = self.address.rsplit(":", 1)
        idle = []
        try:
            for i in range(200):
                sock = socket.create_connection((host, int(port)), timeout=5)
                if i % 2:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # half a request, then nothing
                idle.append(sock)
            started = time.monotonic()
            code, body = harness.http_get(self.base + "/healthz", timeout=3)
            took = time.monotonic() - started
            self.assertEqual(code, 200, body)
            self.assertLess(took, 1.0)
            self.assertEqual(harness.http_get(self.base + "/readyz", timeout=3)[0], 200)
            # Without METRICS_TOKEN, /status is not served over HTTP.
            self.assertEqual(harness.http_get(self.base + "/status", timeout=3)[0], 404)
        finally:
            for sock in idle:
                sock.close()
        self.assertTrue(self.worker.alive(), self.worker.log_tail())

    def test_a_taken_address_stops_the_start_naming_the_setting(self):
        wait_until(lambda: harness.http_get(self.base + "/healthz")[0] == 200, 30,
                   message="/healthz 200")
        second = harness.Worker(self.vhost, env={"METRICS_ADDRESS": self.address})
        second.start()
        self.addCleanup(second.stop)
        try:
            code = second.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("a second worker on the same METRICS_ADDRESS kept running")
        self.assertEqual(code, 1, second.log_tail())
        self.assertIn(f"cannot listen on METRICS_ADDRESS {self.address}", second.log_tail())


if __name__ == "__main__":
    unittest.main()
