"""Plain-NumPy twins of every archfit kernel, written for clarity, not speed.

Everything is computed in float64 from the inputs given; tests compare the
compiled kernels with these functions for float32 and float64.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf, log_softmax, expit

LEAKY_SLOPE = 0.01


def activation(name, z):
    z = np.asarray(z, dtype=np.float64)
    if name == "identity":
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return expit(z)
    if name == "gelu":
        return 0.5 * z * (1 + erf(z / np.sqrt(2)))
    raise KeyError(name)


def activation_grad(name, z):
    """d activation / dz, elementwise."""
    z = np.asarray(z, dtype=np.float64)
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = expit(z)
        return s * (1 - s)
    if name == "gelu":
        return 0.5 * (1 + erf(z / np.sqrt(2))) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    raise KeyError(name)


def head(name, z):
    z = np.asarray(z, dtype=np.float64)
    if name == "softmax":
        return np.exp(log_softmax(z, axis=1))
    if name == "sigmoid":
        return expit(z)
    if name == "exponential":
        return np.exp(z)
    return z.copy()


def loss_rows(loss, z, labels=None, targets=None, huber_delta=1.0):
    """Per-row loss (summed over outputs) and d loss_row / dz."""
    z = np.asarray(z, dtype=np.float64)
    if loss == "cross_entropy":
        logp = log_softmax(z, axis=1)
        rows = -logp[np.arange(len(z)), labels]
        grad = np.exp(logp)
        grad[np.arange(len(z)), labels] -= 1
        return rows, grad
    y = np.asarray(targets, dtype=np.float64)
    if loss == "binary_cross_entropy":
        rows = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).sum(axis=1)
        return rows, expit(z) - y
    if loss == "poisson":
        # half the Poisson deviance of mu = exp(z): mu - y - y log(mu / y)
        mu = np.exp(z)
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        return (mu - y - y * z + ylogy).sum(axis=1), mu - y
    r = z - y
    if loss == "squared_error":
        return 0.5 * (r ** 2).sum(axis=1), r
    if loss == "huber":
        small = np.abs(r) <= huber_delta
        rows = np.where(small, 0.5 * r ** 2, huber_delta * (np.abs(r) - 0.5 * huber_delta)).sum(axis=1)
        return rows, np.clip(r, -huber_delta, huber_delta)
    raise KeyError(loss)


def unflatten(arch, theta):
    theta = np.asarray(theta, dtype=np.float64)
    return [(theta[w.start:w.stop].reshape(w.shape), theta[b.start:b.stop])
            for w, b in zip(arch.layout[::2], arch.layout[1::2])]


def forward(arch, theta, X, masks=None):
    """Pre-activations Z, activations A (A[0] = X); masks scale hidden outputs."""
    A, Z = [np.asarray(X, dtype=np.float64)], []
    layers = unflatten(arch, theta)
    for l, ((W, b), act) in enumerate(zip(layers, arch.activations)):
        z = A[-1] @ W + b
        Z.append(z)
        a = activation(act, z)
        if masks is not None and l < len(layers) - 1:
            a = a * masks[l]
        A.append(a)
    return Z, A


def loss_and_grad(model, theta, X, labels=None, targets=None, weights=None, l2=0.0, masks=None):
    """Weighted mean loss + l2/2 ||W||^2 and its gradient, by explicit backpropagation."""
    arch = model.architecture
    n = len(X)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    Z, A = forward(arch, theta, X, masks)
    rows, dz = loss_rows(model.loss, Z[-1], labels, targets, model.huber_delta)
    loss = float((w * rows).sum() / w.sum())
    D = dz * (w / w.sum())[:, None]
    layers = unflatten(arch, theta)
    grads = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        grads[l] = (A[l].T @ D + l2 * W, D.sum(axis=0))
        if l > 0:
            dA = D @ W.T
            if masks is not None:
                dA = dA * masks[l - 1]
            D = dA * activation_grad(arch.activations[l - 1], Z[l - 1])
    loss += 0.5 * l2 * sum((W ** 2).sum() for W, _ in layers)
    return loss, np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])


class Optimizer:
    """PyTorch's update rules (SGD with dampening 0, Adam, AdamW) on a flat vector."""

    def __init__(self, kind, lr, momentum=0.9, nesterov=False, beta1=0.9, beta2=0.999,
                 eps=1e-8):
        self.kind, self.lr, self.mu, self.nesterov = kind, lr, momentum, nesterov
        self.b1, self.b2, self.eps = beta1, beta2, eps
        self.m = self.v = None
        self.t = 0

    def step(self, theta, grad, penalty_mask=None, l2=0.0):
        """Update theta (float64) in place; ``penalty_mask`` marks weights (not biases)."""
        theta = theta
        mask = np.ones_like(theta) if penalty_mask is None else penalty_mask
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        g = grad + (0.0 if self.kind == "adamw" else l2) * mask * theta
        if self.kind == "sgd":
            theta -= self.lr * g
        elif self.kind == "momentum":
            self.m = self.mu * self.m + g
            theta -= self.lr * (g + self.mu * self.m if self.nesterov else self.m)
        else:
            if self.kind == "adamw":
                theta *= 1 - self.lr * l2 * mask
            self.m = self.b1 * self.m + (1 - self.b1) * g
            self.v = self.b2 * self.v + (1 - self.b2) * g * g
            m_hat = self.m / (1 - self.b1 ** self.t)
            v_hat = self.v / (1 - self.b2 ** self.t)
            theta -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return theta


