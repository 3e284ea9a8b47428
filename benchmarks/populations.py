"""Many networks at once: fit_many against separate fits, JAX's vmap, and select.

    python benchmarks/populations.py            # about 2 minutes
    python benchmarks/populations.py --quick    # fewer repeats

Three workloads of issue "many networks in one kernel", float32, 2 threads:

* 64 members of 64-32-10 (batch 32, 10 epochs, 4,096 rows labelled by a
  random teacher network, different seeds): ``fit_many`` against the 64 fits
  one after another, on a 2-thread pool, and JAX (``jax.vmap`` of one
  member's epoch, ``jit`` over ``lax.scan``, the same Adam) when installed.
* 16 members of 784-256-128-10 (batch 128, 2 epochs on 8,192 rows).
* ``select`` on the shipped digits, 8 candidates x 5 folds of one
  architecture, with populations and one fit at a time (both ``n_jobs=2``);
  the two tables must agree but for the time.

Printed: model-samples per second (members x rows x epochs / wall time), the
share of the machine's float32 peak, the speed-up against separate fits, and
each population's planned memory. The peak is ``--peak`` GFLOP/s, measured
with ``benchmarks/fma_peak.c`` (2 threads); without it, an estimate from the
clock /proc/cpuinfo reports (2 cores x 2 FMA pipes x 8 lanes x 2 flops x MHz),
which cores that run faster than that clock exceed.
Settings alternate within a run and medians are reported. Print the CPU and
archfit's kernel path with every figure.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import archfit as af
from archfit import estimation, kernels
from archfit.population import member_bytes

THREADS = 2


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
        flags = next(line.split(":", 1)[1].split() for line in out.splitlines()
                     if line.startswith("Flags"))
        wanted = [f for f in ("avx2", "fma", "avx512f", "amx_tile") if f in flags]
        return f"{name} ({' '.join(wanted)})"
    except (OSError, StopIteration):
        return "unknown CPU"


def clock_peak_gflops() -> float:
    """2 cores x 2 FMA pipes x 8 float32 lanes x 2 flops x the reported clock:
    an estimate (benchmarks/fma_peak.c measures the real one)."""
    mhz = []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz.append(float(line.split(":")[1]))
    return THREADS * 2 * 8 * 2 * (max(mhz) if mhz else 2500.0) / 1000.0


def flops_per_sample(sizes) -> float:
    """2 flops per weight for the forward pass, the weight gradients and the
    errors of every layer but the first (the input's error is not computed)."""
    return 6.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) - 2.0 * sizes[0] * sizes[1]


def teacher_data(sizes, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0])).astype(np.float32)
    h = np.tanh(X @ rng.normal(size=(sizes[0], 32)) / np.sqrt(sizes[0]))
    y = (h @ rng.normal(size=(32, sizes[-1]))).argmax(axis=1)
    return X, y


def model_of(sizes):
    layers = [af.Dense(h, activation="relu") for h in sizes[1:-1]] + [af.Dense(sizes[-1])]
    return af.Model(af.Architecture(sizes[0], layers, output="softmax"), dtype="float32")


