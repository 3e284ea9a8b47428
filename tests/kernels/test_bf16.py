"""bfloat16 products (bf16.h) against a NumPy twin that rounds every operand
to bfloat16 exactly and accumulates in float32 pair by pair: on the bodies this
CPU runs (test_isolated.py runs this suite on every path), bit for bit where
the body's arithmetic is defined by archfit (plain C and the widened AVX2
body), and to float32 rounding where it is the CPU's own instruction
(VDPBF16PS, AMX), whose bodies are also checked bit for bit under emulation
(tests/test_bf16_emulation.py)."""
import numpy as np
import pytest

from archfit._kernels import _blas, _cpu

pytestmark = pytest.mark.filterwarnings("ignore:precision='bfloat16'.*:RuntimeWarning")

# bodies whose arithmetic is archfit's own (or, in a test build, emulated as the SDM defines it)
EXACT = ("portable", "widened") + (("vdpbf16ps", "amx") if _cpu.EMULATED else ())
NEEDS = {"portable": "portable", "widened": "avx2", "vdpbf16ps": "avx512_bf16", "amx": "amx"}


def runnable():
    level = _cpu.LEVELS[_cpu.ISA]
    return [b for b, isa in NEEDS.items() if _cpu.LEVELS[isa] <= level]


def bf16(x):
    """x (float32) rounded to bfloat16, to nearest with ties to even; a
    subnormal becomes a signed zero, a NaN stays a (quiet) NaN."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    exponent = u & 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000)
    r = np.where(exponent == 0, u & 0x80000000, r)
    special = exponent == 0x7F800000
    quiet = np.where(u & 0x007FFFFF, np.uint64(0x00400000), np.uint64(0))
    r = np.where(special, (u & 0xFFFF0000) | quiet, r)
    return r.astype(np.uint32).view(np.float32)


def twin(A, B, C=None, odd_first=True):
    """op(A) @ op(B) (+ C): each element one float32 chain over the pairs of k,
    in order, the two terms of a pair in the instruction's order."""
    a, b = bf16(A), bf16(B)
    if a.shape[1] % 2:
        a = np.hstack([a, np.zeros((a.shape[0], 1), np.float32)])
        b = np.vstack([b, np.zeros((1, b.shape[1]), np.float32)])
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32) if C is None else C.copy()
    for p in range(a.shape[1] // 2):
        for t in ((2 * p + 1, 2 * p) if odd_first else (2 * p, 2 * p + 1)):
            acc = acc + np.outer(a[:, t], b[t])      # the product is exact in float32
    return acc


def test_rounding_to_nearest_even_zeroes_subnormals_and_keeps_nan():
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -7)                       # bfloat16's spacing at 1
    values = np.array([one + ulp / 2, one + 3 * ulp / 2, one + ulp / 2 + 2 ** -20,
                       -one - ulp / 2, 1e-40, -1e-40, np.inf, -np.inf, 3.0e38], np.float32)
    expected = np.array([1.0, 1 + 2 * ulp, 1 + ulp, -1.0, 0.0, -0.0, np.inf, -np.inf, 2.9979e38],
                        np.float32)
    got = _blas.bf16_matmul(values[:, None], np.ones((1, 1), np.float32))[:, 0]
    assert np.array_equal(got[:8], expected[:8])
    assert np.signbit(bf16(values)[5]) and got[8] == bf16(np.float32(3.0e38))
    assert np.array_equal(bf16(values)[:8], expected[:8])
    nan = _blas.bf16_matmul(np.array([[np.nan, 1.0]], np.float32), np.ones((2, 1), np.float32))
    assert np.isnan(nan).all()


SHAPES = [(1, 1, 1), (1, 70, 300), (3, 5, 2), (16, 64, 256), (17, 65, 257), (40, 130, 7),
          (33, 3, 600), (5, 128, 0)]


