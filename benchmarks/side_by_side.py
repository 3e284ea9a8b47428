"""Two builds of archfit, timed alternately: the installed one and another.

On a shared machine two runs a minute apart differ by ±25%, so a change of a
few percent cannot be seen by running the old and the new build one after
the other. Here each build runs in a worker process of its own (the other
build from a folder made with ``pip install --no-build-isolation --no-deps
--target DIR <checkout of the old commit>``), and the two are timed in
alternating pairs (the order flips every pair) while the other waits, so both
see the same machine state (each call starts 20 ms after the other worker's
last, once its OpenMP threads have stopped spinning; ``--settle 0.25`` when a
build calls multi-threaded OpenBLAS, whose idle threads spin about 0.1 s); what is printed is the
median of the paired ratios. Each worker drives its build's own kernel objects (``Trainer.epoch``,
``Kernel.predict``), so Python overhead outside the kernels is not timed.

    python benchmarks/side_by_side.py /tmp/old
    python benchmarks/side_by_side.py /tmp/old --sizes 784,256,128,10 --dtype float64
    python benchmarks/side_by_side.py /tmp/old --predict 4096

Training: both builds train the same network from the same θ, epoch by epoch
(16 epochs of 8,192 samples; the first two are not timed) and, unless
``--allow-different-bits``, must end with the same bits. Prediction: both
predict the same rows, 60 pairs of calls, and must give the same bits. Read
ratios within ±2% as no change.
"""
import argparse
import hashlib
import json
import statistics
import sys
import time

import _workers


def _trainer(af, model, n, args):
    """This build's Trainer: in builds before the public API, from
    archfit._kernels._network (tried first: a folder of such a build has no
    archfit.kernels, which an editable install elsewhere could then supply)."""
    try:
        from archfit._kernels._network import Trainer
        return Trainer(model._kernel, model.dtype, n, args.batch_size, "adam", seed=1)
    except ImportError:
        from archfit.kernels import Trainer
        return Trainer(model._kernel, model.dtype, n, args.batch_size, "adam", seed=1,
                       threads=args.threads)


def worker(path, args):
    """Serve timing requests on stdin for the archfit found first on `path` (or installed)."""
    if path:
        sys.path.insert(0, path)
    import numpy as np
    from threadpoolctl import threadpool_limits
    import archfit as af
    if path and not af.__file__.startswith(path):
        raise SystemExit(f"archfit came from {af.__file__}, not {path}")
    sizes = [int(s) for s in args.sizes.split(",")]
    model = af.Model(af.Architecture(sizes[0], [af.Dense(s, "relu") for s in sizes[1:-1]]
                                     + [af.Dense(sizes[-1])], "softmax"), args.dtype)
    rng = np.random.default_rng(0)
    theta = model.init(0)
    if args.predict:
        X = rng.normal(size=(args.predict, sizes[0])).astype(args.dtype)
        out = np.empty((args.predict, sizes[-1]), args.dtype)

        def call(_):
            model._kernel.predict(theta, X, out, args.threads)
        result = out
    else:
        n = 8192
        X = rng.normal(size=(n, sizes[0])).astype(args.dtype)
        y = rng.integers(0, sizes[-1], n).astype(np.intc)
        trainer = _trainer(af, model, n, args)

        def call(epoch):
            with threadpool_limits(1, user_api="blas"):
                trainer.epoch(theta, X, y, None, None, 1e-3, epoch, args.threads)
        result = theta
    print(json.dumps({"ready": af.__file__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "call" in request:
            start = time.perf_counter()
            call(request["call"])
            reply = {"seconds": time.perf_counter() - start}
        else:
            reply = {"hash": hashlib.sha256(result.tobytes()).hexdigest()}
        print(json.dumps(reply), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="folder of the other build (pip install --target)")
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--predict", type=int, default=0, metavar="ROWS",
                        help="time Kernel.predict of ROWS rows instead of training")
    parser.add_argument("--allow-different-bits", action="store_true")
    parser.add_argument("--settle", type=float, default=0.02, metavar="SECONDS",
                        help="pause before each call (default 0.02: OpenMP's spinning "
                             "threads sleep by then; a build that calls multi-threaded "
                             "OpenBLAS needs about 0.25, its idle threads spin longer)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args)

    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != args.other]
    workers = {name: _workers.start(__file__, args.other, "--worker", path, *forwarded)[0]
               for name, path in (("installed", ""), ("other", args.other))}

    def ask(name, request):
        return _workers.ask(workers[name], request)

    pairs = 60 if args.predict else args.epochs
    times = {name: [] for name in workers}
    for i in range(pairs):
        for name in (("other", "installed") if i % 2 else ("installed", "other")):
            # the other worker's OpenMP (and OpenBLAS) threads spin for a while
            # after their last work and would take a core from this call
            time.sleep(args.settle)
            times[name].append(ask(name, {"call": i})["seconds"])
    same = ask("installed", {"hash": 1}) == ask("other", {"hash": 1})
    _workers.stop(workers.values())
    if args.predict:
        n, what = args.predict, f"predict {args.predict} rows"
    else:
        n, what = 8192, f"train {args.sizes} batch {args.batch_size}"
        times = {name: t[2:] for name, t in times.items()}
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
