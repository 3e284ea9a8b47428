"""archfit side by side with the CPU peers a Python user can install.

    python benchmarks/compare.py            # the full table (about 15 minutes)
    python benchmarks/compare.py --quick    # smaller samples, under 2 minutes

Every run writes its record to ``benchmarks/results/`` (``--record-dir``):
the date, the commit, the CPU's model and vector flags, archfit's kernel
path, the command and every figure, one JSON file per run.

Every measurement runs in its own process, one at a time. Same architecture,
batch size, Adam with lr 1e-3, float32 (unless said), and the same samples for
every peer. Training = forward + backward + Adam update over every sample
once (an epoch); samples per second = samples / epoch time.

Training data are learnable (the labels or values of a random linear
teacher), and each peer is timed twice: its first epochs (after one warm-up
epoch) and, after training on until its loss has fallen below a tenth of its
loss after that first epoch (or a budget of epochs ran out: then "not converged"), its
epochs there. A confident classifier computes with subnormal numbers, which
slow some CPUs down; the figure reported is the slower of the two.
Threads: 2 for every peer (BLAS, PyTorch intra-op, XLA). Peers that are not
installed are reported as missing. The CPU's instruction sets and the kernel
path archfit chose are printed first.

Peers: archfit; a plain-NumPy trainer (benchmarks/numpy_mlp.py); scikit-learn's
MLPClassifier/MLPRegressor (solver adam, one partial_fit = one epoch); PyTorch
eager with torch.optim.Adam (default foreach), with Adam(fused=True), and
torch.compile of the model with fused Adam; JAX (``jax.jit`` over
``lax.scan`` of an epoch's steps, Adam written out: one compiled call per
epoch, as archfit's). Inference on W2: archfit, JAX (``jit`` of the forward
pass), PyTorch eager and torch.compile under ``inference_mode``, NumPy; and
the largest product of a batch-4096 prediction on one thread against
OpenBLAS and MKL. W5, a TabM-like network (piecewise-linear and categorical
embeddings, an ensemble of 32 inside), runs benchmarks/layers.py's twins:
archfit, JAX, PyTorch eager with fused AdamW and torch.compile. W2-bfloat16
and W3-bfloat16 train float32 models with bfloat16 products: archfit's
``precision="bfloat16"`` against PyTorch under ``torch.autocast`` to bfloat16
(fused Adam), each row also divided by the float32 row's peers. Install them with
``pip install scikit-learn torch==2.13.0 jax`` (or ``".[compare]"``). ``--quick``
runs archfit, JAX, fused PyTorch and NumPy only.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _record  # noqa: E402  (benchmarks/_record.py: one record per run)
from _record import cpu_model  # noqa: E402

WORKLOADS = {
    # name: (sizes, batch, output, dtype, samples, quick samples, epoch budget, quick budget)
    "W1": ((64, 32, 10), 32, "softmax", "float32", 32768, 4096, 40, 20),
    "W2": ((784, 256, 128, 10), 128, "softmax", "float32", 16384, 2048, 30, 8),
    "W3": ((1024, 2048, 2048, 10), 256, "softmax", "float32", 2048, 512, 20, 4),
    "W4": ((8, 64, 64, 1), 64, "linear", "float32", 32768, 4096, 40, 20),
    "W2-float64": ((784, 256, 128, 10), 128, "softmax", "float64", 8192, 1024, 30, 8),
    # float32 models whose products take bfloat16 operands: archfit's
    # precision="bfloat16", PyTorch's autocast to bfloat16 (fused Adam)
    "W2-bfloat16": ((784, 256, 128, 10), 128, "softmax", "bfloat16", 16384, 2048, 30, 8),
    "W3-bfloat16": ((1024, 2048, 2048, 10), 256, "softmax", "bfloat16", 2048, 512, 20, 4),
}
PEERS = ["archfit", "jax", "torch", "torch-fused", "torch-compile", "torch-autocast", "numpy",
         "sklearn"]
# --quick keeps to the compiled peer to beat, the best eager one and NumPy: compiling
# torch.compile's graphs alone takes longer than the quick run may, and PyTorch's
# bfloat16 autocast on a CPU without bfloat16 arithmetic takes minutes for W3
# (the bfloat16 rows then compare archfit with the float32 rows' peers)
QUICK_PEERS = ["archfit", "jax", "torch-fused", "numpy"]
INFERENCE_PEERS = ["archfit", "jax", "torch", "torch-compile", "numpy"]
QUICK_INFERENCE_PEERS = ["archfit", "jax", "torch", "numpy"]
FLOAT32 = [p for p in PEERS if p != "torch-autocast"]
TRAIN_PEERS = {"W1": FLOAT32, "W2": FLOAT32, "W3": FLOAT32, "W4": FLOAT32,
               "W2-float64": ["archfit", "jax", "torch", "torch-fused", "sklearn"],
               "W2-bfloat16": ["archfit", "torch-autocast"],
               "W3-bfloat16": ["archfit", "torch-autocast"]}
THREADS = 2
_HELD = []          # context managers a worker holds open until it exits


# ---- data -------------------------------------------------------------------------------------
def data(sizes, output, dtype, n):
    """Features and a random linear teacher's labels (softmax) or values (linear)."""
    import numpy as np
    rng = np.random.default_rng(0)
    dtype = "float32" if dtype == "bfloat16" else dtype       # a float32 model's data
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    W = rng.normal(size=(sizes[0], sizes[-1])) / np.sqrt(sizes[0])
    if output == "softmax":
        y = np.argmax(X @ W, axis=1)
    else:
        y = (X @ W).astype(dtype)
    return X, y


