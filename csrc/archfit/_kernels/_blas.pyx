"""Row-major GEMM through ``scipy.linalg.cython_blas``.

Design: every matrix in archfit is C-contiguous (row-major). Fortran BLAS is
column-major, and a row-major ``C = op(A) op(B)`` is the column-major
``C^T = op(B)^T op(A)^T``; so we call BLAS with the operands swapped and the
dimensions exchanged, and no data is ever transposed or copied.

A product with a single output row or column (one sample at prediction time, a
one-unit output layer) goes to GEMV instead: OpenBLAS's GEMM is several times
slower than its GEMV on such shapes. The forward product of one row,
``x @ W``, goes to archfit's own vector-matrix kernel (``vecmat.h``), which
skips BLAS's call overhead: at one sample that overhead is most of the time.
Small products (``op(B)`` within SMALL_B elements, at most SMALL_FMAS
multiply-adds) go to ``smallgemm.h``, a register-blocked kernel: for the layers
of small networks it beats OpenBLAS, whose dispatch and packing cost as much
as the arithmetic there. Each output row is then computed alone (the same FMA
chain as ``vecmat``), so its value does not depend on the other rows.
"""
import numpy as np
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

cdef extern from "vecmat.h" nogil:
    void archfit_vecmat_f32(Py_ssize_t k, Py_ssize_t n, const float* x, Py_ssize_t incx,
                            const float* W, Py_ssize_t ldw, float* y)
    void archfit_vecmat_f64(Py_ssize_t k, Py_ssize_t n, const double* x, Py_ssize_t incx,
                            const double* W, Py_ssize_t ldw, double* y)

cdef extern from "smallgemm.h" nogil:
    void archfit_small_gemm_f32(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n,
                                Py_ssize_t k, const float* A, Py_ssize_t lda, const float* B,
                                Py_ssize_t ldb, float* C, Py_ssize_t ldc, float* scratch)
    void archfit_small_gemm_f64(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n,
                                Py_ssize_t k, const double* A, Py_ssize_t lda, const double* B,
                                Py_ssize_t ldb, double* C, Py_ssize_t ldc, double* scratch)

