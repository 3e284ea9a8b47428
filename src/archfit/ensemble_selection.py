"""Ensemble selection (Caruana et al., 2004): which fits to average, and how
often, chosen greedily on a validation set.

Start from the best single fit; at each step add the fit (again, if it is
the best choice: selection *with replacement*) whose addition gives the
average with the smallest validation loss; keep the best average seen along
the way. A fit's weight is how often it was chosen. With replacement, the
greedy steps approximate the best convex combination and cannot overfit the
validation set as quickly as free weights would.

On a small validation set one fit can win every greedy step (all rows right,
the most confident fit the lowest log-loss), and the ensemble is that one
fit, chosen by noise. *Bagged* selection (Caruana et al., 2004, section 4.3)
runs the greedy selection on random halves of the fits and averages the bags'
weights: a fit that wins everywhere keeps much weight, the others share the
rest.
"""
from __future__ import annotations

import numpy as np

# Greedy steps, at most: weights are multiples of 1/STEPS.
STEPS = 40
# Bagged selection: bags, and the fraction of the fits each bag draws (the paper's 20 and 0.5).
BAGS = 20
BAG_FRACTION = 0.5


def validation_loss(task: str, average: np.ndarray, targets: np.ndarray,
                    weights: np.ndarray | None) -> float:
    """The loss selection minimises: the log-loss of averaged class
    probabilities (`targets`: class positions) or the mean squared error of
    averaged values (`targets`: values, (n, outputs)); weighted by rows."""
    if task == "classification":
        p = np.maximum(average[np.arange(len(targets)), targets], np.finfo(np.float64).tiny)
        rows = -np.log(p)
    else:
        rows = ((average - targets) ** 2).sum(axis=1)
    return float(rows.mean() if weights is None else weights @ rows / weights.sum())


def greedy(predictions: list, task: str, targets: np.ndarray, weights=None,
           steps: int = STEPS) -> tuple[np.ndarray, list[int], float]:
    """Counts per fit, the order they were chosen in, and the loss of the
    chosen average.

    Parameters
    ----------
    predictions : list of ndarray (n, outputs)
        Each fit's validation probabilities (classification) or values.
    task : {"classification", "regression"}
    targets, weights : as :func:`validation_loss` takes them.
    steps : int
        Greedy additions after the first fit, at most.
    """
    if not predictions:
        raise ValueError("ensemble selection needs at least one fit")
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    losses = [validation_loss(task, p, targets, weights) for p in stack]
    first = int(np.argmin(losses))
    chosen, total = [first], stack[first].copy()
    best_loss, best_size = losses[first], 1
    for _ in range(steps):
        size = len(chosen) + 1
        trial = [validation_loss(task, (total + p) / size, targets, weights) for p in stack]
        k = int(np.argmin(trial))
        chosen.append(k)
        total += stack[k]
        if trial[k] < best_loss - 1e-12 * abs(best_loss):
            best_loss, best_size = trial[k], size
    chosen = chosen[:best_size]
    counts = np.bincount(chosen, minlength=len(stack)).astype(np.float64)
    return counts, chosen, float(best_loss)


def bagged(predictions: list, task: str, targets: np.ndarray, weights=None, seed: int = 0,
           bags: int = BAGS, fraction: float = BAG_FRACTION,
           steps: int = STEPS) -> tuple[np.ndarray, list[int], float]:
    """Weights per fit (summing to 1), the fits by falling weight, and the
    validation loss of the weighted average: :func:`greedy` within each of
    `bags` random subsets of ``round(fraction * n)`` fits (at least one),
    each bag's counts normalised, then averaged over the bags.

    Parameters
    ----------
    predictions, task, targets, weights, steps
        As :func:`greedy` takes them.
    seed : int
        Seeds the bags' draws: the same arguments give the same weights.
    bags : int
    fraction : float in (0, 1]
    """
    if not predictions:
        raise ValueError("ensemble selection needs at least one fit")
    if bags < 1 or not 0 < fraction <= 1:
        raise ValueError(f"bags must be at least 1 and fraction in (0, 1], got {bags} and "
                         f"{fraction}")
    n = len(predictions)
    size = max(1, int(round(fraction * n)))
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    for _ in range(bags):
        bag = np.sort(rng.choice(n, size=size, replace=False))
        counts, _, _ = greedy([predictions[k] for k in bag], task, targets, weights, steps)
        total[bag] += counts / counts.sum()
    share = total / bags
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    loss = validation_loss(task, np.tensordot(share, stack, axes=1), targets, weights)
    order = [int(k) for k in np.argsort(-share, kind="stable") if share[k] > 0]
    return share, order, float(loss)
