"""Parameter updates over a half-open slice ``[first, stop)`` of the flat buffer.

Design (FANN's): θ, its gradient and every optimizer state share one layout,
so one loop updates any part of the network. The network kernel calls
``update`` once per weight block and once per bias block because the L2
penalty applies to weights, not biases: ``penalty`` adds ``penalty * θ`` to the
gradient inside the same pass (coupled L2), ``decay`` shrinks θ by
``1 - learning_rate * decay`` before the Adam step (AdamW's decoupled decay).

The formulas are PyTorch's (``torch.optim.SGD`` with dampening 0, ``Adam``,
``AdamW``), so results can be compared with it step by step.
"""
from libc.math cimport sqrt, sqrtf, pow
from libc.string cimport memset

from archfit.kernels cimport SGD, MOMENTUM, ADAM, ADAMW

cdef extern from "adam.h" nogil:
    void archfit_adam_f32(Py_ssize_t n, float* theta, const float* grad, float* m, float* v,
                          float b1, float b2, float eps, float step_size, float inv_sqrt_bc2,
                          float pen)
    void archfit_adam_f64(Py_ssize_t n, double* theta, const double* grad, double* m,
                          double* v, double b1, double b2, double eps, double step_size,
                          double inv_sqrt_bc2, double pen)

# Python's names for the codes of archfit/kernels.pxd (archfit.kernels re-exports them).
OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM, "adamw": ADAMW}

from archfit._kernels._cpu cimport archfit_isa_adopt
from archfit._kernels._cpu import LEVEL
archfit_isa_adopt(LEVEL)        # cpu.h: the one decision, before any kernel runs


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void update(const Settings* settings,
                 double learning_rate,   # IN    this step's (the schedule's) rate
                 long long step,         # IN    number of this update, counting from 1
                 floating* theta,        # INOUT parameters
                 const floating* grad,   # IN    gradient of the objective
                 floating* m,            # INOUT momentum buffer / Adam's first moment
                 floating* v,            # INOUT Adam's second moment
                 Py_ssize_t first, Py_ssize_t stop,
                 double penalty,         # IN    coupled L2: gradient += penalty * theta
                 double decay            # IN    AdamW decoupled weight decay for this slice
                 ) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating lr = <floating> learning_rate
    cdef floating pen = <floating> penalty
    cdef floating mu, b1, b2, eps, step_size, inv_sqrt_bc2, shrink, g
    if settings.optimizer == SGD:
        for i in range(first, stop):
            theta[i] -= lr * (grad[i] + pen * theta[i])
    elif settings.optimizer == MOMENTUM:
        mu = <floating> settings.momentum
        if settings.nesterov:
            for i in range(first, stop):
                g = grad[i] + pen * theta[i]
                m[i] = mu * m[i] + g
                theta[i] -= lr * (g + mu * m[i])
        else:
            for i in range(first, stop):
                m[i] = mu * m[i] + grad[i] + pen * theta[i]
                theta[i] -= lr * m[i]
    else:
        # Straight-line loops (no branch, float sqrt in float32) so the compiler
        # vectorises them; this loop touches every parameter at every step.
        b1 = <floating> settings.beta1
        b2 = <floating> settings.beta2
        eps = <floating> settings.epsilon
        step_size = <floating> (learning_rate / (1.0 - pow(settings.beta1, step)))
        inv_sqrt_bc2 = <floating> (1.0 / sqrt(1.0 - pow(settings.beta2, step)))
        shrink = <floating> (1.0 - learning_rate * decay)
        if settings.optimizer == ADAMW and decay != 0.0:
            for i in range(first, stop):
                theta[i] *= shrink
        # adam.h: the same straight-line loop, built for AVX2 where the CPU has it
        if floating is float:
            archfit_adam_f32(stop - first, theta + first, grad + first, m + first, v + first,
                             b1, b2, eps, step_size, inv_sqrt_bc2, pen)
        else:
            archfit_adam_f64(stop - first, theta + first, grad + first, m + first, v + first,
                             b1, b2, eps, step_size, inv_sqrt_bc2, pen)


cdef Settings optimizer_settings(str optimizer, double momentum, bint nesterov, double beta1,
                                 double beta2, double epsilon) except *:
    """Settings for the named optimizer; the fields no update reads are zero."""
    cdef Settings settings
    memset(&settings, 0, sizeof(settings))
    settings.optimizer = OPTIMIZERS[optimizer]
    settings.momentum = momentum
    settings.nesterov = nesterov
    settings.beta1 = beta1
    settings.beta2 = beta2
    settings.epsilon = epsilon
    return settings


def step(str optimizer, floating[::1] theta, floating[::1] grad, floating[::1] m,
         floating[::1] v, long long step, double learning_rate, double momentum=0.9,
         bint nesterov=False, double beta1=0.9, double beta2=0.999, double epsilon=1e-8,
         double penalty=0.0, double decay=0.0):
    """Test hook: one update of the whole buffer, in place."""
    cdef Settings settings = optimizer_settings(optimizer, momentum, nesterov, beta1, beta2,
                                                epsilon)
    if theta.shape[0]:
        update(&settings, learning_rate, step, &theta[0], &grad[0], &m[0], &v[0], 0,
               theta.shape[0], penalty, decay)
