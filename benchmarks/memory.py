"""Peak memory of a W2 fit (784-256-128-10, batch 128, float32) on 60,000 samples.

    python benchmarks/memory.py            # 1 and 5 epochs, each in a fresh process

Each fit runs in its own process. The process's resident set is read from
/proc/self/status (VmRSS now, VmHWM the peak, reset through
/proc/self/clear_refs once the data exist) before and after the fit; what
the fit added at its peak is compared with what archfit should need: θ and
the training state (gradient, Adam's m and v: 4 copies of θ), the packed
copies of the weights the shards read (about 1.5 θ) and each thread's
packed-GEMM scratch, the returned fit model's own θ̂, one mini-batch's
scratch (activations, errors, gathered rows), the epoch's sample order and
the encoded labels. The same peak after 1 and after 5 epochs shows nothing
grows with the epochs.

Then a population: ``fit_many`` of 16 W2 members on 8,192 samples, whose
training states are planned once, as one block (the sum of the members'
plans); its peak is compared with that block plus each member's θ, θ̂ and
the copies early stopping and Ctrl-C keep (the last complete epoch's θ and
moments).
Linux only (reads /proc).
"""
from __future__ import annotations

import json
import subprocess
import sys

SIZES = (784, 256, 128, 10)
N, BATCH = 60_000, 128


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(epochs):
    import numpy as np
    import archfit as af
    from archfit import _threads
    rng = np.random.default_rng(0)
    X = rng.standard_normal(size=(N, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], N)
    model = af.Model(af.Architecture(SIZES[0], [af.Dense(256, "relu"), af.Dense(128, "relu"),
                                                af.Dense(10)], "softmax"))
    # warm up the libraries (BLAS and OpenMP thread stacks, code pages) on a tiny fit
    af.fit(model, X[:256], y[:256], af.Hyperparameters(epochs=1, batch_size=BATCH))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")        # reset VmHWM: the peak from here on is the fit's
    before = _status("VmRSS")
    # the training state's block as the kernel plans it (fitting reserves the same)
    plan = model._kernel.training_plan(model.dtype, N, BATCH, 0.0, True, 0,
                                       _threads.budget(None))
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=epochs, batch_size=BATCH))
    print(json.dumps({"data": X.nbytes + y.nbytes, "before": before, "peak": _status("VmHWM"),
                      "n_parameters": model.n_parameters, "epochs": fitted.n_epochs,
                      "state": plan["bytes"], "threads": plan["threads"]}))


def population_child():
    import numpy as np
    import archfit as af
    from archfit.population import member_bytes
    K, n = 16, 8192
    rng = np.random.default_rng(0)
    X = rng.standard_normal(size=(n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], n)
    model = af.Model(af.Architecture(SIZES[0], [af.Dense(256, "relu"), af.Dense(128, "relu"),
                                                af.Dense(10)], "softmax"))
    hps = [af.Hyperparameters(epochs=1, batch_size=BATCH, seed=k) for k in range(K)]
    af.fit_many(model, X[:256], y[:256], hps[:2])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    fitted = af.fit_many(model, X, y, hps)
    print(json.dumps({"before": before, "peak": _status("VmHWM"), "members": len(fitted),
                      "n_parameters": model.n_parameters,
                      "block": sum(member_bytes(model, h, n) for h in hps)}))


def main():
    runs = {}
    for epochs in (1, 5):
        out = subprocess.run([sys.executable, __file__, "--child", str(epochs)],
                             capture_output=True, text=True, check=True)
        runs[epochs] = json.loads(out.stdout.strip().splitlines()[-1])
    r = runs[1]
    mib = 2.0**20
    theta = r["n_parameters"] * 4
    # θ and θ̂; the training state's block (gradient, moments, a batch's scratch,
    # sample order, packed weights and each thread's packed-GEMM scratch); labels
    expected = 2 * theta + r["state"] + N * 4
    print(f"W2 fit, {N:,} samples x {SIZES[0]} float32 = {r['data'] / mib:.1f} MiB of data "
          f"(with labels); θ = {theta / mib:.2f} MiB")
    for epochs, run in runs.items():
        added = run["peak"] - run["before"]
        print(f"  {epochs} epoch(s): resident before the fit {run['before'] / mib:.1f} MiB "
              f"(data + libraries), peak {run['peak'] / mib:.1f} MiB, added by the fit "
              f"{added / mib:.1f} MiB")
    print(f"  expected from the design: θ and θ̂ + the training state the kernel plans "
          f"({r['state'] / mib:.2f} MiB: gradient, moments, scratch, sample order, packed "
          f"weights, {r['threads']} thread(s)' packed-GEMM scratch) + labels "
          f"= {expected / mib:.1f} MiB")
    growth = runs[5]["peak"] - runs[1]["peak"]
    print(f"  peak after 5 epochs minus peak after 1: {growth / mib:+.1f} MiB")
    out = subprocess.run([sys.executable, __file__, "--population"], capture_output=True,
                         text=True, check=True)
    p = json.loads(out.stdout.strip().splitlines()[-1])
    theta = p["n_parameters"] * 4
    # the block; per member θ, θ̂ and the last complete epoch (θ, m, v)
    expected = p["block"] + p["members"] * 5 * theta
    print(f"fit_many of {p['members']} W2 members on 8,192 samples: peak added "
          f"{(p['peak'] - p['before']) / mib:.1f} MiB; the population's block (planned once) "
          f"{p['block'] / mib:.1f} MiB + per member θ, θ̂ and the last complete epoch's θ, m, v "
          f"= {expected / mib:.1f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    elif sys.argv[1:] == ["--population"]:
        population_child()
    else:
        main()
