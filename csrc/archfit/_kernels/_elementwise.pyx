"""Elementwise kernels: bias + activation, their derivatives, output heads, losses.

Design: each function is one fused pass over contiguous row-major memory; the
switch on the activation or loss code sits outside the loop so the inner loop
is branch-free where the function allows. Losses are accumulated in double
whatever the dtype, and are written from the logits (log-sum-exp, softplus) so
they stay finite for any finite logit. ``head_loss_grad`` returns the weighted
*sum* of per-sample losses and writes ``grad_scale * w_i * dloss_i/dz``: the
caller chooses the normaliser (one batch or the whole data set).
"""
import numpy as np
from cython.parallel cimport prange

from archfit._kernels._plan cimport threads_allowed

from libc.math cimport (exp, expf, log, log1p, log1pf, tanh, tanhf, erf,
                        sqrt, fabs, isfinite)

cdef extern from "cross_entropy.h" nogil:
    double archfit_cross_entropy_f32(const float* Z, Py_ssize_t n_rows, Py_ssize_t n_cols,
                                     const int* labels, const float* weights, float* D,
                                     double grad_scale, double* row_loss)
    double archfit_cross_entropy_f64(const double* Z, Py_ssize_t n_rows, Py_ssize_t n_cols,
                                     const int* labels, const double* weights, double* D,
                                     double grad_scale, double* row_loss)
    void archfit_exp_nonpositive(const double* x, double* y, Py_ssize_t n)

cdef extern from "gelu.h" nogil:
    float archfit_gelu_f32(float z)
    float archfit_gelu_grad_f32(float z)

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs

cdef double SQRT1_2 = 0.70710678118654752440
cdef double INV_SQRT_2PI = 0.39894228040143267794
cdef double LEAKY_SLOPE = 0.01

# Python's names for the codes of archfit/kernels.pxd (archfit.kernels re-exports them).
ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU,
               "tanh": TANH, "sigmoid": SIGMOID, "gelu": GELU}
HEADS = {"softmax": SOFTMAX, "sigmoid": SIGMOID_HEAD, "linear": LINEAR,
         "exponential": EXPONENTIAL}
LOSSES = {"cross_entropy": CROSS_ENTROPY, "binary_cross_entropy": BINARY_CROSS_ENTROPY,
          "squared_error": SQUARED_ERROR, "huber": HUBER, "poisson": POISSON}


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _sigmoid(floating z) noexcept nogil:
    cdef floating e
    if z >= 0:
        return 1 / (1 + _exp(-z))
    e = _exp(z)
    return e / (1 + e)


cdef inline floating _tanh(floating z) noexcept nogil:
    if floating is float:
        return tanhf(z)
    else:
        return tanh(z)


cdef inline floating _gelu(floating z) noexcept nogil:
    if floating is float:
        return archfit_gelu_f32(z)       # gelu.h: branch-free, so its loops vectorise
    else:
        return 0.5 * z * (1 + erf(z * SQRT1_2))


cdef inline floating _gelu_grad(floating z) noexcept nogil:
    # d/dz z*Phi(z) = Phi(z) + z*phi(z)
    if floating is float:
        return archfit_gelu_grad_f32(z)
    else:
        return 0.5 * (1 + erf(z * SQRT1_2)) + z * INV_SQRT_2PI * exp(-0.5 * z * z)


cdef void bias_activation(floating* Z,            # INOUT (n_rows, n_cols): Z += bias
                          const floating* bias,   # IN    (n_cols,)
                          floating* A,            # OUT   (n_rows, n_cols): act(Z)
                          Py_ssize_t n_rows, Py_ssize_t n_cols, int activation) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating z
    cdef floating* zr
    cdef floating* ar
    for i in range(n_rows):
        zr = Z + i * n_cols
        ar = A + i * n_cols
        if activation == RELU:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = z if z > 0 else 0
        elif activation == LEAKY_RELU:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = z if z > 0 else <floating> LEAKY_SLOPE * z
        elif activation == TANH:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = _tanh(z)
        elif activation == SIGMOID:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = _sigmoid(z)
        elif activation == GELU:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = _gelu(z)
        else:
            for j in range(n_cols):
                z = zr[j] + bias[j]
                zr[j] = z
                ar[j] = z


