"""A plain-NumPy MLP trainer: the baseline archfit is compared with.

Written the way a careful NumPy user would: preallocated arrays, in-place
operations, ``np.matmul(..., out=...)``, the same Adam as archfit and PyTorch,
relu hidden layers, softmax + cross-entropy or linear + squared error.
"""
from __future__ import annotations

import numpy as np


class NumpyMLP:
    def __init__(self, sizes, batch_size, output="softmax", dtype=np.float32, seed=0, lr=1e-3,
                 beta1=0.9, beta2=0.999, eps=1e-8):
        rng = np.random.default_rng(seed)
        self.sizes, self.output, self.dtype = sizes, output, dtype
        self.W = [(rng.normal(0, np.sqrt(2 / a), (a, b))).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, dtype) for b in sizes[1:]]
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.g = [np.zeros_like(p) for p in self.params]
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        B = batch_size
        self.A = [np.zeros((B, s), dtype) for s in sizes]
        self.D = [np.zeros((B, s), dtype) for s in sizes]
        self.tmp = [np.zeros_like(p) for p in self.params]

    def _forward(self, Xb):
        n = len(Xb)
        self.A[0][:n] = Xb
        L = len(self.W)
        for l in range(L):
            Z = self.A[l + 1][:n]
            np.matmul(self.A[l][:n], self.W[l], out=Z)
            Z += self.b[l]
            if l < L - 1:
                np.maximum(Z, 0, out=Z)
        return self.A[L][:n]

    def step(self, Xb, yb):
        n = len(Xb)
        out = self._forward(Xb)
        D = self.D[-1][:n]
        if self.output == "softmax":
            np.subtract(out, out.max(axis=1, keepdims=True), out=D)
            np.exp(D, out=D)
            D /= D.sum(axis=1, keepdims=True)
            D[np.arange(n), yb] -= 1
        else:
            np.subtract(out, yb, out=D)
        D /= n
        L = len(self.W)
        for l in range(L - 1, -1, -1):
            np.matmul(self.A[l][:n].T, D, out=self.g[l])
            np.sum(D, axis=0, out=self.g[L + l])
            if l > 0:
                Dp = self.D[l][:n]
                np.matmul(D, self.W[l].T, out=Dp)
                Dp *= self.A[l][:n] > 0
                D = Dp
        self.t += 1
        c1 = self.lr / (1 - self.b1 ** self.t)
        c2 = 1 / np.sqrt(1 - self.b2 ** self.t)
        for p, g, m, v, tmp in zip(self.params, self.g, self.m, self.v, self.tmp):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - self.b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp *= c2
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= c1
            p -= tmp

    def epoch(self, X, y, rng):
        order = rng.permutation(len(X))
        B = self.A[0].shape[0]
        for start in range(0, len(X), B):
            idx = order[start:start + B]
            self.step(X[idx], y[idx])

    def predict(self, X):
        out = self._forward(X)
        return out
