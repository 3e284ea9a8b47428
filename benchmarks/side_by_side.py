"""Two builds of archfit's network kernel in one process, timed alternately.

On a shared machine two runs a minute apart differ by ±25%, so a change of a
few percent cannot be seen by running the old and the new build one after
the other. Here the installed build's ``_network`` module and another build's
(a copy of ``_network*.so``, e.g. from ``pip install --no-deps --target
/tmp/old <checkout of the old commit>``) are loaded side by side and
timed in alternating pairs (the order flips every pair), so both see the same
machine state; what is printed is the median of the paired ratios. The other
kernel modules (BLAS wrapper, elementwise, optimizers) are the installed
build's for both: this compares changes to ``_network.pyx`` and the headers
it includes (the packed GEMM, vecmat, team).

    python benchmarks/side_by_side.py /tmp/old/archfit/_kernels/_network*.so
    python benchmarks/side_by_side.py OLD.so --sizes 784,256,128,10 --dtype float64
    python benchmarks/side_by_side.py OLD.so --predict 4096

Training: both builds train the same network from the same θ, epoch by epoch
(16 epochs of 8,192 samples; the first two are not timed) and, unless
``--allow-different-bits``, must end with the same bits. Prediction: both
predict the same rows, 60 pairs of calls, and must give the same bits. The
harness's own bias (a build against a copy of itself) was +0.7% to +0.8% on
the machine of RESULTS.md: read ratios within ±2% as no change.
"""
import argparse
import importlib.util
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import archfit as af
from archfit._kernels import _network as installed


def load(path: str, package: str):
    """The `_network` extension at `path`, as module `package._network`."""
    spec = importlib.util.spec_from_file_location(package + "._network", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alternate(calls, pairs):
    """Time calls["other"] and calls["installed"] in `pairs` alternating pairs."""
    times = {name: [] for name in calls}
    for i in range(pairs):
        for name in (("other", "installed") if i % 2 else ("installed", "other")):
            start = time.perf_counter()
            calls[name](i)
            times[name].append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="the other build's _network*.so")
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--predict", type=int, default=0, metavar="ROWS",
                        help="time Kernel.predict of ROWS rows instead of training")
    parser.add_argument("--allow-different-bits", action="store_true")
    args = parser.parse_args(argv)

    other = load(args.other, "other_build")
    sizes = [int(s) for s in args.sizes.split(",")]
    activations = ["relu"] * (len(sizes) - 2) + ["identity"]
    model = af.Model(af.Architecture(sizes[0], [af.Dense(s, "relu") for s in sizes[1:-1]]
                                     + [af.Dense(sizes[-1])], "softmax"), args.dtype)
    rng = np.random.default_rng(0)
    builds = {"installed": installed, "other": other}
    kernels = {name: m.Kernel(sizes, activations, "softmax", "cross_entropy")
               for name, m in builds.items()}

    if args.predict:
        X = rng.normal(size=(args.predict, sizes[0])).astype(args.dtype)
        theta = model.init(0)
        outs = {name: np.empty((args.predict, sizes[-1]), args.dtype) for name in builds}
        calls = {name: (lambda i, name=name: kernels[name].predict(theta, X, outs[name],
                                                                   args.threads))
                 for name in builds}
        times = alternate(calls, 60)
        same = np.array_equal(outs["installed"], outs["other"])
        n, what = args.predict, f"predict {args.predict} rows"
    else:
        n = 8192
        X = rng.normal(size=(n, sizes[0])).astype(args.dtype)
        y = rng.integers(0, sizes[-1], n).astype(np.intc)
        state = {name: (m.Trainer(kernels[name], np.dtype(args.dtype), n, args.batch_size,
                                  "adam", seed=1), model.init(0))
                 for name, m in builds.items()}
        calls = {name: (lambda e, name=name: state[name][0].epoch(
                     state[name][1], X, y, None, None, 1e-3, e, args.threads))
                 for name in builds}
        with threadpool_limits(1, user_api="blas"):
            times = alternate(calls, args.epochs)
        times = {name: t[2:] for name, t in times.items()}
        same = np.array_equal(state["installed"][1], state["other"][1])
        what = f"train {args.sizes} batch {args.batch_size}"
    if not same and not args.allow_different_bits:
        raise SystemExit("the two builds gave different bits (--allow-different-bits to time "
                         "them anyway)")
    ratios = [o / i for o, i in zip(times["other"], times["installed"])]
    print(f"{what}, {args.dtype}, {args.threads} threads: other "
          f"{n / statistics.median(times['other']):,.0f} samples/s, installed "
          f"{n / statistics.median(times['installed']):,.0f}; installed is "
          f"{statistics.median(ratios):.3f}x the other (median of {len(ratios)} pairs)"
          f"{'' if same else '; bits differ'}")


if __name__ == "__main__":
    main()