@pytest.mark.parametrize("body", runnable())
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True)])
def test_every_body_matches_the_twin(body, m, n, k, trans):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    A = rng.normal(size=(k, m) if trans[0] else (m, k)).astype(np.float32)
    B = rng.normal(size=(n, k) if trans[1] else (k, n)).astype(np.float32)
    C = rng.normal(size=(m, n)).astype(np.float32)
    opA, opB = (A.T if trans[0] else A), (B.T if trans[1] else B)
    for start in (None, C):
        got = _blas.bf16_matmul(A, B, *trans, C=None if start is None else start.copy(),
                                body=body)
        expected = twin(opA, opB, start, odd_first=body != "amx")
        if body in EXACT:
            assert got.tobytes() == expected.tobytes()
        else:   # the CPU's own arithmetic: float32 rounding of the same sums
            scale = np.abs(bf16(opA)) @ np.abs(bf16(opB)) + (0 if start is None else abs(start))
            assert np.all(np.abs(got - expected) <= 4e-6 * scale + 1e-30)
        # against float64 products of the rounded operands: bfloat16's error, not more
        exact = bf16(opA).astype(np.float64) @ bf16(opB).astype(np.float64) + (
            0 if start is None else start)
        assert np.allclose(got, exact, rtol=1e-4, atol=1e-4 * max(1, k) ** 0.5)


def test_the_process_body_follows_the_level():
    assert _blas.BF16_BODY == {"portable": "portable", "avx2": "widened", "avx512": "widened",
                               "avx512_bf16": "vdpbf16ps", "amx": "amx"}[_cpu.ISA]
    with pytest.raises(ValueError, match="one of"):
        _blas.bf16_matmul(np.ones((1, 1)), np.ones((1, 1)), body="fp8")
    above = [b for b in NEEDS if b not in runnable()]
    for body in above:
        with pytest.raises(ValueError, match="does not run on"):
            _blas.bf16_matmul(np.ones((1, 1)), np.ones((1, 1)), body=body)


# ---- a network's passes in bfloat16 -----------------------------------------------------------
def _network_twin(model, theta, X, y):
    """Outputs, loss and gradient of a DENSE-relu network with a linear head
    and squared error: every product through the bfloat16 product checked
    above (bit for bit against its NumPy twin), everything else in float32 as
    NumPy does it."""
    params = model.unflatten(theta)
    L = len(model.architecture.layers)
    W = [params[f"dense{l}.weight"] for l in range(L)]
    b = [params[f"dense{l}.bias"] for l in range(L)]
    a, zs = [X], []
    for l in range(L):
        z = _blas.bf16_matmul(a[-1], W[l]) + b[l]
        zs.append(z)
        a.append(np.maximum(z, 0) if l < L - 1 else z)
    n = len(X)
    residual = a[-1] - y.reshape(n, -1)
    loss = float(0.5 * (residual.astype(np.float64) ** 2).sum() / n)
    delta = (residual / np.float32(n)).astype(np.float32)
    grads = {}
    for l in reversed(range(L)):
        grads[f"dense{l}.weight"] = _blas.bf16_matmul(a[l], delta, True, False)
        grads[f"dense{l}.bias"] = delta.sum(axis=0)
        if l > 0:
            delta = _blas.bf16_matmul(delta, W[l], False, True) * (zs[l - 1] > 0)
    return a[-1], loss, model.flatten(grads)


def test_a_networks_passes_in_bfloat16_match_the_twin():
    import archfit as af
    rng = np.random.default_rng(5)
    arch = af.Architecture(37, [af.Dense(70, "relu"), af.Dense(33, "relu"), af.Dense(3)],
                           "linear")
    model = af.Model(arch)
    twin = model._in_precision("bfloat16")
    theta = model.init(1) + (0.05 * rng.normal(size=model.n_parameters)).astype(np.float32)
    X = rng.normal(size=(300, 37)).astype(np.float32)
    y = rng.normal(size=(300, 3)).astype(np.float32)
    outputs, loss, grad = _network_twin(model, theta, X, y)
    # the forward pass is the products and float32 bias adds and maxima: the same bits
    assert twin.predict(theta, X).tobytes() == outputs.tobytes()
    got_loss, got_grad = twin.loss_and_grad(theta, X, y)
    assert got_loss == pytest.approx(loss, rel=1e-6)
    # the errors differ from NumPy's in float32's last bits, which may round an
    # operand to a neighbouring bfloat16: close, and far closer than float32 products
    scale = np.abs(grad).max()
    assert np.abs(got_grad - grad).max() <= 2e-4 * scale
    plain = model.loss_and_grad(theta, X, y)[1]
    assert np.abs(plain - grad).max() > 10 * np.abs(got_grad - grad).max()


