"""End-to-end: a chosen few of the other modules' tests, again against another
container engine: Podman rootful, or rootless with the worker itself run as
the podman user (scripts/start-podman sets both up).

Run: /usr/bin/python3 tests/e2e/test_engines.py podman|podman-rootless
The worker gets CONTAINER_SOCKET and CONTAINER_ENGINE_EXECUTABLE=podman, the
tests' docker CLI the same socket (harness.docker); rootless, the worker runs
as CW_ROOTLESS_USER (default cw-rootless) with its HOST_DIRECTORY
(harness.CW_E2E_WORKER_USER). Exits 77 (ctest: skipped) when that engine does
not answer, as on a machine without podman.

The set: a Codabench-shaped competition (ingestion and scoring on the Python
image), a hostile bundle, revoke, the time limit; rootful also the memory
limit, which rootless Podman on cgroups v1 does not enforce (the worker says
so instead: README "Engines").
"""

import os
import pwd
import socket
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))
sys.path.insert(0, str(HERE))

ROOTLESS_USER = os.environ.get("CW_ROOTLESS_USER", "cw-rootless")

COMMON = [
    "test_dropin_shapes.DropInShapesTest.test_code_submission_for_the_ingestion_program_is_scored",
    "test_hostile.HostileInputTest.test_links_to_host_files_are_never_followed",
    "test_queue_worker.QueueWorkerTest.test_revoke_stops_the_container_and_the_next_job_runs",
    "test_queue_worker.QueueWorkerTest.test_execution_time_limit",
]
CASES = {
    "podman": COMMON + ["test_hostile.HostileInputTest.test_a_fork_bomb_meets_the_pids_limit"],
    "podman-rootless": COMMON,
}


def engine_socket(engine):
    """(socket URL, worker user or None) of an engine; None when its user is missing."""
    if engine == "podman":
        return "unix:///run/podman/podman.sock", None
    try:
        uid = pwd.getpwnam(ROOTLESS_USER).pw_uid
    except KeyError:
        return None
    return f"unix:///run/user/{uid}/podman/podman.sock", ROOTLESS_USER


def answers(url):
    """Does a Docker API answer _ping at this unix:// URL?"""
    path = url[len("unix://"):]
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            status_line = s.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200" in status_line
    except OSError:
        return False


def main(argv):
    if len(argv) != 2 or argv[1] not in CASES:
        print(f"usage: {argv[0]} {'|'.join(CASES)}", file=sys.stderr)
        return 2
    engine = argv[1]
    found = engine_socket(engine)
    if found is None or not answers(found[0]):
        print(f"{engine}: no engine answers (scripts/start-podman); skipped", file=sys.stderr)
        return 77
    url, user = found
    os.environ.update(CONTAINER_SOCKET=url, CONTAINER_ENGINE_EXECUTABLE="podman")
    os.environ.pop("DOCKER_HOST", None)
    if user:
        os.environ["CW_E2E_WORKER_USER"] = user
    print(f"{engine}: {url}" + (f", the worker as {user}" if user else ""), file=sys.stderr)
    suite = unittest.defaultTestLoader.loadTestsFromNames(CASES[engine])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
