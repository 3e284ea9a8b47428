"""Wall time of ``select`` with n_jobs=1 and n_jobs=2: 8 candidates x 3 folds.

    python benchmarks/parallel_select.py [--repeats 3]

A small network on the shipped digits data. Parallel fits run on threads
(the kernels release the GIL), each with one BLAS thread.
"""
from __future__ import annotations

import argparse
import statistics
import time

import archfit as af
from archfit.datasets import load_digits


def run(n_jobs: int, epochs: int) -> float:
    X, y = load_digits()
    model = af.Model(af.Architecture(64, [af.Dense(64, "relu"), af.Dense(10)], "softmax"))
    space = {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "l2": [0.0, 1e-4]}
    start = time.perf_counter()
    af.select(model, X / 16, y, space, base=af.Hyperparameters(epochs=epochs, batch_size=32),
              cv=3, n_jobs=n_jobs, refit=False)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    run(1, 1)  # warm-up
    serial, parallel = [], []
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        serial.append(run(1, args.epochs))
        parallel.append(run(2, args.epochs))
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"8 candidates x 3 folds, {args.epochs} epochs each: n_jobs=1 {s:.2f} s, "
          f"n_jobs=2 {p:.2f} s, speed-up {s / p:.2f}x (median of {args.repeats})")


if __name__ == "__main__":
    main()
