"""Hostile programs and bundles against `codabench-worker run` (README "Security").

On a public Codabench server participants and organizers are strangers. Each
test here plays one of them, through the stand-in, a real RabbitMQ and a real
Docker engine, and checks three things: the job ends in a final status whose
reason a person can read, nothing outside the job's folder reaches the site,
and the same worker then serves an ordinary submission.

Run: /usr/bin/python3 -m unittest tests/e2e/test_hostile.py -v (needs what
test_queue_worker.py needs).
"""

import io
import json
import sys
import unittest
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import summarize, wait_for_status, ws_text  # noqa: E402

DATA = HERE / "data"
FINAL = {"Finished", "Failed"}

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] +
    [f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]"
     for prev, cur in zip("abcdefgh", "bcdefghi")]) + "\n"


class HostileInputTest(harness.WorkerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.require_services()
        cls.results = harness.make_zip(DATA / "results_submission")
        cls.reference = harness.make_zip(DATA / "reference_data")
        cls.scoring = harness.make_zip(DATA / "scoring_program")

    def submit(self, submission=None, scoring=None, **kw):
        created = self.site.create_submission(
            submission=submission or self.results,
            scoring_program=scoring or self.scoring,
            reference_data=self.reference, **kw)
        self.submission_ids.append(created["id"])
        return created

    def scoring_program(self, script):
        """A scoring program whose score.sh is `script` (busybox sh)."""
        return harness.make_zip(DATA / "scoring_program", overrides={"score.sh": script})

    def code_submission(self, script):
        return harness.make_zip(DATA / "code_submission", overrides={
            "metadata.yaml": "command: sh /app/program/run.sh\n", "model.sh": None,
            "run.sh": script})

    def wait_final(self, sid, timeout=120):
        return wait_for_status(self.site, sid, FINAL, timeout, worker=self.worker)

    def assertFailedWith(self, record, *phrases):
        self.assertEqual(record["status"], "Failed", summarize(record))
        for phrase in phrases:
            self.assertIn(phrase, record["status_details"] or "", summarize(record))

    def assertServesTheNextJob(self):
        """The worker is alive and scores an ordinary submission."""
        self.assertTrue(self.worker.alive(), self.worker.log_tail())
        sub = self.submit()
        record = self.wait_final(sub["id"])
        self.assertEqual(record["status"], "Finished", summarize(record))
        self.assertTrue(self.worker.alive(), self.worker.log_tail())

    def everything_the_site_got(self, record):
        """API calls, websocket messages and every stored object of the submission, as text."""
        parts = [json.dumps(record["api_calls"]), json.dumps(record["ws_messages"]),
                 json.dumps(record["statuses"])]
        for meta in record["objects"].values():
            try:
                data = self.site.object_bytes(meta["key"])
            except harness.StandInError:
                continue
            parts.append(data.decode("latin-1"))
            if data[:2] == b"PK":
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for info in z.infolist():
                        parts.append(info.filename)
                        if not info.is_dir():
                            parts.append(z.read(info).decode("latin-1"))
        return "\n".join(parts)

    # ---------------------------------------------------------------- reading
    def test_links_to_host_files_are_never_followed(self):
        marker = "HOST-MARKER-" + harness.secrets.token_hex(8)
        host_file = harness.write_file(f"BROKER_URL=pyamqp://u:{marker}@x//\n", name=".env")
        self.start_worker()
        script = (f"ln -s {host_file} /app/output/detailed_results.html\n"
                  f"ln -s {host_file} /app/output/scores.json\n"
                  f"ln -s {host_file} /app/output/scores.txt\n"
                  f"ln -s {host_file} /app/output/extra.txt\n"
                  "sleep 1\n")
        sub = self.submit(scoring=self.scoring_program(script))
        record = self.wait_final(sub["id"])
        self.assertFailedWith(record, "scores.json", "link")
        self.assertNotIn(marker, self.everything_the_site_got(record))
        self.assertNotIn(marker, self.worker.stderr_text())
        self.assertServesTheNextJob()

    def test_fifos_in_the_output_do_not_hang_the_job(self):
        self.start_worker()
        script = ("mkfifo /app/output/scores.json /app/output/scores.txt "
                  "/app/output/detailed_results.html /app/output/metadata.fifo\n")
        sub = self.submit(scoring=self.scoring_program(script))
        record = self.wait_final(sub["id"], timeout=60)
        if harness.under_gvisor():
            # gVisor keeps a FIFO made in a bind mount inside its own kernel:
            # none reaches the host's folder, so the worker finds no scores.
            self.assertFailedWith(record, "wrote neither scores.json nor scores.txt")
        else:
            self.assertFailedWith(record, "scores.json", "not a regular file")
        self.assertServesTheNextJob()

    # ---------------------------------------------------------------- parsing
    def test_billion_laughs_scores_fail_the_job_not_the_worker(self):
        self.start_worker()
        script = f"cat > /app/output/scores.txt <<'EOF'\n{BILLION_LAUGHS}EOF\n"
        sub = self.submit(scoring=self.scoring_program(script))
        record = self.wait_final(sub["id"])
        self.assertFailedWith(record, "scores.txt")
        self.assertServesTheNextJob()

    def test_self_referencing_scores_fail_the_job_not_the_worker(self):
        self.start_worker()
        script = "printf 'a: &a\\n  b: *a\\nc: &c [*c, 1]\\n' > /app/output/scores.txt\n"
        sub = self.submit(scoring=self.scoring_program(script))
        record = self.wait_final(sub["id"])
        self.assertFailedWith(record, "scores.txt")
        self.assertServesTheNextJob()

    # ---------------------------------------------------------------- unpacking
    def test_zip_bomb_is_refused_before_it_fills_the_disk(self):
        bomb = Path(harness._tempdir("cw-e2e-bomb-")) / "bomb.zip"
        chunk = b"\0" * (1 << 20)
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("predictions.txt", "w", force_zip64=True) as f:
                for _ in range(1100):  # 1.1 GiB of zeros, about 1 MiB zipped
                    f.write(chunk)
        self.assertLess(bomb.stat().st_size, 10 << 20)
        worker = self.start_worker(MAX_UNPACKED_SIZE_GB="1")
        sub = self.submit(submission=str(bomb))
        record = self.wait_final(sub["id"])
        self.assertFailedWith(record, "MAX_UNPACKED_SIZE_GB=1")
        jobs = Path(worker.host_dir) / "jobs"

        def on_disk():
            # Blocks, not sizes: a job's own filesystem (run as root) is a
            # sparse image file as large as MAX_OUTPUT_SIZE_GB. The job folder
            # goes after the final status (the slot acks first).
            if not jobs.exists():
                return 0
            return sum(p.stat().st_blocks * 512 for p in jobs.rglob("*") if p.is_file())
        try:
            harness.wait_until(lambda: on_disk() < 100 << 20, 30,
                               message="the job's folder to go")
        except AssertionError:
            self.fail(f"the bomb's bytes stayed on disk: {on_disk()} bytes under {jobs}")
        self.assertServesTheNextJob()

    # ---------------------------------------------------------------- programs
    def test_programs_run_under_the_runtime_asked_for(self):
        """CONTAINER_RUNTIME=runsc (e2e_hostile.runsc): the program's kernel is
        gVisor's, whose log it may read; under runc the host's log is closed to it."""
        self.start_worker()
        script = ("dmesg > /app/output/dmesg.txt 2>&1 || true\n"
                  "echo 1 > /app/output/predictions.txt\n")
        sub = self.submit(submission=self.code_submission(script))
        record = self.wait_final(sub["id"])
        meta = record["objects"].get("prediction_result")
        self.assertIsNotNone(meta, summarize(record))
        with zipfile.ZipFile(io.BytesIO(self.site.object_bytes(meta["key"]))) as z:
            dmesg = z.read("dmesg.txt").decode(errors="replace")
        if harness.under_gvisor():
            self.assertIn("Starting gVisor", dmesg)
        else:
            self.assertNotIn("gVisor", dmesg)

    def test_a_fork_bomb_meets_the_pids_limit(self):
        self.start_worker(CONTAINER_PIDS_LIMIT="200")
        script = ("i=0\nwhile [ $i -lt 5000 ]; do sleep 30 & i=$((i+1)); done\n"
                  "echo started $i\nexit 0\n")
        sub = self.submit(scoring=self.scoring_program(script), execution_time_limit=20)
        record = self.wait_final(sub["id"], timeout=90)
        self.assertEqual(record["status"], "Failed", summarize(record))
        if harness.under_gvisor():
            # Under gVisor the pids limit counts the sandbox kernel's own host
            # threads, not the program's processes: the bomb makes the kernel
            # (a Go program) run out of threads and exit, with the program's
            # output, before the shell could say "can't fork". The job fails
            # all the same and nothing outlives it.
            self.assertIn("exited with code", record["status_details"] or "", summarize(record))
        else:
            err = ws_text(record, "program") + json.dumps(record["ws_messages"])
            self.assertIn("fork", err, summarize(record))
        self.assertServesTheNextJob()

    def test_output_past_max_output_size_stops_the_program(self):
        self.start_worker(MAX_OUTPUT_SIZE_GB="1")
        script = "dd if=/dev/zero of=/app/output/big bs=1M count=3000 2>&1\nsleep 60\n"
        sub = self.submit(submission=self.code_submission(script), execution_time_limit=120)
        record = self.wait_final(sub["id"], timeout=150)
        self.assertFailedWith(record, "larger than 1 GB (MAX_OUTPUT_SIZE_GB=1)")
        self.assertServesTheNextJob()

    def test_out_of_memory_says_so(self):
        self.start_worker(CONTAINER_MEMORY="256m")
        script = "dd if=/dev/zero of=/dev/null bs=1G count=1\n"
        sub = self.submit(submission=self.code_submission(script))
        record = self.wait_final(sub["id"])
        self.assertFailedWith(record, "ran out of memory (limit 256 MiB)")
        self.assertServesTheNextJob()

    def test_set_uid_bits_never_leave_the_job(self):
        self.start_worker()
        script = ("cp /bin/busybox /app/output/sh && chmod 6755 /app/output/sh\n"
                  "ls -l /app/output/sh\n"
                  "cp /app/input_data/numbers.txt /app/output/predictions.txt 2>/dev/null || "
                  "echo 1 > /app/output/predictions.txt\n")
        sub = self.submit(submission=self.code_submission(script))
        record = self.wait_final(sub["id"])
        self.assertIn("Scoring", [s["status"] for s in record["statuses"]], summarize(record))
        meta = record["objects"].get("prediction_result")
        self.assertIsNotNone(meta, summarize(record))
        with zipfile.ZipFile(io.BytesIO(self.site.object_bytes(meta["key"]))) as z:
            modes = {i.filename: (i.external_attr >> 16) for i in z.infolist()}
        self.assertIn("sh", modes)
        self.assertEqual(modes["sh"] & 0o7000, 0, oct(modes["sh"]))
        self.assertServesTheNextJob()


    # ---------------------------------------------------------------- disks
    def test_a_restart_removes_what_a_killed_run_left(self):
        worker = self.start_worker()
        code = self.code_submission("sleep 6\n")
        sub = self.submit(submission=code, execution_time_limit=120)
        harness.wait_until(lambda: harness.submission_containers(sub["id"]), 60,
                           message="the program's container")
        worker.proc.kill()  # SIGKILL: no cleanup at all
        worker.proc.wait(10)
        jobs = Path(worker.host_dir) / "jobs"
        left = [p for p in jobs.glob("*/job-*") if p.is_dir()]
        self.assertTrue(left, "the killed worker left no job folder to test with")
        restarted = harness.Worker(self.vhost, host_dir=worker.host_dir)
        restarted.start()
        self.addCleanup(restarted.stop)
        self.worker = restarted
        harness.wait_until(lambda: not any(p.exists() for p in left), 30,
                           message="the leftover job folders to go")
        # The sweep logs its count once the last folder is gone: a moment later.
        harness.wait_until(lambda: "job folder(s) an earlier run of" in restarted.stderr_text(),
                           10, message="the restart to log the job folders it removed")
        self.assertServesTheNextJob()

    # ---------------------------------------------------------------- latency
    def test_detailed_results_reach_the_site_within_a_second_or_so(self):
        self.start_worker()
        # Written once the container runs, then left alone for 5 s.
        script = ("echo '<p>live</p>' > /app/output/detailed_results.html\n"
                  "date +%s > /app/output/written_at\nsleep 5\n"
                  'echo \'{"accuracy": 1}\' > /app/output/scores.json\n')
        sub = self.submit(scoring=self.scoring_program(script))
        record = self.wait_final(sub["id"])
        self.assertEqual(record["status"], "Finished", summarize(record))
        detailed = [p for p in record["puts"] if p["role"] == "detailed_results" and p["code"] == 200]
        self.assertTrue(detailed, summarize(record))
        with zipfile.ZipFile(io.BytesIO(self.site.object_bytes(
                record["objects"]["scoring_result"]["key"]))) as z:
            written_at = float(z.read("written_at"))
        latency = detailed[0]["t"] - written_at
        print(f"\ndetailed results reached the site {latency:.2f} s after they were written")
        # written_at has whole seconds: up to 1 s of the figure is that.
        self.assertLess(latency, 2.5)  # the Python worker polls every 5 s
        self.assertEqual(len(detailed), 1, "an unchanged file was sent again")

    # ---------------------------------------------------------------- secrets
    def test_serialized_logs_are_json_lines_without_secrets(self):
        worker = self.start_worker(SERIALIZED="true", LOG_LEVEL="DEBUG")
        sub = self.submit()
        record = self.wait_final(sub["id"])
        self.assertEqual(record["status"], "Finished", summarize(record))
        worker.stop()
        secrets_seen = set()
        for task in record["tasks"]:
            args = task["run_args"]
            secrets_seen.add(str(args["secret"]))
            # As kombu 5.3+ writes it on the wire: the hex without dashes.
            secrets_seen.add(str(args["secret"]).replace("-", ""))
            for value in args.values():
                if isinstance(value, str) and "sig=" in value:
                    secrets_seen.add(value.rsplit("sig=", 1)[1])
        self.assertTrue(secrets_seen)
        lines = [l for l in worker.stderr_text().splitlines() if l.strip()]
        self.assertGreater(len(lines), 5)
        job_lines = 0
        for line in lines:
            obj = json.loads(line)  # every line is one JSON object
            rec = obj["record"]
            self.assertIn(rec["level"]["name"], {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR",
                                                 "CRITICAL"})
            if rec["extra"].get("submission") == sub["id"]:
                job_lines += 1
                self.assertIn(rec["extra"]["stage"], {"prediction", "scoring"})
                self.assertIn("slot", rec["extra"])
                self.assertIn("task_id", rec["extra"])
        self.assertGreater(job_lines, 0, "no line carries the job's fields")
        for secret in secrets_seen:
            self.assertNotIn(secret, worker.stderr_text())

if __name__ == "__main__":
    unittest.main()
