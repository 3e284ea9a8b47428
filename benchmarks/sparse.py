"""Sparse input: archfit against scikit-learn's MLP on a bag-of-words-like matrix.

A random CSR matrix of ``--rows`` x ``--columns`` with ``--density`` x
columns values in every row (1..3, like word counts), labels from a random linear teacher, a network
COLUMNS-64-2, Adam lr 1e-3, batch 200, float64 for both (scikit-learn's MLP
computes in X's dtype; float32 for archfit too). Each library fits
``--epochs`` epochs on the same sparse matrix, in one process, one after the
other; the figure is seconds per epoch (archfit: the median from its history;
scikit-learn: its wall time over its epochs, as it reports none). Neither
makes X dense.

    python benchmarks/sparse.py                  # 100,000 x 20,000 at 0.1%, 3 epochs
"""
import argparse
import os
import platform
import statistics
import subprocess
import time
import warnings


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        lines = {k.strip(): v.strip() for k, _, v in
                 (line.partition(":") for line in out.splitlines())}
        flags = [f for f in ("avx2", "fma", "avx512f") if f in lines.get("Flags", "")]
        return f"{lines.get('Model name', platform.processor())} ({' '.join(flags)})"
    except OSError:
        return platform.processor()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    import numpy as np
    from scipy import sparse
    import archfit as af
    from archfit.kernels import ISA

    rng = np.random.default_rng(0)
    # the same number of random columns in every row (scipy.sparse.random draws
    # its positions from all rows x columns cells at once: 16 GB at this size)
    per_row = max(1, round(args.density * args.columns))
    indices = np.sort(rng.integers(0, args.columns, (args.rows, per_row)), axis=1)
    X = sparse.csr_matrix((rng.integers(1, 4, args.rows * per_row).astype(float),
                           indices.ravel(), np.arange(0, args.rows * per_row + 1, per_row)),
                          shape=(args.rows, args.columns))
    X.sum_duplicates()
    y = (X @ rng.normal(size=args.columns) > 0).astype(int)
    print(f"CPU: {cpu()}; archfit kernel path: {ISA}; {os.cpu_count()} CPUs")
    print(f"X: {args.rows:,} x {args.columns:,} CSR, {X.nnz:,} values ({args.density:.2%}); "
          f"network {args.columns}-64-2, batch 200, Adam, {args.epochs} epochs\n")
    results = {}
    for dtype in ("float64", "float32"):
        model = af.Model(af.Architecture(args.columns, [af.Dense(64, activation="relu"),
                                                        af.Dense(2)], output="softmax"), dtype)
        hp = af.Hyperparameters(epochs=args.epochs, batch_size=200, learning_rate=1e-3)
        fitted = af.fit(model, X.astype(dtype), y, hp)
        results[f"archfit {dtype}"] = (statistics.median(r["seconds"] for r in fitted.history),
                                       fitted.score(X, y))
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        print("scikit-learn is not installed: pip install scikit-learn")
    else:
        clf = MLPClassifier((64,), batch_size=200, max_iter=args.epochs, learning_rate_init=1e-3,
                            random_state=0, tol=0.0, n_iter_no_change=args.epochs + 1)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
        results["scikit-learn float64"] = ((time.perf_counter() - start) / args.epochs,
                                           clf.score(X, y))
    base = results.get("scikit-learn float64", (None,))[0]
    print(f"{'':24s} {'s/epoch':>9s} {'training accuracy':>18s} {'vs scikit-learn':>16s}")
    for name, (seconds, score) in results.items():
        ratio = f"{base / seconds:.1f}x" if base else "-"
        print(f"{name:24s} {seconds:9.3f} {score:18.3f} {ratio:>16s}")


if __name__ == "__main__":
    main()
