#!/usr/bin/env python3
"""Ingestion program: trains the participant's model and writes its predictions.

Usage: ingestion.py INPUT_DATA OUTPUT SUBMISSION
  INPUT_DATA  holds train.csv (features and grade) and test.csv (id and features)
  OUTPUT      receives predictions.csv (id,grade), which the scoring program reads
  SUBMISSION  the participant's folder, with model.py defining class Model
              (fit(rows, grades), predict(rows) -> grades)
"""
import csv
import os
import sys
import time

FEATURES = ["study_hours", "sleep_hours", "absences"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_model_class(submission_dir):
    if not os.path.isfile(os.path.join(submission_dir, "model.py")):
        sys.exit("ingestion: the submission has no model.py; it must define class Model "
                 "with fit(rows, grades) and predict(rows)")
    # The submission folder may be read-only, and is not ours to litter.
    sys.dont_write_bytecode = True
    sys.path.insert(0, submission_dir)
    import model  # noqa: E402  (the participant's module, found through sys.path)
    if not hasattr(model, "Model"):
        sys.exit("ingestion: model.py defines no class Model")
    return model.Model


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    input_dir, output_dir, submission_dir = argv[1:]
    started = time.time()

    train = read_rows(os.path.join(input_dir, "train.csv"))
    test = read_rows(os.path.join(input_dir, "test.csv"))
    x_train = [[float(r[k]) for k in FEATURES] for r in train]
    y_train = [int(r["grade"]) for r in train]
    x_test = [[float(r[k]) for k in FEATURES] for r in test]
    print(f"ingestion: {len(train)} training rows, {len(test)} test rows", flush=True)

    model = load_model_class(submission_dir)()
    print("ingestion: training", flush=True)
    model.fit(x_train, y_train)
    print("ingestion: predicting", flush=True)
    predictions = list(model.predict(x_test))
    if len(predictions) != len(test):
        sys.exit(f"ingestion: predict returned {len(predictions)} values for {len(test)} rows")

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "predictions.csv"), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "grade"])
        for row, grade in zip(test, predictions):
            writer.writerow([row["id"], grade])
    print(f"ingestion: wrote {len(predictions)} predictions", flush=True)
    # Timing goes to stderr so the stdout log stays the same from run to run.
    print(f"ingestion: finished in {time.time() - started:.2f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv)
