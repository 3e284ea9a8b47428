"""Reliability: concurrency, reproducibility across processes, leaks, numerics."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import archfit as af


def digits():
    from archfit.datasets import load_digits
    X, y = load_digits()
    return X / 16.0, y


# ---- concurrency -----------------------------------------------------------------------------
def run_together(work, n):
    """Run ``work(i)`` for i in range(n) on n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def start(i):
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_eight_threads_predicting_with_one_fit_model():
    X, y = digits()
    model = af.Model(af.Architecture(64, [af.Dense(48, "tanh"), af.Dense(10)], "softmax"))
    fitted = af.fit(model, X, y, af.Hyperparameters(epochs=2))
    chunks = [X[i::8] for i in range(8)]
    serial = [fitted.predict_proba(c) for c in chunks]
    results = [None] * 8

    def work(i):
        for _ in range(20):
            out = fitted.predict_proba(chunks[i])
        results[i] = out

    run_together(work, 8)
    for a, b in zip(serial, results):
        assert a.tobytes() == b.tobytes()


def test_threads_predicting_in_chunks_keep_bits_and_leave_blas_as_it_was():
    # predictions of more than 256 rows hold BLAS at one thread; overlapping ones
    # on several threads must neither see it change nor leave it changed
    from archfit import _threads
    before = _threads.budget(None)
    model = af.Model(af.Architecture(784, [af.Dense(256, "relu"), af.Dense(10)], "softmax"))
    fitted = af.FitModel(model, model.init(0), af.Hyperparameters(), classes=np.arange(10))
    X = np.random.default_rng(0).normal(size=(2000, 784)).astype(np.float32)
    serial = fitted.predict_proba(X)
    results = [None] * 4

    def work(i):
        for _ in range(10):
            results[i] = fitted.predict_proba(X)

    run_together(work, 4)
    assert all(r.tobytes() == serial.tobytes() for r in results)
    assert _threads.budget(None) == before


def test_thread_budget_is_blas_lowest_limit_and_follows_it():
    # budget(None) reads every BLAS library's limit (through the raw function
    # addresses where it can) on each call: it must agree with threadpoolctl
    # and see a limit set a moment before
    from threadpoolctl import threadpool_info, threadpool_limits
    from archfit import _threads

    def lowest():
        counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return min([c for c in counts if c], default=0) or os.cpu_count()

    assert _threads.budget(None) == lowest()
    assert _threads.budget(3) == 3
    with threadpool_limits(1, user_api="blas"):
        assert _threads.budget(None) == 1
    assert _threads.budget(None) == lowest()


def test_four_threads_fitting_different_models():
    X, y = digits()
    jobs = [(af.Model(af.Architecture(64, [af.Dense(w, act), af.Dense(10)], "softmax"), dt),
             af.Hyperparameters(epochs=3, seed=s, dropout=0.1, optimizer=opt))
            for w, act, dt, s, opt in [(16, "relu", "float32", 0, "adam"),
                                       (32, "gelu", "float64", 1, "momentum"),
                                       (24, "tanh", "float32", 2, "adamw"),
                                       (8, "sigmoid", "float64", 3, "sgd")]]
    serial = [af.fit(m, X, y, hp).parameters for m, hp in jobs]
    results = [None] * 4

    def work(i):
        results[i] = af.fit(jobs[i][0], X, y, jobs[i][1]).parameters

    run_together(work, 4)
    for a, b in zip(serial, results):
        assert a.tobytes() == b.tobytes()


# ---- reproducibility ---------------------------------------------------------------------------
FIT_IN_A_FRESH_PROCESS = """
import hashlib, numpy as np, archfit as af
from archfit.datasets import load_digits
X, y = load_digits()
model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"))
hp = af.Hyperparameters(epochs=3, dropout=0.2, seed=5, n_threads=1)
print(hashlib.sha256(af.fit(model, X / 16, y, hp).parameters.tobytes()).hexdigest())
"""


def test_same_seed_same_parameters_across_fresh_processes():
    import hashlib
    digests = [subprocess.run([sys.executable, "-c", FIT_IN_A_FRESH_PROCESS], capture_output=True,
                              text=True, timeout=300, check=True).stdout.strip()
               for _ in range(2)]
    X, y = digits()
    model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"))
    here = af.fit(model, X, y, af.Hyperparameters(epochs=3, dropout=0.2, seed=5, n_threads=1))
    assert digests[0] == digests[1] == hashlib.sha256(here.parameters.tobytes()).hexdigest()


FORKED_CHILDREN = """
import hashlib, multiprocessing as mp, numpy as np, archfit as af
from archfit.datasets import load_digits

def job(_):
    X, y = load_digits()
    model = af.Model(af.Architecture(64, [af.Dense(512, "relu"), af.Dense(10)], "softmax"))
    assert model._kernel.training_plan("float32", 128, 128)["shards"] == 2 and model._kernel.splits_rows()
    fitted = af.fit(model, X / 16, y, af.Hyperparameters(epochs=2, batch_size=128, seed=3))
    proba = np.concatenate([fitted.predict_proba(X[:1] / 16), fitted.predict_proba(X / 16)])
    return hashlib.sha256(fitted.parameters.tobytes() + proba.tobytes()).hexdigest()

if __name__ == "__main__":
    parent = job(0)            # the parent starts OpenMP teams first
    with mp.get_context("fork").Pool(2) as pool:
        children = pool.map(job, [1, 2])
    print(parent, *children)
"""


def forking_script_output(tmp_path, source: str, timeout: float) -> list[str]:
    """The words a script that calls fork() prints (skips where there is no fork)."""
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("no fork() on this platform")
    script = tmp_path / "forking.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, check=True).stdout.split()


