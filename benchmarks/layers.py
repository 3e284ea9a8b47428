"""archfit's layers beyond Dense against a PyTorch twin: training speed, and
the same loss and gradient from the same θ.

    python benchmarks/layers.py              # a few minutes
    python benchmarks/layers.py --workloads W5 --peers archfit,torch
    python benchmarks/layers.py --json out.json

Workloads (float32, Adam/AdamW, 2 threads, learnable data: a random teacher):

- ``resnet``: 64 inputs, Dense(256, relu), two residual blocks
  [LayerNorm, Dense(512, relu), Dense(256)], LayerNorm, 5 classes; batch 256.
- ``periodic``: 20 numeric inputs through Periodic(48 frequencies, dim 16)
  and 3 categorical ones (cardinalities 10, 100, 1000) through Embedding(16),
  three Dense(512, relu, dropout 0.1), 5 classes; batch 256.
- ``W5`` (TabM-like, the layers issue's target): 20 numeric inputs through
  PiecewiseLinear(48 bins, dim 16), the same 3 categorical inputs through
  Embedding(16), three Dense(512, relu, dropout 0.1), BatchEnsemble(32,
  adapters "first"), 5 classes; batch 256, 2,048 rows (its members make each
  row 32 rows).

JAX runs ``jax.jit`` over an epoch (``lax.scan`` of its steps, AdamW
written out, dropout from its own random keys). PyTorch runs eager with ``torch.optim.AdamW(fused=True)`` (the fastest of its
optimizers on the CPU here), and with the model ``torch.compile``'d
(compiled in the warm-up epoch), the same layers written with ``torch.nn``; its
loss and gradient at archfit's initial θ are checked against archfit's before
timing (the loss in float32 to 1e-4 relative, the gradient in float64 to
1e-7 of its largest value).
A line shows each peer's samples per second and archfit's ratio to it.
Each figure is the median epoch time of 5 epochs after one warm-up, in
samples per second. Every run writes a JSON record to
``benchmarks/results/`` (date, commit, CPU, kernel path, figures).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _record  # noqa: E402  (benchmarks/_record.py: one record per run)
THREADS = 2
# torch: eager with fused AdamW; torch-compile: the same, the model torch.compile'd
PEERS = ("archfit", "jax", "torch", "torch-compile")


def architectures():
    import archfit as af
    return {
        "resnet": af.Architecture(64, [
            af.Dense(256, "relu"),
            af.Residual([af.LayerNorm(), af.Dense(512, "relu"), af.Dense(256)]),
            af.Residual([af.LayerNorm(), af.Dense(512, "relu"), af.Dense(256)]),
            af.LayerNorm(), af.Dense(5)], "softmax"),
        "periodic": af.Architecture(inputs=af.Inputs(20, (10, 100, 1000)), layers=[
            af.Periodic(n_frequencies=48, sigma=0.01, dim=16), af.Embedding(16),
            af.Dense(512, "relu", dropout=0.1), af.Dense(512, "relu", dropout=0.1),
            af.Dense(512, "relu", dropout=0.1), af.Dense(5)], output="softmax"),
        "W5": af.Architecture(inputs=af.Inputs(20, (10, 100, 1000)), layers=[
            af.PiecewiseLinear(n_bins=48, dim=16), af.Embedding(16),
            af.Dense(512, "relu", dropout=0.1), af.Dense(512, "relu", dropout=0.1),
            af.Dense(512, "relu", dropout=0.1), af.Dense(5)], output="softmax",
            ensemble=af.BatchEnsemble(32, adapters="first")),
    }


ROWS = {"W5": 2048}         # rows of the others' data: data()'s default


def data(arch, n=8192, seed=0):
    """Normal numeric columns and uniform codes; a random teacher of both."""
    rng = np.random.default_rng(seed)
    inputs = arch.inputs
    X = rng.normal(size=(n, inputs.numeric)).astype(np.float32)
    score = np.tanh(X @ rng.normal(size=(inputs.numeric, 16))) @ rng.normal(size=(16, 5))
    codes = []
    for cardinality in inputs.categorical:
        c = rng.integers(0, cardinality, n)
        score += rng.normal(size=(cardinality, 5))[c]
        codes.append(c.astype(np.float32))
    return np.column_stack([X] + codes).astype(np.float32), score.argmax(axis=1)


def torch_twin(arch, theta):
    """The architecture in torch.nn, holding archfit's θ."""
    import torch
    from torch import nn
    from archfit.layers import bin_bounds

    params = {e.name: torch.tensor(np.asarray(theta[e.start:e.stop]).reshape(e.shape))
              for e in arch.layout}
    act = {"relu": nn.ReLU, "identity": nn.Identity, "gelu": nn.GELU, "tanh": nn.Tanh}

    class Periodic(nn.Module):
        def __init__(self, name, activation, n):
            super().__init__()
            self.n = n
            self.c = nn.Parameter(params[f"{name}.frequencies"].clone())
            self.w = nn.Parameter(params[f"{name}.weight"].clone())
            self.b = nn.Parameter(params[f"{name}.bias"].clone())
            self.act = act[activation]()

        def forward(self, x):
            a = 2 * torch.pi * x[:, :self.n, None] * self.c[None]
            v = torch.cat([torch.cos(a), torch.sin(a)], dim=2)
            y = self.act(torch.einsum("bnk,nkd->bnd", v, self.w) + self.b).flatten(1)
            return torch.cat([y, x[:, self.n:]], dim=1)

    class PiecewiseLinear(nn.Module):
        # the bins' codes from the constants archfit's ONNX graph makes of the edges
        def __init__(self, name, activation, n):
            super().__init__()
            self.n = n
            for field, value in zip(("start", "width", "lower", "upper", "live"),
                                    bin_bounds(params[f"{name}.edges"].numpy())):
                self.register_buffer(field, torch.tensor(value, dtype=torch.float32))
            self.u = nn.Parameter(params[f"{name}.linear"].clone())
            self.w = nn.Parameter(params[f"{name}.weight"].clone())
            self.b = nn.Parameter(params[f"{name}.bias"].clone())
            self.act = act[activation]()

        def forward(self, x):
            x3 = x[:, :self.n, None]
            v = torch.minimum(torch.maximum((x3 - self.start) / self.width, self.lower),
                              self.upper) * self.live
            z = x3 * self.u + torch.einsum("bnt,ntd->bnd", v, self.w) + self.b
            return torch.cat([self.act(z).flatten(1), x[:, self.n:]], dim=1)

    class Replicate(nn.Module):
        # each row as its members' rows (member m of row i at row i k + m)
        def __init__(self, name, k, adapters):
            super().__init__()
            self.k = k
            self.r = nn.Parameter(params[f"{name}.scale"].clone()) if adapters == "first" \
                else None

        def forward(self, x):
            x3 = x[:, None, :].expand(-1, self.k, -1)
            if self.r is not None:
                x3 = x3 * self.r
            return x3.reshape(-1, x.shape[1])

    class MemberDense(nn.Module):
        def __init__(self, name, k):
            super().__init__()
            self.k = k
            self.w = nn.Parameter(params[f"{name}.weight"].clone())
            self.b = nn.Parameter(params[f"{name}.bias"].clone())

        def forward(self, x):
            x3 = x.reshape(-1, self.k, x.shape[1])
            return (torch.einsum("bkn,kno->bko", x3, self.w) + self.b).reshape(-1, self.w.shape[2])

    class Embeddings(nn.Module):
        def __init__(self, name, n, cardinalities):
            super().__init__()
            self.n = n
            self.tables = nn.ModuleList(
                nn.Embedding.from_pretrained(params[f"{name}.table{j}"].clone(), freeze=False)
                for j in range(len(cardinalities)))
            self.last = torch.tensor([c for c in cardinalities])

        def forward(self, x):
            codes = x[:, self.n:].long()
            codes = torch.where(codes < 0, self.last, codes)
            return torch.cat([x[:, :self.n]] + [t(codes[:, j]) for j, t in
                                               enumerate(self.tables)], dim=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleList()
            self.plan = []
            for node in arch.nodes:
                if node.kind == "dense":
                    lin = nn.Linear(node.n_in, node.n_out)
                    with torch.no_grad():
                        lin.weight.copy_(params[f"{node.name}.weight"].T)
                        lin.bias.copy_(params[f"{node.name}.bias"])
                    last = node is arch.nodes[-1]
                    rate = node.layer.dropout or 0.0
                    mod = nn.Sequential(lin, *(() if last else (act[node.layer.activation](),)),
                                        *((nn.Dropout(rate),) if rate and not last else ()))
                elif node.kind == "layer_norm":
                    mod = nn.LayerNorm(node.n_in, eps=node.layer.epsilon)
                    with torch.no_grad():
                        mod.weight.copy_(params[f"{node.name}.gain"])
                        mod.bias.copy_(params[f"{node.name}.bias"])
                elif node.kind == "periodic":
                    mod = Periodic(node.name, node.layer.activation, node.n_numeric)
                elif node.kind == "piecewise_linear":
                    mod = PiecewiseLinear(node.name, node.layer.activation, node.n_numeric)
                elif node.kind == "replicate":
                    mod = Replicate(node.name, node.layer.k, node.layer.adapters)
                elif node.kind == "member_dense":
                    mod = MemberDense(node.name, node.members)
                elif node.kind == "embedding":
                    mod = Embeddings(node.name, node.n_numeric, node.categorical)
                else:
                    mod = None
                self.mods.append(mod if mod is not None else nn.Identity())
                self.plan.append((node.kind, node.link))

        def archfit_grads(self):
            """The gradient in θ's layout (archfit's names and shapes)."""
            out = []
            for mod, node in zip(self.mods, arch.nodes):
                if node.kind == "dense":
                    lin = mod[0]
                    out += [lin.weight.grad.T.numpy(), lin.bias.grad.numpy()]
                elif node.kind == "layer_norm":
                    out += [mod.weight.grad.numpy(), mod.bias.grad.numpy()]
                elif node.kind == "periodic":
                    out += [mod.c.grad.numpy(), mod.w.grad.numpy(), mod.b.grad.numpy()]
                elif node.kind == "piecewise_linear":
                    out += [np.zeros(mod.start.shape[0] * (mod.start.shape[1] + 1)),
                            mod.u.grad.numpy(), mod.w.grad.numpy(), mod.b.grad.numpy()]
                elif node.kind == "embedding":
                    out += [t.weight.grad.numpy() for t in mod.tables]
                elif node.kind == "replicate" and mod.r is not None:
                    out.append(mod.r.grad.numpy())
                elif node.kind == "member_dense":
                    out += [mod.w.grad.numpy(), mod.b.grad.numpy()]
            return out

        def forward(self, x):
            inputs = []
            for mod, (kind, link) in zip(self.mods, self.plan):
                inputs.append(x)
                x = x + inputs[link] if kind == "add" else mod(x)
            return x

    return Net()


def run_archfit(name, epochs):
    import archfit as af
    arch = architectures()[name]
    X, y = data(arch, ROWS.get(name, 8192))
    model = af.Model(arch)
    hp = af.Hyperparameters(optimizer="adamw", learning_rate=1e-3, batch_size=256,
                            epochs=1 + epochs, l2=1e-4, n_threads=THREADS)
    fitted = af.fit(model, X, y, hp)
    # each epoch's time as the fit records it (the first one warms up)
    return len(X) / statistics.median(h["seconds"] for h in fitted.history[1:])


def run_torch(name, epochs, compiled=False):
    import torch
    import archfit as af
    torch.set_num_threads(THREADS)
    arch = architectures()[name]
    X, y = data(arch, ROWS.get(name, 8192))
    model = af.Model(arch)
    theta = model.init(0)
    net = torch_twin(arch, theta)
    # the same loss and gradient from the same θ (no dropout: eval mode); an
    # ensemble's loss is the mean of its members' (each row's label k times).
    # The gradient in float64: in float32 PyTorch's own error, summing over
    # 16,384 members' rows, is 0.4% of W5's largest gradient (archfit's 0.06%)
    net.eval()
    Xt, yt = torch.tensor(X[:512]), torch.tensor(y[:512])
    loss = torch.nn.functional.cross_entropy(net(Xt), yt.repeat_interleave(arch.members))
    mine, _ = model.loss_and_grad(theta, X[:512], y[:512])
    assert abs(loss.item() - mine) < 1e-4 * max(1.0, abs(mine)), (loss.item(), mine)
    twin64 = torch_twin(arch, theta).double()
    twin64.eval()
    torch.nn.functional.cross_entropy(
        twin64(Xt.double()), yt.repeat_interleave(arch.members)).backward()
    _, grad = af.Model(arch, "float64").loss_and_grad(theta.astype(np.float64),
                                                      X[:512].astype(np.float64), y[:512])
    theirs = np.concatenate([g.ravel() for g in twin64.archfit_grads()])
    assert np.abs(theirs - grad).max() <= 1e-7 * np.abs(grad).max(), \
        np.abs(theirs - grad).max()
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    if compiled:
        net = torch.compile(net)        # compiled in the warm-up epoch, not timed
    Xa, ya = torch.tensor(X), torch.tensor(y)

    def epoch():
        order = torch.randperm(len(Xa))
        for s in range(0, len(Xa), 256):
            idx = order[s:s + 256]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(
                net(Xa[idx]), ya[idx].repeat_interleave(arch.members)).backward()
            opt.step()
    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return len(X) / statistics.median(times)


def jax_twin(arch, theta):
    """The architecture as a JAX function of archfit's parameters (by layout
    name), and those parameters: f(params, x, key) with dropout from `key`
    (None: no dropout)."""
    import jax
    import jax.numpy as jnp
    from archfit.layers import bin_bounds

    params = {e.name: jnp.asarray(np.asarray(theta[e.start:e.stop]).reshape(e.shape))
              for e in arch.layout}
    acts = {"relu": jax.nn.relu, "identity": lambda z: z, "tanh": jnp.tanh,
            "gelu": lambda z: jax.nn.gelu(z, approximate=False)}
    fixed = {}
    for node in arch.nodes:
        if node.kind == "piecewise_linear":
            fixed[node.name] = tuple(jnp.asarray(a, dtype=jnp.float32) for a in bin_bounds(
                np.asarray(params[f"{node.name}.edges"])))
    trained = {name: value for name, value in params.items() if not name.endswith(".edges")}

    def f(p, x, key):
        inputs = []
        last = len(arch.nodes) - 1
        for i, node in enumerate(arch.nodes):
            inputs.append(x)
            name = node.name
            if node.kind == "dense":
                x = x @ p[f"{name}.weight"] + p[f"{name}.bias"]
                if i < last:
                    x = acts[node.layer.activation](x)
                    rate = node.layer.dropout or 0.0
                    if rate and key is not None:
                        key, sub = jax.random.split(key)
                        x = jnp.where(jax.random.uniform(sub, x.shape) < rate, 0.0,
                                      x / (1 - rate))
            elif node.kind == "layer_norm":
                mean = x.mean(axis=1, keepdims=True)
                var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
                x = (x - mean) / jnp.sqrt(var + node.layer.epsilon) * p[f"{name}.gain"] \
                    + p[f"{name}.bias"]
            elif node.kind == "add":
                x = x + inputs[node.link]
            elif node.kind == "piecewise_linear":
                start, width, lower, upper, live = fixed[name]
                n = node.n_numeric
                x3 = x[:, :n, None]
                v = jnp.minimum(jnp.maximum((x3 - start) / width, lower), upper) * live
                z = x3 * p[f"{name}.linear"] + jnp.einsum("bnt,ntd->bnd", v, p[f"{name}.weight"]) \
                    + p[f"{name}.bias"]
                x = jnp.concatenate([acts[node.layer.activation](z).reshape(len(x), -1),
                                     x[:, n:]], axis=1)
            elif node.kind == "periodic":
                n = node.n_numeric
                a = 2 * jnp.pi * x[:, :n, None] * p[f"{name}.frequencies"][None]
                v = jnp.concatenate([jnp.cos(a), jnp.sin(a)], axis=2)
                z = jnp.einsum("bnk,nkd->bnd", v, p[f"{name}.weight"]) + p[f"{name}.bias"]
                x = jnp.concatenate([acts[node.layer.activation](z).reshape(len(x), -1),
                                     x[:, n:]], axis=1)
            elif node.kind == "embedding":
                n = node.n_numeric
                codes = x[:, n:].astype(jnp.int32)
                parts = [x[:, :n]]
                for j, cardinality in enumerate(node.categorical):
                    rows = jnp.where(codes[:, j] < 0, cardinality, codes[:, j])
                    parts.append(p[f"{name}.table{j}"][rows])
                x = jnp.concatenate(parts, axis=1)
            elif node.kind == "replicate":
                x3 = x[:, None, :]
                if node.layer.adapters == "first":
                    x3 = x3 * p[f"{name}.scale"]
                else:
                    x3 = jnp.broadcast_to(x3, (len(x), node.layer.k, x.shape[1]))
                x = x3.reshape(-1, x.shape[1])
            elif node.kind == "member_dense":
                k = node.members
                x = (jnp.einsum("bkn,kno->bko", x.reshape(-1, k, x.shape[1]),
                                p[f"{name}.weight"]) + p[f"{name}.bias"]).reshape(-1, node.n_out)
        return x

    return f, trained


def run_jax(name, epochs):
    """JAX: jit over an epoch (lax.scan of its steps), AdamW written out."""
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true "
                          f"intra_op_parallelism_threads={THREADS}")
    import jax
    import jax.numpy as jnp
    import archfit as af
    arch = architectures()[name]
    X, y = data(arch, ROWS.get(name, 8192))
    model = af.Model(arch)
    theta = model.init(0)
    f, params = jax_twin(arch, theta)
    k = arch.members
    decayed = {e.name for e in arch.decayed}

    def loss(p, xb, yb, key):
        logits = f(p, xb, key)
        labels = jnp.repeat(yb, k)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()

    mine, _ = model.loss_and_grad(theta, X[:512], y[:512])
    theirs = float(loss(params, jnp.asarray(X[:512]), jnp.asarray(y[:512]), None))
    assert abs(theirs - mine) < 1e-4 * max(1.0, abs(mine)), (theirs, mine)
    batches = len(X) // 256

    @jax.jit
    def epoch(p, m, v, t, key, order):
        xs = jnp.asarray(X)[order[:batches * 256]].reshape(batches, 256, -1)
        ys = jnp.asarray(y)[order[:batches * 256]].reshape(batches, 256)

        def step(carry, xy):
            p, m, v, t, key = carry
            key, sub = jax.random.split(key)
            g = jax.grad(loss)(p, xy[0], xy[1], sub)
            t = t + 1
            m = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
            v = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
            scale = jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            p = {n: p[n] * (1 - 1e-3 * 1e-4 if n in decayed else 1.0)
                 - 1e-3 * scale * m[n] / (jnp.sqrt(v[n]) + 1e-8) for n in p}
            return (p, m, v, t, key), None

        (p, m, v, t, key), _ = jax.lax.scan(step, (p, m, v, t, key), (xs, ys))
        return p, m, v, t, key

    zeros = jax.tree.map(jnp.zeros_like, params)
    state = (params, zeros, zeros, 0.0, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)

    def run():
        nonlocal state
        state = epoch(*state, jnp.asarray(rng.permutation(len(X))))
        jax.block_until_ready(state[0])

    run()                               # compiles
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return batches * 256 / statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", help="also write the record to this file")
    parser.add_argument("--workloads", default=None,
                        help="comma-separated workloads to run (default: all)")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated peers (default: {','.join(PEERS)})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peer, name = args.worker.split(":")
        if peer == "archfit":
            rate = run_archfit(name, args.epochs)
        elif peer == "jax":
            rate = run_jax(name, args.epochs)
        else:
            rate = run_torch(name, args.epochs, compiled=peer == "torch-compile")
        print(json.dumps({"rate": rate}))
        return
    import archfit.kernels as kernels
    print(f"archfit layers: {_record.cpu_model()}; archfit's kernel path {kernels.ISA}; "
          f"{THREADS} threads, float32")
    figures = {}
    names = args.workloads.split(",") if args.workloads else list(architectures())
    peers = args.peers.split(",") if args.peers else list(PEERS)
    for name in names:
        row = {}
        for peer in peers:
            result = subprocess.run([sys.executable, __file__, "--worker", f"{peer}:{name}",
                                     "--epochs", str(args.epochs)], capture_output=True,
                                    text=True, timeout=1800)
            if result.returncode != 0:
                row[peer] = None
                print(f"  {name} {peer}: failed ({result.stderr.strip().splitlines()[-1:]})")
                continue
            row[peer] = json.loads(result.stdout.splitlines()[-1])["rate"]
        figures[name] = row
        print(f"  {name:10s} " + "   ".join(
            f"{peer} {row[peer]:10,.0f}/s"
            + (f" ({row['archfit'] / row[peer]:.2f}x)" if peer != "archfit" and row[peer]
               and row.get("archfit") else "")
            for peer in peers if row.get(peer)))
    _record.write("layers", "layers.py", figures, threads=THREADS)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