def mean_loss(output, out, y):
    """Cross-entropy of probabilities, or half the mean squared error of values."""
    import numpy as np
    out = np.asarray(out, dtype=np.float64)
    if output == "softmax":
        return float(-np.mean(np.log(np.clip(out[np.arange(len(y)), y], 1e-300, None))))
    return float(0.5 * np.mean(np.sum((out.reshape(len(y), -1)
                                       - np.asarray(y).reshape(len(y), -1)) ** 2, axis=1)))


# ---- one peer, one workload (runs in a child process) -------------------------------------------
def trainer(peer, sizes, batch, output, dtype, X, y):
    """(epoch(e), predict(X), snapshot(), restore(s)) for a peer: one epoch of
    training, its outputs (probabilities or values) for the loss, and a copy
    of its training state (parameters and optimizer) to time from again."""
    import numpy as np
    n = len(X)
    precision = "bfloat16" if dtype == "bfloat16" else "float32"
    dtype = "float32" if dtype == "bfloat16" else dtype
    if peer == "archfit":
        import warnings
        import archfit as af
        from archfit import _threads
        from archfit.kernels import Trainer
        layers = [af.Dense(s, "relu") for s in sizes[1:-1]] + [af.Dense(sizes[-1])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the header says which body runs
            model = af.Model(af.Architecture(sizes[0], layers, output), dtype)._in_precision(
                precision)
        plan = model._kernel.training_plan(dtype, n, batch, threads=THREADS)
        state = Trainer(model._kernel, model.dtype, n, batch, "adam",
                        n_targets=0 if output == "softmax" else sizes[-1], threads=THREADS)
        theta = model.init(0)
        labels = y.astype(np.intc) if output == "softmax" else None
        targets = None if output == "softmax" else np.ascontiguousarray(
            y.reshape(n, -1), dtype=dtype)
        # BLAS's limit for the whole process, as fit holds it for a fit; kept
        # referenced (a collected context manager would restore BLAS's threads)
        _HELD.append(_threads.blas_limit(1))
        _HELD[-1].__enter__()
        box = [state]

        def epoch(e):
            box[0].epoch(theta, X, labels, targets, None, 1e-3, e, plan["threads"])

        def snapshot():
            return theta.copy(), box[0].m, box[0].v, box[0].step

        def restore(s):
            theta[:] = s[0]
            box[0] = Trainer(model._kernel, model.dtype, n, batch, "adam", m=s[1], v=s[2],
                             step=s[3], n_targets=0 if output == "softmax" else sizes[-1],
                             threads=THREADS)
        return epoch, lambda Z: model.predict(theta, Z), snapshot, restore
    if peer == "numpy":
        from threadpoolctl import threadpool_limits
        sys.path.insert(0, HERE)
        from numpy_mlp import NumpyMLP
        threadpool_limits(THREADS)
        net = NumpyMLP(sizes, batch, output, np.dtype(dtype).type)
        rng = np.random.default_rng(0)

        def predict(Z):          # its buffers hold one batch: predict batch by batch
            out = np.concatenate([net.predict(Z[i:i + batch]).astype(np.float64)
                                  for i in range(0, len(Z), batch)])
            if output == "softmax":
                out = np.exp(out - out.max(axis=1, keepdims=True))
                out /= out.sum(axis=1, keepdims=True)
            return out
        return ((lambda e: net.epoch(X, y, rng)), predict,
                lambda: copy.deepcopy(net.__dict__),
                lambda s: net.__dict__.update(copy.deepcopy(s)))
    if peer == "sklearn":
        import warnings
        from threadpoolctl import threadpool_limits
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        threadpool_limits(THREADS)
        warnings.simplefilter("ignore")
        Est = MLPClassifier if output == "softmax" else MLPRegressor
        est = Est(hidden_layer_sizes=sizes[1:-1], solver="adam", batch_size=batch, alpha=0.0,
                  learning_rate_init=1e-3, random_state=0)
        kwargs = {"classes": np.arange(sizes[-1])} if output == "softmax" else {}
        yy = y if output == "softmax" else y.ravel()

        box = [est]

        def epoch(e):
            box[0].partial_fit(X, yy, **(kwargs if e == 0 else {}))

        def predict(Z):
            return box[0].predict_proba(Z) if output == "softmax" else box[0].predict(Z)

        def restore(s):
            box[0] = copy.deepcopy(s)
        return epoch, predict, lambda: copy.deepcopy(box[0]), restore
    if peer == "jax":
        return _jax_trainer(sizes, batch, output, dtype, X, y)
    return _torch_trainer(peer, sizes, batch, output, dtype, X, y, precision)


def _torch_trainer(peer, sizes, batch, output, dtype, X, y, precision="float32"):
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    n = len(X)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*layers).to(tdtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3,
                           fused=peer in ("torch-fused", "torch-compile", "torch-autocast"))
    forward = torch.compile(net) if peer == "torch-compile" else net
    if precision == "bfloat16":
        # autocast: the linear layers' products in bfloat16, the rest float32
        def forward(Z, net=net):
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                return net(Z).float()
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y if output == "softmax" else y.reshape(n, -1))
    loss_fn = torch.nn.CrossEntropyLoss() if output == "softmax" else torch.nn.MSELoss()
    g = torch.Generator().manual_seed(0)

    def epoch(e):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(forward(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    def predict(Z):
        with torch.no_grad():
            out = forward(torch.from_numpy(Z))
            return (torch.softmax(out, dim=1) if output == "softmax" else out).numpy()

    def snapshot():
        return copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())

    def restore(s):
        net.load_state_dict(s[0])
        opt.load_state_dict(copy.deepcopy(s[1]))
    return epoch, predict, snapshot, restore


def jax_forward(p, Z):
    """JAX's network: relu hidden layers, then the output layer's values."""
    import jax
    for W, b in p[:-1]:
        Z = jax.nn.relu(Z @ W + b)
    return Z @ p[-1][0] + p[-1][1]


def jax_epoch(batch, output, Xj, yj):
    """JAX's network and one epoch of it: ``forward(p, Z)`` and
    ``epoch(p, m, v, t, key)`` -> (p, m, v, t), a ``lax.scan`` of Adam steps
    (lr 1e-3) over a shuffle of (Xj, yj); pure, for ``jit`` (one fit) or
    ``jit(vmap(...))`` (many, benchmarks/populations.py)."""
    import jax
    import jax.numpy as jnp
    n, steps = Xj.shape[0], Xj.shape[0] // batch
    forward = jax_forward

    def loss(p, xb, yb):
        out = forward(p, xb)
        if output == "softmax":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), yb[:, None], 1))
        return 0.5 * jnp.mean(jnp.sum((out - yb) ** 2, axis=1))

    def epoch(p, m, v, t, key):
        order = jax.random.permutation(key, n)[:steps * batch]
        xs = Xj[order].reshape(steps, batch, -1)
        ys = yj[order].reshape((steps, batch) + yj.shape[1:])

        def step(carry, xy):
            p, m, v, t = carry
            grads = jax.grad(loss)(p, *xy)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            lr = 1e-3 / (1 - 0.9 ** t)
            c = 1 / jnp.sqrt(1 - 0.999 ** t)
            p = jax.tree_util.tree_map(lambda w, m, v: w - lr * m / (jnp.sqrt(v) * c + 1e-8),
                                       p, m, v)
            return (p, m, v, t), None
        (p, m, v, t), _ = jax.lax.scan(step, (p, m, v, t), (xs, ys))
        return p, m, v, t
    return forward, epoch