def test_forked_children_run_on_one_thread_with_the_same_bits(tmp_path):
    # GNU OpenMP hangs in a fork()ed child whose parent used a team; archfit's
    # kernels run on one thread there, and (shards being fixed) give the same bits
    out = forking_script_output(tmp_path, FORKED_CHILDREN, timeout=300)
    assert len(out) == 3 and out[0] == out[1] == out[2]


FORK_DURING_ONE_BLAS_THREAD = """
import os, threading
from archfit import _threads

inside, leave = threading.Event(), threading.Event()

def hold():
    with _threads._one_blas_thread():
        inside.set()
        leave.wait()

t = threading.Thread(target=hold)
t.start()
inside.wait()
pid = os.fork()                      # another thread is inside a one-BLAS-thread section
if pid == 0:
    with _threads._one_blas_thread():    # would wait forever on the inherited lock
        pass
    os._exit(0 if _threads._one_depth == 0 else 3)
_, status = os.waitpid(pid, 0)
leave.set()
t.join()
print(os.waitstatus_to_exitcode(status), _threads._one_depth)
"""


def test_a_fork_inside_another_threads_blas_section_leaves_the_child_free(tmp_path):
    out = forking_script_output(tmp_path, FORK_DURING_ONE_BLAS_THREAD, timeout=60)
    assert out == ["0", "0"]


# ---- leaks --------------------------------------------------------------------------------------
def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            import os
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pytest.skip("resident memory is read from /proc (Linux)")


def test_memory_settles_over_many_fits_and_predictions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 32))
    y = rng.integers(0, 4, 256)
    model = af.Model(af.Architecture(32, [af.Dense(64, "relu"), af.Dense(4)], "softmax"))
    hp = af.Hyperparameters(epochs=1, batch_size=64)

    def fits(n):
        for _ in range(n):
            fitted = af.fit(model, X, y, hp)
        return fitted

    fitted = fits(100)                       # warm up allocator and caches
    before = _rss_bytes()
    fitted = fits(1000)
    after_fits = _rss_bytes()
    row = X[:1]
    for _ in range(100_000):
        fitted.predict_proba(row)
    after_predicts = _rss_bytes()
    # A leaked batch buffer (64 x 64 doubles = 32 KiB) per fit would add 32 MiB;
    # a leaked 1-row scratch buffer per prediction, several MiB.
    assert after_fits - before < 8 * 2**20
    assert after_predicts - after_fits < 4 * 2**20


# ---- numerics -------------------------------------------------------------------------------------
def _network_with_logits(output, value):
    model = af.Model(af.Architecture(1, [af.Dense(2)], output), "float32")
    theta = model.flatten({"dense0.weight": np.array([[value, -value]]),
                           "dense0.bias": np.zeros(2)})
    return model, theta


@pytest.mark.parametrize("value", [1e4, -1e4])
def test_softmax_and_cross_entropy_stay_finite(value):
    model, theta = _network_with_logits("softmax", value)
    P = model.predict(theta, [[1.0]])
    assert np.isfinite(P).all() and P.sum() == pytest.approx(1)
    loss, grad = model.loss_and_grad(theta, [[1.0]], [1 if value > 0 else 0])
    assert loss == pytest.approx(2e4, rel=1e-6) and np.isfinite(grad).all()


@pytest.mark.parametrize("value", [1e3, -1e3])
def test_sigmoid_and_binary_cross_entropy_stay_finite(value):
    model, theta = _network_with_logits("sigmoid", value)
    P = model.predict(theta, [[1.0]])
    assert np.isfinite(P).all()
    loss, grad = model.loss_and_grad(theta, [[1.0]], [[0, 1]] if value > 0 else [[1, 0]])
    assert np.isfinite(loss) and loss == pytest.approx(2e3, rel=1e-6) and np.isfinite(grad).all()


def test_float32_training_of_w2_matches_float64_accuracy():
    # W2 (784-256-128-10) on the digits, upsampled from 8x8 to 28x28
    X, y = digits()
    images = np.kron(X.reshape(-1, 8, 8), np.ones((1, 3, 3)))         # 24x24
    X784 = np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(len(X), 784)
    train, test = af.validation_split(len(y), 0.25, seed=0, labels=y)
    arch = af.Architecture(784, [af.Dense(256, "relu"), af.Dense(128, "relu"), af.Dense(10)],
                           "softmax")
    hp = af.Hyperparameters(epochs=8, batch_size=64, learning_rate=1e-3, seed=0)
    scores = {dt: af.fit(af.Model(arch, dt), X784[train], y[train], hp).score(X784[test], y[test])
              for dt in ("float32", "float64")}
    assert scores["float64"] > 0.95
    assert abs(scores["float32"] - scores["float64"]) <= 0.01


def test_divergence_with_a_huge_learning_rate_names_the_epoch():
    X, y = digits()
    model = af.Model(af.Architecture(64, [af.Dense(32, "relu"), af.Dense(10)], "softmax"))
    with pytest.raises(af.DivergenceError, match=r"epoch \d+"):
        af.fit(model, X * 1e6, y, af.Hyperparameters(optimizer="sgd", learning_rate=1e6,
                                                     epochs=20))


def test_impossible_sizes_raise_memory_error_before_allocating():
    from archfit._memory import available_bytes
    if available_bytes() is None:
        pytest.skip("available memory is unknown on this platform")
    huge = af.Model(af.Architecture(2**30, [af.Dense(64)], "linear"), "float32")   # 256 GiB
    with pytest.raises(MemoryError, match="not enough memory for the parameters"):
        huge.init(0)
    wide = af.Model(af.Architecture(2, [af.Dense(2**31 - 1), af.Dense(1)], "linear"), "float64")
    with pytest.raises(MemoryError, match="not enough memory"):
        wide.init(0)