from archfit._kernels.packgemm cimport (
    ARCHFIT_PK_WORK, archfit_packed_gemm_available, packed_size, pack, packed_gemm)

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)   # cpu.h: the one decision, before any kernel runs


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* A, int lda,   # IN  op(A) is (m, k)
               const floating* B, int ldb,                    # IN  op(B) is (k, n)
               floating beta, floating* C, int ldc            # INOUT C is (m, n)
               ) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, all row-major."""
    cdef char ta = b't' if trans_a else b'n'
    cdef char tb = b't' if trans_b else b'n'
    if m == 0 or n == 0:
        return
    cdef floating scratch[SMALL_B]
    if k > 0 and alpha == 1 and beta == 0:
        if m == 1 and not trans_b and (not trans_a or lda == 1):
            # C[0, :] = op(A)[0, :] @ B with op(A)'s row contiguous
            if floating is float:
                archfit_vecmat_f32(k, n, A, 1, B, ldb, C)
            else:
                archfit_vecmat_f64(k, n, A, 1, B, ldb, C)
            return
        if small_product(m, n, k):
            if floating is float:
                archfit_small_gemm_f32(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                                       scratch)
            else:
                archfit_small_gemm_f64(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                                       scratch)
            return
    if m == 1 and k > 0:
        # C[0, :] = alpha * op(B)^T op(A)[0, :] + beta * C[0, :]
        _gemv(trans_b, k, n, alpha, B, ldb, A, lda if trans_a else 1, beta, C, 1)
        return
    if n == 1 and k > 0:
        # C[:, 0] = alpha * op(A) op(B)[:, 0] + beta * C[:, 0]
        _gemv(not trans_a, k, m, alpha, A, lda, B, 1 if trans_b else ldb, beta, C, ldc)
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)


cdef void row_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* A,
                   Py_ssize_t lda, const floating* B, Py_ssize_t ldb, floating* C,
                   Py_ssize_t ldc) noexcept nogil:
    """C = A B (A (m, k), B (k, n), row-major, k > 0) with each row of C the
    same FMA chain as vecmat's, whatever the other rows: a prediction of a row
    then does not depend on the batch it comes in. For the features layers'
    small products (op(B) within SMALL_B), in blocks of rows small_gemm takes;
    larger ones go to gemm."""
    cdef floating scratch[SMALL_B]
    cdef Py_ssize_t i, block, rows
    if m == 0 or n == 0:
        return
    if n * k > SMALL_B:
        gemm(False, False, <int> m, <int> n, <int> k, <floating> 1.0, A, <int> lda, B,
             <int> ldb, <floating> 0.0, C, <int> ldc)
        return
    if n == 1 or m == 1:
        for i in range(m):
            if floating is float:
                archfit_vecmat_f32(k, n, A + i * lda, 1, B, ldb, C + i * ldc)
            else:
                archfit_vecmat_f64(k, n, A + i * lda, 1, B, ldb, C + i * ldc)
        return
    block = SMALL_FMAS // (n * k)
    if block < 2:
        block = 2
    i = 0
    while i < m:
        rows = m - i if m - i < block else block
        if floating is float:
            archfit_small_gemm_f32(False, False, rows, n, k, A + i * lda, lda, B, ldb,
                                   C + i * ldc, ldc, scratch)
        else:
            archfit_small_gemm_f64(False, False, rows, n, k, A + i * lda, lda, B, ldb,
                                   C + i * ldc, ldc, scratch)
        i += block


cdef inline void _gemv(bint row_major_transposed, int k, int n, floating alpha,
                       const floating* M, int ldm, const floating* x, int incx,
                       floating beta, floating* y, int incy) noexcept nogil:
    """y (n) := alpha * op(M) x (k) + beta * y for a row-major block M.

    ``row_major_transposed`` False: M is (k, n) row-major and y = M^T x, which
    is column-major GEMV 'n' on the (n, k) view. True: M is (n, k) row-major
    and y = M x, column-major GEMV 't' on the (k, n) view.
    """
    cdef char trans = b't' if row_major_transposed else b'n'
    cdef int rows = k if row_major_transposed else n
    cdef int cols = n if row_major_transposed else k
    if floating is float:
        sgemv(&trans, &rows, &cols, &alpha, <float*> M, &ldm, <float*> x, &incx,
              &beta, y, &incy)
    else:
        dgemv(&trans, &rows, &cols, &alpha, <double*> M, &ldm, <double*> x, &incx,
              &beta, y, &incy)


def gemm_py(floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C,
            bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """Test hook: ``C := alpha * op(A) @ op(B) + beta * C`` in place."""
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    with nogil:
        gemm(trans_a, trans_b, m, n, k, <floating> alpha, &A[0, 0], A.shape[1],
             &B[0, 0], B.shape[1], <floating> beta, &C[0, 0], C.shape[1])


PACKED_GEMM = bool(archfit_packed_gemm_available())


def pack_py(const floating[:, ::1] W):
    """Test hook: W (k, n) in the packed form ``packed_gemm_py`` reads."""
    cdef Py_ssize_t k = W.shape[0], n = W.shape[1]
    P = np.empty(packed_size(sizeof(floating) == 8, k, n),
                 dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] p = P
    with nogil:
        pack(k, n, &W[0, 0], n, &p[0])
    return P


def packed_gemm_py(const floating[:, ::1] A, const floating[::1] P, floating[:, ::1] C,
                   bint trans_a=False):
    """Test hook: ``C := op(A) @ W`` with W packed by ``pack_py`` (needs PACKED_GEMM)."""
    if not PACKED_GEMM:
        raise RuntimeError("the packed GEMM needs a CPU with AVX2 and FMA")
    cdef Py_ssize_t m = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t k = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t n = C.shape[1]
    if m != C.shape[0] or k == 0 or P.shape[0] != packed_size(sizeof(floating) == 8, k, n):
        raise ValueError("shapes of A, packed W and C do not agree")
    work = np.empty(ARCHFIT_PK_WORK, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] w = work
    with nogil:
        packed_gemm(trans_a, m, n, k, &A[0, 0], A.shape[1], &P[0], &C[0, 0], n, &w[0])


ctypedef int (*_thread_count_fn)() noexcept nogil


def lowest_thread_limit(tuple addresses):
    """The lowest positive value among the functions at `addresses` (each a
    BLAS library's ``int get_num_threads(void)``), 0 when none is positive.

    For ``archfit._threads.budget``, on every one-sample prediction, where a
    call through ctypes per library would be a visible share of the latency;
    here each costs nanoseconds.
    """
    cdef int low = 0, count
    cdef size_t address
    for a in addresses:
        address = a
        count = (<_thread_count_fn> address)()
        if count > 0 and (low == 0 or count < low):
            low = count
    return low


# ---- bfloat16 products (bf16.h) ----------------------------------------------------------
cdef extern from "bf16.h" nogil:
    enum:
        ARCHFIT_BF16_PORTABLE
        ARCHFIT_BF16_WIDENED
        ARCHFIT_BF16_VDPBF16PS
        ARCHFIT_BF16_AMX
    int archfit_bf16_body_of_level(int level)
    int archfit_bf16_gemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                          const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                          float* C, Py_ssize_t ldc, int accumulate)
    int archfit_bf16_gemm_with(int which, int trans_a, int trans_b, Py_ssize_t m,
                                Py_ssize_t n, Py_ssize_t k, const float* A, Py_ssize_t lda,
                                const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc,
                                int accumulate)

from archfit._kernels._cpu cimport (archfit_fp_enter, archfit_fp_leave, ARCHFIT_ISA_AVX2,
                                    ARCHFIT_ISA_AVX512_BF16, ARCHFIT_ISA_AMX)

#: The bfloat16 bodies by name, and the level each needs.
BF16_BODIES = {"portable": ARCHFIT_BF16_PORTABLE, "widened": ARCHFIT_BF16_WIDENED,
               "vdpbf16ps": ARCHFIT_BF16_VDPBF16PS, "amx": ARCHFIT_BF16_AMX}
_BF16_NEEDS = {"portable": 0, "widened": ARCHFIT_ISA_AVX2,
               "vdpbf16ps": ARCHFIT_ISA_AVX512_BF16, "amx": ARCHFIT_ISA_AMX}
_BF16_NAMES = {v: k for k, v in BF16_BODIES.items()}

#: The body this process's products in bfloat16 run.
BF16_BODY = _BF16_NAMES[archfit_bf16_body_of_level(LEVEL)]


cdef void bf16_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                    const float* A, Py_ssize_t lda, const float* B, Py_ssize_t ldb,
                    float* C, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    archfit_bf16_gemm(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, accumulate)


def bf16_matmul(A, B, trans_a=False, trans_b=False, C=None, body=None):
    """op(A) @ op(B) with bfloat16 operands and float32 accumulation (added to
    C when given, in place), by `body` (default: this process's); for the tests."""
    name = BF16_BODY if body is None else body
    if name not in BF16_BODIES:
        raise ValueError(f"body must be one of {sorted(BF16_BODIES)}")
    if _BF16_NEEDS[name] > LEVEL:
        raise ValueError(f"the {name} body needs a CPU this process does not run on")
    cdef float[:, ::1] a = np.ascontiguousarray(A, dtype=np.float32)
    cdef float[:, ::1] b = np.ascontiguousarray(B, dtype=np.float32)
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if (b.shape[1] if trans_b else b.shape[0]) != k:
        raise ValueError("op(A) and op(B) do not chain")
    out = np.zeros((m, n), dtype=np.float32) if C is None else C
    if out.dtype != np.float32 or out.shape != (m, n) or not out.flags.c_contiguous:
        raise ValueError("C must be a C-contiguous float32 array of op(A) @ op(B)'s shape")
    cdef float[:, ::1] c = out
    cdef int which = BF16_BODIES[name]
    cdef int ta = bool(trans_a), tb = bool(trans_b), add = C is not None
    cdef unsigned long long saved
    cdef const float* pa = NULL
    cdef const float* pb = NULL
    cdef float* pc = NULL
    if a.shape[0] * a.shape[1]:
        pa = &a[0, 0]
    if b.shape[0] * b.shape[1]:
        pb = &b[0, 0]
    if m * n:
        pc = &c[0, 0]
    with nogil:
        saved = archfit_fp_enter()
        archfit_bf16_gemm_with(which, ta, tb, m, n, k, pa, a.shape[1], pb, b.shape[1], pc,
                               c.shape[1], add)
        archfit_fp_leave(saved)
    return out


def bf16_pack_py(B, trans=False):
    """op(B) packed for bfloat16 products (bf16.h's layout), as uint32 words;
    for the tests."""
    cdef float[:, ::1] b = np.ascontiguousarray(B, dtype=np.float32)
    cdef Py_ssize_t k = b.shape[1] if trans else b.shape[0]
    cdef Py_ssize_t n = b.shape[0] if trans else b.shape[1]
    out = np.empty(bf16_packed_words(k, n), dtype=np.uint32)
    cdef unsigned int[::1] p = out
    if k * n:
        bf16_pack(bool(trans), &b[0, 0], b.shape[1], k, n, 0, k, 0, n, &p[0])
    return out

