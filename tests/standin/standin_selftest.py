"""Self-test of the Codabench stand-in, without the worker.

Run: /usr/bin/python3 -m unittest tests/standin/standin_selftest.py -v
(or /usr/bin/python3 tests/standin/standin_selftest.py). Needs RabbitMQ (started
when it is not running); no Docker, no worker.
"""

import asyncio
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse
import uuid
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402
from kombu import Connection, Exchange, Queue  # noqa: E402

import harness  # noqa: E402

PREDICTION_KEYS = {
    "id", "user_pk", "submissions_api_url", "secret", "docker_image", "execution_time_limit",
    "is_scoring", "program_data", "ingestion_program", "input_data", "prediction_result",
    "ingestion_only_during_scoring", "prediction_stdout", "prediction_stderr",
    "prediction_ingestion_stdout", "prediction_ingestion_stderr",
}
SCORING_KEYS = {
    "id", "user_pk", "submissions_api_url", "secret", "docker_image", "execution_time_limit",
    "is_scoring", "program_data", "reference_data", "prediction_result", "scoring_result",
    "detailed_results_url", "ingestion_only_during_scoring", "scoring_stdout", "scoring_stderr",
    "scoring_ingestion_stdout", "scoring_ingestion_stderr",
}


def compute_worker_queue():
    return Queue("compute-worker", Exchange("compute-worker"), routing_key="compute-worker",
                 queue_arguments={"x-max-priority": 10})


def get_message(url, timeout=10):
    """Takes one message off compute-worker (acked), or fails."""
    deadline = time.time() + timeout
    with Connection(url) as conn:
        queue = compute_worker_queue()(conn.default_channel)
        queue.declare()
        while time.time() < deadline:
            msg = queue.get(no_ack=True)
            if msg is not None:
                return msg
            time.sleep(0.1)
    raise AssertionError("no message on compute-worker")


def queue_depth(url):
    with Connection(url) as conn:
        queue = compute_worker_queue()(conn.default_channel)
        _, count, _ = queue.queue_declare(passive=True)
        return count


def call(method, url, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    path = u.path + ("?" + u.query if u.query else "")
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def form(**fields):
    return (urllib.parse.urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})


class StandInSelfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vhost = harness.fresh_vhost()
        cls.site = harness.StandIn(cls.vhost)
        cls.site.start()
        cls.sub_zip = harness.make_zip("submission", overrides={
            "metadata.yaml": "command: echo hi\n", "model.sh": "echo model\n"})
        cls.scoring_zip = harness.make_zip("scoring", overrides={
            "metadata.yaml": "command: sh score.sh\n", "score.sh": "echo score\n"})
        cls.ingestion_zip = harness.make_zip("ingestion", overrides={
            "metadata.yaml": "command: sh ingest.sh\n", "ingest.sh": "echo ingest\n"})
        cls.input_zip = harness.make_zip("input", overrides={"numbers.txt": "1\n2\n"})
        cls.ref_zip = harness.make_zip("ref", overrides={"expected.txt": "2\n4\n"})

    @classmethod
    def tearDownClass(cls):
        cls.site.stop()
        harness.delete_vhost(cls.vhost)

    def setUp(self):
        self.site.faults(api_500=0, storage_500=0, ws_down=False, ws_close_after=None,
                         enforce_content_type=True, require_blob_type=False)

    def new_submission(self, **kw):
        args = dict(submission=self.sub_zip, scoring_program=self.scoring_zip,
                    ingestion_program=self.ingestion_zip, input_data=self.input_zip,
                    reference_data=self.ref_zip, execution_time_limit=42)
        args.update(kw)
        created = self.site.create_submission(**args)
        msg = get_message(self.vhost)  # keep the queue empty for the next test
        return created, msg

    def patch(self, sid, **fields):
        body, headers = form(**fields)
        return call("PATCH", f"{self.site.api_url}/submissions/{sid}/", body, headers)

    # --------------------------------------------------------------- jobs
    def test_prediction_job_message_is_what_the_site_sends(self):
        created, msg = self.new_submission()
        self.assertEqual(msg.headers["task"], "compute_worker_run")
        self.assertEqual(msg.headers["id"], created["task_id"])
        self.assertEqual(msg.headers["timelimit"], [None, 42 + 1200])
        self.assertEqual(msg.properties["priority"], 0)
        self.assertEqual(msg.properties["correlation_id"], created["task_id"])
        self.assertEqual(msg.properties.get("delivery_mode"), 2)
        self.assertEqual(msg.content_type, "application/json")
        self.assertEqual(msg.content_encoding, "utf-8")
        args, kwargs, embed = json.loads(msg.body)
        self.assertEqual(kwargs, {})
        self.assertEqual(set(embed), {"callbacks", "errbacks", "chain", "chord"})
        self.assertEqual(len(args), 1)
        run_args = args[0]
        self.assertEqual(set(run_args), PREDICTION_KEYS)
        self.assertEqual(run_args["id"], created["id"])
        # Codabench's site on Celery 5.6 (the stand-in's default): kombu's typed uuid.
        self.assertEqual(run_args["secret"], {"__type__": "uuid",
                                              "__value__": {"hex": created["secret"].replace("-", "")}})
        for header, value in (("replaced_task_nesting", 0), ("stamped_headers", None),
                              ("stamps", {})):
            self.assertIn(header, msg.headers)
            self.assertEqual(msg.headers[header], value)
        self.assertIs(run_args["is_scoring"], False)
        self.assertEqual(run_args["execution_time_limit"], 42)
        self.assertEqual(run_args["submissions_api_url"], self.site.api_url)
        self.assertEqual(run_args["docker_image"], harness.BUSYBOX_IMAGE)
        # The submission zip is readable with its URL, byte for byte.
        status, data = call("GET", run_args["program_data"])
        self.assertEqual(status, 200)
        with open(self.sub_zip, "rb") as f:
            self.assertEqual(data, f.read())
        record = self.site.submission(created["id"])
        self.assertEqual(record["status"], "Submitted")
        self.assertEqual(record["tasks"][0]["priority"], 0)

    def test_each_kombu_release_writes_the_secret_its_own_way(self):
        for kombu, expected in (
                ("5.2", lambda secret: secret),
                ("5.3.0", lambda secret: {"__type__": "uuid", "__value__": {
                    "hex": secret.replace("-", ""), "version": 4}}),
                ("5.6", lambda secret: {"__type__": "uuid", "__value__": {
                    "hex": secret.replace("-", "")}})):
            created, msg = self.new_submission(kombu=kombu)
            run_args = json.loads(msg.body)[0][0]
            self.assertEqual(run_args["secret"], expected(created["secret"]), kombu)
            self.assertEqual("stamps" in msg.headers, kombu != "5.2", kombu)
            self.assertEqual(self.site.submission(created["id"])["tasks"][0]["kombu"], kombu)
        status, _ = self.site.request("POST", "/_test/submissions", {
            "submission": str(self.sub_zip), "scoring_program": str(self.scoring_zip),
            "kombu": "4.6"})
        self.assertEqual(status, 400)

    # Datasets are keyed by their content: a new submission with the same
    # scoring program writes the same object while earlier jobs read it. Every
    # read gets the whole object, as from a store (the flaky e2e_fleet run got
    # 200 with 0 bytes when the copy truncated the file in place).
    def test_a_dataset_written_again_is_never_read_half_written(self):
        big = harness.make_zip("bigscoring", overrides={
            "metadata.yaml": "command: true\n", "blob.bin": os.urandom(4 << 20).hex()})
        size = os.path.getsize(big)
        created, msg = self.new_submission(scoring_program=big)
        self.patch(created["id"], status="Scoring", secret=created["secret"])
        url = json.loads(get_message(self.vhost).body)[0][0]["program_data"]
        bad, reads, stop = [], [0], threading.Event()

        def read():
            while not stop.is_set():
                status, data = call("GET", url)
                reads[0] += 1
                if status != 200 or len(data) != size:
                    bad.append((status, len(data)))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(12):
                self.new_submission(scoring_program=big)
        finally:
            stop.set()
            reader.join()
        self.assertGreater(reads[0], 3)
        self.assertEqual(bad, [], f"{len(bad)} of {reads[0]} reads were not the whole {size} bytes")

    def test_scoring_patch_sends_the_scoring_job_with_priority_10(self):
        created, _ = self.new_submission()
        sid, secret = created["id"], created["secret"]
        status, _ = self.patch(sid, status="Scoring", status_details="", secret=secret)
        self.assertEqual(status, 200)
        msg = get_message(self.vhost)
        self.assertEqual(msg.properties["priority"], 10)
        run_args = json.loads(msg.body)[0][0]
        self.assertIs(run_args["is_scoring"], True)
        self.assertEqual(set(run_args), SCORING_KEYS)
        record = self.site.submission(sid)
        self.assertEqual([t["priority"] for t in record["tasks"]], [0, 10])
        self.assertEqual(record["status"], "Scoring")

    def test_ingestion_only_during_scoring_moves_ingestion_and_input(self):
        created, msg = self.new_submission(ingestion_only_during_scoring=True)
        pred = json.loads(msg.body)[0][0]
        self.assertNotIn("ingestion_program", pred)
        # The site sends input_data to both jobs then:
        # `task.input_data and (not is_scoring or task.ingestion_only_during_scoring)`.
        self.assertIn("input_data", pred)
        self.patch(created["id"], status="Scoring", secret=created["secret"])
        score = json.loads(get_message(self.vhost).body)[0][0]
        self.assertIn("ingestion_program", score)
        self.assertIn("input_data", score)
        self.assertIs(score["ingestion_only_during_scoring"], True)

    def test_revoke_broadcasts_on_the_pidbox(self):
        from celery import Celery

        created, _ = self.new_submission()
        app = Celery(broker=self.vhost)
        exchange = app.control.mailbox.exchange
        with Connection(self.vhost) as conn:
            listener = Queue(f"selftest-{uuid.uuid4().hex[:6]}.celery.pidbox", exchange=exchange,
                             auto_delete=True, durable=False)(conn.default_channel)
            listener.declare()
            self.site.revoke(created["id"])
            deadline = time.time() + 10
            msg = None
            while msg is None and time.time() < deadline:
                msg = listener.get(no_ack=True)
                time.sleep(0.05)
            self.assertIsNotNone(msg, "no broadcast on celery.pidbox")
            body = json.loads(msg.body)
            self.assertEqual(body["method"], "revoke")
            self.assertEqual(body["arguments"]["task_id"], created["task_id"])
            self.assertIs(body["arguments"]["terminate"], True)
        self.assertEqual(self.site.submission(created["id"])["status"], "Cancelled")

    # --------------------------------------------------------------- API
    def test_patch_checks_the_secret_and_records(self):
        created, _ = self.new_submission()
        sid, secret = created["id"], created["secret"]
        self.assertEqual(self.patch(sid, status="Running", secret=str(uuid.uuid4()))[0], 403)
        self.assertEqual(self.patch(sid, status="Running")[0], 403)
        self.assertEqual(self.patch(sid, status="Running", secret="not-a-uuid")[0], 400)
        self.assertEqual(self.patch(sid, status="Bogus", secret=secret)[0], 400)
        self.assertEqual(self.patch(999999999, status="Running", secret=secret)[0], 404)
        status, _ = self.patch(sid, status="Running",
                               status_details="ingestion_hostname-box1", secret=secret)
        self.assertEqual(status, 200)
        self.assertEqual(self.patch(sid, md5="d41d8cd98f00b204e9800998ecf8427e",
                                    secret=secret)[0], 200)
        record = self.site.submission(sid)
        self.assertEqual([s["status"] for s in record["statuses"]], ["Running"])
        self.assertEqual(record["ingestion_hostname"], "box1")
        self.assertEqual(record["md5"], "d41d8cd98f00b204e9800998ecf8427e")
        self.assertEqual([c["code"] for c in record["api_calls"]], [403, 403, 400, 400, 200, 200])
        self.assertNotIn("secret", json.dumps([c["fields"] for c in record["api_calls"]]))
        seqs = [c["seq"] for c in record["api_calls"]]
        self.assertEqual(seqs, sorted(seqs))
        # Without a trailing slash, as on the site: not found.
        body, headers = form(status="Running", secret=secret)
        self.assertEqual(call("PATCH", f"{self.site.api_url}/submissions/{sid}", body,
                              headers)[0], 404)

    def test_scores_check_the_secret(self):
        created, _ = self.new_submission()
        sid, secret = created["id"], created["secret"]
        url = f"{self.site.api_url}/upload_submission_scores/{sid}/"
        h = {"Content-Type": "application/json"}
        bad = json.dumps({"secret": str(uuid.uuid4()), "scores": {"acc": 1}}).encode()
        self.assertEqual(call("POST", url, bad, h)[0], 403)
        self.assertEqual(call("POST", url, json.dumps({"scores": {"a": 1}}).encode(), h)[0], 400)
        self.assertEqual(call("POST", url, json.dumps({"secret": secret}).encode(), h)[0], 400)
        good = json.dumps({"secret": secret, "scores": {"acc": 0.5, "n": 3}}).encode()
        self.assertEqual(call("POST", url, good, h)[0], 200)
        record = self.site.submission(sid)
        self.assertEqual(record["scores"][-1]["scores"], {"acc": 0.5, "n": 3})

    def test_error_patch_is_appended_to_the_stderr_object(self):
        created, _ = self.new_submission()
        sid, secret = created["id"], created["secret"]
        self.assertEqual(self.patch(sid, type="Execution_Time_Limit_Exceeded",
                                    error_message="Execution Time Limit exceeded. Limit was 42",
                                    is_scoring="False", secret=secret)[0], 200)
        record = self.site.submission(sid)
        self.assertEqual(record["errors"][0]["type"], "Execution_Time_Limit_Exceeded")
        self.assertIn("Limit was 42", record["logs"]["prediction_ingestion_stderr"])
        self.assertEqual(record["logs"]["prediction_stderr"], "")

    # --------------------------------------------------------------- websocket
    def test_websocket(self):
        created, _ = self.new_submission()
        sid, secret = created["id"], created["secret"]
        base = self.site.url.replace("http://", "ws://")

        async def run():
            async with aiohttp.ClientSession() as s:
                with self.assertRaises(aiohttp.WSServerHandshakeError) as cm:
                    await s.ws_connect(f"{base}/submission_input/1/{sid}/{uuid.uuid4()}/?kind=program")
                self.assertEqual(cm.exception.status, 403)
                ws = await s.ws_connect(f"{base}/submission_input/1/{sid}/{secret}/?kind=program")
                await ws.send_str(json.dumps({"kind": "program", "message": "hello\n"}))
                await ws.send_str(json.dumps({"kind": "program", "message": "world\n"}))
                await ws.close()
                ws = await s.ws_connect(f"{base}/submission_input/1/{sid}/{secret}/?kind=ingestion")
                await ws.send_str("not json")
                msg = await ws.receive(timeout=5)
                self.assertEqual(msg.type, aiohttp.WSMsgType.CLOSE)
                self.assertEqual(msg.data, 1011)
                await ws.close()
                self.site.faults(ws_down=True)
                with self.assertRaises(aiohttp.WSServerHandshakeError) as cm:
                    await s.ws_connect(f"{base}/submission_input/1/{sid}/{secret}/?kind=program")
                self.assertEqual(cm.exception.status, 503)

        asyncio.run(run())
        record = self.site.submission(sid)
        self.assertEqual(harness.ws_text(record, "program"), "hello\nworld\n")
        self.assertEqual([m["data"]["message"] for m in record["ws"]["program"]],
                         ["hello\n", "world\n"])
        self.assertEqual([c["accepted"] for c in record["ws_connections"]],
                         [False, True, True, False])
        self.assertTrue(any(m.get("invalid") for m in record["ws"]["ingestion"]))

    # --------------------------------------------------------------- storage
    def test_storage_signatures(self):
        created, msg = self.new_submission()
        run_args = json.loads(msg.body)[0][0]
        read_url, write_url = run_args["program_data"], run_args["prediction_result"]
        zh = {"Content-Type": "application/zip"}
        # A read URL cannot write, a write URL cannot read.
        self.assertEqual(call("PUT", read_url, b"x", zh)[0], 403)
        self.assertEqual(call("GET", write_url)[0], 403)
        # A tampered signature, or another key's signature.
        self.assertEqual(call("GET", read_url[:-4] + "0000")[0], 403)
        other = read_url.replace("data/submission.zip", "data/other.zip")
        self.assertEqual(call("GET", other)[0], 403)
        # Write, then read it back with the scoring job's read URL.
        payload = os.urandom(100_000)
        headers = dict(zh, **{"x-ms-blob-type": "BlockBlob", "x-ms-version": "2018-03-28"})
        self.assertEqual(call("PUT", write_url, payload, headers)[0], 200)
        self.patch(created["id"], status="Scoring", secret=created["secret"])
        score_args = json.loads(get_message(self.vhost).body)[0][0]
        status, data = call("GET", score_args["prediction_result"])
        self.assertEqual((status, data), (200, payload))
        # The log URLs are signed for application/zip, as make_url_sassy does by default.
        log_url = run_args["prediction_stdout"]
        self.assertEqual(call("PUT", log_url, b"out\n", {"Content-Type": "text/plain"})[0], 403)
        self.assertEqual(call("PUT", log_url, b"out\n", zh)[0], 200)
        self.site.faults(enforce_content_type=False)
        self.assertEqual(call("PUT", log_url, b"out2\n", {"Content-Type": "text/plain"})[0], 200)
        html_url = score_args["detailed_results_url"]
        self.assertEqual(call("PUT", html_url, b"<p>", zh)[0], 200)  # check is off now
        self.site.faults(enforce_content_type=True)
        self.assertEqual(call("PUT", html_url, b"<p>", zh)[0], 403)
        self.assertEqual(call("PUT", html_url, b"<p>", {"Content-Type": "text/html"})[0], 200)
        # A missing key: 404 with a valid signature.
        _, signed = self.site.request("POST", "/_test/sign",
                                      {"key": "nothing/here.zip", "mode": "r"})
        self.assertEqual(call("GET", signed["url"])[0], 404)
        record = self.site.submission(created["id"])
        puts = [p for p in record["puts"] if p["role"] == "prediction_result"]
        self.assertEqual([p["code"] for p in puts], [200])
        self.assertEqual([p["code"] for p in record["puts"] if p["role"] == "submission"], [403])
        self.assertEqual(puts[-1]["content_type"], "application/zip")
        self.assertEqual(puts[-1]["x_ms_blob_type"], "BlockBlob")
        self.assertEqual(record["objects"]["prediction_result"]["size"], 100_000)
        self.assertEqual(record["objects"]["prediction_result"]["puts"], 1)
        self.assertEqual(record["logs"]["prediction_stdout"], "out2\n")

    def test_output_zip_listing_and_empty_placeholders(self):
        created, msg = self.new_submission()
        run_args = json.loads(msg.body)[0][0]
        record = self.site.submission(created["id"])
        # The site creates the job's objects empty before sending it.
        self.assertEqual(record["objects"]["prediction_result"]["size"], 0)
        self.assertEqual(record["logs"]["prediction_stderr"], "")
        path = harness.make_zip("out", overrides={"predictions.txt": "2\n", "metadata": "x: 1\n"})
        with open(path, "rb") as f:
            body = f.read()
        self.assertEqual(call("PUT", run_args["prediction_result"], body,
                              {"Content-Type": "application/zip"})[0], 200)
        record = self.site.submission(created["id"])
        self.assertEqual(record["zips"]["prediction_result"], ["metadata", "predictions.txt"])
        self.assertEqual(record["objects"]["prediction_result"]["md5"],
                         hashlib.md5(body).hexdigest())

    def test_large_upload_is_streamed(self):
        created, msg = self.new_submission()
        url = urllib.parse.urlsplit(json.loads(msg.body)[0][0]["prediction_result"])
        size = 200 * 1024 * 1024
        block = os.urandom(1 << 20)
        md5 = hashlib.md5()
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        conn.putrequest("PUT", f"{url.path}?{url.query}")
        conn.putheader("Content-Type", "application/zip")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for _ in range(size // len(block)):
            conn.send(block)
            md5.update(block)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        self.assertEqual(resp.status, 200)
        record = self.site.submission(created["id"])
        self.assertEqual(record["objects"]["prediction_result"]["size"], size)
        self.assertEqual(record["objects"]["prediction_result"]["md5"], md5.hexdigest())
        with open(f"/proc/{self.site.proc.pid}/status") as f:
            hwm_kb = int(next(line for line in f if line.startswith("VmHWM")).split()[1])
        self.assertLess(hwm_kb, 150 * 1024, "the stand-in held the upload in memory")

    # --------------------------------------------------------------- faults
    def test_faults(self):
        created, msg = self.new_submission()
        sid, secret = created["id"], created["secret"]
        self.site.faults(api_500=2)
        self.assertEqual(self.patch(sid, status="Preparing", secret=secret)[0], 500)
        self.assertEqual(self.patch(sid, status="Preparing", secret=secret)[0], 500)
        self.assertEqual(self.patch(sid, status="Preparing", secret=secret)[0], 200)
        read_url = json.loads(msg.body)[0][0]["program_data"]
        self.site.faults(storage_500=1)
        self.assertEqual(call("GET", read_url)[0], 500)
        self.assertEqual(call("GET", read_url)[0], 200)
        record = self.site.submission(sid)
        self.assertEqual([c["code"] for c in record["api_calls"]], [500, 500, 200])
        self.assertEqual([s["status"] for s in record["statuses"]], ["Preparing"])
        self.assertEqual([g["code"] for g in record["gets"] if g["role"] == "submission"],
                         [500, 200])
        with self.assertRaises(harness.StandInError):
            self.site.faults(no_such_fault=1)

    def test_storage_stream_rate_paces_downloads(self):
        blob = os.urandom(1024 * 1024)
        created, msg = self.new_submission(submission=harness.write_file(blob, "big.zip"))
        read_url = json.loads(msg.body)[0][0]["program_data"]
        self.site.faults(storage_stream_rate=4 * 1024 * 1024)
        try:
            t0 = time.time()
            code, body = call("GET", read_url)
            took = time.time() - t0
        finally:
            self.site.faults(storage_stream_rate=0)
        self.assertEqual(code, 200)
        self.assertEqual(body, blob)
        self.assertGreaterEqual(took, 0.2, "1 MiB at 4 MiB/s takes a quarter second")

    def test_queue_is_declared_with_max_priority(self):
        self.new_submission()
        # Declaring it with other arguments fails, so the site's declaration holds.
        from amqp.exceptions import PreconditionFailed

        with Connection(self.vhost) as conn:
            plain = Queue("compute-worker", Exchange("compute-worker"),
                          routing_key="compute-worker")(conn.channel())
            with self.assertRaises(PreconditionFailed):
                plain.declare()
        self.assertEqual(queue_depth(self.vhost), 0)


class HarnessSelfTest(unittest.TestCase):
    def test_make_zip(self):
        path = harness.make_zip(os.path.dirname(os.path.abspath(__file__)),
                                overrides={"extra.txt": "x", "harness.py": None},
                                top_folder="top")
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        self.assertIn("top/extra.txt", names)
        self.assertIn("top/codabench_standin.py", names)
        self.assertNotIn("top/harness.py", names)

    def test_vhost_lifecycle(self):
        url = harness.fresh_vhost()
        try:
            self.assertTrue(harness.vhost_of(url).startswith("cw-e2e-"))
            with Connection(url) as conn:
                compute_worker_queue()(conn.default_channel).declare()
            self.assertEqual(harness.queue_counts(url)["messages"], 0)
        finally:
            harness.delete_vhost(url)


if __name__ == "__main__":
    unittest.main(verbosity=2)
