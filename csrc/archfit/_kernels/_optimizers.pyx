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
import numpy as np

from libc.math cimport sqrt, sqrtf, pow

cdef extern from "adam.h" nogil:
    void archfit_adam_f32(Py_ssize_t n, float* theta, const float* grad, float* m, float* v,
                          float b1, float b2, float eps, float step_size, float inv_sqrt_bc2,
                          float pen)
    void archfit_adam_f64(Py_ssize_t n, double* theta, const double* grad, double* m,
                          double* v, double b1, double b2, double eps, double step_size,
                          double inv_sqrt_bc2, double pen)

OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM, "adamw": ADAMW}


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void update(const OptimizerConfig* config,
                 floating* theta,        # INOUT parameters
                 const floating* grad,   # IN    gradient of the objective
                 floating* m,            # INOUT momentum buffer / Adam's first moment
                 floating* v,            # INOUT Adam's second moment
                 Py_ssize_t first, Py_ssize_t stop,
                 double penalty,         # IN    coupled L2: gradient += penalty * theta
                 double decay            # IN    AdamW decoupled weight decay for this slice
                 ) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating lr = <floating> config.learning_rate
    cdef floating pen = <floating> penalty
    cdef floating mu, b1, b2, eps, step_size, inv_sqrt_bc2, shrink, g
    if config.kind == SGD:
        for i in range(first, stop):
            theta[i] -= lr * (grad[i] + pen * theta[i])
    elif config.kind == MOMENTUM:
        mu = <floating> config.momentum
        if config.nesterov:
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
        b1 = <floating> config.beta1
        b2 = <floating> config.beta2
        eps = <floating> config.epsilon
        step_size = <floating> (config.learning_rate / (1.0 - pow(config.beta1, config.step)))
        inv_sqrt_bc2 = <floating> (1.0 / sqrt(1.0 - pow(config.beta2, config.step)))
        shrink = <floating> (1.0 - config.learning_rate * decay)
        if config.kind == ADAMW and decay != 0.0:
            for i in range(first, stop):
                theta[i] *= shrink
        # adam.h: the same straight-line loop, built for AVX2 where the CPU has it
        if floating is float:
            archfit_adam_f32(stop - first, theta + first, grad + first, m + first, v + first,
                             b1, b2, eps, step_size, inv_sqrt_bc2, pen)
        else:
            archfit_adam_f64(stop - first, theta + first, grad + first, m + first, v + first,
                             b1, b2, eps, step_size, inv_sqrt_bc2, pen)


def step(str optimizer, floating[::1] theta, floating[::1] grad, floating[::1] m,
         floating[::1] v, long long step, double learning_rate, double momentum=0.9,
         bint nesterov=False, double beta1=0.9, double beta2=0.999, double epsilon=1e-8,
         double penalty=0.0, double decay=0.0):
    """Test hook: one update of the whole buffer, in place."""
    cdef OptimizerConfig config
    config.kind = OPTIMIZERS[optimizer]
    config.learning_rate = learning_rate
    config.momentum = momentum
    config.nesterov = nesterov
    config.beta1 = beta1
    config.beta2 = beta2
    config.epsilon = epsilon
    config.step = step
    if theta.shape[0]:
        update(&config, &theta[0], &grad[0], &m[0], &v[0], 0, theta.shape[0], penalty, decay)
