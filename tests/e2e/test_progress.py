"""End-to-end test of transfer progress in run-local (README "run-local").

`codabench-worker run-local` pulls an image from a real registry (Debian's
`docker-registry`, started here on a free loopback port, which dockerd trusts
over plain HTTP) and copies a bundle's input data. With stderr not a terminal
it must log progress lines and a final line per transfer, and no \\r; on a
pseudo-terminal (python's pty) it must draw a bar redrawn with \\r, as wide as
the terminal less one column, and clear it.

The image is made here: busybox plus a layer of random bytes, so its layer is
in no local store and the pull really downloads it. It is removed before each
run, so each run downloads again.

CW_TEST_PROGRESS_INTERVAL_MS=0 (read by run-local for tests only) shows every
transfer from its first byte and renders at each update, so transfers of a
few tens of megabytes over loopback, done in well under a second, still show
(by default a transfer shows after 2 s in a log, after 0.5 s on a terminal).

Run: /usr/bin/python3 -m unittest discover -s tests/e2e -p test_progress.py -v
Needs: the worker binary, a Docker engine, the busybox test image
(scripts/make-test-images), /usr/bin/docker-registry (scripts/setup).
"""

import fcntl
import os
import re
import secrets
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import missing  # noqa: E402

REGISTRY = os.environ.get("CW_DOCKER_REGISTRY", "/usr/bin/docker-registry")
LAYER_BYTES = 48 * 1000 * 1000
INPUT_BYTES = 16 * 1000 * 1000
COLUMNS = 100
RUN_TIMEOUT = 180


def megabytes(text):
    """"48.0 MB" -> 48.0 (decimal megabytes)."""
    value, unit = text.split()
    return float(value) * {"B": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3}[unit]


def check(proc, what):
    if proc.returncode != 0:
        raise AssertionError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


class ProgressTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        binary = harness.worker_binary()
        if not os.access(binary, os.X_OK):
            missing(f"no worker binary at {binary} (build it, or set CW_WORKER_BINARY)")
        harness.require_engine_and_busybox()
        if not os.access(REGISTRY, os.X_OK):
            missing(f"no registry at {REGISTRY} (apt-get install docker-registry)")
        cls.binary = binary
        cls.tmp = Path(tempfile.mkdtemp(prefix="cw-e2e-progress-"))
        cls.registry = None
        try:
            cls._start_registry()
            cls._push_image()
            cls.bundle = cls._make_bundle()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "image", None):
            harness.docker("rmi", "-f", cls.image)
        if cls.registry:
            cls.registry.terminate()
            try:
                cls.registry.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.registry.kill()
                cls.registry.wait(timeout=10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _start_registry(cls):
        port = harness.free_port()
        config = cls.tmp / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {cls.tmp / 'registry'}}}}}\n"
            f"http: {{addr: '127.0.0.1:{port}'}}\n")
        cls.registry_log = open(cls.tmp / "registry.log", "wb")
        cls.registry = subprocess.Popen([REGISTRY, "serve", str(config)],
                                        stdout=cls.registry_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if cls.registry.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the registry did not start: " +
                                     (cls.tmp / "registry.log").read_text(errors="replace"))
            time.sleep(0.2)
        cls.port = port

    @classmethod
    def _push_image(cls):
        tag = secrets.token_hex(4)
        cls.image = f"127.0.0.1:{cls.port}/cw-progress:{tag}"
        container = f"cw-progress-{tag}"
        try:
            check(harness.docker("run", "--name", container, harness.BUSYBOX_IMAGE, "sh", "-c",
                                 f"head -c {LAYER_BYTES} /dev/urandom > /blob", timeout=120),
                  "making the random layer")
            check(harness.docker("commit", container, cls.image, timeout=120), "docker commit")
        finally:
            harness.docker("rm", "-f", container)
        check(harness.docker("push", cls.image, timeout=300), "docker push")

    @classmethod
    def _make_bundle(cls):
        b = cls.tmp / "bundle"
        (b / "scoring_program").mkdir(parents=True)
        (b / "scoring_program" / "metadata.yaml").write_text(
            "command: |-\n  echo '{\"score\": 1}' > /app/output/scores.json\n")
        # Stored, not deflated: random bytes do not shrink, and the zip's size
        # is what the copy moves.
        with zipfile.ZipFile(b / "input_data.zip", "w", zipfile.ZIP_STORED) as z:
            z.writestr("data.bin", os.urandom(INPUT_BYTES))
        (b / "competition.yaml").write_text(
            "version: 2\ntitle: progress test\n"
            f"docker_image: {cls.image}\n"
            "tasks:\n  - index: 0\n    name: t\n    scoring_program: scoring_program/\n"
            "    input_data: input_data.zip\n"
            "phases:\n  - index: 0\n    name: Dev\n    execution_time_limit: 60\n    tasks: [0]\n"
            "leaderboards:\n  - index: 0\n    title: R\n    key: R\n    columns:\n"
            "      - {title: Score, key: score, index: 0, sorting: desc}\n")
        s = cls.tmp / "submission"
        s.mkdir()
        (s / "metadata.yaml").write_text("command: |-\n  echo hello > /app/output/x\n")
        return b

    def setUp(self):
        # Not on the machine: the run must download the layer again.
        harness.docker("rmi", "-f", self.image)
        self.out = tempfile.mkdtemp(prefix="out-", dir=self.tmp)

    def args(self):
        return [self.binary, "run-local", str(self.bundle), str(self.tmp / "submission"),
                "--out", self.out]

    def env(self):
        env = dict(os.environ)
        env["CW_TEST_PROGRESS_INTERVAL_MS"] = "0"
        env.pop("COLUMNS", None)
        return env

    def test_log_lines_when_stderr_is_not_a_terminal(self):
        proc = subprocess.run(self.args(), capture_output=True, text=True, env=self.env(),
                              timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        err = proc.stderr
        self.assertNotIn("\r", err)
        image = re.escape(self.image)

        # While pulling: bytes of the layers' sizes, a rate, the layers in place.
        pulling = re.findall(rf"pulling image {image}: ([\d.]+ [kMG]?B) of ([\d.]+ [kMG]?B)\+?"
                             r".*?, [\d.]+ [kMG]?B/s.*, \d+/\d+ layers$", err, re.M)
        self.assertTrue(pulling, err)
        done = re.findall(rf"pulling image {image}: done, ([\d.]+ [kMG]?B) in [\d.]+s"
                          r" \(.*/s\), (\d+)/(\d+) layers$", err, re.M)
        self.assertEqual(len(done), 1, err)
        size, in_place, layers = done[0]
        # The random layer was downloaded (gzip cannot shrink it); busybox's
        # layer was already there.
        self.assertGreaterEqual(megabytes(size), LAYER_BYTES / 1e6, err)
        self.assertEqual(in_place, layers)

        copying = re.findall(r"downloading the input data: ([\d.]+ [kMG]?B) of ([\d.]+ MB) "
                             r"\((\d+)%\), [\d.]+ [kMG]?B/s", err)
        self.assertTrue(copying, err)
        self.assertGreaterEqual(megabytes(copying[0][1]), INPUT_BYTES / 1e6)
        self.assertRegex(err, r"downloading the input data: done, [\d.]+ MB in [\d.]+s \(.*/s\)")
        # Each line at most once per update: the percentages never go back.
        percents = [int(p) for _, _, p in copying]
        self.assertEqual(percents, sorted(percents))

    def test_bar_on_a_terminal(self):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
        try:
            proc = subprocess.Popen(self.args(), stdin=slave, stdout=slave, stderr=slave,
                                    env=self.env(), close_fds=True)
        finally:
            os.close(slave)
        chunks = []
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not data:
                    break
                chunks.append(data)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        text = b"".join(chunks).decode(errors="replace")
        self.assertEqual(code, 0, text)

        # The terminal turns each "\n" into "\r\n"; a bar is a "\r" that a
        # "\n" does not follow, then exactly COLUMNS - 1 characters.
        bars = re.findall(r"\r([^\r\n]*)(?=\r)", text)
        # A bar's label is cut in its middle to fit ("pulling ima...:tag").
        pull_bars = [b for b in bars if b.startswith("pulling") and "layers" in b]
        copy_bars = [b for b in bars if b.startswith("downloading the input data [")]
        self.assertTrue(pull_bars, repr(text))
        self.assertTrue(copy_bars, repr(text))
        for bar in pull_bars + copy_bars:
            self.assertEqual(len(bar), COLUMNS - 1, repr(bar))
        self.assertTrue(any(re.search(r"\[[#.]+\] +\d+%", b) for b in pull_bars + copy_bars),
                        repr(text))
        self.assertTrue(any(re.search(r"\d+/\d+ layers", b) for b in pull_bars), repr(pull_bars))
        # Cleared when done: a line of blanks, so what follows starts clean.
        self.assertIn("\r" + " " * (COLUMNS - 1) + "\r", text)
        # No log line for a transfer on a terminal: the bar is the display.
        self.assertNotIn("input data: done", text)


if __name__ == "__main__":
    unittest.main()
