#!/usr/bin/python3
"""A stand-in for a Codabench site, for the worker's end-to-end tests.

One aiohttp app on one port serves what a Codabench site serves to a compute
worker, and records everything it receives:

  PATCH /api/submissions/<id>/                 status, md5, error texts (form or JSON)
  POST  /api/upload_submission_scores/<id>/     {"secret", "scores"}
  GET   /submission_input/<user_pk>/<id>/<secret>/?kind=...   websocket, JSON text frames
  GET   /storage/<key>?expires=..&sig=..        signed read URL (S3-like)
  PUT   /storage/<key>?expires=..&sig=..        signed write URL (streamed to disk)

It sends jobs the way the site does (src/apps/competitions/tasks.py
`_send_to_compute_worker`): a Celery `send_task('compute_worker_run', ...)` on
queue `compute-worker` (declared with x-max-priority 10), priority 0 for
prediction and 10 for scoring, soft_time_limit = execution_time_limit + 20 min.
A `status=Scoring` PATCH queues the scoring job, as the site's serializer does.

Behaviour copied from the site on purpose, because a worker must cope with it:
  * write URLs are signed for a Content-Type, as make_url_sassy does on S3 and
    GCS: `application/zip` for the output zips *and the eight log files*,
    `text/html` for detailed results. A PUT with another Content-Type gets 403
    (SignatureDoesNotMatch), like S3. Turn off with --no-content-type-check or
    the fault {"enforce_content_type": false} (Azure does not bind it).
  * before each job the site creates the job's objects empty
    (prediction_result.zip, scoring_result.zip, detailed_results.html and that
    stage's four log files); a GET of them before the worker's PUT gives 0 bytes.
  * an error PATCH (`type` Docker_Image_Pull_Fail / Execution_Time_Limit_Exceeded)
    appends "\\n" + error_message to `prediction_ingestion_stderr`, or to
    `scoring_stderr` when is_scoring == "True" (views/submissions.py). A later
    PUT of that log by the worker replaces it, as on the real site.
  * the websocket handshake is refused (403) when the id/secret do not match,
    as Daphne does for a consumer that closes before accepting; a frame that is
    not a JSON object with "kind" closes the socket with 1011.

Test control (not part of Codabench):
  POST /_test/submissions        create a submission and send its prediction job
  GET  /_test/submissions        ids
  GET  /_test/submissions/<id>   everything recorded for it
  POST /_test/revoke/<id>        control.revoke(task_id, terminate=True), status Cancelled
  POST /_test/faults             {"api_500": N, "storage_500": N, "ws_down": bool, ...}
  POST /_test/sign               {"key", "mode": "r"|"w", "content_type"} -> {"url"}
  GET  /_test/state              faults, counters, rejected and unmatched requests
  GET  /_test/object?key=K       raw bytes of a stored object

Run: /usr/bin/python3 tests/standin/codabench_standin.py --port P \
        --broker-url amqp://guest:guest@localhost:5672/VHOST --state-dir DIR
It prints "listening on http://127.0.0.1:P" then "ready" on stdout.
"""

import argparse
import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import logging
import os
import re
import secrets as pysecrets
import shutil
import signal
import sys
import time
import uuid
import zipfile

from aiohttp import web, WSMsgType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kombu_wire  # noqa: E402
from aiohttp.abc import AbstractAccessLogger

log = logging.getLogger("standin")

STATUSES = ("None", "Submitting", "Submitted", "Preparing", "Running", "Scoring",
            "Finished", "Failed", "Cancelled")
ERROR_TYPES = ("Docker_Image_Pull_Fail", "Execution_Time_Limit_Exceeded")
PREDICTION_LOGS = ("prediction_stdout", "prediction_stderr",
                   "prediction_ingestion_stdout", "prediction_ingestion_stderr")
SCORING_LOGS = ("scoring_stdout", "scoring_stderr",
                "scoring_ingestion_stdout", "scoring_ingestion_stderr")
TIME_PADDING = 60 * 20  # the site pads soft_time_limit by 20 minutes
KEY_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
LOG_PREVIEW = 64 * 1024
URL_LIFETIME = 60 * 60 * 24  # make_url_sassy's default duration


class SiteCelery:
    """The site's Celery app, used from one thread only."""

    def __init__(self, broker_url):
        from celery import Celery
        from kombu import Exchange, Queue

        self.app = Celery("codabench_standin", broker=broker_url)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            # Mostly so that the queue is declared with x-max-priority, as the site does.
            task_queues=[Queue("compute-worker", Exchange("compute-worker"),
                               routing_key="compute-worker",
                               queue_arguments={"x-max-priority": 10})],
            # The stand-in's producer connection idles for long stretches; without
            # heartbeats RabbitMQ keeps it, and publish retries cover a broker restart.
            broker_heartbeat=0,
            task_publish_retry=True,
            task_publish_retry_policy={"max_retries": 30, "interval_start": 0,
                                       "interval_step": 0.5, "interval_max": 1},
        )

    def check(self):
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)

    def send(self, run_args, soft_time_limit, priority, kombu=kombu_wire.DEFAULT):
        # As the site's Celery of that kombu release writes it (kombu_wire.py).
        options = {}
        serializer = kombu_wire.serializer_name(kombu)
        if serializer:
            options["serializer"] = serializer
        headers = kombu_wire.extra_headers(kombu)
        if headers:
            options["headers"] = headers
        result = self.app.send_task("compute_worker_run",
                                    args=(kombu_wire.site_run_args(run_args),),
                                    queue="compute-worker",
                                    soft_time_limit=soft_time_limit, priority=priority,
                                    **options)
        return result.id

    def revoke(self, task_id):
        self.app.control.revoke(task_id, terminate=True)


