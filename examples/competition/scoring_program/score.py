#!/usr/bin/env python3
"""Scoring program: compares predicted grades with the true ones.

Usage: score.py INPUT OUTPUT
  INPUT/res/predictions.csv  the ingestion's output (id,grade)
  INPUT/ref/test_labels.csv  the truth (id,grade)
Writes OUTPUT/scores.json ({"accuracy": ..., "mae": ...}), the leaderboard's
columns, and OUTPUT/detailed_results.html.
"""
import csv
import html
import json
import os
import sys


def read_grades(path, what):
    if not os.path.isfile(path):
        sys.exit(f"score: no {what} at {path}")
    grades = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                grades[row["id"]] = float(row["grade"])
            except (KeyError, TypeError, ValueError):
                sys.exit(f"score: {what} must be CSV with columns id,grade; bad row {row}")
    return grades


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    input_dir, output_dir = argv[1:]
    truth = read_grades(os.path.join(input_dir, "ref", "test_labels.csv"), "reference data")
    predicted = read_grades(os.path.join(input_dir, "res", "predictions.csv"), "predictions")
    missing = sorted(set(truth) - set(predicted), key=int)
    if missing:
        sys.exit(f"score: {len(missing)} test rows have no prediction (first: id {missing[0]})")

    errors = {i: abs(predicted[i] - truth[i]) for i in truth}
    accuracy = sum(1 for e in errors.values() if e < 0.5) / len(truth)
    mae = sum(errors.values()) / len(truth)
    scores = {"accuracy": round(accuracy, 4), "mae": round(mae, 4)}
    print(f"score: accuracy {scores['accuracy']}, mae {scores['mae']}")

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "scores.json"), "w") as f:
        json.dump(scores, f)
    worst = sorted(errors, key=lambda i: (-errors[i], int(i)))[:10]
    rows = "\n".join(
        f"<tr><td>{html.escape(i)}</td><td>{truth[i]:g}</td><td>{predicted[i]:g}</td></tr>"
        for i in worst)
    with open(os.path.join(output_dir, "detailed_results.html"), "w") as f:
        f.write(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Detailed results</title></head><body>
<h1>Detailed results</h1>
<p>Accuracy {scores['accuracy']} (grades rounded to the true one), mean absolute error {scores['mae']}.</p>
<h2>The ten largest errors</h2>
<table><tr><th>id</th><th>true grade</th><th>predicted</th></tr>
{rows}
</table></body></html>
""")


if __name__ == "__main__":
    main(sys.argv)
