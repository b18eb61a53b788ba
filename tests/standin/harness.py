"""Helpers for the worker's end-to-end tests (unittest, Debian's /usr/bin/python3).

    url = fresh_vhost()                      # a new RabbitMQ vhost for one test
    with StandIn(url) as site, Worker(url) as worker:
        sub = site.create_submission(submission=make_zip(folder), scoring_program=...)
        rec = wait_for_status(site, sub["id"], {"Finished", "Failed"}, timeout=90)
    delete_vhost(url)

Settings from the environment:
    CW_WORKER_BINARY        the worker (default build/src/cli/codabench-worker)
    CW_E2E_RABBITMQ_NODE    RabbitMQ node name (default rabbit@localhost)
    CW_E2E_AMQP_HOST/PORT   where that node listens (default localhost:5672)
    CW_E2E_KEEP             keep the stand-in's and the worker's folders (debugging)
    CONTAINER_RUNTIME       the workers' programs run under this OCI runtime (the
                            worker reads it too); a test skips when the engine lacks it
    CW_E2E_WORKER_USER      run the worker as that user (rootless Podman): its
                            HOST_DIRECTORY is given to it, HOME and
                            XDG_RUNTIME_DIR are its own
    CONTAINER_SOCKET        the engine, for the worker and the tests' docker CLI
"""

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = "/usr/bin/python3"
STANDIN = HERE / "codabench_standin.py"
RABBIT_NODE = os.environ.get("CW_E2E_RABBITMQ_NODE", "rabbit@localhost")
AMQP_HOST = os.environ.get("CW_E2E_AMQP_HOST", "localhost")
AMQP_PORT = int(os.environ.get("CW_E2E_AMQP_PORT", "5672"))
BUSYBOX_IMAGE = "codabench-worker-test/busybox:latest"
PYTHON_IMAGE = "codabench-worker/python:bookworm"
KEEP = bool(os.environ.get("CW_E2E_KEEP"))

_temp_dirs = []


def _tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(d)
    return d


@atexit.register
def _cleanup_temp_dirs():
    if KEEP:
        return
    for d in _temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


def worker_binary():
    return os.environ.get("CW_WORKER_BINARY", str(REPO / "build" / "src" / "cli" / "codabench-worker"))


