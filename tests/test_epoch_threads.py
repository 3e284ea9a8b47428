"""A fit's thread count epoch by epoch (_threads.EpochThreads): one thread
after an epoch whose threads did not get their cores, the faster kept, and the
same bits whatever the choices."""
import numpy as np
import pytest

import archfit as af
from archfit import _threads


class Machine:
    """Fake clocks: each epoch's wall and CPU seconds by its thread count."""

    def __init__(self, seconds, cpu_share):
        self.seconds, self.cpu_share = seconds, cpu_share   # {threads: s}, {threads: cores}
        self.wall = self.cpu = 0.0
        self.chooser = _threads.EpochThreads(2, clock=lambda: self.wall,
                                             cpu_clock=lambda: self.cpu)

    def epochs(self, n):
        ran = []
        for _ in range(n):
            t = self.chooser.begin()
            self.wall += self.seconds[t]
            self.cpu += self.seconds[t] * self.cpu_share[t]
            self.chooser.end()
            ran.append(t)
        return ran


def test_an_idle_machine_keeps_every_thread():
    m = Machine({1: 1.0, 2: 0.55}, {1: 1.0, 2: 1.9})
    assert m.epochs(20) == [2] * 20


def test_a_busy_core_moves_the_fit_to_one_thread_and_retries_less_often():
    # two threads wait for each other (1.3 cores, slower than one thread)
    m = Machine({1: 1.0, 2: 1.5}, {1: 1.0, 2: 1.3})
    ran = m.epochs(40)
    assert ran[:2] == [2, 1]
    trials = [i for i in range(2, 40) if ran[i] == 2]
    gaps = np.diff(trials)
    assert len(trials) >= 3 and list(gaps) == sorted(gaps) and gaps[-1] > gaps[0]
    assert ran.count(1) >= 33


def test_a_false_alarm_goes_back_to_every_thread():
    # CPU time short, yet two threads still faster: back, and trials spaced out
    m = Machine({1: 1.0, 2: 0.8}, {1: 1.0, 2: 1.4})
    ran = m.epochs(30)
    assert ran[:3] == [2, 1, 2]
    assert ran.count(1) <= 5


def test_the_cores_coming_back_are_taken_again():
    m = Machine({1: 1.0, 2: 1.5}, {1: 1.0, 2: 1.3})
    m.epochs(10)
    m.seconds[2], m.cpu_share[2] = 0.55, 1.9
    assert m.epochs(20)[-10:] == [2] * 10


def test_one_thread_has_nothing_to_choose():
    chooser = _threads.EpochThreads(1)
    for _ in range(3):
        assert chooser.begin() == 1
        chooser.end()


class Alternating(_threads.EpochThreads):
    """Every other epoch on one thread, whatever the clocks say."""

    def end(self):
        self.now = 1 if self.now == self.full else self.full


@pytest.mark.parametrize("widths,batch", [((256, 128), 160),      # steps in shards
                                          ((1100, 1000), 32)])    # one shard, BLAS's products
# (a step in one shard runs on one thread, and BLAS too: on two, OpenBLAS
# split its products differently and n_threads=1 and 2 gave different bits)
def test_the_thread_count_of_each_epoch_leaves_the_bits(monkeypatch, widths, batch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(640, 40)).astype(np.float32)
    y = rng.integers(0, 3, 640)
    arch = af.Architecture(40, [af.Dense(w, "relu") for w in widths] + [af.Dense(3)],
                           "softmax")
    model = af.Model(arch)
    hp = af.Hyperparameters(epochs=4, batch_size=batch, seed=1, n_threads=2)
    plan = model._kernel.training_plan(model.dtype, 640, batch, threads=2)
    assert plan["shards"] == (2 if batch == 160 else 1)
    assert plan["packed"] == (batch == 160)     # the other's copies exceed PACK_MAX_BYTES
    steady = af.fit(model, X, y, hp)
    one = af.fit(model, X, y, hp.replace(n_threads=1))
    seen = []

    class Recording(Alternating):
        def begin(self):
            seen.append(self.now)
            return super().begin()

    monkeypatch.setattr(_threads, "EpochThreads", Recording)
    mixed = af.fit(model, X, y, hp)
    assert seen == ([2, 1, 2, 1] if batch == 160 else [1, 1, 1, 1])
    assert mixed.parameters.tobytes() == steady.parameters.tobytes()
    assert one.parameters.tobytes() == steady.parameters.tobytes()


def test_lbfgs_in_one_chunk_has_the_same_bits_on_any_number_of_threads():
    # 60 rows: the gradient in one chunk, whose large products go to BLAS
    # (on one thread: OpenBLAS's two gave other bits)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 40))
    y = rng.integers(0, 3, 60)
    arch = af.Architecture(40, [af.Dense(1100, "relu"), af.Dense(1000, "relu"), af.Dense(3)],
                           "softmax")
    model = af.Model(arch, dtype="float64")
    assert model._kernel.gradient_plan(model.dtype, 60, 2)["chunks"] == 1
    hp = af.Hyperparameters(optimizer="lbfgs", epochs=3, seed=1)
    with pytest.warns(af.ConvergenceWarning):
        fits = [af.fit(model, X, y, hp.replace(n_threads=t)) for t in (1, 2)]
    assert fits[0].parameters.tobytes() == fits[1].parameters.tobytes()
    assert (model.loss_and_grad(fits[0].parameters, X, y, n_threads=1)[1].tobytes()
            == model.loss_and_grad(fits[0].parameters, X, y, n_threads=2)[1].tobytes())
