#!/usr/bin/python3
"""A deliberately small compute worker in Python, only to check the e2e tests.

It is NOT the product and not the reference worker: it follows the contract
(docs: codabench-contract.md) closely enough that tests/e2e can be run before
the C++ worker serves a queue, so that a failing e2e test points at the worker,
not at the test. It handles one job at a time, has no cache, no pidbox (so the
revoke test fails with it) and no redelivery guard (so may the broker-restart test).

    CW_WORKER_BINARY=tests/standin/mock_worker.py \
        /usr/bin/python3 -m unittest discover -s tests/e2e -v

Reads BROKER_URL, HOST_DIRECTORY, LOG_LEVEL; logs to stderr without secrets.
"""

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import zipfile

import aiohttp
import yaml
from kombu import Connection, Exchange, Queue

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kombu_wire  # noqa: E402

log = logging.getLogger("mock-worker")
REQUIRED = ("id", "user_pk", "submissions_api_url", "secret", "docker_image",
            "execution_time_limit", "is_scoring", "program_data", "prediction_result")


def redact(text):
    return re.sub(r"\?[^\s'\"]*", "?…", re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                           r"[0-9a-f]{12}", "<secret>", str(text)))


class JobError(Exception):
    pass


class Job:
    def __init__(self, args, base):
        self.a = args
        self.scoring = bool(args["is_scoring"])
        self.root = tempfile.mkdtemp(prefix=f"job-{args['id']}-", dir=base)
        self.out = os.path.join(self.root, "output")
        os.makedirs(self.out)
        api = args["submissions_api_url"]
        scheme = "wss" if api.startswith("https") else "ws"
        host = api.split("://", 1)[1].split("/", 1)[0]
        self.ws_url = f"{scheme}://{host}/submission_input/{args['user_pk']}/{args['id']}/{args['secret']}/"
        stage = "scoring" if self.scoring else "prediction"
        self.log_urls = {("program", "stdout"): args.get(f"{stage}_stdout"),
                         ("program", "stderr"): args.get(f"{stage}_stderr"),
                         ("ingestion", "stdout"): args.get(f"{stage}_ingestion_stdout"),
                         ("ingestion", "stderr"): args.get(f"{stage}_ingestion_stderr")}
        self.containers = []

    async def retry(self, what, fn, tries=6):
        for i in range(tries):
            try:
                return await fn()
            except (aiohttp.ClientError, asyncio.TimeoutError, JobError) as e:
                if i == tries - 1:
                    raise JobError(f"{what} failed: {redact(e)}")
                log.warning("%s failed (%s), retrying", what, redact(e))
                await asyncio.sleep(min(0.5 * 2 ** i, 4))

    async def patch(self, **fields):
        url = f"{self.a['submissions_api_url']}/submissions/{self.a['id']}/"
        data = {k: str(v) for k, v in fields.items() if v is not None}
        data["secret"] = self.a["secret"]

        async def once():
            async with self.http.patch(url, data=data) as r:
                if r.status >= 500:
                    raise JobError(f"site answered {r.status}")
                if r.status != 200:
                    raise RuntimeError(f"site refused the update: {r.status}")
        await self.retry("status update", once)

    async def get(self, url, dest):
        async def once():
            async with self.http.get(url) as r:
                if r.status != 200:
                    raise JobError(f"download answered {r.status}")
                with open(dest, "wb") as f:
                    async for chunk in r.content.iter_chunked(1 << 16):
                        f.write(chunk)
        await self.retry("download", once)

    async def put(self, url, path, content_type):
        async def once():
            with open(path, "rb") as f:
                headers = {"Content-Type": content_type, "x-ms-blob-type": "BlockBlob",
                           "x-ms-version": "2018-03-28"}
                async with self.http.put(url, data=f, headers=headers) as r:
                    if r.status != 200:
                        raise JobError(f"upload answered {r.status}")
        await self.retry("upload", once)

    async def ws_send(self, payload):
        try:
            if self.ws is None or self.ws.closed:
                self.ws = await self.http.ws_connect(self.ws_url, timeout=5)
            await self.ws.send_str(json.dumps(payload))
        except Exception as e:  # noqa: BLE001 - live output is best effort
            log.debug("websocket: %s", redact(e))
            self.ws = None

    async def fetch(self, url, folder, flatten):
        dest = os.path.join(self.root, folder)
        zpath = dest.rstrip("/") + ".zip"
        os.makedirs(os.path.dirname(zpath), exist_ok=True)
        await self.get(url, zpath)
        try:
            with zipfile.ZipFile(zpath) as z:
                for name in z.namelist():
                    target = os.path.realpath(os.path.join(dest, name))
                    if not target.startswith(os.path.realpath(dest)):
                        raise JobError(f"{folder}: the zip holds a path outside it")
                z.extractall(dest)
        except zipfile.BadZipFile:
            raise JobError(f"The {folder} bundle is not a valid zip file")
        entries = [e for e in os.listdir(dest) if e != "__MACOSX"]
        if flatten and len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
            inner = os.path.join(dest, entries[0])
            for e in os.listdir(inner):
                shutil.move(os.path.join(inner, e), dest)
            os.rmdir(inner)
        return zpath

    def command_of(self, folder, kind):
        for name in ("metadata.yaml", "metadata"):
            path = os.path.join(self.root, folder, name)
            if os.path.exists(path):
                with open(path) as f:
                    meta = yaml.safe_load(f) or {}
                return meta.get("command") if isinstance(meta, dict) else None, True
        return None, False

    async def run_container(self, kind, folder, command):
        mounts = [f"{self.root}/{folder}:/app/program", f"{self.out}:/app/output"]
        if kind == "ingestion":
            mounts.append(f"{self.root}/program:/app/ingested_program")
        if os.path.isdir(os.path.join(self.root, "input_data")):
            mounts.append(f"{self.root}/input_data:/app/input_data")
        if self.scoring:
            os.makedirs(f"{self.root}/shared", exist_ok=True)
            mounts += [f"{self.root}/shared:/app/shared", f"{self.root}/input:/app/input"]
        name = f"mock-{self.a['id']}-{kind}-{os.getpid()}-{int(time.time() * 1000)}"
        cmd = ["docker", "run", "--name", name, "--label", f"org.codabench.submission={self.a['id']}",
               "-w", "/app/program", "-e", "PYTHONUNBUFFERED=1"]
        for m in mounts:
            cmd += ["-v", m]
        cmd += [self.a["docker_image"], "sh", "-c", command]
        self.containers.append(name)
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        files = {}

        async def pump(stream, which):
            path = os.path.join(self.root, f"{kind}.{which}")
            files[which] = path
            with open(path, "wb") as f:
                while True:
                    chunk = await stream.read(65536)
                    if not chunk:
                        break
                    f.write(chunk)
                    await self.ws_send({"kind": kind, "message": chunk.decode(errors="replace")})

        await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        code = await proc.wait()
        return kind, code, files

    async def run(self):
        self.ws = None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as self.http:
            try:
                await self.stages()
            except JobError as e:
                log.error("submission %s failed: %s", self.a["id"], redact(e))
                await self.patch(status="Failed", status_details=str(e))
            finally:
                if self.ws is not None:
                    await self.ws.close()
                for name in self.containers:
                    p = await asyncio.create_subprocess_exec("docker", "rm", "-f", name,
                                                             stdout=asyncio.subprocess.DEVNULL,
                                                             stderr=asyncio.subprocess.DEVNULL)
                    await p.wait()
                shutil.rmtree(self.root, ignore_errors=True)

    async def stages(self):
        a = self.a
        if not self.scoring:
            await self.patch(status="Preparing")
        sub_zip = await self.fetch(a["program_data"], "program", True)
        if not self.scoring:
            with open(sub_zip, "rb") as f:
                await self.patch(md5=hashlib.md5(f.read()).hexdigest())
        if a.get("ingestion_program"):
            await self.fetch(a["ingestion_program"], "ingestion_program", True)
        if a.get("input_data"):
            await self.fetch(a["input_data"], "input_data", False)
        if a.get("reference_data"):
            await self.fetch(a["reference_data"], "input/ref", False)
        if self.scoring:
            await self.fetch(a["prediction_result"], "input/res", False)
        host = socket.gethostname()
        await self.patch(status="Running",
                         status_details=f"{'scoring' if self.scoring else 'ingestion'}_hostname-{host}")
        runs = []
        command, has_meta = self.command_of("program", "program")
        if not has_meta:
            shutil.copytree(os.path.join(self.root, "program"), self.out, dirs_exist_ok=True)
        elif command:
            runs.append(self.run_container("program", "program", command))
        if a.get("ingestion_program"):
            icommand, _ = self.command_of("ingestion_program", "ingestion")
            if not icommand:
                raise JobError("The ingestion program has no command in its metadata")
            runs.append(self.run_container("ingestion", "ingestion_program", icommand))
        try:
            results = await asyncio.wait_for(asyncio.gather(*runs), a["execution_time_limit"])
        except asyncio.TimeoutError:
            for name in self.containers:
                p = await asyncio.create_subprocess_exec("docker", "kill", name,
                                                         stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
                await p.wait()
            await self.upload_logs([])
            message = f"Execution Time Limit exceeded. Limit was {a['execution_time_limit']} seconds"
            await self.patch(type="Execution_Time_Limit_Exceeded", error_message=message,
                             is_scoring=str(self.scoring))
            await self.ws_send({"kind": "stderr", "message": message})
            raise JobError(message)
        await self.upload_logs(results)
        for kind, code, _ in results:
            if code != 0:
                raise JobError(f"The {kind} exited with code {code}")
        with open(os.path.join(self.out, "metadata"), "w") as f:
            yaml.safe_dump({"exitCode": 0}, f)
        html = os.path.join(self.out, "detailed_results.html")
        if self.scoring and a.get("detailed_results_url") and os.path.exists(html):
            await self.put(a["detailed_results_url"], html, "text/html")
            await self.ws_send({"kind": "detailed_result_update"})
        if self.scoring:
            scores_path = os.path.join(self.out, "scores.json")
            if not os.path.exists(scores_path):
                raise JobError("No scores.json")
            with open(scores_path) as f:
                scores = json.load(f)
            url = f"{a['submissions_api_url']}/upload_submission_scores/{a['id']}/"

            async def once():
                async with self.http.post(url, json={"secret": a["secret"], "scores": scores}) as r:
                    if r.status != 200:
                        raise JobError(f"scores answered {r.status}")
            await self.retry("scores", once)
        zpath = os.path.join(self.root, "output.zip")
        with zipfile.ZipFile(zpath, "w") as z:
            for dirpath, _, names in os.walk(self.out):
                for n in names:
                    full = os.path.join(dirpath, n)
                    z.write(full, os.path.relpath(full, self.out))
        await self.put(a["scoring_result"] if self.scoring else a["prediction_result"], zpath,
                       "application/zip")
        await self.patch(status="Finished" if self.scoring else "Scoring")

    async def upload_logs(self, results):
        for kind, _, files in results:
            for which, path in files.items():
                url = self.log_urls.get((kind, which))
                if url:
                    await self.put(url, path, "application/zip")


def handle(body, message, base):
    try:
        if message.content_type != "application/json":
            raise ValueError(f"unsupported content type {message.content_type}")
        task = (message.headers or {}).get("task")
        if task != "compute_worker_run":
            raise ValueError(f"unknown task {task!r}")
        payload = kombu_wire.loads(message.body)
        args = payload[0][0]
        # As Codabench's worker does since the site moved to kombu 5.6.
        if "secret" in args:
            args["secret"] = str(args["secret"])
        missing = [k for k in REQUIRED if k not in args]
        if missing:
            raise ValueError(f"run_args lacks {missing}")
    except Exception as e:  # noqa: BLE001
        log.error("rejecting a message: %s", redact(e))
        message.reject(requeue=False)
        return
    log.info("job for submission %s (%s)", args["id"], "scoring" if args["is_scoring"] else "prediction")
    try:
        asyncio.run(Job(args, base).run())
    except Exception as e:  # noqa: BLE001
        log.error("job for submission %s crashed: %s", args["id"], redact(e))
    message.ack()


def main():
    if sys.argv[1:2] != ["run"]:
        print("usage: mock_worker.py run", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper(), stream=sys.stderr,
                        format="%(asctime)s mock-worker %(levelname)s %(message)s")
    for noisy in ("kombu", "amqp", "asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    base = os.path.join(os.environ.get("HOST_DIRECTORY", "/tmp/codabench"), "jobs")
    os.makedirs(base, exist_ok=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    queue = Queue("compute-worker", Exchange("compute-worker"), routing_key="compute-worker",
                  queue_arguments={"x-max-priority": 10})
    while not stop:
        try:
            with Connection(os.environ["BROKER_URL"], heartbeat=0) as conn:
                channel = conn.channel()
                channel.basic_qos(0, 1, False)
                # on_message: the raw message, so that bad ones are not decoded by kombu.
                with conn.Consumer(queue, channel=channel,
                                   on_message=lambda m: handle(None, m, base)):
                    log.info("consuming compute-worker")
                    while not stop:
                        try:
                            conn.drain_events(timeout=1)
                        except socket.timeout:
                            pass
        except Exception as e:  # noqa: BLE001
            if stop:
                break
            log.warning("broker connection lost (%s), reconnecting", redact(e))
            time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