class Submission:
    def __init__(self, sid, user_pk, spec):
        self.id = sid
        self.user_pk = user_pk
        self.secret = str(uuid.uuid4())
        self.spec = spec
        self.status = "Submitting"
        self.status_details = None
        self.md5 = None
        self.ingestion_hostname = None
        self.scoring_hostname = None
        self.keys = {}  # role -> storage key
        self.statuses = []
        self.api_calls = []
        self.errors = []
        self.scores = []
        self.ws_messages = []
        self.ws_connections = []
        self.ws_recorded = 0  # bytes of text frames kept in ws_messages
        self.tasks = []
        self.revokes = []
        self.storage = []  # storage requests touching this submission's keys
        # How the secret was written in each API call and websocket path:
        # "dashed" (str(uuid.UUID), what the Python worker sends) or "other".
        self.secret_forms = {}

    def note_secret(self, value):
        form = "dashed" if value == self.secret else "other"
        self.secret_forms[form] = self.secret_forms.get(form, 0) + 1


class StandIn:
    def __init__(self, args):
        self.args = args
        self.port = None
        self.state_dir = os.path.abspath(args.state_dir)
        self.objects_dir = os.path.join(self.state_dir, "objects")
        os.makedirs(self.objects_dir, exist_ok=True)
        self.sign_key = pysecrets.token_bytes(32)
        self.issued = {}  # sig -> {"key", "mode", "content_type", "expires"}
        self.objects = {}  # key -> metadata
        self.subs = {}
        self.next_id = args.first_id if args.first_id else 100000 + pysecrets.randbelow(800000)
        self.seq = 0
        self.faults = {"api_500": 0, "storage_500": 0, "ws_down": False,
                       "ws_close_after": None, "api_delay_s": 0.0, "storage_delay_s": 0.0,
                       # bytes a second per download, as one stream from a remote
                       # object store gets (0: as fast as the machine goes)
                       "storage_stream_rate": 0,
                       "enforce_content_type": not args.no_content_type_check,
                       "require_blob_type": False}
        self.rejected = []  # 4xx answers to the worker, all routes
        self.unmatched = []
        self.counters = {"api": 0, "storage": 0, "ws": 0}
        self.celery = SiteCelery(args.broker_url)
        self.celery_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.file_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)

    # ------------------------------------------------------------------ helpers
    def next_seq(self):
        self.seq += 1
        return self.seq

    def stamp(self, **fields):
        return dict(seq=self.next_seq(), t=time.time(), **fields)

    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def object_path(self, key):
        return os.path.join(self.objects_dir, *key.split("/"))

    def signature(self, mode, key, expires, content_type):
        msg = f"{mode}\n{key}\n{expires}\n{content_type}".encode()
        return hmac.new(self.sign_key, msg, hashlib.sha256).hexdigest()

    def signed_url(self, key, mode, content_type="application/zip"):
        """make_url_sassy: read URLs carry no content type, write URLs are bound to one."""
        assert mode in ("r", "w")
        ct = content_type if mode == "w" else ""
        expires = int(time.time()) + URL_LIFETIME
        sig = self.signature(mode, key, expires, ct)
        self.issued[sig] = {"key": key, "mode": mode, "content_type": ct, "expires": expires}
        return f"{self.base_url()}/storage/{key}?expires={expires}&sig={sig}"

    def subs_for_key(self, key):
        for sub in self.subs.values():
            for role, k in sub.keys.items():
                if k == key:
                    yield sub, role

    def reject(self, route, code, reason, sub=None, **extra):
        entry = self.stamp(route=route, code=code, reason=reason,
                           submission=sub.id if sub else None, **extra)
        self.rejected.append(entry)
        log.info("%s -> %d %s", route, code, reason)
        return entry

    def put_site_object(self, key, data=b""):
        """The site writes an object itself (an empty placeholder, or an appended log)."""
        path = self.object_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        meta = self.objects.setdefault(key, {"puts": 0})
        meta.update(size=len(data), md5=hashlib.md5(data).hexdigest(), origin="site",
                    content_type=None, x_ms_blob_type=None, x_ms_version=None)

    def copy_in(self, src, key):
        # Written aside and renamed into place, as a store makes an object
        # visible only once whole. Datasets are keyed by their content, so a
        # new submission with the same scoring program writes the same key
        # while an earlier one's job may be downloading it: a copy in place
        # truncated the file under that GET, which then sent 0 bytes with a
        # 200 (the flaky e2e_fleet run).
        path = self.object_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.part-{pysecrets.token_hex(4)}"
        shutil.copyfile(src, tmp)
        os.replace(tmp, path)
        md5 = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                md5.update(chunk)
        return {"puts": 0, "size": os.path.getsize(path), "md5": md5.hexdigest(),
                "origin": "test", "content_type": None, "x_ms_blob_type": None,
                "x_ms_version": None}

    @staticmethod
    def file_sha256(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    async def in_files(self, fn, *a):
        return await asyncio.get_running_loop().run_in_executor(self.file_pool, fn, *a)

    async def in_celery(self, fn, *a):
        return await asyncio.get_running_loop().run_in_executor(self.celery_pool, fn, *a)

    # ------------------------------------------------------------ job sending
    def build_run_args(self, sub, is_scoring):
        """tasks.py _send_to_compute_worker, for one task on a custom queue."""
        spec = sub.spec
        run_args = {
            "user_pk": sub.user_pk,
            "submissions_api_url": f"{self.base_url()}/api",
            "secret": sub.secret,
            "docker_image": spec["docker_image"],
            "execution_time_limit": spec["execution_time_limit"],
            "id": sub.id,
            "is_scoring": is_scoring,
        }
        if spec["enable_detailed_results"] and self.objects.get(sub.keys["detailed_results"]) is None:
            self.put_site_object(sub.keys["detailed_results"])
        for role in ("prediction_result", "scoring_result"):
            if self.objects.get(sub.keys[role]) is None:
                self.put_site_object(sub.keys[role])
        if not is_scoring:
            run_args["prediction_result"] = self.signed_url(sub.keys["prediction_result"], "w")
        else:
            if spec["enable_detailed_results"]:
                run_args["detailed_results_url"] = self.signed_url(
                    sub.keys["detailed_results"], "w", content_type="text/html")
            run_args["prediction_result"] = self.signed_url(sub.keys["prediction_result"], "r")
            run_args["scoring_result"] = self.signed_url(sub.keys["scoring_result"], "w")
        only_scoring = spec["ingestion_only_during_scoring"]
        if "ingestion_program" in sub.keys:
            if (only_scoring and is_scoring) or (not only_scoring and not is_scoring):
                run_args["ingestion_program"] = self.signed_url(sub.keys["ingestion_program"], "r")
        if "input_data" in sub.keys and (not is_scoring or only_scoring):
            run_args["input_data"] = self.signed_url(sub.keys["input_data"], "r")
        if is_scoring and "reference_data" in sub.keys:
            run_args["reference_data"] = self.signed_url(sub.keys["reference_data"], "r")
        run_args["ingestion_only_during_scoring"] = only_scoring
        run_args["program_data"] = self.signed_url(
            sub.keys["submission"] if not is_scoring else sub.keys["scoring_program"], "r")
        for name in (SCORING_LOGS if is_scoring else PREDICTION_LOGS):
            # create_detailed_output_file: an empty file, and a write URL with the
            # default content type of make_url_sassy.
            self.put_site_object(sub.keys[name])
            run_args[name] = self.signed_url(sub.keys[name], "w")
        return run_args

    async def send_job(self, sub, is_scoring):
        run_args = self.build_run_args(sub, is_scoring)
        priority = 10 if is_scoring else 0
        soft_time_limit = sub.spec["execution_time_limit"] + TIME_PADDING
        task_id = await self.in_celery(self.celery.send, run_args, soft_time_limit, priority,
                                       sub.spec["kombu"])
        sub.tasks.append(self.stamp(task_id=task_id, is_scoring=is_scoring, priority=priority,
                                    soft_time_limit=soft_time_limit, run_args=run_args,
                                    kombu=sub.spec["kombu"]))
        if sub.status == "Submitting":
            sub.status = "Submitted"
        log.info("sent %s job %s for submission %d", "scoring" if is_scoring else "prediction",
                 task_id, sub.id)
        return task_id

    # ------------------------------------------------------------ API
    async def api_fault(self, route):
        self.counters["api"] += 1
        if self.faults["api_delay_s"]:
            await asyncio.sleep(self.faults["api_delay_s"])
        if self.faults["api_500"] > 0:
            self.faults["api_500"] -= 1
            return True
        return False

    @staticmethod
    def parse_secret(value):
        if value is None:
            return None, "no secret"
        try:
            return uuid.UUID(str(value)), None
        except ValueError:
            return None, "secret is not a valid UUID"

    async def api_prologue(self, request, method, path_pattern):
        """The submission a site API call names, or the answer that refuses it:
        an injected 500 fault, or 404 for an unknown id."""
        sid = int(request.match_info["id"])
        sub = self.subs.get(sid)
        route = f"{method} {path_pattern.format(sid)}"
        if await self.api_fault(route):
            if sub:
                sub.api_calls.append(self.stamp(method=method, fields=None, code=500,
                                                reason="injected fault"))
            return sid, sub, route, web.json_response({"detail": "injected fault"}, status=500)
        if sub is None:
            self.reject(route, 404, "no such submission")
            return sid, sub, route, web.json_response({"detail": "Not found."}, status=404)
        return sid, sub, route, None

    async def patch_submission(self, request):
        sid, sub, route, refused = await self.api_prologue(request, "PATCH",
                                                           "/api/submissions/{}/")
        if refused is not None:  # a Response is a (here empty) mapping: falsy
            return refused
        try:
            if request.content_type == "application/json":
                fields = await request.json()
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
                # DRF reads JSON too; keep form semantics (strings, "True"/"False").
                fields = {k: ("" if v is None else str(v)) for k, v in fields.items()}
            else:
                fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        except Exception as e:  # noqa: BLE001 - anything unparsable is a 400
            sub.api_calls.append(self.stamp(method="PATCH", fields=None, code=400,
                                            reason=f"unreadable body: {e}"))
            self.reject(route, 400, "unreadable body", sub)
            return web.json_response({"detail": "unreadable body"}, status=400)

        shown = {k: v for k, v in fields.items() if k != "secret"}
        sub.note_secret(fields.get("secret"))
        secret, why = self.parse_secret(fields.get("secret"))
        if why or secret != uuid.UUID(sub.secret):
            reason = why or "Submission secrets do not match"
            code = 400 if why and fields.get("secret") is not None else 403
            sub.api_calls.append(self.stamp(method="PATCH", fields=shown, code=code, reason=reason))
            self.reject(route, code, reason, sub)
            return web.json_response({"detail": reason}, status=code)
        if "task" in fields:
            sub.api_calls.append(self.stamp(method="PATCH", fields=shown, code=403,
                                            reason="task cannot be updated"))
            self.reject(route, 403, "task cannot be updated", sub)
            return web.json_response({"detail": "Submission task cannot be updated"}, status=403)
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            sub.api_calls.append(self.stamp(method="PATCH", fields=shown, code=400,
                                            reason="invalid status"))
            self.reject(route, 400, f"invalid status {status!r}", sub)
            return web.json_response({"status": [f'"{status}" is not a valid choice.']}, status=400)

        call = self.stamp(method="PATCH", fields=shown, code=200, reason=None)
        sub.api_calls.append(call)

        details = fields.get("status_details")
        if details:
            if "ingestion_hostname" in details:
                sub.ingestion_hostname = details.replace("ingestion_hostname-", "")
            if "scoring_hostname" in details:
                sub.scoring_hostname = details.replace("scoring_hostname-", "")
        if "type" in fields and fields["type"] in ERROR_TYPES:
            message = fields.get("error_message", "")
            is_scoring = fields.get("is_scoring", "False")
            name = "scoring_stderr" if is_scoring == "True" else "prediction_ingestion_stderr"
            sub.errors.append(self.stamp(type=fields["type"], error_message=message,
                                         is_scoring=is_scoring, appended_to=name))
            key = sub.keys[name]
            if key in self.objects:
                old = await self.in_files(self.read_object, key, None)
                self.put_site_object(key, old + b"\n" + message.encode("utf-8"))
        if "md5" in fields:
            sub.md5 = fields["md5"]
        if status is not None:
            sub.statuses.append(self.stamp(status=status, details=details))
            if status == "Scoring":
                # Start scoring because we're "SCORING" status now from compute worker
                try:
                    await self.send_job(sub, is_scoring=True)
                except Exception as e:  # noqa: BLE001 - the site answers 500 when the broker fails
                    log.exception("could not send the scoring job")
                    call["code"] = 500
                    call["reason"] = f"could not send the scoring job: {e}"
                    return web.json_response({"detail": "broker error"}, status=500)
            sub.status = status
            if "status_details" in fields:
                sub.status_details = details
        elif "status_details" in fields:
            sub.status_details = details
        return web.json_response({"id": sub.id, "status": sub.status,
                                  "status_details": sub.status_details, "md5": sub.md5})

    async def upload_scores(self, request):
        sid, sub, route, refused = await self.api_prologue(
            request, "POST", "/api/upload_submission_scores/{}/")
        if refused is not None:  # a Response is a (here empty) mapping: falsy
            return refused
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except Exception as e:  # noqa: BLE001
            sub.api_calls.append(self.stamp(method="POST", fields=None, code=400,
                                            reason=f"unreadable body: {e}"))
            self.reject(route, 400, "body is not a JSON object", sub)
            return web.json_response({"detail": "JSON parse error"}, status=400)
        sub.note_secret(data.get("secret"))
        secret, why = self.parse_secret(data.get("secret"))
        if why:
            sub.api_calls.append(self.stamp(method="POST", fields=None, code=400, reason=why))
            self.reject(route, 400, why, sub)
            return web.json_response(["Secret not a valid UUID"], status=400)
        if secret != uuid.UUID(sub.secret):
            sub.api_calls.append(self.stamp(method="POST", fields=None, code=403,
                                            reason="secrets do not match"))
            self.reject(route, 403, "Submission secrets do not match", sub)
            return web.json_response({"detail": "Submission secrets do not match"}, status=403)
        scores = data.get("scores")
        bad = None
        if not isinstance(scores, dict):
            bad = "'scores' required."
        else:
            for k, v in scores.items():
                if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                    bad = f"score {k!r} is not a number"
                else:
                    try:
                        float(v)
                    except ValueError:
                        bad = f"score {k!r} is not a number"
        if bad:
            sub.api_calls.append(self.stamp(method="POST", fields={"scores": scores}, code=400,
                                            reason=bad))
            self.reject(route, 400, bad, sub)
            return web.json_response([bad], status=400)
        sub.api_calls.append(self.stamp(method="POST", fields={"scores": scores}, code=200,
                                        reason=None))
        columns = sub.spec.get("leaderboard_columns")
        ignored = [k for k in scores if columns is not None and k not in columns]
        sub.scores.append(self.stamp(scores=scores, ignored_keys=ignored))
        return web.json_response({})

    # ------------------------------------------------------------ websocket
    async def websocket(self, request):
        self.counters["ws"] += 1
        sid = int(request.match_info["id"])
        user_pk = int(request.match_info["user_pk"])
        secret = request.match_info["secret"]
        kind = request.query.get("kind")
        sub = self.subs.get(sid)
        route = f"WS /submission_input/{user_pk}/{sid}/…/"
        conn = self.stamp(query_kind=kind, user_pk=user_pk, accepted=False, refused=None,
                          closed_t=None, close_code=None, frames=0, bytes=0, unrecorded=0)
        if sub is not None:
            sub.ws_connections.append(conn)
            sub.note_secret(secret)
        if self.faults["ws_down"]:
            conn["refused"] = "ws_down fault (503)"
            return web.Response(status=503, text="websocket endpoint down (injected fault)")
        if sub is None or not hmac.compare_digest(secret, sub.secret):
            conn["refused"] = "id/secret mismatch (403)"
            self.reject(route, 403, "websocket secret mismatch", sub)
            return web.Response(status=403, text="Forbidden")
        ws = web.WebSocketResponse(autoping=True)
        if not ws.can_prepare(request).ok:
            conn["refused"] = "not a websocket upgrade (400)"
            return web.Response(status=400, text="expected a websocket upgrade")
        await ws.prepare(request)
        conn["accepted"] = True
        close_after = self.faults["ws_close_after"]
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                conn["frames"] += 1
                conn["bytes"] += len(msg.data)
                limit = self.args.ws_record_limit
                if limit is not None and sub.ws_recorded + len(msg.data) > limit:
                    # A benchmark's log burst would otherwise keep hundreds of
                    # MiB here and in every report; it is counted, not kept.
                    conn["unrecorded"] += 1
                    continue
                sub.ws_recorded += len(msg.data)
                try:
                    data = json.loads(msg.data)
                    if not isinstance(data, dict) or "kind" not in data:
                        raise ValueError("no 'kind'")
                except ValueError as e:
                    sub.ws_messages.append(self.stamp(query_kind=kind, data=None,
                                                      invalid=f"{e}: {msg.data[:200]!r}"))
                    await ws.close(code=1011)
                    break
                sub.ws_messages.append(self.stamp(query_kind=kind, data=data))
                if close_after is not None and conn["frames"] >= close_after:
                    await ws.close(code=1011, message=b"injected fault")
                    break
            elif msg.type == WSMsgType.BINARY:
                conn["frames"] += 1
                sub.ws_messages.append(self.stamp(query_kind=kind, data=None,
                                                  invalid=f"binary frame of {len(msg.data)} bytes"))
                await ws.close(code=1011)
                break
            elif msg.type == WSMsgType.ERROR:
                break
        conn["closed_t"] = time.time()
        conn["close_code"] = ws.close_code
        return ws

    # ------------------------------------------------------------ storage
    def check_signature(self, key, mode, query):
        sig = query.get("sig", "")
        issued = self.issued.get(sig)
        if issued is None:
            return "SignatureDoesNotMatch: unknown signature"
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            return "AuthorizationQueryParametersError: bad expires"
        expected = self.signature(issued["mode"], key, expires, issued["content_type"])
        if not hmac.compare_digest(expected, sig):
            return "SignatureDoesNotMatch: signature is not for this key"
        if issued["mode"] != mode:
            return f"SignatureDoesNotMatch: a {'read' if issued['mode'] == 'r' else 'write'} URL"
        if expires < time.time():
            return "AccessDenied: Request has expired"
        return None

    def record_storage(self, key, entry):
        for sub, role in self.subs_for_key(key):
            sub.storage.append((role, entry))  # the entry is completed after this

    async def storage_get(self, request):
        key = request.match_info["key"]
        self.counters["storage"] += 1
        if self.faults["storage_delay_s"]:
            await asyncio.sleep(self.faults["storage_delay_s"])
        entry = self.stamp(method=request.method, key=key, code=None, reason=None)
        self.record_storage(key, entry)
        if self.faults["storage_500"] > 0:
            self.faults["storage_500"] -= 1
            entry.update(code=500, reason="injected fault")
            return web.Response(status=500, text="InternalError (injected fault)")
        if not KEY_RE.match(key):
            entry.update(code=400, reason="bad key")
            return web.Response(status=400, text="InvalidKey")
        why = self.check_signature(key, "r", request.query)
        if why:
            entry.update(code=403, reason=why)
            self.reject(f"{request.method} /storage/{key}", 403, why)
            return web.Response(status=403, text=why)
        path = self.object_path(key)
        if key not in self.objects or not os.path.isfile(path):
            entry.update(code=404, reason="NoSuchKey")
            return web.Response(status=404, text="NoSuchKey")
        entry.update(code=200, size=os.path.getsize(path))
        rate = self.faults["storage_stream_rate"]
        if not rate:
            return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})
        return await self.paced_file(request, path, float(rate))

    async def paced_file(self, request, path, rate):
        """The file at `rate` bytes a second: what one stream gets from a remote store."""
        size = os.path.getsize(path)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(size)})
        await resp.prepare(request)
        chunk = 256 * 1024
        start = time.monotonic()
        sent = 0
        with open(path, "rb") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                # A chunk leaves no sooner than the rate allows its last byte.
                sent += len(data)
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                await resp.write(data)
        await resp.write_eof()
        return resp

    async def storage_put(self, request):
        key = request.match_info["key"]
        self.counters["storage"] += 1
        if self.faults["storage_delay_s"]:
            await asyncio.sleep(self.faults["storage_delay_s"])
        ctype = request.headers.get("Content-Type")
        entry = self.stamp(method="PUT", key=key, code=None, reason=None, size=None,
                           content_type=ctype,
                           x_ms_blob_type=request.headers.get("x-ms-blob-type"),
                           x_ms_version=request.headers.get("x-ms-version"),
                           content_length=request.headers.get("Content-Length"),
                           chunked="chunked" in request.headers.get("Transfer-Encoding", ""))
        self.record_storage(key, entry)
        if self.faults["storage_500"] > 0:
            self.faults["storage_500"] -= 1
            entry.update(code=500, reason="injected fault")
            await self.drain(request)
            return web.Response(status=500, text="InternalError (injected fault)")
        if not KEY_RE.match(key):
            entry.update(code=400, reason="bad key")
            return web.Response(status=400, text="InvalidKey")
        why = self.check_signature(key, "w", request.query)
        if not why and self.faults["enforce_content_type"]:
            signed_ct = self.issued[request.query["sig"]]["content_type"]
            if signed_ct and ctype != signed_ct:
                why = (f"SignatureDoesNotMatch: the URL was signed for Content-Type "
                       f"{signed_ct!r}, the request sent {ctype!r}")
        if not why and self.faults["require_blob_type"] and \
                request.headers.get("x-ms-blob-type") != "BlockBlob":
            why = "MissingRequiredHeader: x-ms-blob-type"
        if why:
            entry.update(code=403, reason=why)
            self.reject(f"PUT /storage/{key}", 403, why)
            await self.drain(request)
            return web.Response(status=403, text=why)
        path = self.object_path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.part-{pysecrets.token_hex(4)}"
        md5 = hashlib.md5()
        size = 0
        try:
            with open(tmp, "wb") as f:
                async for chunk in request.content.iter_chunked(1 << 16):
                    f.write(chunk)
                    md5.update(chunk)
                    size += len(chunk)
            os.replace(tmp, path)
        except Exception as e:  # noqa: BLE001 - a client that goes away mid-upload
            entry.update(code=400, reason=f"incomplete body: {e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        meta = self.objects.setdefault(key, {"puts": 0})
        meta.update(size=size, md5=md5.hexdigest(), origin="put", content_type=ctype,
                    x_ms_blob_type=entry["x_ms_blob_type"], x_ms_version=entry["x_ms_version"])
        meta["puts"] += 1
        # `t` is when the request arrived; `t_done` when the object was stored,
        # which is what a participant waiting for it sees.
        entry.update(code=200, size=size, md5=md5.hexdigest(), t_done=time.time())
        return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})

    @staticmethod
    async def drain(request):
        try:
            async for _ in request.content.iter_chunked(1 << 16):
                pass
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------ test control
    async def test_create(self, request):
        spec = await request.json()
        for required in ("submission", "scoring_program"):
            if not spec.get(required):
                return web.json_response({"error": f"{required} is required"}, status=400)
        for role in ("submission", "scoring_program", "ingestion_program", "input_data",
                     "reference_data"):
            path = spec.get(role)
            if path and not os.path.isfile(path):
                return web.json_response({"error": f"{role}: no file {path}"}, status=400)
        spec = {
            "submission": spec["submission"],
            "scoring_program": spec["scoring_program"],
            "ingestion_program": spec.get("ingestion_program"),
            "input_data": spec.get("input_data"),
            "reference_data": spec.get("reference_data"),
            "docker_image": spec.get("docker_image", "codabench-worker-test/busybox:latest"),
            "execution_time_limit": int(spec.get("execution_time_limit", 60)),
            "ingestion_only_during_scoring": bool(spec.get("ingestion_only_during_scoring", False)),
            "enable_detailed_results": bool(spec.get("enable_detailed_results", True)),
            "leaderboard_columns": spec.get("leaderboard_columns"),
            "send": bool(spec.get("send", True)),
            "user_pk": int(spec.get("user_pk", 1)),
            "kombu": spec.get("kombu") or self.args.kombu,
        }
        if spec["kombu"] not in kombu_wire.FORMATS:
            return web.json_response({"error": f"kombu: one of {kombu_wire.FORMATS}"},
                                     status=400)
        sid = self.next_id
        self.next_id += 1
        sub = Submission(sid, spec["user_pk"], spec)
        base = f"submissions/{sid}"
        sub.keys["submission"] = f"{base}/data/submission.zip"
        for role in ("scoring_program", "ingestion_program", "input_data", "reference_data"):
            if spec[role]:
                digest = await self.in_files(self.file_sha256, spec[role])
                sub.keys[role] = f"datasets/{digest[:24]}/{role}.zip"
        sub.keys["prediction_result"] = f"{base}/prediction_result/prediction_result.zip"
        sub.keys["scoring_result"] = f"{base}/scoring_result/scoring_result.zip"
        sub.keys["detailed_results"] = f"{base}/detailed_result/detailed_results.html"
        for name in PREDICTION_LOGS + SCORING_LOGS:
            sub.keys[name] = f"{base}/details/{name}.txt"
        for role in ("submission", "scoring_program", "ingestion_program", "input_data",
                     "reference_data"):
            if role in sub.keys:
                self.objects[sub.keys[role]] = await self.in_files(self.copy_in, spec[role],
                                                                   sub.keys[role])
        self.subs[sid] = sub
        task_id = None
        if spec["send"]:
            try:
                task_id = await self.send_job(sub, is_scoring=False)
            except Exception as e:  # noqa: BLE001
                log.exception("could not send the prediction job")
                return web.json_response({"error": f"could not send the job: {e}", "id": sid},
                                         status=500)
        return web.json_response({"id": sid, "secret": sub.secret, "task_id": task_id,
                                  "user_pk": sub.user_pk})

    async def test_send(self, request):
        """Send a job for an existing submission again (prediction unless ?scoring=1)."""
        sub = self.subs.get(int(request.match_info["id"]))
        if sub is None:
            return web.json_response({"error": "no such submission"}, status=404)
        is_scoring = request.query.get("scoring") in ("1", "true", "True")
        task_id = await self.send_job(sub, is_scoring=is_scoring)
        return web.json_response({"task_id": task_id})

    async def test_sign(self, request):
        """A signed URL for any key: {"key", "mode": "r"|"w", "content_type"}."""
        body = await request.json()
        key = body.get("key", "")
        if not KEY_RE.match(key) or body.get("mode") not in ("r", "w"):
            return web.json_response({"error": "need a key and mode r or w"}, status=400)
        return web.json_response({"url": self.signed_url(
            key, body["mode"], body.get("content_type", "application/zip"))})

    async def test_revoke(self, request):
        sub = self.subs.get(int(request.match_info["id"]))
        if sub is None:
            return web.json_response({"error": "no such submission"}, status=404)
        if not sub.tasks:
            return web.json_response({"error": "no job was sent"}, status=409)
        task_id = sub.tasks[-1]["task_id"]
        await self.in_celery(self.celery.revoke, task_id)
        sub.revokes.append(self.stamp(task_id=task_id, status_before=sub.status))
        if sub.status not in ("Finished", "Failed", "Cancelled"):
            sub.status = "Cancelled"
        return web.json_response({"task_id": task_id, "status": sub.status})

    async def test_faults(self, request):
        body = await request.json()
        for k, v in body.items():
            if k not in self.faults:
                return web.json_response({"error": f"unknown fault {k!r}",
                                          "known": sorted(self.faults)}, status=400)
            self.faults[k] = v
        return web.json_response(self.faults)

    def read_object(self, key, limit):
        try:
            with open(self.object_path(key), "rb") as f:
                return f.read() if limit is None else f.read(limit)
        except FileNotFoundError:
            return b""

    def zip_listing(self, key):
        meta = self.objects.get(key)
        if meta is None:
            return None
        if meta.get("size", 0) == 0:
            return {"error": "empty object"}
        try:
            with zipfile.ZipFile(self.object_path(key)) as z:
                return sorted(z.namelist())
        except (zipfile.BadZipFile, OSError) as e:
            return {"error": str(e)}

    def report(self, sub):
        objects = {}
        for role, key in sub.keys.items():
            meta = self.objects.get(key)
            if meta is not None:
                objects[role] = dict(meta, key=key)
        logs = {}
        for name in PREDICTION_LOGS + SCORING_LOGS:
            if sub.keys[name] in self.objects:
                logs[name] = self.read_object(sub.keys[name], LOG_PREVIEW).decode(
                    "utf-8", errors="replace")
        detailed = None
        if sub.keys["detailed_results"] in self.objects:
            detailed = self.read_object(sub.keys["detailed_results"], LOG_PREVIEW).decode(
                "utf-8", errors="replace")
        storage = [dict(entry, role=role) for role, entry in sub.storage]
        ws = {}
        for m in sub.ws_messages:
            ws.setdefault(m["query_kind"] or "", []).append(m)
        return {
            "id": sub.id, "user_pk": sub.user_pk, "secret": sub.secret,
            "status": sub.status, "status_details": sub.status_details, "md5": sub.md5,
            "ingestion_hostname": sub.ingestion_hostname,
            "scoring_hostname": sub.scoring_hostname,
            "statuses": sub.statuses, "api_calls": sub.api_calls, "errors": sub.errors,
            "scores": sub.scores, "ws": ws, "ws_messages": sub.ws_messages,
            "ws_connections": sub.ws_connections, "keys": sub.keys, "objects": objects,
            "storage": storage, "secret_forms": sub.secret_forms,
            "puts": [e for e in storage if e["method"] == "PUT"],
            "gets": [e for e in storage if e["method"] in ("GET", "HEAD")],
            "zips": {"prediction_result": self.zip_listing(sub.keys["prediction_result"]),
                     "scoring_result": self.zip_listing(sub.keys["scoring_result"])},
            "logs": logs, "detailed_results": detailed,
            "tasks": sub.tasks, "revokes": sub.revokes,
            "cancelled": bool(sub.revokes),
        }

    async def test_get(self, request):
        sub = self.subs.get(int(request.match_info["id"]))
        if sub is None:
            return web.json_response({"error": "no such submission"}, status=404)
        return web.json_response(self.report(sub))

    async def test_list(self, request):
        return web.json_response(sorted(self.subs))

    async def test_state(self, request):
        return web.json_response({"faults": self.faults, "counters": self.counters,
                                  "rejected": self.rejected, "unmatched": self.unmatched,
                                  "objects": self.objects, "submissions": sorted(self.subs)})

    async def test_object(self, request):
        key = request.query.get("key", "")
        if key not in self.objects:
            return web.Response(status=404, text="NoSuchKey")
        return web.FileResponse(self.object_path(key))

    async def not_found(self, request):
        self.unmatched.append(self.stamp(method=request.method, path=request.path))
        return web.json_response({"detail": "Not found."}, status=404)

    # ------------------------------------------------------------ app
    def make_app(self):
        # client_max_size only limits request.read()/post(); PUT bodies are streamed.
        app = web.Application(client_max_size=16 * 1024 * 1024)
        r = app.router
        r.add_route("PATCH", r"/api/submissions/{id:\d+}/", self.patch_submission)
        r.add_post(r"/api/upload_submission_scores/{id:\d+}/", self.upload_scores)
        r.add_get(r"/submission_input/{user_pk:\d+}/{id:\d+}/{secret:[^/]+}/", self.websocket)
        r.add_get(r"/storage/{key:.+}", self.storage_get)
        r.add_put(r"/storage/{key:.+}", self.storage_put)
        r.add_post("/_test/submissions", self.test_create)
        r.add_get("/_test/submissions", self.test_list)
        r.add_get(r"/_test/submissions/{id:\d+}", self.test_get)
        r.add_post(r"/_test/submissions/{id:\d+}/send", self.test_send)
        r.add_post(r"/_test/revoke/{id:\d+}", self.test_revoke)
        r.add_post("/_test/faults", self.test_faults)
        r.add_post("/_test/sign", self.test_sign)
        r.add_get("/_test/state", self.test_state)
        r.add_get("/_test/object", self.test_object)
        r.add_route("*", "/{tail:.*}", self.not_found)
        return app

    def dump(self):
        path = os.path.join(self.state_dir, "records.json")
        try:
            data = {"state": {"faults": self.faults, "counters": self.counters,
                              "rejected": self.rejected, "unmatched": self.unmatched},
                    "submissions": {sid: self.report(s) for sid, s in self.subs.items()}}
            with open(path, "w") as f:
                json.dump(data, f, indent=1, default=str)
        except Exception:  # noqa: BLE001
            log.exception("could not write %s", path)


