"""Calls as a fit or a service makes them, one after another: validation
records, predictions of a few rows, a large prediction right after a small
one (BLAS's idle threads spin for about 0.1 s after a multi-threaded call
and take a core from the next parallel region), whole fits with a
validation set, L-BFGS's objective (the loss and gradient over all the
rows) alone and in whole fits, and predictions made 0.2 s apart, as a
service answering now and then makes them (archfit's other threads are
asleep by then; waking them can cost milliseconds on a virtual machine).

    python benchmarks/mixed_calls.py
    python benchmarks/mixed_calls.py --other /tmp/old
    python benchmarks/mixed_calls.py --other /tmp/old --only gradient,L-BFGS

With ``--other DIR`` (a build made with ``pip install --no-build-isolation
--no-deps --target DIR <checkout>``) each measurement runs in both builds,
each in a worker process of its own, alternately (0.3 s apart, so that the
other worker's spinning threads have stopped), and the table shows the median
of each and of the paired ratios. Each measurement is itself a median over
repeated calls in a warm process. Float32, 784-256-128-10 (W2) unless named.
"""
import argparse
import json
import statistics
import sys
import time

import _workers

REPEATS = 8


def worker(path):
    """Serve measurements by name on stdin for the archfit found first on `path`."""
    if path:
        sys.path.insert(0, path)
    import numpy as np
    import archfit as af
    from archfit import fitting
    from archfit._targets import encode
    if path and not af.__file__.startswith(path):
        raise SystemExit(f"archfit came from {af.__file__}, not {path}")
    rng = np.random.default_rng(0)

    def model_of(sizes):
        return af.Model(af.Architecture(sizes[0], [af.Dense(s, "relu") for s in sizes[1:-1]]
                                        + [af.Dense(sizes[-1])], "softmax"))

    w2, small = model_of((784, 256, 128, 10)), model_of((64, 32, 10))
    theta2, theta_small = w2.init(0), small.init(0)
    X2 = rng.normal(size=(10000, 784)).astype(np.float32)
    Xs = rng.normal(size=(2000, 64)).astype(np.float32)
    t2 = encode(rng.integers(0, 10, 10000), "softmax", 10, 10000, np.dtype(np.float32),
                np.arange(10))
    ts = encode(rng.integers(0, 10, 2000), "softmax", 10, 2000, np.dtype(np.float32),
                np.arange(10))

    def median_time(call, n):
        for _ in range(max(2, n // 10)):
            call()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def predict(n):
        X, out = X2[:n].copy(), np.empty((n, 10), np.float32)
        return lambda: w2._kernel.predict(theta2, X, out, 2)

    def after_small(n_small):
        # time a 4,096-row prediction made right after an n_small-row one
        big, small_call = predict(4096), predict(n_small)
        times = []
        for _ in range(30):
            small_call()
            start = time.perf_counter()
            big()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def after_pause(call, n=6):
        times = []
        for _ in range(n):
            time.sleep(0.2)
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    fitted2 = af.FitModel(w2, theta2, af.Hyperparameters(), classes=np.arange(10))
    one_row = X2[:1].copy()

    teacher = rng.normal(size=(784, 10)).astype(np.float32)
    y2 = (X2 @ teacher).argmax(axis=1)          # learnable labels

    def fit(batch):
        hp = af.Hyperparameters(epochs=2, batch_size=batch, seed=0)
        return lambda: af.fit(w2, X2[:8000], y2[:8000], hp, validation=(X2[8000:], y2[8000:]))

    from archfit.datasets import load_digits
    Xd, yd = load_digits()
    Xd = (Xd / 16).astype(np.float32)
    digits = model_of((64, 64, 10))
    theta_d = digits.init(0)

    def lbfgs(model, X, y, iterations):
        hp = af.Hyperparameters(optimizer="lbfgs", epochs=iterations, l2=1e-4, seed=0)
        return lambda: af.fit(model, X, y, hp)

    measurements = {
        "validation record, W2, 10,000 rows": lambda: median_time(
            lambda: fitting._record(w2, theta2, 1, 0.0, 0.0, 0.0, (X2, t2, None), 2), 10),
        "validation record, 64-32-10, 2,000 rows": lambda: median_time(
            lambda: fitting._record(small, theta_small, 1, 0.0, 0.0, 0.0, (Xs, ts, None), 2),
            60),
        "predict 1 row": lambda: median_time(predict(1), 2000),
        "predict_proba of one row": lambda: median_time(
            lambda: fitted2.predict_proba(one_row), 2000),
        "predict 2 rows": lambda: median_time(predict(2), 300),
        "predict 20 rows": lambda: median_time(predict(20), 300),
        "predict 100 rows": lambda: median_time(predict(100), 200),
        "predict 256 rows": lambda: median_time(predict(256), 100),
        "predict 4,096 rows alone": lambda: median_time(predict(4096), 30),
        "predict 4,096 rows right after 100": lambda: after_small(100),
        "predict_proba of one row, 0.2 s after the last call": lambda: after_pause(
            lambda: fitted2.predict_proba(one_row)),
        "predict 100 rows, 0.2 s after the last call": lambda: after_pause(predict(100)),
        "fit W2, batch 32, 2 epochs of 8,000 rows, 2,000 validation": lambda: median_time(
            fit(32), 1),
        "the same fit at batch 128": lambda: median_time(fit(128), 1),
        "gradient, 64-64-10, the digits (1,797 rows)": lambda: median_time(
            lambda: digits.loss_and_grad(theta_d, Xd, yd), 60),
        "gradient, W2, 10,000 rows": lambda: median_time(
            lambda: w2.loss_and_grad(theta2, X2, y2), 10),
        "L-BFGS fit, 64-64-10, the digits, 100 iterations": lambda: median_time(
            lbfgs(digits, Xd, yd, 100), 1),
        "L-BFGS fit, W2, 2,000 rows, 20 iterations": lambda: median_time(
            lbfgs(w2, X2[:2000], y2[:2000], 20), 1),
    }
    print(json.dumps(list(measurements)), flush=True)
    for line in sys.stdin:
        print(json.dumps(measurements[json.loads(line)]()), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", default=None, metavar="DIR",
                        help="another build to run each measurement in, alternately")
    parser.add_argument("--only", default=None, metavar="WORDS",
                        help="only the measurements whose names contain one of these "
                             "comma-separated words")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)
    builds = {"installed": ""}
    if args.other:
        builds["other"] = args.other
    started = {name: _workers.start(__file__, "--worker", path)
               for name, path in builds.items()}
    workers = {name: proc for name, (proc, _) in started.items()}
    names = started["installed"][1]         # every worker lists its measurements first
    if args.only:
        words = [w for w in args.only.split(",") if w]
        names = [n for n in names if any(w in n for w in words)]
        if not names:
            raise SystemExit(f"no measurement's name contains any of {words}")

    def ask(build, name):
        return _workers.ask(workers[build], name)

    from archfit import kernels
    print(f"archfit kernel path: {kernels.ISA}; 2 threads; medians of {REPEATS} alternating "
          "rounds, each a median over repeated calls")
    header = "| measurement | installed (ms) |" + (" other (ms) | installed's speed |"
                                                   if args.other else "")
    print(header)
    print("|---|---|" + ("---|---|" if args.other else ""))
    for name in names:
        times = {build: [] for build in workers}
        for i in range(REPEATS):
            order = list(workers) if i % 2 == 0 else list(reversed(workers))
            for build in order:
                time.sleep(0.3)
                times[build].append(ask(build, name))
        row = f"| {name} | {1e3 * statistics.median(times['installed']):.3f} |"
        if args.other:
            ratio = statistics.median(o / i for o, i in zip(times["other"], times["installed"]))
            row += f" {1e3 * statistics.median(times['other']):.3f} | {ratio:.2f}x |"
        print(row, flush=True)
    _workers.stop(workers.values())


if __name__ == "__main__":
    main()