def test_bfloat16_passes_and_fits_do_not_depend_on_threads():
    import archfit as af
    from archfit._kernels import _plan
    rng = np.random.default_rng(14)
    arch = af.Architecture(60, [af.Dense(256, "relu"),
                                af.Residual([af.LayerNorm(), af.Dense(256, "relu")]),
                                af.Dense(4)], "softmax")
    model = af.Model(arch)
    twin = model._in_precision("bfloat16")
    theta = model.init(15)
    X = rng.normal(size=(1000, 60)).astype(np.float32)
    y = rng.integers(0, 4, 1000)
    outs, grads = [], []
    for threads in (1, 2):
        _plan.calls_end_py()
        outs.append(twin._predict(theta, X, threads))
        grads.append(twin.loss_and_grad(theta, X, y, n_threads=threads)[1])
    assert outs[0].tobytes() == outs[1].tobytes()
    assert grads[0].tobytes() == grads[1].tobytes()
    assert twin.predict(theta, X[3:4]).tobytes() == outs[0][3:4].tobytes()
    hp = af.Hyperparameters(epochs=2, batch_size=160, seed=3, precision="bfloat16")
    fits = [af.fit(model, X[:640], y[:640], hp.replace(n_threads=t)) for t in (1, 2)]
    assert fits[0].parameters.tobytes() == fits[1].parameters.tobytes()


def test_bfloat16_training_keeps_its_packed_copies_current():
    # a bfloat16 fit packs every DENSE layer's W (for X W) and W^T (for D W^T)
    # once, and each block's update re-packs its rows: after two epochs the
    # copies are θ's weights packed afresh (a stale pair would differ). Odd
    # widths and a 161-row batch put pairs across every block and shard edge.
    import archfit as af
    from archfit.kernels import Trainer
    arch = af.Architecture(37, [af.Dense(257, "relu"), af.Dense(129, "relu"), af.Dense(4)],
                           "softmax")
    model = af.Model(arch)
    twin = model._in_precision("bfloat16")
    plan = twin._kernel.training_plan(np.float32, 643, 161, threads=2)
    assert plan["packed"] and plan["shards"] == 2
    rng = np.random.default_rng(3)
    X = rng.normal(size=(643, 37)).astype(np.float32)
    y = rng.integers(0, 4, 643).astype(np.intc)
    thetas = []
    for threads in (1, 2):
        theta = model.init(0)
        trainer = Trainer(twin._kernel, np.float32, 643, 161, "adam", seed=1, threads=threads)
        for epoch in range(2):
            trainer.epoch(theta, X, y, None, None, 1e-2, epoch, threads)
        thetas.append(theta)
    assert thetas[0].tobytes() == thetas[1].tobytes()
    words = trainer.packed.view(np.uint32)
    params = model.unflatten(theta)
    at, sizes = 0, [37, 257, 129, 4]
    for l in range(3):
        W = params[f"dense{l}.weight"]
        P = _blas.bf16_pack_py(W)
        assert np.array_equal(words[at:at + P.size], P), f"layer {l}'s W"
        at += P.size + _blas.bf16_pack_py(np.zeros((161, sizes[l + 1]), np.float32)).size
        if l > 0:
            PT = _blas.bf16_pack_py(W, trans=True)
            assert np.array_equal(words[at:at + PT.size], PT), f"layer {l}'s W^T"
            at += PT.size
    assert at == words.size


@pytest.mark.parametrize("trans", [False, True])
def test_packed_operands_give_the_products_bits(trans):
    # bf16_pack_py's words are what the product packs itself: their bfloat16
    # halves are the operand rounded, pair by pair, zero past k and n
    rng = np.random.default_rng(8)
    k, n = 37, 70
    B = rng.normal(size=(n, k) if trans else (k, n)).astype(np.float32)
    words = _blas.bf16_pack_py(B, trans=trans)
    op = bf16(B.T if trans else B)
    kpad = ((k + 1) // 2 + 15) // 16 * 16
    npad = (n + 63) // 64 * 64
    assert words.size == kpad * npad
    panels = words.reshape(npad // 64, kpad, 64)           # panel, pair, column
    full = np.zeros((2 * kpad, npad), np.float32)
    full[:k, :n] = op
    lo = (panels & 0xFFFF).astype(np.uint32) << 16
    hi = panels & 0xFFFF0000
    for name, half, rows in (("even", lo, full[0::2]), ("odd", hi, full[1::2])):
        got = half.view(np.float32).transpose(1, 0, 2).reshape(kpad, npad)
        assert np.array_equal(got.view(np.uint32), rows.view(np.uint32)), name