class AccessLogger(AbstractAccessLogger):
    """Method, path and status; never the query string (it holds signatures)."""

    def log(self, request, response, time):  # noqa: A002 - aiohttp's signature
        self.logger.info("%s %s -> %s (%.3fs)", request.method, request.path,
                         response.status, time)


async def main_async(args):
    standin = StandIn(args)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(standin.celery_pool, standin.celery.check)
    app = standin.make_app()
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=log)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    sockets = site._server.sockets  # noqa: SLF001 - the only way to learn port 0's choice
    standin.port = sockets[0].getsockname()[1]
    print(f"listening on http://{args.host}:{standin.port}", flush=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    standin.dump()
    await runner.cleanup()
    standin.celery_pool.shutdown(wait=False, cancel_futures=True)
    standin.file_pool.shutdown(wait=False, cancel_futures=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--broker-url", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--first-id", type=int, default=0,
                   help="first submission id (default: random, so ids differ between runs)")
    p.add_argument("--no-content-type-check", action="store_true",
                   help="accept PUTs whatever their Content-Type (as Azure does)")
    p.add_argument("--ws-record-limit", type=int, default=None, metavar="BYTES",
                   help="keep at most this much websocket text per submission; later "
                        "frames are only counted (default: keep everything)")
    p.add_argument("--kombu", choices=kombu_wire.FORMATS, default=kombu_wire.DEFAULT,
                   help="write task messages as this kombu release does (default: "
                        f"{kombu_wire.DEFAULT}, what Codabench's site sends today); "
                        "a submission's own \"kombu\" overrides it")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s standin %(levelname)s %(message)s")
    logging.getLogger("kombu").setLevel(logging.WARNING)
    logging.getLogger("celery").setLevel(logging.WARNING)
    try:
        asyncio.run(main_async(args))
    except Exception as e:  # noqa: BLE001
        log.exception("stand-in failed: %s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
