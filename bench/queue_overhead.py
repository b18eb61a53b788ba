#!/usr/bin/python3
"""Per-job overhead of `codabench-worker run` against the Codabench stand-in.

For N submissions (a code submission with ingestion, busybox image), prints per
job: the worker's own account (message received to final PATCH, minus the
programs' run time) and the site's view (job sent to the status that ends it).
Needs RabbitMQ, the Docker engine and the test images (scripts/test makes them).

    bench/queue_overhead.py [N] [WORKER_BINARY]
"""
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "standin"))
import harness  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BINARY = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "build/src/cli/codabench-worker")
DATA = ROOT / "tests" / "e2e" / "data"


def main():
    harness.ensure_rabbitmq()
    vhost = harness.fresh_vhost()
    zips = {n: harness.make_zip(DATA / n) for n in (
        "code_submission", "ingestion_program", "scoring_program", "input_data", "reference_data")}
    site_view = []
    try:
        with harness.StandIn(vhost) as site, harness.Worker(vhost, binary=BINARY) as worker:
            for _ in range(N):
                sub = site.create_submission(
                    zips["code_submission"], zips["scoring_program"],
                    ingestion_program=zips["ingestion_program"], input_data=zips["input_data"],
                    reference_data=zips["reference_data"], docker_image=harness.BUSYBOX_IMAGE,
                    execution_time_limit=60)
                harness.wait_for_status(site, sub["id"], {"Finished", "Failed"}, timeout=120)
                rec = site.submission(sub["id"])
                tasks = sorted(rec["tasks"], key=lambda t: t["seq"])
                status_t = {s["status"]: s["t"] for s in rec["statuses"]}
                site_view.append(("prediction", status_t["Scoring"] - tasks[0]["t"]))
                site_view.append(("scoring", status_t["Finished"] - tasks[1]["t"]))
        log = worker.stderr_text()  # once it has stopped: every job's line is in
    finally:
        harness.delete_vhost(vhost)
    worker_view = [float(x) for x in re.findall(r"overhead ([0-9.]+)s", log)]
    programs = [float(x) for x in re.findall(r"programs ([0-9.]+)s", log)]
    print(f"jobs: {len(worker_view)} ({N} submissions, prediction + scoring)")
    print(f"worker overhead (received -> final PATCH, minus programs): "
          f"median {statistics.median(worker_view):.3f}s, max {max(worker_view):.3f}s")
    print(f"programs' own run time: median {statistics.median(programs):.3f}s")
    for stage in ("prediction", "scoring"):
        xs = [t for s, t in site_view if s == stage]
        print(f"site view, {stage}: job sent -> final status, median {statistics.median(xs):.3f}s")


if __name__ == "__main__":
    main()
