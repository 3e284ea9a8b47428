"""Training throughput of archfit on one network: samples per second.

    python benchmarks/throughput.py                      # 784-256-128-10, batch 128, float32
    python benchmarks/throughput.py --sizes 64,32,10 --batch-size 32 --threads 1

Synthetic data with a fixed seed; one warm-up epoch, then the median of
``--repeats`` timed epochs (each epoch = shuffle + forward + backward + Adam
update over every sample, in one kernel call). Threads as ``fit`` uses them:
a step large enough to be cut into shards runs on archfit's threads with BLAS
on one thread each; a smaller one on one thread with BLAS's threads.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import archfit as af
from archfit import _threads
from archfit.kernels import Trainer


def measure(sizes, batch_size, dtype, n_samples, repeats, threads, activation="relu"):
    layers = [af.Dense(s, activation) for s in sizes[1:-1]] + [af.Dense(sizes[-1])]
    model = af.Model(af.Architecture(sizes[0], layers, "softmax"), dtype)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n_samples).astype(np.intc)
    theta = model.init(0)
    trainer = Trainer(model._kernel, model.dtype, n_samples, batch_size, "adam", threads=threads)
    trainer.epoch(theta, X, y, None, None, 1e-3, 0, threads)  # warm-up
    times = []
    for epoch in range(1, repeats + 1):
        start = time.perf_counter()
        trainer.epoch(theta, X, y, None, None, 1e-3, epoch, threads)
        times.append(time.perf_counter() - start)
    return n_samples / statistics.median(times), model


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads, archfit's and BLAS's together (default: all)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    layers = [af.Dense(s) for s in sizes[1:]]
    plan = af.Model(af.Architecture(sizes[0], layers), args.dtype)._kernel.training_plan(
        args.dtype, args.samples, args.batch_size, threads=_threads.budget(args.threads))
    shards, threads = plan["shards"], plan["threads"]
    with threadpool_limits(limits=args.threads, user_api="blas"):
        with _threads.blas_limit(1):
            rate, model = measure(sizes, args.batch_size, args.dtype, args.samples,
                                  args.repeats, threads)
            blas = [(i["internal_api"], i.get("version"), i["num_threads"])
                    for i in threadpool_info() if i["user_api"] == "blas"]
    gflops = rate * 3 * model.architecture.flops_per_sample / 1e9
    print(f"network {'-'.join(map(str, sizes))}  batch {args.batch_size}  {args.dtype}  "
          f"{shards} shard(s) per step on {threads} archfit thread(s), BLAS {blas}")
    print(f"{rate:,.0f} samples/s  (~{gflops:.1f} GFLOP/s counting 3x forward FLOPs per sample)")


if __name__ == "__main__":
    main()
