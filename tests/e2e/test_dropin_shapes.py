"""End-to-end: the shapes of Codabench's own test bundles, served by
`codabench-worker run` for the Codabench stand-in.

The programs and data are this repository's fixtures shaped like Codabench's
test bundles (tests/fixtures/v15_ingestion_bundle: the iris shape), zipped
the way a site stores them, one zip per program or dataset.

Run: /usr/bin/python3 -m unittest discover -s tests/e2e -p test_dropin_shapes.py -v
Needs: the worker binary (CW_WORKER_BINARY), a Docker engine with
codabench-worker/python:bookworm (scripts/build-python-image), RabbitMQ.
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "standin"))

import harness  # noqa: E402
from harness import status_names, summarize, wait_for_status  # noqa: E402

FIXTURES = HERE.parent / "fixtures"
IRIS_SHAPE = FIXTURES / "v15_ingestion_bundle" / "src"
FINAL = {"Finished", "Failed"}


class DropInShapesTest(harness.WorkerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.require_services(harness.PYTHON_IMAGE, "scripts/build-python-image")
        cls.zips = {name: harness.make_zip(IRIS_SHAPE / name) for name in (
            "ingestion_program", "scoring_program", "input_data", "reference_data_1")}

    def setUp(self):
        super().setUp()
        self.start_worker()

    def submit_iris_shape(self, submission_folder):
        created = self.site.create_submission(
            submission=harness.make_zip(FIXTURES / submission_folder),
            ingestion_program=self.zips["ingestion_program"],
            scoring_program=self.zips["scoring_program"],
            input_data=self.zips["input_data"],
            reference_data=self.zips["reference_data_1"],
            docker_image=harness.PYTHON_IMAGE,
            execution_time_limit=120,
            leaderboard_columns=["set1_score", "Duration"])
        self.submission_ids.append(created["id"])
        return created["id"]

    # As submission_15_iris_result.zip on competition_15_iris.zip: results only,
    # the ingestion program exits 1 on the missing model.py, and the Python
    # worker still moves the submission to Scoring, where it is scored.
    def test_results_only_with_failing_ingestion_is_scored(self):
        sid = self.submit_iris_shape("v15_ingestion_results")
        rec = wait_for_status(self.site, sid, FINAL, timeout=180, worker=self.worker)
        self.assertEqual(rec["status"], "Finished", summarize(rec))
        self.assertEqual(status_names(rec),
                         ["Preparing", "Running", "Scoring", "Running", "Finished"], summarize(rec))
        self.assertEqual(len(rec["scores"]), 1, rec["scores"])
        scores = rec["scores"][0]["scores"]
        self.assertAlmostEqual(float(scores["set1_score"]), 0.8)
        self.assertIn("Duration", scores)
        self.assertEqual(rec["scores"][0]["ignored_keys"], [])

        # The prediction output is the submission's files and the metadata
        # with the ingestion program's exit code, as the Python worker makes it.
        listing = rec["zips"]["prediction_result"]
        for name in ("tiny_train.predict", "tiny_valid.predict", "tiny_test.predict", "metadata"):
            self.assertIn(name, listing)
        logs = rec["logs"]
        self.assertIn("No module named 'model'", logs["prediction_ingestion_stderr"])
        self.assertIn("ingestionExitCode=1", logs["scoring_stdout"])
        # Nothing is reported as an error: the Python worker sends none for a
        # prediction step's exit code either.
        self.assertEqual(rec["errors"], [])

    # The same bundle with model.py: the ingestion program runs it.
    def test_code_submission_for_the_ingestion_program_is_scored(self):
        sid = self.submit_iris_shape("v15_ingestion_code")
        rec = wait_for_status(self.site, sid, FINAL, timeout=180, worker=self.worker)
        self.assertEqual(rec["status"], "Finished", summarize(rec))
        self.assertEqual(status_names(rec),
                         ["Preparing", "Running", "Scoring", "Running", "Finished"])
        self.assertAlmostEqual(float(rec["scores"][0]["scores"]["set1_score"]), 1.0)
        self.assertIn("ingestionExitCode=0", rec["logs"]["scoring_stdout"])


if __name__ == "__main__":
    unittest.main()
