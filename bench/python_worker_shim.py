#!/usr/bin/python3
"""Starts Codabench's Python compute worker (Celery) for bench/side_by_side.py.

    cd EXTRACTED && python3 python_worker_shim.py -A compute_worker worker -Q compute-worker ...

Run from the folder where compute_worker.py was extracted, with CW_BENCH_PYTHON_BASE
set to a private folder (HOST_DIRECTORY must name the same folder). Two shims,
both applied after import so the fetched file is run unmodified:

- BASE_DIR: the worker writes under the hard-coded "/codabench/" (its image
  mounts HOST_DIRECTORY there) and maps those paths back to HOST_DIRECTORY for
  the containers it starts. Several workers on one machine need a folder each,
  so BASE_DIR and CACHE_DIR are pointed at CW_BENCH_PYTHON_BASE. A mount
  namespace over /codabench would do too, but needs a /codabench on the host
  and CAP_SYS_ADMIN, and hides the worker's files from the benchmark.
- pull: the worker pulls every job's image and fails the job when the pull
  fails. The benchmark machine has no registry; ours then runs the local copy
  (with a warning), so this does the same after one failed attempt, which
  keeps the cost of that attempt in both columns.

Debian bookworm's packages (celery 5.2, docker 5.0, websockets 10.4, loguru 0.6,
Python 3.11) run the worker without other changes; its pins (celery 5.6,
docker 7, websockets 16, Python 3.13) are not available without PyPI.
"""
import os
import sys

import docker

sys.path.insert(0, os.getcwd())
base = os.environ["CW_BENCH_PYTHON_BASE"].rstrip("/") + "/"

import compute_worker  # noqa: E402 - the module Celery's -A then finds in sys.modules

compute_worker.BASE_DIR = base
compute_worker.CACHE_DIR = os.path.join(base, "cache")

_pull = docker.APIClient.pull


def _pull_or_local(self, repository, tag=None, **kwargs):
    try:
        return _pull(self, repository, tag, **kwargs)
    except docker.errors.APIError:
        self.inspect_image(f"{repository}:{tag}" if tag else repository)  # absent: raises
        return iter(())


docker.APIClient.pull = _pull_or_local

if __name__ == "__main__":
    from celery.__main__ import main

    sys.exit(main())