cdef void activation_backward(floating* D,          # INOUT dL/dA in, dL/dZ out
                              const floating* Z,    # IN pre-activation
                              const floating* A,    # IN activation
                              Py_ssize_t size, int activation) noexcept nogil:
    cdef Py_ssize_t i
    if activation == RELU:
        for i in range(size):
            D[i] = D[i] if Z[i] > 0 else 0
    elif activation == LEAKY_RELU:
        for i in range(size):
            D[i] = D[i] if Z[i] > 0 else <floating> LEAKY_SLOPE * D[i]
    elif activation == TANH:
        for i in range(size):
            D[i] = D[i] * (1 - A[i] * A[i])
    elif activation == SIGMOID:
        for i in range(size):
            D[i] = D[i] * A[i] * (1 - A[i])
    elif activation == GELU:
        for i in range(size):
            D[i] = D[i] * _gelu_grad(Z[i])


cdef void add_bias(floating* Z, const floating* bias,
                   Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating* zr
    for i in range(n_rows):
        zr = Z + i * n_cols
        for j in range(n_cols):
            zr[j] += bias[j]


cdef void column_sums(const floating* D, floating* out, Py_ssize_t n_rows,
                      Py_ssize_t n_cols, bint accumulate) noexcept nogil:
    """out (+)= D.sum(axis=0): the bias gradient."""
    cdef Py_ssize_t i, j
    cdef const floating* dr
    if not accumulate:
        for j in range(n_cols):
            out[j] = 0
    for i in range(n_rows):
        dr = D + i * n_cols
        for j in range(n_cols):
            out[j] += dr[j]


cdef void multiply(floating* x, const floating* y, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(size):
        x[i] *= y[i]


cdef void head_output(const floating* Z,   # IN  logits (n_rows, n_cols)
                      floating* P,         # OUT probabilities or values; may alias Z
                      Py_ssize_t n_rows, Py_ssize_t n_cols, int head) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating m, s
    cdef const floating* zr
    cdef floating* pr
    for i in range(n_rows):
        zr = Z + i * n_cols
        pr = P + i * n_cols
        if head == SOFTMAX:
            m = zr[0]
            for j in range(1, n_cols):
                if zr[j] > m:
                    m = zr[j]
            s = 0
            for j in range(n_cols):
                pr[j] = _exp(zr[j] - m)
                s += pr[j]
            s = 1 / s
            for j in range(n_cols):
                pr[j] *= s
        elif head == SIGMOID_HEAD:
            for j in range(n_cols):
                pr[j] = _sigmoid(zr[j])
        elif head == EXPONENTIAL:
            for j in range(n_cols):
                pr[j] = _exp(zr[j])
        elif pr != zr:
            for j in range(n_cols):
                pr[j] = zr[j]


cdef double head_loss_grad(const floating* Z,        # IN  logits (n_rows, n_cols)
                           Py_ssize_t n_rows, Py_ssize_t n_cols, int loss,
                           const int* labels,        # IN  class index per row (cross-entropy)
                           const floating* targets,  # IN  (n_rows, n_cols) other losses
                           const floating* weights,  # IN  (n_rows,) or NULL for all ones
                           floating* D,              # OUT dloss/dZ * w_i * grad_scale, or NULL
                           double grad_scale, double huber_delta,
                           double* row_loss=NULL     # OUT (n_rows,) w_i * loss_i, if not NULL
                           ) noexcept nogil:
    """Weighted sum over rows of the per-row loss (summed over outputs)."""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, w, z, y, r, mu
    cdef const floating* zr
    cdef const floating* tr
    cdef floating* dr
    if loss == CROSS_ENTROPY:
        # cross_entropy.h: log-sum-exp from the logits, exp four at a time
        if floating is float:
            return archfit_cross_entropy_f32(Z, n_rows, n_cols, labels, weights, D,
                                             grad_scale, row_loss)
        else:
            return archfit_cross_entropy_f64(Z, n_rows, n_cols, labels, weights, D,
                                             grad_scale, row_loss)
    for i in range(n_rows):
        zr = Z + i * n_cols
        w = weights[i] if weights != NULL else 1.0
        dr = D + i * n_cols if D != NULL else NULL
        row = 0
        tr = targets + i * n_cols
        for j in range(n_cols):
            z = zr[j]
            y = tr[j]
            if loss == BINARY_CROSS_ENTROPY:
                # max(z, 0) - z*y + log(1 + exp(-|z|)): finite for any finite z
                row += (z if z > 0 else 0) - z * y + log1p(exp(-fabs(z)))
                r = _sigmoid(z) - y
            elif loss == POISSON:
                # half the Poisson deviance of the mean mu = exp(z):
                # mu - y - y log(mu / y), zero where mu = y
                mu = exp(z)
                row += mu - y - y * z + (y * log(y) if y > 0 else 0.0)
                r = mu - y
            elif loss == HUBER:
                r = z - y
                if fabs(r) <= huber_delta:
                    row += 0.5 * r * r
                else:
                    row += huber_delta * (fabs(r) - 0.5 * huber_delta)
                    r = huber_delta if r > 0 else -huber_delta
            else:
                r = z - y
                row += 0.5 * r * r
            if dr != NULL:
                dr[j] = <floating> (r * w * grad_scale)
        total += w * row
        if row_loss != NULL:
            row_loss[i] = w * row
    return total


cdef double members_loss_grad(const floating* Z,     # IN  logits (n_rows * members, n_cols)
                              Py_ssize_t n_rows, Py_ssize_t members, Py_ssize_t n_cols,
                              int loss, const int* labels, const floating* targets,
                              const floating* weights, floating* D, double grad_scale,
                              double huber_delta, double* row_loss=NULL) noexcept nogil:
    """head_loss_grad for a network with an ensemble inside: row i's members
    are rows i M .. i M + M - 1 of Z and D, M = `members`, all of them with
    row i's label, targets and weight; a row's loss is the mean of its
    members' (summed in member order), so each member's gradient is 1/M of
    its own. One member: head_loss_grad itself."""
    cdef Py_ssize_t i, m, r
    cdef double total = 0.0, row
    if members == 1:
        return head_loss_grad(Z, n_rows, n_cols, loss, labels, targets, weights, D, grad_scale,
                              huber_delta, row_loss)
    for i in range(n_rows):
        row = 0.0
        for m in range(members):
            r = i * members + m
            row += head_loss_grad(Z + r * n_cols, 1, n_cols, loss,
                                  labels + i if labels != NULL else NULL,
                                  targets + i * n_cols if targets != NULL else NULL,
                                  weights + i if weights != NULL else NULL,
                                  D + r * n_cols if D != NULL else NULL,
                                  grad_scale / members, huber_delta, NULL)
        row /= members
        total += row
        if row_loss != NULL:
            row_loss[i] = row
    return total


cdef void members_output(const floating* Z,     # IN  logits (n_rows * members, n_cols)
                         floating* P,           # OUT (n_rows, n_cols); may alias Z if M = 1
                         Py_ssize_t n_rows, Py_ssize_t members, Py_ssize_t n_cols, int head,
                         floating* each         # scratch (n_rows * members, n_cols)
                         ) noexcept nogil:
    """head_output for a network with an ensemble inside: each member's
    probabilities or values (into `each`), then their mean over a row's
    members, in member order. One member: head_output itself."""
    cdef Py_ssize_t i, j, m
    cdef double s
    if members == 1:
        head_output(Z, P, n_rows, n_cols, head)
        return
    head_output(Z, each, n_rows * members, n_cols, head)
    for i in range(n_rows):
        for j in range(n_cols):
            s = 0.0
            for m in range(members):
                s += each[(i * members + m) * n_cols + j]
            P[i * n_cols + j] = <floating> (s / members)


cdef extern from "finite.h" nogil:
    int archfit_all_finite_f32(const float* x, Py_ssize_t n)
    int archfit_all_finite_f64(const double* x, Py_ssize_t n)


cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil:
    # finite.h: a vectorised test of the exponent bits
    if floating is float:
        return archfit_all_finite_f32(x, size)
    else:
        return archfit_all_finite_f64(x, size)


# ---- test hooks: thin wrappers so tests can compare each kernel with NumPy ----

def forward_activation(floating[:, ::1] Z, floating[::1] bias, floating[:, ::1] A, str name):
    """Z += bias; A = activation(Z), in place."""
    cdef int code = ACTIVATIONS[name]
    if Z.shape[0] and Z.shape[1]:
        bias_activation(&Z[0, 0], &bias[0], &A[0, 0], Z.shape[0], Z.shape[1], code)


def backward_activation(floating[:, ::1] D, floating[:, ::1] Z, floating[:, ::1] A, str name):
    """D *= activation'(Z), in place."""
    cdef int code = ACTIVATIONS[name]
    if D.shape[0] and D.shape[1]:
        activation_backward(&D[0, 0], &Z[0, 0], &A[0, 0], D.shape[0] * D.shape[1], code)


def output(floating[:, ::1] Z, floating[:, ::1] P, str head):
    """P = head(Z)."""
    cdef int code = HEADS[head]
    if Z.shape[0]:
        head_output(&Z[0, 0], &P[0, 0], Z.shape[0], Z.shape[1], code)


def exp_nonpositive(double[::1] x):
    """exp(x) for x <= 0 as cross-entropy's rows compute it on this path."""
    y = np.empty(x.shape[0])
    cdef double[::1] out = y
    if x.shape[0]:
        archfit_exp_nonpositive(&x[0], &out[0], x.shape[0])
    return y


def loss_grad(floating[:, ::1] Z, str loss, labels=None, targets=None, weights=None,
              floating[:, ::1] D=None, double grad_scale=1.0, double huber_delta=1.0):
    """Weighted loss sum; fills D with the scaled gradient when given."""
    cdef int[::1] lab
    cdef floating[:, ::1] tgt
    cdef floating[::1] w
    cdef const int* lab_p = NULL
    cdef const floating* tgt_p = NULL
    cdef const floating* w_p = NULL
    cdef floating* d_p = NULL
    cdef int code = LOSSES[loss]
    if labels is not None:
        lab = labels
        lab_p = &lab[0]
    if targets is not None:
        tgt = targets
        tgt_p = &tgt[0, 0]
    if weights is not None:
        w = weights
        w_p = &w[0]
    if D is not None:
        d_p = &D[0, 0]
    return head_loss_grad(&Z[0, 0], Z.shape[0], Z.shape[1], code, lab_p, tgt_p,
                          w_p, d_p, grad_scale, huber_delta)



# Elements per piece when threads share a finiteness check (a large fit's or
# prediction's input): 256K, 1 MiB of float32; each thread takes the next.
cdef enum:
    FINITE_PIECE = 262144


def finite(const floating[::1] x, int n_threads=1):
    """True when every element is finite; one pass, no temporary, without the GIL.

    Up to `n_threads` threads share arrays of more than two pieces (FINITE_PIECE
    elements each); the answer does not depend on it.
    """
    cdef bint ok = True
    cdef Py_ssize_t n = x.shape[0], pieces = (n + FINITE_PIECE - 1) // FINITE_PIECE, p
    cdef int T = <int> min(<Py_ssize_t> threads_allowed(n_threads), pieces)
    cdef int bad = 0
    if n == 0:
        return True
    with nogil:
        if T > 1 and pieces > 2:
            for p in prange(pieces, num_threads=T, schedule="dynamic"):
                bad += not all_finite(&x[0] + p * FINITE_PIECE,   # a reduction
                                      min(<Py_ssize_t> FINITE_PIECE, n - p * FINITE_PIECE))
            ok = bad == 0
        else:
            ok = all_finite(&x[0], n)
    return bool(ok)
