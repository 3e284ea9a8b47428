"""Every compiled kernel against its plain-NumPy twin in reference.py, float32 and float64."""
import numpy as np
import pytest

from archfit._kernels import _blas, _elementwise, _optimizers, _random
from archfit import kernels
from archfit.kernels import ACTIVATIONS
from conftest import assert_close
import reference as ref


def rand(rng, shape, dtype, scale=1.0):
    return np.ascontiguousarray(rng.normal(0, scale, size=shape), dtype=dtype)


# ---- BLAS -------------------------------------------------------------------------------
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(7, 5, 3), (1, 5, 3), (7, 1, 3), (1, 1, 4), (4, 6, 1)])
def test_gemm_matches_numpy(dtype, trans_a, trans_b, m, n, k):
    # (1, n) and (m, 1) outputs take the GEMV path
    rng = np.random.default_rng(0)
    A = rand(rng, (k, m) if trans_a else (m, k), dtype)
    B = rand(rng, (n, k) if trans_b else (k, n), dtype)
    C = rand(rng, (m, n), dtype)
    opA = A.T if trans_a else A
    opB = B.T if trans_b else B
    expected = 2.0 * opA.astype(np.float64) @ opB.astype(np.float64) + 0.5 * C.astype(np.float64)
    out = C.copy()
    _blas.gemm_py(A, B, out, trans_a, trans_b, 2.0, 0.5)
    assert_close(out, expected, dtype, scale=10)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 130, 200])
@pytest.mark.parametrize("k", [1, 5, 300])
def test_vecmat_one_row_product_matches_numpy(dtype, n, k):
    # x @ W for one row (alpha 1, beta 0) takes archfit's vector-matrix kernel:
    # every block width (64, 8, single columns) and its tails
    rng = np.random.default_rng(2)
    x = rand(rng, (1, k), dtype)
    W = rand(rng, (k, n), dtype)
    out = np.full((1, n), np.nan, dtype)
    _blas.gemm_py(x, W, out)
    assert_close(out, x.astype(np.float64) @ W.astype(np.float64), dtype, scale=10)
    # the same product through a column slice of a wider W (leading dimension > n)
    wide = np.concatenate([W, rand(rng, (k, 5), dtype)], axis=1)
    part = np.full((1, n + 5), np.nan, dtype)
    _blas.gemm_py(x, wide, part)
    assert np.array_equal(part[:, :n], out)    # a column's value ignores its neighbours


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 3, 4), (4, 16, 8), (7, 10, 33), (64, 64, 64),
                                   (9, 17, 1), (5, 40, 3), (66, 2, 70)])
def test_small_gemm_matches_numpy_and_keeps_rows_independent(dtype, trans_a, trans_b, m, n, k):
    # alpha 1, beta 0 and small operands take the register-blocked small-GEMM kernel
    # (rows in blocks of four, columns in blocks of 16 or 8 with masked edges)
    rng = np.random.default_rng(3)
    A = rand(rng, (k, m) if trans_a else (m, k), dtype)
    B = rand(rng, (n, k) if trans_b else (k, n), dtype)
    opA = A.T if trans_a else A
    opB = B.T if trans_b else B
    out = np.full((m, n), np.nan, dtype)
    _blas.gemm_py(A, B, out, trans_a, trans_b)
    assert_close(out, opA.astype(np.float64) @ opB.astype(np.float64), dtype, scale=10)
    for i in (0, m - 1):       # each row alone: the same bits as inside the block
        row = np.full((1, n), np.nan, dtype)
        _blas.gemm_py(np.ascontiguousarray(opA[i:i + 1]), B, row, False, trans_b)
        assert np.array_equal(row[0], out[i])


needs_packed = pytest.mark.skipif(not _blas.PACKED_GEMM,
                                  reason="the packed GEMM needs a CPU with AVX2 and FMA")


@needs_packed
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 3, 2), (6, 16, 256), (7, 17, 257),
                                   (12, 32, 128), (23, 65, 129), (97, 33, 513),
                                   (200, 300, 20), (1024, 256, 784), (13, 1100, 1030)])