def _jax_trainer(sizes, batch, output, dtype, X, y):
    import numpy as np
    import jax
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    n = len(X)
    rng = np.random.default_rng(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):          # He for the relu layers, as archfit
        params.append((jnp.asarray(rng.normal(0, np.sqrt(2 / a), (a, b)).astype(dtype)),
                       jnp.zeros(b, dtype)))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.asarray(0, dtype)]
    forward, run_epoch = jax_epoch(batch, output, jnp.asarray(X),
                                   jnp.asarray(y if output == "softmax" else y.reshape(n, -1)))
    run_epoch = jax.jit(run_epoch)
    probs = jax.jit(lambda p, Z: (jax.nn.softmax(forward(p, Z)) if output == "softmax"
                                  else forward(p, Z)))

    def epoch(e):
        state[:] = run_epoch(*state, jax.random.PRNGKey(e))
        jax.block_until_ready(state[0])

    def restore(s):
        state[:] = s                           # jax arrays are immutable: no copy needed
    return (epoch, lambda Z: np.asarray(probs(state[0], jnp.asarray(Z))),
            lambda: list(state), restore)


def train_rate(peer, sizes, batch, output, dtype, n, repeats, budget):
    """Samples/s of fresh epochs and of converged ones, and whether the loss fell
    below a tenth of its value after the first epoch within `budget` epochs.

    The machine's speed drifts within a fit (this project's 2-core machine
    moves between a fast and a slow state by up to 2x), so the two are timed
    alternately from snapshots of the peer's state at the fresh point and at
    the converged point: each pair of epochs sees the same machine.
    """
    X, y = data(sizes, output, dtype, n)
    epoch, predict, snapshot, restore = trainer(peer, sizes, batch, output, dtype, X, y)
    probe = slice(0, min(n, 2048))
    epoch(0)                                  # warm-up (and compilation)
    start_loss = mean_loss(output, predict(X[probe]), y[probe])    # after one epoch
    fresh_state = snapshot()
    e, loss = 1, start_loss
    while loss >= 0.1 * start_loss and e < budget:
        epoch(e)
        e += 1
        loss = mean_loss(output, predict(X[probe]), y[probe])
    converged_state = snapshot()
    times = {"fresh": [], "converged": []}
    for i in range(repeats):
        for name, state, index in ((("fresh", fresh_state, 1), ("converged", converged_state, e))
                                   if i % 2 == 0 else
                                   (("converged", converged_state, e), ("fresh", fresh_state, 1))):
            restore(state)
            start = time.perf_counter()
            epoch(index)
            times[name].append(time.perf_counter() - start)
    fresh, converged = (n / statistics.median(times[k]) for k in ("fresh", "converged"))
    return {"fresh": fresh, "converged": converged, "reached": loss < 0.1 * start_loss,
            "rate": min(fresh, converged), "loss": [start_loss, loss]}