def weight_mask(arch):
    mask = np.zeros(arch.n_parameters)
    for e in arch.layout[::2]:
        mask[e.start:e.stop] = 1
    return mask


# ---- any layers: the twin of the kernels' layer table -----------------------------------------
def _parameters(arch, theta):
    theta = np.asarray(theta, dtype=np.float64)
    return {e.name: theta[e.start:e.stop].reshape(e.shape) for e in arch.layout}


def layer_norm(x, gain, bias, epsilon):
    """(x - mean) / sqrt(var + eps) * gain + bias per row; also x̂ and 1/sd."""
    mean = x.mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + epsilon)
    xhat = (x - mean) * rstd
    return xhat * gain + bias, xhat, rstd


def category_rows(codes, cardinality):
    """A categorical input's table rows: the code, or the last row for -1."""
    codes = np.asarray(codes).astype(np.int64)
    return np.where(codes < 0, cardinality, codes)


def bin_codes(x, edges):
    """Each feature's piecewise-linear codes (rows, n, T) against its edges
    (n, T + 1): bin t's (x - e_t) / (e_t+1 - e_t), clipped to [0, 1] but
    the first bin not below and the last not above; 0 for a bin of no width,
    whose predecessor is then the last."""
    T = edges.shape[1] - 1
    start, stop = edges[:, :-1], edges[:, 1:]
    live = stop > start
    after = np.concatenate([stop[:, 1:], np.full((len(edges), 1), -np.inf)], axis=1)
    v = (x[:, :, None] - start) / np.where(live, stop - start, 1.0)
    v = np.where(np.arange(T) > 0, np.maximum(v, 0.0), v)
    v = np.where((np.arange(T) < T - 1) & (after > stop), np.minimum(v, 1.0), v)
    return np.where(live, v, 0.0)