def test_packed_gemm_matches_numpy_and_keeps_rows_independent(dtype, trans_a, m, n, k):
    # blocks of 6 rows (AVX2) or 12 (AVX-512) with a shorter tail, panels of
    # two registers with a masked edge, k in blocks of 256 (AVX2) or 128,
    # rows in blocks of 96, columns in blocks of 256; a packed W of over 4 MiB
    # (the kernel prefetches it)
    rng = np.random.default_rng(4)
    A = rand(rng, (m, k), dtype)
    W = rand(rng, (k, n), dtype)
    P = _blas.pack_py(W)
    panel = 2 * (32 if kernels.ISA == "avx2" else 64) // np.dtype(dtype).itemsize
    assert P.dtype == dtype and P.shape[0] == k * (-(-n // panel) * panel)
    out = np.full((m, n), np.nan, dtype)
    _blas.packed_gemm_py(np.ascontiguousarray(A.T) if trans_a else A, P, out, trans_a)
    assert_close(out, A.astype(np.float64) @ W.astype(np.float64), dtype,
                 scale=max(10, k // 8))   # sums of k products of N(0, 1) values
    for i in {0, m // 2, m - 1}:   # each row alone (vecmat): the same bits
        row = np.full((1, n), np.nan, dtype)
        _blas.gemm_py(np.ascontiguousarray(A[i:i + 1]), W, row)
        assert np.array_equal(row[0], out[i])
    part = np.full((m - m // 3, n), np.nan, dtype)    # and any subset of rows
    _blas.packed_gemm_py(np.ascontiguousarray(A[m // 3:]), P, part)
    assert np.array_equal(part, out[m // 3:])
    # A given as A or as A^T (copied into the kernel's rows by tiles transposed
    # in registers, edges one by one): the same chains, the same bits
    other = np.full((m, n), np.nan, dtype)
    _blas.packed_gemm_py(A if trans_a else np.ascontiguousarray(A.T), P, other, not trans_a)
    assert np.array_equal(other, out)


@needs_packed
def test_packed_gemm_refuses_mismatched_shapes(dtype):
    P = _blas.pack_py(np.ones((8, 5), dtype))
    with pytest.raises(ValueError, match="do not agree"):
        _blas.packed_gemm_py(np.ones((3, 9), dtype), P, np.empty((3, 5), dtype))


# ---- activations ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bias_activation_forward(dtype, name):
    rng = np.random.default_rng(1)
    Z = rand(rng, (6, 9), dtype, 3.0)
    bias = rand(rng, 9, dtype)
    z_expected = Z.astype(np.float64) + bias.astype(np.float64)
    A = np.empty_like(Z)
    _elementwise.forward_activation(Z, bias, A, name)
    # the kernel adds in the model's dtype; compare with the rounded sum
    assert_close(Z, z_expected, dtype, scale=5)
    assert_close(A, ref.activation(name, Z.astype(np.float64)), dtype, scale=5)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward(dtype, name):
    rng = np.random.default_rng(2)
    Z = rand(rng, (5, 8), dtype, 3.0)
    A = ref.activation(name, Z).astype(dtype)
    D = rand(rng, (5, 8), dtype)
    expected = D.astype(np.float64) * ref.activation_grad(name, Z.astype(np.float64))
    _elementwise.backward_activation(D, Z, A, name)
    # tanh/sigmoid derive from the rounded activation: allow float32 rounding of A
    assert_close(D, expected, dtype, scale=10)


def test_float32_gelu_without_libm_is_accurate_everywhere_and_independent_of_position():
    # gelu.h: erf by a rational function, exp by a polynomial, vectorised by the
    # compiler. Over a dense grid and its edges (the clamps at |z| = 4 sqrt 2 and
    # exp's -87, tiny and huge values, NaN) both directions stay within a few
    # float32 ulps of the exact function, and a value's result does not depend on
    # where it sits in the row (vector body or scalar tail: a shard's offset)
    grid = np.linspace(-14, 14, 280_001)
    special = np.array([0.0, 1e-30, -1e-30, 1e-6, -1e-6, 4 * np.sqrt(2), -4 * np.sqrt(2),
                        np.sqrt(174), -np.sqrt(174), 13.2, -13.2, 1e4, -1e4, 3e38, -3e38])
    z = np.concatenate([grid, special]).astype(np.float32)
    exact = z.astype(np.float64)
    forward, backward = ref.activation("gelu", exact), ref.activation_grad("gelu", exact)
    for shift in (0, 1, 5):
        row = np.concatenate([np.zeros(shift, np.float32), z])[None, :]
        Z, A = row.copy(), np.empty_like(row)
        _elementwise.forward_activation(Z, np.zeros(row.shape[1], np.float32), A, "gelu")
        D = np.ones_like(row)
        _elementwise.backward_activation(D, row.copy(), A, "gelu")
        a, d = A[0, shift:].astype(np.float64), D[0, shift:].astype(np.float64)
        if shift == 0:
            first = (a, d)
        else:
            assert np.array_equal(a, first[0]) and np.array_equal(d, first[1])
    scale = np.maximum(np.abs(exact), 1.0)
    assert np.max(np.abs(a - forward) / scale) < 4e-7
    assert np.max(np.abs(d - backward)) < 4e-7
    nan = np.full((1, 3), np.nan, np.float32)
    A = np.empty_like(nan)
    _elementwise.forward_activation(nan.copy(), np.zeros(3, np.float32), A, "gelu")
    D = np.ones_like(nan)
    _elementwise.backward_activation(D, nan, A, "gelu")
    assert np.isnan(A).all() and np.isnan(D).all()


@pytest.mark.parametrize("name", ["softmax", "sigmoid", "linear", "exponential"])
def test_heads(dtype, name):
    rng = np.random.default_rng(3)
    Z = rand(rng, (6, 4), dtype, 4.0)
    P = np.empty_like(Z)
    _elementwise.output(Z, P, name)
    assert_close(P, ref.head(name, Z), dtype, scale=5)


def test_heads_are_finite_for_extreme_logits(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    P = np.empty_like(Z)
    _elementwise.output(Z, P, "softmax")
    np.testing.assert_allclose(P, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    _elementwise.output(Z, P, "sigmoid")
    assert np.isfinite(P).all() and P[0, 0] == 1 and P[0, 1] == 0


# ---- losses -----------------------------------------------------------------------------
LOSS_CASES = [("cross_entropy", 5), ("binary_cross_entropy", 3), ("squared_error", 2),
              ("huber", 2), ("poisson", 3)]


@pytest.mark.parametrize("loss,k", LOSS_CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_output_gradient(dtype, loss, k, weighted):
    rng = np.random.default_rng(4)
    n = 11
    Z = rand(rng, (n, k), dtype, 2.0)
    labels = targets = None
    if loss == "cross_entropy":
        labels = rng.integers(0, k, n).astype(np.intc)
    elif loss == "binary_cross_entropy":
        targets = rng.integers(0, 2, (n, k)).astype(dtype)
    elif loss == "poisson":
        targets = rng.poisson(2.0, (n, k)).astype(dtype)       # counts, zeros among them
    else:
        targets = rand(rng, (n, k), dtype, 2.0)
    w = rng.uniform(0.1, 2.0, n).astype(dtype) if weighted else None
    D = np.empty_like(Z)
    scale = 1 / 7.0
    total = _elementwise.loss_grad(Z, loss, labels, targets, w, D, scale, 0.8)
    rows, dz = ref.loss_rows(loss, Z, labels, targets, 0.8)
    w64 = np.ones(n) if w is None else w.astype(np.float64)
    assert_close(total, (w64 * rows).sum(), dtype, scale=10)
    assert_close(D, dz * w64[:, None] * scale, dtype, scale=10)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 9, 10, 13])
def test_cross_entropy_rows_of_every_width(dtype, k):
    # cross_entropy.h takes a row four logits at a time: every tail, and no
    # write past the last row (a sentinel after D)
    rng = np.random.default_rng(k)
    n = 6
    Z = rand(rng, (n, k), dtype, 3.0)
    labels = rng.integers(0, k, n).astype(np.intc)
    w = rng.uniform(0.1, 2.0, n).astype(dtype)
    flat = np.full(n * k + 8, 7.0, dtype=dtype)
    D = flat[:n * k].reshape(n, k)
    total = _elementwise.loss_grad(Z, "cross_entropy", labels, None, w, D, 0.5)
    rows, dz = ref.loss_rows("cross_entropy", Z, labels)
    assert_close(total, (w.astype(np.float64) * rows).sum(), dtype, scale=10)
    assert_close(D, dz * w.astype(np.float64)[:, None] * 0.5, dtype, scale=10)
    assert (flat[n * k:] == 7.0).all()
    assert _elementwise.loss_grad(Z, "cross_entropy", labels, None, w) == total


def test_exp_of_shifted_logits_is_within_one_ulp():
    # the exp cross-entropy's rows use (x = z - max z <= 0) against NumPy's,
    # over the whole range where the result is a normal double
    rng = np.random.default_rng(0)
    x = -rng.uniform(0, 1, 50_000) * 10.0 ** rng.uniform(-20, 2.85, 50_000)
    x = np.concatenate([x, [0.0, -0.0, -1e-300, -np.log(2) / 2, -708.3]])
    y = _elementwise.exp_nonpositive(x)
    exact = np.exp(x)
    assert (np.abs(y - exact) <= np.spacing(exact)).all()
    # below the smallest normal double: 0, as flush-to-zero makes it; NaN stays NaN
    edge = _elementwise.exp_nonpositive(np.array([-708.4, -745.2, -1e300, -np.inf, np.nan]))
    assert (edge[:4] == 0).all() and np.isnan(edge[4])


def test_losses_finite_for_extreme_logits(dtype):
    Z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype)
    D = np.empty_like(Z)
    ce = _elementwise.loss_grad(Z, "cross_entropy", labels=np.array([1, 1], np.intc), D=D)
    assert ce == pytest.approx(2e4) and np.isfinite(D).all()
    bce = _elementwise.loss_grad(Z, "binary_cross_entropy", targets=1 - np.eye(2, dtype=dtype), D=D)
    assert bce == pytest.approx(4e4) and np.isfinite(D).all()


def test_all_finite(dtype):
    x = np.zeros(10, dtype=dtype)
    assert _elementwise.finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[7] = bad
        assert not _elementwise.finite(y)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_all_finite_shared_among_threads(dtype, threads):
    # more than two pieces of 256K elements: threads share them; a bad value
    # in any piece, the last short one included, is found
    x = np.zeros(3 * 262144 + 5, dtype=dtype)
    assert _elementwise.finite(x, threads)
    for i in (0, 262143, 262144, 600000, x.size - 1):
        y = x.copy()
        y[i] = np.nan if i % 2 else -np.inf
        assert not _elementwise.finite(y, threads)


# ---- optimizers -------------------------------------------------------------------------
OPTIMIZER_CASES = [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                   ("adam", {}), ("adamw", {})]


@pytest.mark.parametrize("kind,extra", OPTIMIZER_CASES)
def test_optimizer_steps_match_reference(dtype, kind, extra):
    rng = np.random.default_rng(5)
    P = 13
    theta = rand(rng, P, dtype)
    m, v = np.zeros(P, dtype), np.zeros(P, dtype)
    reference = ref.Optimizer(kind, 0.05, **extra)
    expected = theta.astype(np.float64)
    l2 = 0.1
    for t in range(1, 4):
        grad = rand(rng, P, dtype)
        reference.step(expected, grad.astype(np.float64), l2=l2)
        _optimizers.step(kind, theta, grad, m, v, t, 0.05,
                         nesterov=extra.get("nesterov", False),
                         penalty=0.0 if kind == "adamw" else l2,
                         decay=l2 if kind == "adamw" else 0.0)
    assert_close(theta, expected, dtype, scale=20)


def test_hand_worked_sgd_step():
    # theta = [1.0, -2.0], grad = [0.5, 0.25], lr = 0.1, L2 penalty 0.2:
    #   effective gradient = grad + 0.2 * theta = [0.5 + 0.2, 0.25 - 0.4] = [0.7, -0.15]
    #   theta - 0.1 * [0.7, -0.15] = [1.0 - 0.07, -2.0 + 0.015] = [0.93, -1.985]
    theta = np.array([1.0, -2.0])
    grad = np.array([0.5, 0.25])
    _optimizers.step("sgd", theta, grad, np.zeros(2), np.zeros(2), 1, 0.1, penalty=0.2)
    np.testing.assert_allclose(theta, [0.93, -1.985], rtol=1e-15)


def test_hand_worked_adam_first_step():
    # Adam's first step moves each coordinate by lr * sign(g) (up to epsilon):
    #   m = 0.1 g, v = 0.001 g^2; m_hat = g, v_hat = g^2; step = lr * g / (|g| + eps)
    theta = np.array([0.0, 1.0])
    grad = np.array([3.0, -0.5])
    _optimizers.step("adam", theta, grad, np.zeros(2), np.zeros(2), 1, 0.01, epsilon=0.0)
    np.testing.assert_allclose(theta, [-0.01, 1.01], rtol=1e-14)


# ---- random streams -------------------------------------------------------------------------
def test_permutation_is_a_deterministic_permutation():
    p = _random.permutation(1000, seed=3, epoch=2)
    assert sorted(p.tolist()) == list(range(1000))
    assert np.array_equal(p, _random.permutation(1000, seed=3, epoch=2))
    assert not np.array_equal(p, _random.permutation(1000, seed=3, epoch=3))
    assert not np.array_equal(p, _random.permutation(1000, seed=4, epoch=2))


def test_uniform_stream_looks_uniform():
    u = _random.uniform(200_000, seed=1)
    assert 0 <= u.min() and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = len(u) / 20
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 45  # 19 degrees of freedom: p < 0.001 beyond ~43.8


def test_dropout_mask(dtype):
    mask = np.empty(100_000, dtype=dtype)
    _random.mask(mask, 0.25, seed=0)
    keep = mask != 0
    assert abs(keep.mean() - 0.75) < 0.01
    np.testing.assert_allclose(mask[keep], 1 / 0.75, rtol=1e-6)
    u = _random.uniform(len(mask), seed=0, stream=1)
    assert np.array_equal(keep, u >= 0.25)


@pytest.mark.parametrize("rate", [1e-12, 0.1, 0.5, 0.999])
@pytest.mark.parametrize("n,split", [(1, 0), (3, 0), (4, 0), (7, 0), (8, 0), (9, 0), (13, 5),
                                     (1000, 0), (1003, 501)])
def test_dropout_mask_is_the_stream_compared_with_the_rate(dtype, rate, n, split):
    # dropout.h draws four or eight at a time and compares integers: exactly
    # next_double() < rate element by element, and a call split in two
    # continues the stream where the first part left it
    mask = np.full(n + 8, 5.0, dtype=dtype)
    _random.mask(mask[:n], rate, seed=3, epoch=2, split=split)
    u = _random.uniform(n, seed=3, epoch=2, stream=1)
    keep = np.array(1.0 / (1.0 - rate), dtype=dtype)
    assert np.array_equal(mask[:n], np.where(u < rate, np.zeros((), dtype), keep))
    assert (mask[n:] == 5.0).all()


# ---- fingerprints -----------------------------------------------------------------------
def test_fingerprint_is_xxh64_for_both_seeds():
    from archfit._kernels._hashing import Fingerprint
    # published XXH64 values: the empty input with seed 0, and "a"/"abc" with seed 0
    assert Fingerprint().digest(0) == 0xEF46DB3751D8E999
    assert Fingerprint().update(b"a").digest(0) == 0xD24EC4F1A98C6E5B
    assert Fingerprint().update(b"abc").digest(0) == 0x44BC2CF5AD770999


def test_fingerprint_streams_and_sees_every_byte():
    from archfit._kernels._hashing import Fingerprint
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    whole = Fingerprint().update(data).hexdigest()
    assert len(whole) == 32 and whole[:16] != whole[16:]
    for cuts in ([1, 31, 32, 33, 500], [7], [64, 65, 999]):     # any split, same hash
        h, start = Fingerprint(), 0
        for cut in cuts + [len(data)]:
            h.update(data[start:cut])
            start = cut
        assert h.hexdigest() == whole
    for i in (0, 31, 32, 999):                                   # one bit anywhere
        flipped = bytearray(data)
        flipped[i] ^= 1
        assert Fingerprint().update(bytes(flipped)).hexdigest() != whole
    assert Fingerprint().update(data[:-1]).hexdigest() != whole  # and the length
    arr = rng.normal(size=(30, 7)).astype(np.float32)            # arrays: their C-order bytes
    assert Fingerprint().update(arr).hexdigest() == Fingerprint().update(arr.tobytes()).hexdigest()
    assert (Fingerprint().update(np.asfortranarray(arr)).hexdigest()
            == Fingerprint().update(arr.tobytes()).hexdigest())


# ---- class labels -----------------------------------------------------------------------
def test_integer_codes_match_unique_and_searchsorted():
    from archfit._kernels._labels import integer_codes
    rng = np.random.default_rng(6)
    for labels in (rng.integers(-5, 7, 1000), np.array([3]), np.array([9, 9, 2, 9]),
                   rng.choice([-10**15, 0, 10**15 + 3], 50)[:0] + np.array([], np.int64),
                   np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).max - 2])):
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        found = integer_codes(labels, 4 * labels.size + 1024)
        if labels.size == 0:
            assert found is None
            continue
        classes, codes = found
        assert np.array_equal(classes, np.unique(labels))
        assert codes.dtype == np.intc
        assert np.array_equal(codes, np.searchsorted(classes, labels))
    # too wide a range for a table (even across the whole int64 range): None
    wide = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max], np.int64)
    assert integer_codes(wide, 1 << 20) is None
    assert integer_codes(np.array([0, 5000], np.int64), 100) is None
