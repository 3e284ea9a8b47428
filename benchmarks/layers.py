"""archfit's layers beyond Dense against a PyTorch twin: training speed, and
the same loss and gradient from the same θ.

    python benchmarks/layers.py              # about a minute
    python benchmarks/layers.py --json out.json

Workloads (float32, Adam/AdamW, 2 threads, learnable data: a random teacher):

- ``resnet``: 64 inputs, Dense(256, relu), two residual blocks
  [LayerNorm, Dense(512, relu), Dense(256)], LayerNorm, 5 classes; batch 256.
- ``periodic``: 20 numeric inputs through Periodic(48 frequencies, dim 16)
  and 3 categorical ones (cardinalities 10, 100, 1000) through Embedding(16),
  three Dense(512, relu, dropout 0.1), 5 classes; batch 256 (W5 of the layers
  issue with periodic embeddings for its piecewise-linear encodings, and
  without BatchEnsemble, which archfit does not have yet).

PyTorch runs eager with ``torch.optim.AdamW(fused=True)`` (the fastest of its
optimizers on the CPU here), the same layers written with ``torch.nn``; its
loss and gradient at archfit's initial θ are checked against archfit's before
timing. Each figure is the median epoch time of 5 epochs after one warm-up,
in samples per second. Every run writes a JSON record to
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
    }


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
                elif node.kind == "embedding":
                    mod = Embeddings(node.name, node.n_numeric, node.categorical)
                else:
                    mod = None
                self.mods.append(mod if mod is not None else nn.Identity())
                self.plan.append((node.kind, node.link))

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
    X, y = data(arch)
    model = af.Model(arch)
    hp = af.Hyperparameters(optimizer="adamw", learning_rate=1e-3, batch_size=256,
                            epochs=1 + epochs, l2=1e-4, n_threads=THREADS)
    fitted = af.fit(model, X, y, hp)
    # each epoch's time as the fit records it (the first one warms up)
    return len(X) / statistics.median(h["seconds"] for h in fitted.history[1:])


def run_torch(name, epochs):
    import torch
    import archfit as af
    torch.set_num_threads(THREADS)
    arch = architectures()[name]
    X, y = data(arch)
    model = af.Model(arch)
    theta = model.init(0)
    net = torch_twin(arch, theta)
    # the same loss and gradient from the same θ (no dropout: eval mode)
    net.eval()
    Xt, yt = torch.tensor(X[:512]), torch.tensor(y[:512])
    loss = torch.nn.functional.cross_entropy(net(Xt), yt)
    loss.backward()
    mine, _ = model.loss_and_grad(theta, X[:512], y[:512])
    assert abs(loss.item() - mine) < 1e-4 * max(1.0, abs(mine)), (loss.item(), mine)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    Xa, ya = torch.tensor(X), torch.tensor(y)

    def epoch():
        order = torch.randperm(len(Xa))
        for s in range(0, len(Xa), 256):
            idx = order[s:s + 256]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(Xa[idx]), ya[idx]).backward()
            opt.step()
    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return len(X) / statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", help="also write the record to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peer, name = args.worker.split(":")
        rate = (run_archfit if peer == "archfit" else run_torch)(name, args.epochs)
        print(json.dumps({"rate": rate}))
        return
    import archfit.kernels as kernels
    print(f"archfit layers: {_record.cpu_model()}; archfit's kernel path {kernels.ISA}; "
          f"{THREADS} threads, float32")
    figures = {}
    for name in architectures():
        row = {}
        for peer in ("archfit", "torch"):
            result = subprocess.run([sys.executable, __file__, "--worker", f"{peer}:{name}",
                                     "--epochs", str(args.epochs)], capture_output=True,
                                    text=True, timeout=1800)
            if result.returncode != 0:
                row[peer] = None
                print(f"  {name} {peer}: failed ({result.stderr.strip().splitlines()[-1:]})")
                continue
            row[peer] = json.loads(result.stdout.splitlines()[-1])["rate"]
        figures[name] = row
        ratio = (row["archfit"] / row["torch"]) if row.get("archfit") and row.get("torch") \
            else None
        print(f"  {name:10s} archfit {row.get('archfit') or 0:12,.0f} samples/s   "
              f"torch (eager, fused AdamW) {row.get('torch') or 0:12,.0f}   "
              + (f"archfit {ratio:.2f}x" if ratio else ""))
    _record.write("layers", "layers.py", figures, threads=THREADS)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