def inference(peer, mode, repeats, quick=False):
    """W2 inference (softmax probabilities): 1-sample latency (µs) or batch-4096
    throughput (samples/s), for archfit, JAX (``jit`` of the forward pass),
    PyTorch eager and ``torch.compile`` (under ``inference_mode``) or NumPy."""
    import numpy as np
    sizes = (784, 256, 128, 10)
    rows = 1 if mode == "latency" else 4096
    X, _ = data(sizes, "softmax", "float32", rows)
    calls = (3000 if rows == 1 else 20) // (3 if quick else 1)
    rng = np.random.default_rng(0)
    weights = [(rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32),
                np.zeros(b, np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]
    ctx = contextlib.nullcontext()
    if peer == "archfit":
        import archfit as af
        from threadpoolctl import threadpool_limits
        layers = [af.Dense(s, "relu") for s in sizes[1:-1]] + [af.Dense(10)]
        model = af.Model(af.Architecture(784, layers, "softmax"), "float32")
        fitted = af.FitModel(model, model.init(0), af.Hyperparameters(), classes=np.arange(10))
        call = lambda: fitted.predict_proba(X)  # noqa: E731
        ctx = threadpool_limits(THREADS)
    elif peer == "numpy":
        # allocating expressions: faster here than numpy_mlp.py's buffers for inference
        from threadpoolctl import threadpool_limits

        def call():
            Z = X
            for W, b in weights[:-1]:
                Z = np.maximum(Z @ W + b, 0)
            Z = Z @ weights[-1][0] + weights[-1][1]
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            return E / E.sum(axis=1, keepdims=True)
        ctx = threadpool_limits(THREADS)
    elif peer == "jax":
        import jax
        import jax.numpy as jnp
        params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
        probs = jax.jit(lambda p, Z: jax.nn.softmax(jax_forward(p, Z)))
        call = lambda: probs(params, X).block_until_ready()  # noqa: E731
    else:
        import torch
        torch.set_num_threads(THREADS)
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                  torch.nn.Linear(128, 10))
        forward = torch.compile(net) if peer == "torch-compile" else net
        Xt = torch.from_numpy(X)

        def call():
            return torch.softmax(forward(Xt), dim=1)
        ctx = torch.inference_mode()
    with ctx:
        for _ in range(calls // 10 + 1):
            call()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples.append((time.perf_counter() - start) / calls)
    per_call = statistics.median(samples)
    return per_call * 1e6 if rows == 1 else rows / per_call


_FITS = {}


def _fits_setup(quick):
    """The 64-fit workload's data, model and hyperparameters (built once per process)."""
    if quick not in _FITS:
        import archfit as af
        X, y = data((64, 32, 10), "softmax", "float32", 1024 if quick else 4096)
        model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"))
        hps = [af.Hyperparameters(batch_size=32, epochs=2, seed=s) for s in range(64)]
        _FITS[quick] = (X, y, model, hps)
    return _FITS[quick]


def _fit_all(seeds, quick):
    """Fit the given seeds' hyperparameters one after another."""
    import archfit as af
    X, y, model, hps = _fits_setup(quick)
    for s in seeds:
        af.fit(model, X, y, hps[s])


def _fit_worker(quick):
    """A worker process's start: BLAS on one thread for good, the workload built."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    _fits_setup(quick)


def many_fits(quick):
    """64 independent W1 fits: wall seconds on 1 thread, on 2 threads, and in 2 processes.

    The settings alternate within one run (1, 2, processes, 1, 2, ...) so that
    a change in the machine's load affects them alike; medians of the repeats.
    Two processes share no GIL and no allocator: their speed-up is what this
    machine allows two independent workers at that moment, the ceiling
    against which the threads' speed-up is read.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    import archfit as af
    from threadpoolctl import threadpool_limits
    X, y, model, hps = _fits_setup(quick)
    halves = [list(range(0, 64, 2)), list(range(1, 64, 2))]
    runs = {"1": [], "2": [], "processes": []}
    # spawn: a forked child of a process whose OpenMP pool is running can hang
    spawn = multiprocessing.get_context("spawn")
    with threadpool_limits(1), ThreadPoolExecutor(2) as pool, \
            ProcessPoolExecutor(2, mp_context=spawn, initializer=_fit_worker,
                                initargs=(quick,)) as procs:
        af.fit(model, X, y, hps[0])
        list(pool.map(lambda hp: af.fit(model, X, y, hp), hps[:4]))    # warm both threads
        list(procs.map(_fit_all, [[0, 2], [1, 3]], [quick, quick]))    # and both processes
        for _ in range(3 if quick else 5):
            for setting in runs:
                start = time.perf_counter()
                if setting == "1":
                    _fit_all(range(64), quick)
                elif setting == "2":
                    list(pool.map(lambda hp: af.fit(model, X, y, hp), hps))
                else:
                    list(procs.map(_fit_all, halves, [quick, quick]))
                runs[setting].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in runs.items()}