def jax_vmap(sizes, X, y, K, batch, epochs):
    """Seconds of K fits in one jit(vmap(epoch)) per epoch, or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    from compare import jax_epoch      # the same network, loss and Adam as compare.py's peer

    def init(key):
        params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            key, sub = jax.random.split(key)
            params.append((jax.random.normal(sub, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b)))
        return params

    _, epoch = jax_epoch(batch, "softmax", jnp.asarray(X), jnp.asarray(y))
    run = jax.jit(jax.vmap(epoch))
    keys = jax.random.split(jax.random.PRNGKey(0), K)
    p = jax.vmap(init)(keys)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, p)
    state = [p, zeros, zeros, jnp.zeros(K)]
    state = list(run(*state, keys))                 # compile
    jax.block_until_ready(state[0])
    start = time.perf_counter()
    for e in range(epochs):
        state = list(run(*state, jax.random.split(jax.random.PRNGKey(e + 1), K)))
    jax.block_until_ready(state[0])
    return time.perf_counter() - start


def population(sizes, n, K, batch, epochs, repeats, with_jax, peak):
    X, y = teacher_data(sizes, n)
    model = model_of(sizes)
    hps = [af.Hyperparameters(batch_size=batch, epochs=epochs, seed=k, n_threads=1)
           for k in range(K)]
    many_hps = [h.replace(n_threads=THREADS) for h in hps]
    runs = {"separate, 1 thread": [], f"separate, {THREADS}-thread pool": [], "fit_many": []}
    with ThreadPoolExecutor(THREADS) as pool:
        af.fit_many(model, X, y, many_hps[:2])
        list(pool.map(lambda h: af.fit(model, X, y, h), hps[:2]))
        for _ in range(repeats):
            for setting in runs:
                start = time.perf_counter()
                if setting == "fit_many":
                    fitted = af.fit_many(model, X, y, many_hps)
                elif setting.startswith("separate, 1"):
                    for h in hps:
                        af.fit(model, X, y, h)
                else:
                    list(pool.map(lambda h: af.fit(model, X, y, h), hps))
                runs[setting].append(time.perf_counter() - start)
    seconds = {k: statistics.median(v) for k, v in runs.items()}
    if with_jax:
        jax_seconds = jax_vmap(sizes, X, y, K, batch, epochs)
        seconds["JAX jit(vmap(epoch))"] = jax_seconds if jax_seconds is not None else None
    work = K * n * epochs
    pool_s = seconds[f"separate, {THREADS}-thread pool"]
    print(f"\n{K} members of {'-'.join(map(str, sizes))}, batch {batch}, {epochs} epochs, "
          f"{n:,} rows; training state {sum(member_bytes(model, h, n) for h in hps) / 2**20:.1f}"
          f" MiB for the population; final train loss of member 0: "
          f"{fitted[0].history[-1]['train_loss']:.3f}")
    print(f"| how | seconds | model-samples/s | share of float32 peak | vs {THREADS}-thread pool |")
    print("|---|---|---|---|---|")
    for name, s in seconds.items():
        if s is None:
            print(f"| {name} | not installed | | | |")
            continue
        rate = work / s
        share = rate * flops_per_sample(sizes) / (peak * 1e9)
        print(f"| {name} | {s:.3f} | {rate:,.0f} | {share:.1%} | {pool_s / s:.2f}x |")
    return seconds


def selection(repeats):
    from archfit.datasets import load_digits
    X, y = load_digits()
    model = af.Model(af.Architecture(64, [af.Dense(64, activation="relu"), af.Dense(10)],
                                     output="softmax"))
    space = {"learning_rate": [1e-3, 3e-3], "l2": [0.0, 1e-4], "dropout": [0.0, 0.1]}
    base = af.Hyperparameters(epochs=20, batch_size=32)
    real = estimation.compatible
    times = {"populations": [], "one fit at a time": []}
    tables = {}
    for _ in range(repeats):
        for setting in times:
            estimation.compatible = real if setting == "populations" else (lambda m, h: None)
            start = time.perf_counter()
            sel = af.select(model, X, y, space, base=base, cv=5, n_jobs=THREADS, refit=False)
            times[setting].append(time.perf_counter() - start)
            tables[setting] = [{k: v for k, v in r.items() if k != "fit_seconds"}
                               for r in sel.table]
    estimation.compatible = real
    a, b = (statistics.median(times[k]) for k in times)
    print(f"\nselect on the digits (1,797 x 64), 8 candidates x 5 folds, 64-64-10, 20 epochs, "
          f"n_jobs={THREADS}")
    print(f"| how | seconds |\n|---|---|\n| populations | {a:.3f} |\n"
          f"| one fit at a time | {b:.3f} |")
    print(f"speed-up {b / a:.2f}x; tables identical (but the time): "
          f"{tables['populations'] == tables['one fit at a time']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peak", type=float, default=None,
                        help="the float32 peak in GFLOP/s on 2 threads (benchmarks/fma_peak.c)")
    args = parser.parse_args()
    if args.peak is not None and not args.peak > 0:
        parser.error(f"--peak must be a positive number of GFLOP/s, got {args.peak}")
    repeats = 2 if args.quick else 5
    peak = args.peak if args.peak is not None else clock_peak_gflops()
    how = "measured (--peak)" if args.peak is not None else "estimated from the reported clock"
    print(f"CPU: {cpu()}; archfit kernel path: {kernels.ISA}; {THREADS} threads; "
          f"float32 peak {peak:.0f} GFLOP/s, {how}")
    population((64, 32, 10), 4096, 64, 32, 10, repeats, True, peak)
    population((784, 256, 128, 10), 8192, 16, 128, 2, max(1, repeats // 2), False, peak)
    selection(repeats)


if __name__ == "__main__":
    main()
