#!/usr/bin/env python3
"""Writes the example competition's data: the same files on every run.

A synthetic task with a known answer, so a baseline can be checked by eye:
a student's final grade (a whole number from 0 to 10) from the hours they
studied a week, the hours they slept a night and the classes they missed.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
COMPETITION = os.path.join(HERE, "competition")


def make_rows(rng, count):
    rows = []
    for _ in range(count):
        study = round(rng.uniform(0, 20), 1)
        sleep = round(rng.uniform(4, 9), 1)
        absences = rng.randint(0, 12)
        # Noise keeps a perfect score out of reach for a linear model.
        score = 0.35 * study + 0.6 * (sleep - 4) - 0.3 * absences + 2.5 + rng.uniform(-1.2, 1.2)
        grade = min(10, max(0, round(score)))
        rows.append((study, sleep, absences, grade))
    return rows


def write(path, header, rows):
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")


def main():
    rng = random.Random(20240601)
    train = make_rows(rng, 200)
    test = make_rows(rng, 100)
    features = ["study_hours", "sleep_hours", "absences"]
    write(os.path.join(COMPETITION, "input_data", "train.csv"), features + ["grade"], train)
    write(os.path.join(COMPETITION, "input_data", "test.csv"), ["id"] + features,
          [(i,) + row[:3] for i, row in enumerate(test)])
    write(os.path.join(COMPETITION, "reference_data", "test_labels.csv"), ["id", "grade"],
          [(i, row[3]) for i, row in enumerate(test)])


if __name__ == "__main__":
    main()