def gemm_rate():
    """The machine's float32 GEMM rate (GFLOP/s) at W3's largest shape, 2 threads."""
    import numpy as np
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    A = np.asfortranarray(rng.normal(size=(256, 2048)).astype(np.float32))
    B = np.asfortranarray(rng.normal(size=(2048, 2048)).astype(np.float32))
    with threadpool_limits(THREADS):
        sgemm(1.0, A, B)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(20):
                sgemm(1.0, A, B)
            runs.append((time.perf_counter() - start) / 20)
    return 2 * 256 * 2048 * 2048 / statistics.median(runs) / 1e9


def prediction_gemm(rounds):
    """float32 GFLOP/s of a batch-4096 W2 prediction's largest product
    (4096x784 @ 784x256) on one thread: archfit's packed GEMM (W packed once,
    as predictions do), OpenBLAS (NumPy's matmul) and MKL (PyTorch's mm; None
    without PyTorch or on a CPU without archfit's packed GEMM)."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    from archfit._kernels import _blas
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4096, 784)).astype(np.float32)
    W = rng.normal(size=(784, 256)).astype(np.float32)
    C = np.empty((4096, 256), np.float32)
    calls = {}
    if _blas.PACKED_GEMM:
        P = _blas.pack_py(W)
        calls["archfit"] = lambda: _blas.packed_gemm_py(A, P, C)  # noqa: E731
    calls["openblas"] = lambda: np.matmul(A, W, out=C)  # noqa: E731
    try:
        import torch
        torch.set_num_threads(1)
        At, Wt, Ct = torch.from_numpy(A), torch.from_numpy(W), torch.from_numpy(C)
        calls["mkl"] = lambda: torch.mm(At, Wt, out=Ct)  # noqa: E731
    except ImportError:
        pass
    rates = {"archfit": None, "openblas": None, "mkl": None}
    with threadpool_limits(1):
        for _ in range(rounds):      # alternating, so each sees the same machine
            for name, call in calls.items():
                call()
                start = time.perf_counter()
                for _ in range(10):
                    call()
                rate = 10 * 2 * 4096 * 784 * 256 / (time.perf_counter() - start) / 1e9
                rates[name] = max(rates[name] or 0, rate)
    return rates


def worker(args):
    kind = args.worker
    try:
        if kind == "train":
            sizes, batch, output, dtype, n, n_quick, budget, b_quick = WORKLOADS[args.workload]
            value = train_rate(args.peer, sizes, batch, output, dtype,
                               n_quick if args.quick else n, 2 if args.quick else 5,
                               b_quick if args.quick else budget)
        elif kind == "inference":
            value = inference(args.peer, args.workload, 3 if args.quick else 7, args.quick)
        elif kind == "fits":
            value = many_fits(args.quick)
        elif kind == "prediction-gemm":
            value = prediction_gemm(3 if args.quick else 7)
        else:
            value = gemm_rate()
    except ImportError as exc:
        print(json.dumps({"missing": str(exc)}))
        return
    print(json.dumps({"value": value}))


# ---- the parent: run every measurement in its own process -----------------------------------------
def cpu_flags() -> str:
    """The vector instruction sets this CPU reports, or 'unknown'."""
    return " ".join(_record.cpu_flags()) or "unknown"


def measure(kind, peer, workload, quick):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--peer", peer,
           "--workload", workload] + (["--quick"] if quick else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{peer} on {workload} failed:\n{result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return out.get("value")   # None when the peer is missing


def layers_rate(peer, workload, quick):
    """A workload of benchmarks/layers.py (its twins of layers beyond Dense),
    samples per second, in its own process; None when the peer fails or is
    missing (the reason printed)."""
    cmd = [sys.executable, os.path.join(HERE, "layers.py"), "--worker", f"{peer}:{workload}",
           "--epochs", "2" if quick else "5"]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        print(f"  {peer} on {workload}: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["rate"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small samples (under 2 minutes)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--record-dir", default=os.path.join(HERE, "results"),
                        help="where every run writes its record (date, commit, CPU, kernel "
                        "path, command, figures); default benchmarks/results/")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    import platform
    from archfit.kernels import DETECTED, ISA
    print(f"archfit compare{' --quick' if args.quick else ''}: {cpu_model()}, "
          f"{os.cpu_count()} cores, {THREADS} threads for every peer, Python "
          f"{platform.python_version()}")
    print(f"instruction sets: {cpu_flags()}; archfit's kernel path: {ISA} "
          f"(the CPU runs {DETECTED} at most)")
    results = {"quick": args.quick, "cpu": cpu_model(), "isa": ISA, "train": {},
               "inference": {}}
    fmt = lambda v: "missing" if v is None else f"{v:,.0f}"  # noqa: E731
    print(f"\ntraining, samples/s (forward + backward + Adam) on learnable data: the slower of "
          f"fresh and converged epochs (median of {2 if args.quick else 5} each); '*': the "
          f"loss did not reach a tenth of its start within the epoch budget")
    header = f"{'workload':<38}" + "".join(
        f"{p:>16}" for p in PEERS if not args.quick or p in QUICK_PEERS) + "   archfit ÷ each peer"
    print(header)
    rates = []
    for name, (sizes, batch, output, dtype, *_) in WORKLOADS.items():
        if name == "W3":
            rates.append(measure("gemm", "archfit", "-", args.quick))
        row = {}
        for peer in PEERS:
            wanted = peer in TRAIN_PEERS[name] and (peer in QUICK_PEERS or not args.quick)
            row[peer] = measure("train", peer, name, args.quick) if wanted else None
        results["train"][name] = row
        label = f"{name} {'-'.join(map(str, sizes))} b{batch} {dtype}"
        cell = lambda r: "missing" if r is None else f"{r['rate']:,.0f}{'' if r['reached'] else '*'}"  # noqa: E731
        shown = [p for p in PEERS if not args.quick or p in QUICK_PEERS]
        cells = "".join(f"{cell(row[p]) if p in TRAIN_PEERS[name] else 'n/a':>16}" for p in shown)
        ratios = "  ".join(f"{p} {row['archfit']['rate'] / row[p]['rate']:.2f}x" for p in PEERS[1:]
                           if row.get(p) and row.get("archfit"))
        if dtype == "bfloat16" and row.get("archfit"):
            plain = results["train"].get(name.split("-")[0], {})
            ratios += "  |  against float32: " + "  ".join(
                f"{p} {row['archfit']['rate'] / plain[p]['rate']:.2f}x" for p in PEERS
                if plain.get(p))
        print(f"{label:<38}{cells}   {ratios}", flush=True)
        a = row["archfit"]
        if a:
            print(f"{'':<38}archfit fresh {a['fresh']:,.0f}, converged {a['converged']:,.0f} "
                  f"(loss {a['loss'][0]:.3g} -> {a['loss'][1]:.3g})", flush=True)
        if name == "W3":
            rates.append(measure("gemm", "archfit", "-", args.quick))

    # W5, the TabM-like network: its twins are benchmarks/layers.py's
    w5_peers = ["archfit", "jax", "torch"] + ([] if args.quick else ["torch-compile"])
    print(f"\nW5 (TabM-like: PiecewiseLinear(48, 16) of 20 numeric inputs, Embedding(16) of 3 "
          f"categorical ones, 3 x Dense(512, relu, dropout 0.1), BatchEnsemble(32, 'first'), "
          f"5 classes, batch 256, AdamW), samples/s (median of {2 if args.quick else 5} epochs "
          f"after a warm-up; torch: eager, fused AdamW)")
    # layers.py's "torch" is eager with fused AdamW: this table's "torch-fused"
    named = {"torch": "torch-fused"}
    row = {named.get(p, p): layers_rate(p, "W5", args.quick) for p in w5_peers}
    results["train"]["W5"] = row
    print("".join(f"{p:>16}" for p in row) + "   archfit ÷ each peer")
    print("".join(f"{fmt(v):>16}" for v in row.values()) + "   " + "  ".join(
        f"{p} {row['archfit'] / v:.2f}x" for p, v in row.items()
        if p != "archfit" and v and row.get("archfit")), flush=True)

    peers = QUICK_INFERENCE_PEERS if args.quick else INFERENCE_PEERS
    print("\ninference on W2 (784-256-128-10, float32), softmax probabilities; "
          "PyTorch under inference_mode, JAX jit")
    print(f"{'':<26}" + "".join(f"{p:>14}" for p in peers) + "   archfit ÷ best peer")
    for mode, unit in (("latency", "µs per 1-sample call"), ("batch", "samples/s at batch 4096")):
        row = {p: measure("inference", p, mode, args.quick) for p in peers}
        results["inference"][mode] = row
        prec = (lambda v: "missing" if v is None else f"{v:,.1f}") if mode == "latency" else fmt
        others = {p: v for p, v in row.items() if p != "archfit" and v}
        extra = ""
        if others and row["archfit"]:
            best = (min if mode == "latency" else max)(others, key=others.get)
            ratio = (others[best] / row["archfit"] if mode == "latency"
                     else row["archfit"] / others[best])
            extra = f"   {ratio:.2f}x ({best})"
        print(f"{unit:<26}" + "".join(f"{prec(row[p]):>14}" for p in peers) + extra, flush=True)

    shape = measure("prediction-gemm", "archfit", "-", args.quick)
    results["prediction_gemm"] = shape
    best = max((shape[k] or 0) for k in ("openblas", "mkl"))
    cell = lambda v: "missing" if v is None else f"{v:.1f}"  # noqa: E731
    print(f"  its largest product, 4096x784 @ 784x256, 1 thread, GFLOP/s (best of "
          f"{3 if args.quick else 7}): archfit packed {cell(shape['archfit'])}, OpenBLAS "
          f"{cell(shape['openblas'])}, MKL (PyTorch) {cell(shape['mkl'])}"
          + (f"; archfit {shape['archfit'] / best:.2f}x the better" if shape["archfit"] and best
             else ""), flush=True)

    fits = measure("fits", "archfit", "-", args.quick)
    results["many_fits"] = fits
    one, two, procs = fits["1"], fits["2"], fits["processes"]
    print(f"\n64 independent W1 fits (1 thread, 2 threads, 2 processes alternating, medians): "
          f"1 thread {one:.2f} s, 2 threads {two:.2f} s, speed-up {one / two:.2f}x; "
          f"2 processes {procs:.2f} s, {one / procs:.2f}x (the machine's ceiling now)")

    rate = max(rates)   # measured just before and after W3's row; the higher is the bar
    w3 = results["train"]["W3"]["archfit"]["rate"]
    sizes = WORKLOADS["W3"][0]
    flops = 3 * sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    achieved = w3 * flops / 1e9
    results["gemm_gflops"], results["w3_gflops"] = rate, achieved
    print(f"machine float32 GEMM rate (256x2048 @ 2048x2048, {THREADS} threads, the higher of "
          f"two measurements around W3): {rate:.1f} GFLOP/s;"
          f" archfit W3 training: {achieved:.1f} GFLOP/s = {100 * achieved / rate:.0f}% of it")
    path = _record.write(f"compare{'-quick' if args.quick else ''}", "compare.py", results,
                         args.record_dir, argv, threads=THREADS)
    print(f"record: {path}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
