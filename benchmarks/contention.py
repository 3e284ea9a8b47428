"""Training speed with one core busy: archfit and PyTorch, 1 and 2 threads.

    python benchmarks/contention.py            # about two minutes
    python benchmarks/contention.py --idle     # the same without the busy core

A laptop or a CI runner is rarely idle. This starts a process that keeps one
core busy (a Python loop) for the whole run, then times epochs of W2
(784-256-128-10, batch 128), W3 (1024-2048-2048-10, batch 256, fewer rows) and
2 x Dense(1024) (64-1024-1024-10, batch 64), float32 with Adam, in archfit and
in PyTorch (eager, fused Adam), each on 1 and on 2 threads, each measurement
in its own process. It prints seconds per epoch (the mean of 8 after one
warm-up) and each peer's 2-thread time over its 1-thread time, and writes a
JSON record to benchmarks/results/.

archfit's fits choose each epoch's threads (``_threads.EpochThreads``): after
an epoch whose threads did not get their cores, one on a single thread, the
faster kept and the other tried again later. The figure is the mean of the
epochs after the warm-up, those trials included.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _record  # noqa: E402  (benchmarks/_record.py: one record per run)
WORKLOADS = {
    # name: (sizes, batch, rows)
    "W2": ((784, 256, 128, 10), 128, 8192),
    "W3": ((1024, 2048, 2048, 10), 256, 1024),
    "2xDense(1024)": ((64, 1024, 1024, 10), 64, 4000),
}
EPOCHS = 8


def data(sizes, rows):
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, sizes[0])).astype(np.float32)
    y = (X @ rng.normal(size=(sizes[0], sizes[-1]))).argmax(axis=1)
    return X, y


def run_archfit(name, threads):
    import archfit as af
    sizes, batch, rows = WORKLOADS[name]
    X, y = data(sizes, rows)
    arch = af.Architecture(sizes[0], [af.Dense(w, "relu") for w in sizes[1:-1]]
                           + [af.Dense(sizes[-1])], "softmax")
    fitted = af.fit(af.Model(arch), X, y, af.Hyperparameters(
        epochs=1 + EPOCHS, batch_size=batch, n_threads=threads))
    return statistics.mean(h["seconds"] for h in fitted.history[1:])


def run_torch(name, threads):
    import torch
    torch.set_num_threads(threads)
    sizes, batch, rows = WORKLOADS[name]
    X, y = data(sizes, rows)
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-2], sizes[-1]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def epoch():
        order = torch.randperm(len(Xt))
        for s in range(0, len(Xt), batch):
            idx = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    epoch()
    times = []
    for _ in range(EPOCHS):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", action="store_true", help="no busy core beside the runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peer, name, threads = args.worker.split(":")
        try:
            seconds = (run_archfit if peer == "archfit" else run_torch)(name, int(threads))
        except ImportError as exc:
            print(json.dumps({"missing": str(exc)}))
            return
        print(json.dumps({"seconds": seconds}))
        return
    import archfit.kernels as kernels
    busy = None if args.idle else subprocess.Popen(
        [sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL)
    figures = {}
    try:
        print(f"contention: {_record.cpu_model()}; archfit's path {kernels.ISA}; "
              f"{'idle' if args.idle else 'one core busy'}; seconds per epoch")
        for name in WORKLOADS:
            row = {}
            for peer in ("archfit", "torch"):
                for threads in (1, 2):
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", f"{peer}:{name}:{threads}"],
                        capture_output=True, text=True, timeout=1800,
                        env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
                    result = json.loads(out.stdout.strip().splitlines()[-1]) \
                        if out.returncode == 0 else {"failed": out.stderr[-300:]}
                    row[f"{peer} {threads}"] = result.get("seconds")
            figures[name] = row
            text = "  ".join(f"{k} {v:.3f}" if v else f"{k} missing" for k, v in row.items())
            ratios = []
            for peer in ("archfit", "torch"):
                one, two = row[f"{peer} 1"], row[f"{peer} 2"]
                if one and two:
                    ratios.append(f"{peer} 2 threads ÷ 1: {two / one:.2f}")
            print(f"  {name:14s} {text}   {'; '.join(ratios)}")
    finally:
        if busy is not None:
            busy.kill()
    _record.write("contention", "contention.py", figures, busy_core=not args.idle)


if __name__ == "__main__":
    main()