def nodes_forward(arch, theta, X, masks=None):
    """Every node's input and output, and what backpropagation needs; masks
    (a dict by node index) scale the outputs of those dense nodes."""
    params = _parameters(arch, theta)
    x = np.asarray(X, dtype=np.float64)
    inputs, outputs, saved = [], [], []
    last = len(arch.nodes) - 1
    for i, node in enumerate(arch.nodes):
        inputs.append(x)
        if node.kind == "dense":
            z = x @ params[f"{node.name}.weight"] + params[f"{node.name}.bias"]
            y = z if i == last else activation(node.layer.activation, z)
            if masks is not None and i in masks:
                y = y * masks[i]
            saved.append(z)
        elif node.kind == "layer_norm":
            y, xhat, rstd = layer_norm(x, params[f"{node.name}.gain"],
                                       params[f"{node.name}.bias"], node.layer.epsilon)
            saved.append((xhat, rstd))
        elif node.kind == "periodic":
            n = node.n_numeric
            angles = 2 * np.pi * x[:, :n, None] * params[f"{node.name}.frequencies"][None]
            V = np.concatenate([np.cos(angles), np.sin(angles)], axis=2)
            z = (np.einsum("rnk,nkd->rnd", V, params[f"{node.name}.weight"])
                 + params[f"{node.name}.bias"]).reshape(len(x), -1)
            y = np.concatenate([activation(node.layer.activation, z), x[:, n:]], axis=1)
            saved.append((z, V, angles))
        elif node.kind == "piecewise_linear":
            n = node.n_numeric
            E = bin_codes(x[:, :n], params[f"{node.name}.edges"])
            z = (x[:, :n, None] * params[f"{node.name}.linear"][None]
                 + np.einsum("rnt,ntd->rnd", E, params[f"{node.name}.weight"])
                 + params[f"{node.name}.bias"]).reshape(len(x), -1)
            y = np.concatenate([activation(node.layer.activation, z), x[:, n:]], axis=1)
            saved.append((z, E))
        elif node.kind == "replicate":
            k = node.layer.k
            r = (params[f"{node.name}.scale"] if node.layer.adapters == "first"
                 else np.ones((k, x.shape[1])))
            y = (x[:, None, :] * r[None]).reshape(-1, x.shape[1])   # member m of row i: i k + m
            saved.append(r)
        elif node.kind == "adapted_dense":
            k = node.members
            r = np.tile(params[f"{node.name}.scale_in"], (len(x) // k, 1))
            sc = np.tile(params[f"{node.name}.scale_out"], (len(x) // k, 1))
            b = np.tile(params[f"{node.name}.bias"], (len(x) // k, 1))
            P = (x * r) @ params[f"{node.name}.weight"]
            z = P * sc + b
            y = activation(node.layer.activation, z)
            if masks is not None and i in masks:
                y = y * masks[i]
            saved.append((z, P, r, sc))
        elif node.kind == "member_dense":
            k = node.members
            z = (np.einsum("rkn,kno->rko", x.reshape(-1, k, x.shape[1]),
                           params[f"{node.name}.weight"])
                 + params[f"{node.name}.bias"]).reshape(-1, node.n_out)
            y = z
            saved.append(z)
        elif node.kind in ("embedding", "one_hot"):
            n = node.n_numeric
            parts = [x[:, :n]]
            for j, cardinality in enumerate(node.categorical):
                rows = category_rows(x[:, n + j], cardinality)
                parts.append(params[f"{node.name}.table{j}"][rows] if node.kind == "embedding"
                             else np.eye(cardinality + 1)[rows])
            y = np.concatenate(parts, axis=1)
            saved.append(None)
        else:
            y = x + inputs[node.link]
            saved.append(None)
        outputs.append(y)
        x = y
    return inputs, outputs, saved


def nodes_predict(model, theta, X):
    """The head's outputs; with an ensemble inside, the mean of the members'."""
    arch = model.architecture
    out = head(arch.output, nodes_forward(arch, theta, X)[1][-1])
    return out.reshape(len(X), arch.members, -1).mean(axis=1)


def nodes_loss_and_grad(model, theta, X, labels=None, targets=None, weights=None, l2=0.0,
                        masks=None):
    """Weighted mean loss + l2/2 ||decayed||^2 and its gradient, by explicit
    backpropagation through every kind of node."""
    arch = model.architecture
    params = _parameters(arch, theta)
    n = len(X)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    inputs, outputs, saved = nodes_forward(arch, theta, X, masks)
    k = arch.members                    # each row's members: rows i k .. i k + k - 1
    rows, dz = loss_rows(model.loss, outputs[-1],
                         None if labels is None else np.repeat(labels, k),
                         None if targets is None else np.repeat(targets, k, axis=0),
                         model.huber_delta)
    n_rows = n
    loss = float((w * rows.reshape(n_rows, k).mean(axis=1)).sum() / w.sum())
    grads = {}
    skip = {}
    dy = dz * np.repeat(w / w.sum() / k, k)[:, None]
    last = len(arch.nodes) - 1
    for i in range(last, -1, -1):
        node = arch.nodes[i]
        if node.kind == "dense":
            W = params[f"{node.name}.weight"]
            if i != last:
                if masks is not None and i in masks:
                    dy = dy * masks[i]
                dy = dy * activation_grad(node.layer.activation, saved[i])
            grads[f"{node.name}.weight"] = inputs[i].T @ dy + l2 * W
            grads[f"{node.name}.bias"] = dy.sum(axis=0)
            dx = dy @ W.T
        elif node.kind == "layer_norm":
            xhat, rstd = saved[i]
            gain = params[f"{node.name}.gain"]
            grads[f"{node.name}.gain"] = (dy * xhat).sum(axis=0)
            grads[f"{node.name}.bias"] = dy.sum(axis=0)
            g = dy * gain
            dx = rstd * (g - g.mean(axis=1, keepdims=True)
                         - xhat * (g * xhat).mean(axis=1, keepdims=True))
        elif node.kind in ("embedding", "one_hot"):
            n = node.n_numeric
            if node.kind == "embedding":
                width = node.layer.dim
                for j, cardinality in enumerate(node.categorical):
                    g = np.zeros_like(params[f"{node.name}.table{j}"])
                    np.add.at(g, category_rows(inputs[i][:, n + j], cardinality),
                              dy[:, n + j * width:n + (j + 1) * width])
                    grads[f"{node.name}.table{j}"] = g
            dx = np.concatenate([dy[:, :n], np.zeros((len(dy), len(node.categorical)))], axis=1)
        elif node.kind == "adapted_dense":
            z, P, r, sc = saved[i]
            W = params[f"{node.name}.weight"]
            if masks is not None and i in masks:
                dy = dy * masks[i]
            dz = dy * activation_grad(node.layer.activation, z)
            ds = dz * sc
            E = ds @ W.T
            grads[f"{node.name}.weight"] = (inputs[i] * r).T @ ds + l2 * W
            grads[f"{node.name}.scale_in"] = (inputs[i] * E).reshape(n_rows, k, -1).sum(axis=0)
            grads[f"{node.name}.scale_out"] = (dz * P).reshape(n_rows, k, -1).sum(axis=0)
            grads[f"{node.name}.bias"] = dz.reshape(n_rows, k, -1).sum(axis=0)
            dx = E * r
        elif node.kind == "member_dense":
            W = params[f"{node.name}.weight"]
            x3 = inputs[i].reshape(n_rows, k, -1)
            d3 = dy.reshape(n_rows, k, -1)
            grads[f"{node.name}.weight"] = np.einsum("rkn,rko->kno", x3, d3) + l2 * W
            grads[f"{node.name}.bias"] = d3.sum(axis=0)
            dx = np.einsum("rko,kno->rkn", d3, W).reshape(n_rows * k, -1)
        elif node.kind == "replicate":
            r = saved[i]
            d3 = dy.reshape(n_rows, k, -1)
            if node.layer.adapters == "first":
                grads[f"{node.name}.scale"] = np.einsum("rkn,rn->kn", d3, inputs[i])
            dx = (d3 * r[None]).sum(axis=1)
        elif node.kind == "piecewise_linear":
            z, E = saved[i]
            n = node.n_numeric
            codes = len(node.categorical)
            dy = dy[:, :dy.shape[1] - codes]
            dz = (dy * activation_grad(node.layer.activation, z)).reshape(len(z), n, -1)
            grads[f"{node.name}.edges"] = np.zeros_like(params[f"{node.name}.edges"])
            grads[f"{node.name}.linear"] = ((inputs[i][:, :n, None] * dz).sum(axis=0)
                                            + l2 * params[f"{node.name}.linear"])
            grads[f"{node.name}.weight"] = (np.einsum("rnt,rnd->ntd", E, dz)
                                            + l2 * params[f"{node.name}.weight"])
            grads[f"{node.name}.bias"] = dz.sum(axis=0)
            dx = None                   # the first layer: no error at the inputs
        elif node.kind == "periodic":
            z, V, angles = saved[i]
            n, K = params[f"{node.name}.frequencies"].shape
            W = params[f"{node.name}.weight"]
            codes = len(node.categorical)
            dy = dy[:, :dy.shape[1] - codes]
            dz = (dy * activation_grad(node.layer.activation, z)).reshape(len(z), n, -1)
            grads[f"{node.name}.weight"] = np.einsum("rnk,rnd->nkd", V, dz) + l2 * W
            grads[f"{node.name}.bias"] = dz.sum(axis=0)
            dV = np.einsum("rnd,nkd->rnk", dz, W)
            g = 2 * np.pi * (-np.sin(angles) * dV[..., :K] + np.cos(angles) * dV[..., K:])
            grads[f"{node.name}.frequencies"] = (g * inputs[i][:, :n, None]).sum(axis=0)
            dx = np.concatenate([(g * params[f"{node.name}.frequencies"][None]).sum(axis=2),
                                 np.zeros((len(g), codes))], axis=1)
        else:
            dx = dy
            skip[node.link] = dy
        if i in skip:
            dx = dx + skip.pop(i)
        dy = dx
    loss += 0.5 * l2 * sum((params[e.name] ** 2).sum() for e in arch.decayed)
    return loss, np.concatenate([grads[e.name].ravel() for e in arch.layout])


def decay_mask(arch):
    """1 where L2 decays θ (dense weights), else 0."""
    mask = np.zeros(arch.n_parameters)
    for e in arch.decayed:
        mask[e.start:e.stop] = 1
    return mask