# --------------------------------------------------------------------- RabbitMQ
def rabbitmqctl(*args, timeout=120, check=True):
    proc = subprocess.run(["rabbitmqctl", "-n", RABBIT_NODE, *args], capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def amqp_port_open(timeout=1.0):
    try:
        with socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_port(timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if amqp_port_open():
            return
        time.sleep(0.2)
    raise RuntimeError(f"RabbitMQ does not listen on {AMQP_HOST}:{AMQP_PORT}")


def ensure_rabbitmq():
    """Starts RabbitMQ when it is not running (and its app when it was stopped)."""
    if amqp_port_open():
        return
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("RabbitMQ is not installed (apt-get install rabbitmq-server)")
    node_up = rabbitmqctl("status", timeout=30, check=False).returncode == 0
    if node_up:
        rabbitmqctl("start_app")
    else:
        env = dict(os.environ, RABBITMQ_NODENAME=RABBIT_NODE)
        logf = open(os.path.join(tempfile.gettempdir(), "cw-e2e-rabbitmq.log"), "ab")
        subprocess.Popen(["rabbitmq-server"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    rabbitmqctl("await_startup", "--timeout", "120", timeout=150)
    _wait_port()


def vhost_of(url):
    return urllib.parse.unquote(urllib.parse.urlparse(url).path.lstrip("/")) or "/"


def fresh_vhost():
    """A new vhost cw-e2e-<random> with full permissions for guest; returns its amqp URL."""
    ensure_rabbitmq()
    name = f"cw-e2e-{secrets.token_hex(4)}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{name}"


def delete_vhost(url):
    rabbitmqctl("delete_vhost", vhost_of(url), check=False)


def stop_rabbitmq_app():
    rabbitmqctl("stop_app")


def start_rabbitmq_app():
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup", "--timeout", "120", timeout=150)
    _wait_port()


def restart_rabbitmq_app(down_s=3.0):
    """stop_app, stay down `down_s` seconds, start_app: every connection drops."""
    stop_rabbitmq_app()
    time.sleep(down_s)
    start_rabbitmq_app()


def queue_counts(url, queue="compute-worker"):
    """{"messages", "messages_ready", "messages_unacknowledged", "consumers"} or None."""
    proc = rabbitmqctl("list_queues", "-p", vhost_of(url), "name", "messages",
                       "messages_ready", "messages_unacknowledged", "consumers",
                       "--formatter", "json", "-q")
    try:
        rows = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return None
    for row in rows:
        if row.get("name") == queue:
            return {k: row.get(k) for k in ("messages", "messages_ready",
                                            "messages_unacknowledged", "consumers")}
    return None


def missing(reason):
    """Skips the test, except under CW_E2E_REQUIRE=1 (CI), where a missing part fails it."""
    if os.environ.get("CW_E2E_REQUIRE") == "1":
        raise AssertionError(reason)
    raise unittest.SkipTest(reason)


def require_worker_and_rabbitmq():
    """What every end-to-end test needs: the worker binary and a usable RabbitMQ."""
    binary = worker_binary()
    if not os.access(binary, os.X_OK):
        missing(f"no worker binary at {binary} (build it, or set CW_WORKER_BINARY)")
    try:
        ensure_rabbitmq()
    except Exception as e:  # noqa: BLE001
        missing(f"RabbitMQ is not usable: {e}")


def require_engine_and_busybox():
    """The Docker engine and the busybox test image, or the test is missing them."""
    if not docker_available():
        missing("no Docker engine (scripts/start-docker)")
    if not have_image(BUSYBOX_IMAGE):
        missing(f"no image {BUSYBOX_IMAGE} (scripts/make-test-images)")


def free_port():
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    """(status, body text); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def scraped_value(text, series):
    """The value of one series line (name plus labels, exactly) in /metrics text."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def fresh_site(test):
    """A fresh vhost and a stand-in site on it for `test` (a TestCase), both
    removed when the test ends; returns (broker URL, StandIn)."""
    vhost = fresh_vhost()
    test.addCleanup(delete_vhost, vhost)
    site = StandIn(vhost)
    site.start()
    test.addCleanup(site.stop)
    return vhost, site


# --------------------------------------------------------------------- Docker
def docker(*args, timeout=60):
    env = dict(os.environ)
    if "CONTAINER_SOCKET" in env and "DOCKER_HOST" not in env:
        env["DOCKER_HOST"] = env["CONTAINER_SOCKET"]
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def docker_available():
    try:
        return docker("version", "--format", "{{.Server.Version}}", timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def have_image(image):
    return docker("image", "inspect", image).returncode == 0


# ------------------------------------------------------------ the programs' runtime
# CONTAINER_RUNTIME in the tests' environment reaches every worker they start
# (the `.runsc` ctest names set it): the same cases, run under another runtime.
RUNTIME = os.environ.get("CONTAINER_RUNTIME", "").strip()


def engine_runtimes():
    """{name: path} of the runtimes the engine lists ({} when it does not answer)."""
    proc = docker("info", "--format", "{{json .Runtimes}}", timeout=20)
    try:
        return {k: (v or {}).get("path", "") for k, v in json.loads(proc.stdout or "{}").items()}
    except (json.JSONDecodeError, AttributeError):
        return {}


def require_runtime():
    """Skips (even in CI) when CONTAINER_RUNTIME names a runtime the engine lacks:
    registering one changes the engine's config (scripts/start-gvisor)."""
    if RUNTIME and RUNTIME not in engine_runtimes():
        raise unittest.SkipTest(f"container runtime {RUNTIME} is not registered with the "
                                "engine (scripts/start-gvisor registers runsc)")


def under_gvisor():
    """Whether the workers' programs run under gVisor (CONTAINER_RUNTIME=runsc)."""
    if not RUNTIME:
        return False
    return os.path.basename(engine_runtimes().get(RUNTIME, "") or RUNTIME) == "runsc"


def submission_containers(submission_id):
    """Ids of every container (running or not) labelled for that submission."""
    proc = docker("ps", "-a", "-q", "--filter", f"label=org.codabench.submission={submission_id}")
    return [line for line in proc.stdout.split() if line]


def remove_submission_containers(submission_id):
    ids = submission_containers(submission_id)
    if ids:
        docker("rm", "-f", *ids)


# --------------------------------------------------------------------- bundles
def make_zip(folder, overrides=None, top_folder=None, dest_dir=None):
    """Zips a folder's contents (paths relative to it) and returns the zip's path.

    overrides: {relative name: text or bytes, or None to leave the file out}.
    top_folder: put everything under that one folder inside the zip.
    """
    folder = Path(folder)
    overrides = dict(overrides or {})
    dest_dir = dest_dir or _tempdir("cw-e2e-zip-")
    out = Path(dest_dir) / f"{folder.name or 'bundle'}-{secrets.token_hex(3)}.zip"
    prefix = f"{top_folder}/" if top_folder else ""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder).as_posix()
                if path.is_file() and rel not in overrides:
                    z.write(path, prefix + rel)
        for rel, content in overrides.items():
            if content is not None:
                z.writestr(prefix + rel, content)
    return str(out)


def write_file(content, name="file.bin"):
    """Writes bytes or text to a temporary file and returns its path."""
    path = Path(_tempdir("cw-e2e-file-")) / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


# --------------------------------------------------------------------- stand-in
class StandInError(RuntimeError):
    pass


class StandIn:
    """Runs tests/standin/codabench_standin.py on a free port for the `with` block."""

    def __init__(self, broker_url, state_dir=None, extra_args=(), startup_timeout=60):
        self.broker_url = broker_url
        self.state_dir = state_dir or _tempdir("cw-e2e-standin-")
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.state_dir, "standin.log")

    # lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, str(STANDIN), "--port", "0", "--broker-url", self.broker_url,
             "--state-dir", self.state_dir, *self.extra_args],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True)
        lines = []
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                lines.append(line.strip())
                if line.strip() == "ready":
                    ready.set()
                    break
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(self.startup_timeout) or "ready" not in lines:
            self.stop()
            raise StandInError(f"the stand-in did not start: {lines}\n{self.log_tail()}")
        for line in lines:
            if line.startswith("listening on "):
                self.port = int(line.rsplit(":", 1)[1])
        if not self.port:
            self.stop()
            raise StandInError(f"the stand-in did not say its port: {lines}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, n=4000):
        try:
            return Path(self.log_path).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # HTTP
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self):
        return f"{self.url}/api"

    def request(self, method, path, body=None, headers=None, timeout=60, raw=False):
        """(status, parsed JSON or bytes) for a request to the stand-in."""
        data = None
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            data = bytes(body)
        url = path if path.startswith("http") else self.url + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        if raw:
            return status, payload
        try:
            return status, json.loads(payload) if payload else None
        except json.JSONDecodeError:
            return status, payload

    def _ok(self, method, path, body=None):
        status, payload = self.request(method, path, body)
        if status != 200:
            raise StandInError(f"{method} {path} -> {status}: {payload}")
        return payload

    # test control
    def create_submission(self, submission, scoring_program, ingestion_program=None,
                          input_data=None, reference_data=None, docker_image=BUSYBOX_IMAGE,
                          execution_time_limit=60, ingestion_only_during_scoring=False,
                          **extra):
        body = dict(submission=str(submission), scoring_program=str(scoring_program),
                    ingestion_program=ingestion_program and str(ingestion_program),
                    input_data=input_data and str(input_data),
                    reference_data=reference_data and str(reference_data),
                    docker_image=docker_image, execution_time_limit=execution_time_limit,
                    ingestion_only_during_scoring=ingestion_only_during_scoring, **extra)
        return self._ok("POST", "/_test/submissions", body)

    def submission(self, submission_id):
        return self._ok("GET", f"/_test/submissions/{submission_id}")

    def faults(self, **faults):
        return self._ok("POST", "/_test/faults", faults)

    def revoke(self, submission_id):
        return self._ok("POST", f"/_test/revoke/{submission_id}")

    def state(self):
        return self._ok("GET", "/_test/state")

    def object_bytes(self, key):
        status, payload = self.request("GET", "/_test/object?" + urllib.parse.urlencode(
            {"key": key}), raw=True)
        if status != 200:
            raise StandInError(f"no object {key}: {status}")
        return payload


# --------------------------------------------------------------------- worker
class Worker:
    """Runs `codabench-worker run` for the `with` block, its output in files."""

    def __init__(self, broker_url, env=None, binary=None, args=(), host_dir=None):
        self.binary = os.path.abspath(binary or worker_binary())  # it runs in its own folder
        self.broker_url = broker_url
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.host_dir = host_dir or _tempdir("cw-e2e-worker-")
        self.stdout_path = os.path.join(self.host_dir, "worker.stdout")
        self.stderr_path = os.path.join(self.host_dir, "worker.stderr")
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        env = dict(os.environ)
        env.update(BROKER_URL=self.broker_url, HOST_DIRECTORY=self.host_dir)
        env.update(self.extra_env)
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        as_user = _worker_user(env, self.host_dir)
        self.proc = subprocess.Popen([self.binary, "run", *self.args], env=env,
                                     stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.host_dir,
                                     start_new_session=True, **as_user)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30, warm_wait=2.0):
        """Stops the worker as a test that is over wants; returns the exit status.

        The first SIGTERM is Celery's warm shutdown, which lets running jobs
        finish: after `warm_wait` seconds a second SIGTERM stops them (the
        cold shutdown), and SIGKILL follows after `timeout` more seconds.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(warm_wait)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return self.proc.returncode

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Sends `sig` (SIGKILL: a crash, no shutdown at all), waits for the
        process and closes its output files; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return self.proc.returncode

    def stderr_text(self):
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            return Path(self.stdout_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=6000):
        return self.stderr_text()[-n:]


def _worker_user(env, host_dir):
    """Popen's user arguments for CW_E2E_WORKER_USER (none when unset): the
    worker's folder becomes that user's, and its HOME and XDG_RUNTIME_DIR
    (where rootless Podman keeps its socket) are set in `env`."""
    name = env.get("CW_E2E_WORKER_USER")
    if not name:
        return {}
    import pwd  # noqa: PLC0415 (only here)
    pw = pwd.getpwnam(name)
    for root, dirs, files in os.walk(host_dir):
        for entry in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.chown(entry, pw.pw_uid, pw.pw_gid)
    env.update(HOME=pw.pw_dir, USER=name, XDG_RUNTIME_DIR=f"/run/user/{pw.pw_uid}")
    return dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])


# --------------------------------------------------------------------- test cases
class WorkerTestCase(unittest.TestCase):
    """A test with a fresh vhost and stand-in, and workers it starts itself.

    Subclasses call require_services() from setUpClass, start workers with
    start_worker(), and list the submissions they create in
    self.submission_ids so their containers are removed at the end.
    """
    maxDiff = None

    @classmethod
    def require_services(cls, image=BUSYBOX_IMAGE, image_hint="scripts/make-test-images"):
        require_worker_and_rabbitmq()
        if not docker_available():
            missing("no Docker engine (scripts/start-docker)")
        if not have_image(image):
            missing(f"no image {image} ({image_hint})")
        require_runtime()

    def setUp(self):
        self.vhost, self.site = fresh_site(self)
        self.submission_ids = []
        self.worker = None

    def start_worker(self, args=(), **env):
        worker = Worker(self.vhost, env=env, args=args)
        worker.start()
        self.addCleanup(self._stop_worker, worker)
        self.worker = worker
        return worker

    def _stop_worker(self, worker):
        worker.stop()  # warm, then cold after 2 s: running jobs are stopped
        for sid in self.submission_ids:
            remove_submission_containers(sid)


# --------------------------------------------------------------------- waiting
def wait_until(predicate, timeout, interval=0.25, message="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def summarize(record):
    """A short text of a submission record, for failure messages."""
    lines = [f"submission {record['id']}: status {record['status']!r} "
             f"details {record['status_details']!r}"]
    for s in record["statuses"]:
        lines.append(f"  status {s['status']} {s['details'] or ''}")
    for c in record["api_calls"][-12:]:
        lines.append(f"  api {c['method']} {c['code']} {c['fields']} {c['reason'] or ''}")
    for p in record["puts"][-12:]:
        lines.append(f"  put {p['role']} {p['code']} {p['content_type']} {p['reason'] or ''}")
    for e in record["errors"]:
        lines.append(f"  error {e['type']}: {e['error_message']}")
    return "\n".join(lines)


def wait_for_status(standin, submission_id, statuses, timeout, worker=None):
    """Waits until the submission's status is one of `statuses`; returns its record."""
    statuses = set(statuses)
    deadline = time.time() + timeout
    record = None
    while time.time() < deadline:
        record = standin.submission(submission_id)
        if record["status"] in statuses:
            return record
        if worker is not None and not worker.alive():
            break
        time.sleep(0.3)
    why = "the worker exited" if worker is not None and not worker.alive() else \
        f"timed out after {timeout}s"
    text = summarize(record) if record else "(no record)"
    tail = f"\nworker stderr (tail):\n{worker.log_tail()}" if worker is not None else ""
    raise AssertionError(f"{why} waiting for {sorted(statuses)}:\n{text}{tail}")


def status_names(record):
    return [s["status"] for s in record["statuses"]]


def ws_text(record, kind):
    """All websocket messages of that message kind, joined in order."""
    return "".join(m["data"].get("message", "") for m in record["ws_messages"]
                   if m.get("data") and m["data"].get("kind") == kind)


if __name__ == "__main__":
    # python3 harness.py: a quick check that RabbitMQ and Docker are usable.
    url = fresh_vhost()
    print("vhost", url, "queue", queue_counts(url))
    delete_vhost(url)
    print("docker", docker_available(), "busybox", have_image(BUSYBOX_IMAGE))
    sys.exit(0)
