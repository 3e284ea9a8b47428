"""Checkpoints: a fit killed at any moment and resumed ends with the same bits."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import archfit as af
from archfit import checkpoints
from archfit.persistence import FileFormatError


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 16))
    y = (X[:, :4] @ rng.normal(size=(4, 3)) + 0.8 * rng.normal(size=(n, 3))).argmax(axis=1)
    return X, y


MODEL = af.Model(af.Architecture(16, [af.Dense(64, activation="relu"), af.Dense(3)],
                                 output="softmax"))
# Adam with a cosine schedule, dropout and early stopping that stops before the end
HP = af.Hyperparameters(epochs=60, batch_size=32, schedule="cosine", dropout=0.2,
                        early_stopping=True, patience=4, tolerance=1e-3, seed=5)


def _without_time(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


class _Stop(Exception):
    pass


def _stop_after(epoch):
    def callback(record):
        if record["epoch"] == epoch:
            raise _Stop
    return callback


@pytest.fixture(scope="module")
def reference():
    X, y = _data()
    fitted = af.fit(MODEL, X, y, HP)
    assert fitted.n_epochs < HP.epochs      # early stopping is exercised
    return fitted


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd", "adamw"])
def test_resuming_after_a_crash_gives_the_same_bits(tmp_path, optimizer):
    X, y = _data()
    hp = HP.replace(optimizer=optimizer, learning_rate=0.01 if optimizer != "adam" else 1e-3)
    uninterrupted = af.fit(MODEL, X, y, hp)
    path = tmp_path / "fit.checkpoint"
    for stop in (1, 3, 4):
        with pytest.raises(_Stop):
            af.fit(MODEL, X, y, hp, checkpoint=path, callback=_stop_after(stop))
    resumed = af.fit(MODEL, X, y, hp, checkpoint=path)
    assert resumed.parameters.tobytes() == uninterrupted.parameters.tobytes()
    assert _without_time(resumed.history) == _without_time(uninterrupted.history)


def test_checkpoint_every_and_a_finished_checkpoint(tmp_path, reference):
    X, y = _data()
    path = tmp_path / "fit.checkpoint"
    with pytest.raises(_Stop):
        af.fit(MODEL, X, y, HP, checkpoint=path, checkpoint_every=3, callback=_stop_after(5))
    saved = checkpoints.read(path)
    assert saved.fit_model.n_epochs == 3 and not saved.finished
    fitted = af.fit(MODEL, X, y, HP, checkpoint=path, checkpoint_every=3)
    assert fitted.parameters.tobytes() == reference.parameters.tobytes()
    assert checkpoints.read(path).finished
    calls = []
    again = af.fit(MODEL, X, y, HP, checkpoint=path, callback=calls.append)
    assert calls == [] and again.parameters.tobytes() == reference.parameters.tobytes()


def test_a_checkpoint_of_another_fit_is_refused_naming_the_difference(tmp_path):
    X, y = _data()
    path = tmp_path / "fit.checkpoint"
    with pytest.raises(_Stop):
        af.fit(MODEL, X, y, HP, checkpoint=path, callback=_stop_after(2))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"hyperparameters differ \(dropout: 0.2 in the "
                                         r"checkpoint, 0.3 now\)"):
        af.fit(MODEL, X, y, HP.replace(dropout=0.3), checkpoint=path)
    with pytest.raises(ValueError, match=r"training data differ \(n_samples"):
        af.fit(MODEL, X[:-10], y[:-10], HP, checkpoint=path)
    with pytest.raises(ValueError, match="training data differ"):
        af.fit(MODEL, X + 1e-3, y, HP, checkpoint=path)
    with pytest.raises(ValueError, match="model differ"):
        af.fit(af.Model(MODEL.architecture, "float64"), X, y, HP, checkpoint=path)
    with pytest.raises(ValueError, match="starting point differ"):
        af.fit(MODEL, X, y, HP, checkpoint=path, init=MODEL.init(99))
    # n_threads does not change results, so it may change
    af.fit(MODEL, X, y, HP.replace(n_threads=1), checkpoint=path)
    assert path.read_bytes() != before


@pytest.mark.parametrize("damage", ["truncate", "flip", "other file"])
def test_a_corrupt_checkpoint_is_an_error_never_ignored(tmp_path, damage):
    X, y = _data(500)
    path = tmp_path / "fit.checkpoint"
    with pytest.raises(_Stop):
        af.fit(MODEL, X, y, HP, checkpoint=path, callback=_stop_after(1))
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 1
    else:
        data = bytearray(af.fit(MODEL, X, y, HP.replace(epochs=1)).to_bytes())
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=str(path)):
        af.fit(MODEL, X, y, HP, checkpoint=path)
    assert path.read_bytes() == bytes(data)      # left as it was


def test_bad_checkpoint_arguments(tmp_path):
    X, y = _data(200)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        af.fit(MODEL, X, y, HP, checkpoint=tmp_path / "missing" / "fit.checkpoint")
    with pytest.raises(TypeError, match="checkpoint must be a path, got int"):
        af.fit(MODEL, X, y, HP, checkpoint=3)
    with pytest.raises(TypeError, match="checkpoint must be a path to a folder"):
        af.holdout(MODEL, X, y, HP, checkpoint=3)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        af.fit(MODEL, X, y, HP, checkpoint=tmp_path / "c", checkpoint_every=0)
    with pytest.raises(ValueError, match="lbfgs"):
        af.fit(MODEL, X, y, HP.replace(optimizer="lbfgs", dropout=0.0, early_stopping=False),
               checkpoint=tmp_path / "c")
    assert not (tmp_path / "c").exists()


CHILD = """
import json, os, sys
import numpy as np
import archfit as af
sys.path.insert(0, {tests!r})
from test_checkpoints import MODEL, HP, _data
from archfit import persistence

