"""Codabench's own test bundles, scored by `codabench-worker run-local`.

Codabench's repository ships competition bundles and submissions for its own
tests (tests/test_files: competitions/*.zip, submissions/*.zip, iris_code/*.zip).
This module runs each bundle with the submission(s) made for it and checks
that the worker scores them (exit 0 and a scores table), as Codabench's
Python worker does. Nothing of those files is in this repository: point
CW_CODABENCH_TEST_FILES at a checkout's tests/test_files folder (default
/tmp/cbt/tests/test_files). Without it the whole module is skipped.

The bundles name codalab/codalab-legacy images, which no registry here
serves; they import scikit-learn, scipy, pandas, PyYAML and psutil, call
np.float (gone in numpy 1.24) and yaml.load without a Loader (an error in
PyYAML 6). So they run in codabench-worker/python-legacy:bullseye
(scripts/build-python-image --legacy: numpy 1.19, PyYAML 5.3), or in the
image named by CW_CODABENCH_IMAGE. A case that cannot be scored here for a
reason outside the worker (a package Debian does not ship, a bundle that no
Python 3 can run) is skipped, saying why, once its logs show that reason.

Run: /usr/bin/python3 -m unittest tests/e2e/test_codabench_bundles.py -v
Needs: the worker binary (CW_WORKER_BINARY, default build/src/cli/codabench-worker)
and a Docker engine. About two minutes.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402

FILES = Path(os.environ.get("CW_CODABENCH_TEST_FILES", "/tmp/cbt/tests/test_files"))
IMAGE = os.environ.get("CW_CODABENCH_IMAGE", "codabench-worker/python-legacy:bullseye")
RUN_TIMEOUT_S = 600


def setUpModule():
    if not (FILES / "competitions").is_dir() or not (FILES / "submissions").is_dir():
        raise unittest.SkipTest(
            f"Codabench's test files are not at {FILES} (set CW_CODABENCH_TEST_FILES to a "
            "codalab/codabench checkout's tests/test_files)")
    binary = harness.worker_binary()
    if not os.access(binary, os.X_OK):
        raise unittest.SkipTest(f"no worker binary at {binary} (build it, or set CW_WORKER_BINARY)")
    if not harness.docker_available():
        raise unittest.SkipTest("no Docker engine (scripts/start-docker)")
    if not harness.have_image(IMAGE):
        raise unittest.SkipTest(f"no image {IMAGE} (scripts/build-python-image --legacy)")


def parse_scores(stdout):
    """run-local's table after `Scores`: {key: value} for the columns it shows
    with a number, e.g. `  Prediction score  0.9333  (set1_score, higher is better)`."""
    if "\nScores\n" not in stdout:
        return None
    table = stdout.split("\nScores\n", 1)[1]
    scores = {}
    for line in table.splitlines():
        m = re.match(r"\s+(.+?)\s+(-?[0-9.]+(?:e[-+]?\d+)?|nan|inf)\s+\((\S+?)[,)]", line)
        if m:
            key = m.group(3) if m.group(3) != "not" else m.group(1)
            scores[key] = float(m.group(2))
    return scores


class CodabenchBundlesTest(unittest.TestCase):
    maxDiff = None

    def run_local(self, bundle, submission, phase=None, task=None):
        """Runs run-local; returns (exit code, stdout, stderr, out folder)."""
        out = Path(tempfile.mkdtemp(prefix="cw-cbt-"))
        if not harness.KEEP:
            self.addCleanup(shutil.rmtree, out, True)
        args = [harness.worker_binary(), "run-local", str(FILES / bundle), str(FILES / submission),
                "--image", IMAGE, "--pull", "never", "--out", str(out / "run")]
        if phase is not None:
            args += ["--phase", str(phase)]
        if task is not None:
            args += ["--task", str(task)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr, out / "run"

    def logs_of(self, out):
        text = []
        for log in sorted(out.glob("*/logs/*.txt")):
            text.append(log.read_text(errors="replace"))
        return "\n".join(text)

    def assertScored(self, bundle, submission, columns, phase=None, task=None, external=()):
        """Exit 0 and a scores table holding every one of `columns` (keys).

        external: (regex, reason) pairs; when the run is not scored and a
        program's logs match the regex, the case is skipped with the reason
        (a cause outside the worker) instead of failing."""
        code, stdout, stderr, out = self.run_local(bundle, submission, phase, task)
        where = f"{bundle} + {submission} (phase {phase}, task {task})"
        if code != 0:
            logs = self.logs_of(out)
            for pattern, reason in external:
                if re.search(pattern, logs):
                    self.skipTest(f"{where}: {reason}")
        self.assertEqual(code, 0, f"{where} was not scored:\n{stderr[-4000:]}\n{stdout[-4000:]}")
        scores = parse_scores(stdout)
        self.assertIsNotNone(scores, f"{where}: no scores table:\n{stdout[-3000:]}")
        for column in columns:
            self.assertIn(column, scores, f"{where}: no {column} in the scores:\n{stdout[-3000:]}")
        return scores, stdout, stderr, out

    def read(self, out, rel):
        return (out / rel).read_text(errors="replace")

    # ------------------------------------------------ v2: wheat seeds (sklearn)
    # Programs and data as folders, the submission a bare model.py (KMeans,
    # so the accuracy changes from run to run) that the ingestion program
    # imports; two phases of one task each.
    def test_v2_wheat_two_phases(self):
        for phase in (0, 1):
            with self.subTest(phase=phase):
                scores, _, _, out = self.assertScored("competitions/competition.zip",
                                                      "submissions/submission.zip",
                                                      ["accuracy", "duration"], phase=phase)
                self.assertTrue(0 <= scores["accuracy"] <= 1, scores)
                self.assertIn("ingestionExitCode: 0", self.read(out, "prediction/output/metadata"))

    # One phase of four tasks, each its own data folders.
    def test_v2_multi_task_every_task(self):
        for task in range(4):
            with self.subTest(task=task):
                scores, *_ = self.assertScored("competitions/competition_v2_multi_task.zip",
                                               "submissions/submission.zip",
                                               ["accuracy", "duration"], task=task)
                self.assertTrue(0 <= scores["accuracy"] <= 1, scores)

    # The same with a fact sheet (a site-side form; nothing for the worker).
    def test_v2_multi_task_with_fact_sheet(self):
        self.assertScored("competitions/competition_v2_multi_task_fact_sheet.zip",
                          "submissions/submission.zip", ["accuracy", "duration"], task=3)

    # ------------------------------------------------ 1.5: iris
    # Results only: the ingestion program imports the participant's model,
    # finds none and exits 1. As with the Python worker, the results copied
    # into the prediction output are scored anyway.
    def test_v15_iris_results_only_scored_despite_failing_ingestion(self):
        for phase in (1, 2):
            with self.subTest(phase=phase):
                scores, stdout, stderr, out = self.assertScored(
                    "competitions/competition_15_iris.zip",
                    "submissions/submission_15_iris_result.zip",
                    ["set1_score", "Duration"], phase=phase)
                self.assertIn("No module named 'model'",
                              self.read(out, "prediction/logs/ingestion_stderr.txt"))
                self.assertIn("ingestionExitCode: 1", self.read(out, "prediction/output/metadata"))
                self.assertTrue((out / "prediction/output/iris_valid.predict").is_file())
                # A real score, not the program's -0.999999 for an error.
                self.assertGreaterEqual(scores["set1_score"], 0, stdout[-2000:])

    # Code: model.py with a `metadata` that has no command; the ingestion
    # program trains and saves it, then predicts.
    def test_v15_iris_code_submission(self):
        for phase in (1, 2):
            with self.subTest(phase=phase):
                scores, stdout, _, out = self.assertScored(
                    "competitions/competition_15_iris.zip",
                    "submissions/submission_15_iris_code.zip",
                    ["set1_score", "Duration"], phase=phase)
                # A real score (0.33 with this model), not -0.999999 for an error.
                self.assertGreaterEqual(scores["set1_score"], 0, stdout[-2000:])
                # elapsedTime is the ingestion's (the submission did not run),
                # which the scoring program reports as Duration.
                self.assertGreater(scores["Duration"], 0, stdout[-2000:])

    # iris_code/sample_code_submission.zip has a model without save(), which
    # the iris ingestion program calls after training: it exits 1 before
    # writing predictions. Like the Python worker, the scoring step still runs,
    # and the iris scoring program gives its missing score (-0.999999).
    def test_v15_iris_sample_code_without_save(self):
        for bundle, phase in (("competitions/competition_15_iris.zip", 1),
                              ("iris_code/iris3.zip", 1), ("iris_code/iris3.zip", 2)):
            with self.subTest(bundle=bundle, phase=phase):
                scores, stdout, _, out = self.assertScored(
                    bundle, "iris_code/sample_code_submission.zip", ["set1_score", "Duration"],
                    phase=phase)
                self.assertIn("has no attribute 'save'",
                              self.read(out, "prediction/logs/ingestion_stderr.txt"))
                self.assertAlmostEqual(scores["set1_score"], -1.0, places=3)

    # ------------------------------------------------ 1.5: time series
    # Scoring program as a folder, ingestion program and data as zips, a
    # submission whose `metadata` has no command.
    def test_v15_time_series(self):
        for phase in (1, 2):
            with self.subTest(phase=phase):
                self.assertScored(
                    "competitions/competition_15.zip", "submissions/submission_15.zip",
                    ["prediction_score", "Duration"], phase=phase,
                    external=[(r"TabError: inconsistent use of tabs and spaces",
                               "the bundle's scoring_program/score.py mixes tabs and spaces "
                               "(line 124), which every Python 3 refuses (TabError): the "
                               "Python worker fails its scoring step the same way")])

    # ------------------------------------------------ 1.8: AutoWSL (parallel phases)
    # Codabench drops the parent phase of a 1.8 bundle (is_parallel_parent)
    # and runs the children: phase 2 here, "Dataset 1".
    def test_v18_autowsl_first_child_phase(self):
        self.assertScored(
            "competitions/competition_18.zip", "submissions/submission_18.zip",
            ["score", "Duration"], phase=2,
            external=[(r"No module named '(filelock|lightgbm|hyperopt)'",
                       "it runs in vergilgxw/autotable:v2, which no registry here serves; "
                       "its ingestion and scoring programs import filelock, which the image "
                       "here lacks, and its submission lightgbm and hyperopt, which Debian "
                       "does not package")])


class CodabenchBundlesThroughTheQueueTest(unittest.TestCase):
    """The key case through `codabench-worker run` and the stand-in: the iris
    bundle's own zips, as the site would store them, and the results-only
    submission whose ingestion program exits 1."""

    @classmethod
    def setUpClass(cls):
        try:
            harness.require_worker_and_rabbitmq()
        except AssertionError as e:  # CW_E2E_REQUIRE=1: still optional here
            raise unittest.SkipTest(str(e))
        cls.bundle = Path(tempfile.mkdtemp(prefix="cw-cbt-bundle-"))
        with zipfile.ZipFile(FILES / "competitions/competition_15_iris.zip") as z:
            z.extractall(cls.bundle)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.bundle, ignore_errors=True)

    def test_iris_results_only_through_the_queue(self):
        vhost, site = harness.fresh_site(self)
        worker = harness.Worker(vhost)
        worker.start()
        self.addCleanup(worker.stop)
        created = site.create_submission(
            submission=str(FILES / "submissions/submission_15_iris_result.zip"),
            ingestion_program=str(self.bundle / "ingestion_program.zip"),
            scoring_program=str(self.bundle / "scoring_program.zip"),
            input_data=str(self.bundle / "input_data_1_2.zip"),
            reference_data=str(self.bundle / "reference_data_1.zip"),
            docker_image=IMAGE, execution_time_limit=500,
            leaderboard_columns=["set1_score", "Duration"])
        sid = created["id"]
        self.addCleanup(harness.remove_submission_containers, sid)
        rec = harness.wait_for_status(site, sid, {"Finished", "Failed"}, timeout=300,
                                      worker=worker)
        self.assertEqual(rec["status"], "Finished", harness.summarize(rec))
        self.assertEqual(harness.status_names(rec),
                         ["Preparing", "Running", "Scoring", "Running", "Finished"])
        scores = rec["scores"][0]["scores"]
        self.assertGreaterEqual(float(scores["set1_score"]), 0, scores)
        self.assertIn("Duration", scores)
        self.assertIn("No module named 'model'", rec["logs"]["prediction_ingestion_stderr"])
        self.assertIn("iris_valid.predict", rec["zips"]["prediction_result"])


if __name__ == "__main__":
    unittest.main()
