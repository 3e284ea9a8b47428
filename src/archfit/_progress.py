"""Progress of a fit: a tqdm bar when tqdm is installed, else a line per epoch.

Both name the score (accuracy or R²), count epochs against the total and
estimate the time left; the end says how the fit ended (the last epoch, or
early stopping and the epoch it restored). Progress goes to standard error,
as tqdm's does: standard output stays for results.
"""
from __future__ import annotations

import sys


def metric_name(output: str) -> str:
    """What ``score`` measures for an output head."""
    return "accuracy" if output in ("softmax", "sigmoid") else "R²"


class _Bar:
    """A tqdm bar of `total` `unit`s when tqdm is installed (else ``bar`` is
    None and the reports are lines), closed with an optional last line."""

    def __init__(self, total: int, unit: str, file=None, bar_format=None):
        self.file = sys.stderr if file is None else file
        self.bar = None
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, unit=unit, file=self.file, dynamic_ncols=True,
                        bar_format=bar_format)

    def close(self, message: str | None = None) -> None:
        """End the report, with a closing line (how the fit ended)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if message:
            print(message, file=self.file, flush=True)


class Progress(_Bar):
    """Reports the epochs of one fit.

    Parameters
    ----------
    total : int
        Epochs the fit may run (this fit's, after any resumed ones).
    output : str
        The head, for the score's name.
    kind : {"auto", "bar", "plain"}
        ``auto``: a bar when tqdm is installed, else plain lines.
    first : int
        Epochs in the history before this fit (a continued fit's).
    done : int
        Epochs of this fit already done (a resumed one). When the first
        epoch reported comes later than ``done`` says (a fit resumed from a
        checkpoint that the caller did not read), the report starts there.
    """

    def __init__(self, total: int, output: str, kind: str = "auto", first: int = 0,
                 done: int = 0, file=None):
        self.total, self.first, self.metric = total, first, metric_name(output)
        self.file = sys.stderr if file is None else file
        self.bar = None
        self.seconds = 0.0
        self.kept = None        # the epoch early stopping restored, when it did
        self.resumed = done
        if kind in ("auto", "bar"):
            try:
                from tqdm import tqdm
            except ImportError:
                if kind == "bar":
                    raise ImportError("a progress bar needs tqdm: pip install tqdm") from None
            else:
                self.bar = tqdm(total=total, initial=done, unit="epoch", file=self.file,
                                dynamic_ncols=True, leave=True)

    def epoch(self, record: dict) -> None:
        """Report one finished epoch (its history record)."""
        done = record["epoch"] - self.first
        if self.seconds == 0.0 and done - 1 > self.resumed:
            # the first epoch this report sees: those before it ran earlier
            self.resumed = done - 1
            if self.bar is not None:
                self.bar.n = self.bar.last_print_n = self.resumed
        self.seconds += record["seconds"] or 1e-9
        post = {"loss": f"{record['train_loss']:.4g}"}
        if "validation_loss" in record:
            post["validation loss"] = f"{record['validation_loss']:.4g}"
            post[f"validation {self.metric}"] = f"{record['validation_score']:.4f}"
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
            return
        text = "  ".join(f"{k} {v}" for k, v in post.items())
        timing = duration(record["seconds"])
        if done < self.total:
            left = self.seconds / max(done - self.resumed, 1) * (self.total - done)
            timing += f", about {duration(left)} left"
        print(f"epoch {record['epoch']}/{self.first + self.total}  {text}  ({timing})",
              file=self.file, flush=True)


def duration(seconds: float) -> str:
    """A time for a person: "0.42 ms", "35 ms", "4.2 s", "3.5 min", "1.2 h"."""
    if seconds < 0.01:
        return f"{seconds * 1e3:.2g} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def ending(history: list[dict], first: int, total: int, returned_epoch: int,
           early_stopping: bool, monitor: str, metric: str) -> str:
    """The closing line of a fit's report."""
    ran = len(history) - first
    last = history[-1] if history else None
    if last is None:
        return "no epoch ran"
    if early_stopping and ran < total:
        text = f"early stopping ended the fit after epoch {last['epoch']}"
    else:
        text = f"fitted {ran} epoch(s)"
    if returned_epoch != last["epoch"]:
        kept = history[returned_epoch - 1]
        watched = ("validation loss" if monitor == "validation_loss"
                   else f"validation {metric}")
        value = kept["validation_loss" if monitor == "validation_loss" else "validation_score"]
        text += f"; restored epoch {returned_epoch}, the best ({watched} {value:.4g})"
    elif "validation_score" in last:
        text += f"; validation {metric} {last['validation_score']:.4f}"
    return text


class FitsProgress(_Bar):
    """Reports the fits of a hold-out estimate or a search: a tqdm bar over
    fits (fits done out of all, time left, the best mean score so far by
    name) when tqdm is installed, else nothing but the lines given to ``say``.

    Fits trained together in a population move the bar an epoch at a time;
    the count shows whole fits done, and the bar never passes its total.
    """

    def __init__(self, total: int, metric: str, file=None):
        super().__init__(total, "fit", file,
                         "{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]")
        self.total, self.metric, self.best = total, metric, None
        self.finished = 0
        self.partial: dict = {}     # fits under way: the share of each done
        self._show()

    def _show(self) -> None:
        if self.bar is None:
            return
        # the share done, never past the total (rounding of many fractions)
        self.bar.n = min(float(self.total), self.finished + sum(self.partial.values()))
        post = f"{self.finished}/{self.total} fits"
        if self.best is not None:
            post += f", best {self.metric} {self.best:.4f}"
        self.bar.set_postfix_str(post, refresh=False)
        self.bar.refresh()

    def add(self, n: int) -> None:
        """n more fits to come (a further halving round)."""
        self.total += n
        if self.bar is not None:
            self.bar.total = self.total
        self._show()

    def advance(self, key, fraction: float) -> None:
        """Part of fit `key` is done (an epoch of a fit trained in a population)."""
        self.partial[key] = min(self.partial.get(key, 0.0) + fraction, 1.0)
        self._show()

    def fit_done(self, key=None) -> None:
        """Fit `key` is done."""
        self.partial.pop(key, None)
        self.finished = min(self.finished + 1, self.total)
        self._show()

    def score(self, mean: float) -> None:
        """A candidate's mean score is known."""
        if self.best is None or mean > self.best:
            self.best = mean
            self._show()

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)


class PopulationProgress(_Bar):
    """Reports a population's epochs (``fit_many``): a tqdm bar over epochs
    when tqdm is installed, else a line per epoch; with the members still
    training, their mean training loss and the best validation score."""

    def __init__(self, total: int, n_members: int, output: str, file=None):
        super().__init__(total, "epoch", file)
        self.total, self.n_members, self.metric = total, n_members, metric_name(output)

    def epoch(self, records: list[dict], seconds: float) -> None:
        """One population epoch: the history records of the members it trained."""
        post = {"training": f"{len(records)}/{self.n_members}",
                "mean loss": f"{sum(r['train_loss'] for r in records) / len(records):.4g}"}
        scores = [r["validation_score"] for r in records if "validation_score" in r]
        if scores:
            post[f"best validation {self.metric}"] = f"{max(scores):.4f}"
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
            return
        text = "  ".join(f"{k} {v}" for k, v in post.items())
        print(f"epoch {max(r['epoch'] for r in records)}/{self.total}  {text}  "
              f"({seconds * 1e3:.0f} ms)", file=self.file, flush=True)