kill_at_write = int(os.environ.get("KILL_AT_WRITE", "0"))
kill_how = os.environ.get("KILL_HOW", "")
writes = [0]
real_fsync, real_replace = os.fsync, os.replace

def fsync(fd):
    # the temporary file is written but not yet on disk, nor renamed
    writes[0] += 1
    if writes[0] == kill_at_write and kill_how == "before fsync":
        os.kill(os.getpid(), 9)
    return real_fsync(fd)

def replace(src, dst):
    if writes[0] == kill_at_write and kill_how == "before rename":
        os.kill(os.getpid(), 9)
    return real_replace(src, dst)

persistence.os.fsync, persistence.os.replace = fsync, replace
X, y = _data(12000)
hp = HP.replace(epochs=25)
fitted = af.fit(MODEL, X, y, hp, checkpoint=sys.argv[1],
                callback=lambda r: print("epoch", r["epoch"], flush=True))
with open(sys.argv[2], "w") as f:
    json.dump({{"theta": fitted.parameters.tobytes().hex(),
               "history": [{{k: v for k, v in r.items() if k != "seconds"}}
                           for r in fitted.history]}}, f)
"""


def test_killed_at_random_moments_and_rerun_ends_with_the_same_bits(tmp_path):
    """SIGKILL between epochs, in the middle of an epoch, and in the middle of
    writing the checkpoint; the same call rerun each time."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=os.path.dirname(os.path.abspath(__file__))))
    path, result = tmp_path / "fit.checkpoint", tmp_path / "result.json"
    X, y = _data(12000)
    reference = af.fit(MODEL, X, y, HP.replace(epochs=25))

    def run(env=None, kill=None):
        """Run the child; `kill(lines)` returns how long to wait before SIGKILL
        once it has printed these epoch lines, or None to keep reading."""
        lines, stamps = [], []
        with subprocess.Popen([sys.executable, str(script), str(path), str(result)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, **(env or {}))) as child:
            for line in child.stdout:
                lines.append(line)
                stamps.append(time.perf_counter())
                wait = kill(stamps) if kill else None
                if wait is not None:
                    time.sleep(wait)
                    child.kill()
                    break
            child.wait(timeout=300)
        return child.returncode, lines

    def mid_epoch(stamps):
        # half an epoch after the third epoch ended
        return 0.5 * (stamps[-1] - stamps[-2]) if len(stamps) == 3 else None

    rng = np.random.default_rng(2)
    kills = [
        (None, lambda stamps: 0.0 if len(stamps) == 2 else None),          # between epochs
        (None, mid_epoch),                                                   # mid-epoch
        ({"KILL_AT_WRITE": "2", "KILL_HOW": "before fsync"}, None),         # mid-write
        ({"KILL_AT_WRITE": "3", "KILL_HOW": "before rename"}, None),        # mid-write
        (None, lambda stamps: float(rng.uniform(0, 0.05)) if len(stamps) == 2 else None),
    ]
    done_before = 0
    for env, kill in kills:
        code, lines = run(env, kill)
        assert code == -signal.SIGKILL, lines
        saved = checkpoints.read(path)          # never a broken file
        assert saved is not None and saved.fit_model.n_epochs >= done_before
        done_before = saved.fit_model.n_epochs
        assert not result.exists()
    code, _ = run()
    assert code == 0
    out = json.loads(result.read_text())
    assert out["theta"] == reference.parameters.tobytes().hex()
    assert out["history"] == _without_time(reference.history)


@pytest.mark.parametrize("search", ["grid", "halving"])
def test_select_with_a_checkpoint_folder_does_not_refit_finished_candidates(tmp_path,
                                                                             monkeypatch, search):
    from archfit import fitting
    X, y = _data(600)
    space = {"learning_rate": [1e-3, 1e-2], "l2": [0.0, 1e-4]}
    base = af.Hyperparameters(epochs=4, batch_size=32)
    first = af.select(MODEL, X, y, space, base=base, cv=2, search=search, checkpoint=tmp_path)
    files = sorted(tmp_path.iterdir())
    refit = [f for f in files if f.name.startswith("refit-")]
    assert len(refit) == 1 and all(f.suffix == ".archfit" for f in files)
    # a restart after a crash that lost one fold's fit: only that one runs again
    lost = [f for f in files if f.name.startswith("fold1-")][0]
    lost.unlink()
    runs = []
    real = fitting._fit_minibatch
    monkeypatch.setattr(fitting, "_fit_minibatch",
                        lambda *args: runs.append(1) or real(*args))
    second = af.select(MODEL, X, y, space, base=base, cv=2, search=search, checkpoint=tmp_path)
    assert len(runs) == 1

    def table(selection):
        return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in selection.table]
    assert table(second) == table(first)
    assert second.best.parameters.tobytes() == first.best.parameters.tobytes()
    plain = af.select(MODEL, X, y, space, base=base, cv=2, search=search)
    assert table(plain) == table(first)
    with pytest.raises(FileNotFoundError, match="existing folder"):
        af.select(MODEL, X, y, space, base=base, cv=2, checkpoint=tmp_path / "nope")


def test_holdout_with_a_checkpoint_folder(tmp_path):
    X, y = _data(400)
    hp = af.Hyperparameters(epochs=3, batch_size=32)
    first = af.holdout(MODEL, X, y, hp, cv=3, checkpoint=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    again = af.holdout(MODEL, X, y, hp, cv=3, checkpoint=tmp_path)
    assert np.array_equal(first.scores, again.scores)
    assert np.array_equal(first.scores, af.holdout(MODEL, X, y, hp, cv=3).scores)
