"""The main job: fit a network to the shipped digits data and report."""
from __future__ import annotations

import time

import numpy as np

from archfit.architecture import Architecture, Dense
from archfit.datasets import load_digits
from archfit.fitting import fit
from archfit.folds import validation_split
from archfit.hyperparameters import Hyperparameters
from archfit.model import Model

DEMO_ARCHITECTURE = Architecture(
    n_inputs=64, layers=[Dense(128, activation="relu"), Dense(10)], output="softmax")
DEMO_HYPERPARAMETERS = Hyperparameters(optimizer="adam", learning_rate=3e-3, batch_size=32,
                                       epochs=40, l2=1e-4, seed=0)
TEST_FRACTION = 0.2


def run(seed: int = 0, epochs: int | None = None, quiet: bool = False) -> dict:
    """Fit the demo network on 80% of the digits and score it on the other 20%.

    Returns a dict with the fit model, test accuracy and throughput.
    """
    say = (lambda *a: None) if quiet else print  # noqa: E731
    X, y = load_digits()
    X = X / 16.0
    train, test = validation_split(len(y), TEST_FRACTION, seed, y)
    hp = DEMO_HYPERPARAMETERS.replace(seed=seed)
    if epochs is not None:
        hp = hp.replace(epochs=epochs)
    model = Model(DEMO_ARCHITECTURE, dtype="float32")

    say("archfit demo: handwritten digits (8x8), "
        f"{len(train)} training and {len(test)} test samples\n")
    say(DEMO_ARCHITECTURE.summary())
    say(f"\nhyperparameters: optimizer={hp.optimizer} learning_rate={hp.learning_rate:g} "
        f"batch_size={hp.batch_size} epochs={hp.epochs} l2={hp.l2:g} seed={hp.seed}\n")

    def progress(record):
        say(f"epoch {record['epoch']:3d}/{hp.epochs}  train loss {record['train_loss']:.4f}  "
            f"held-out accuracy {record['validation_score']:.4f}")

    start = time.perf_counter()
    fitted = fit(model, X[train], y[train], hp, validation=(X[test], y[test]), callback=progress)
    wall = time.perf_counter() - start
    train_seconds = sum(h["seconds"] for h in fitted.history)
    throughput = len(train) * fitted.n_epochs / train_seconds
    accuracy = fitted.score(X[test], y[test])
    say(f"\nhold-out accuracy: {accuracy:.4f} on {len(test)} test samples")
    say(f"training throughput: {throughput:,.0f} samples/s "
        f"({train_seconds:.2f} s in training kernels, {wall:.2f} s wall including evaluation)")
    return {"fitted": fitted, "accuracy": accuracy, "throughput": throughput, "seconds": wall}
