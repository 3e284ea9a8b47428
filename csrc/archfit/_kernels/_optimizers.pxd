from cython cimport floating

from archfit.kernels cimport Settings

cdef Settings optimizer_settings(str optimizer, double momentum, bint nesterov, double beta1,
                                 double beta2, double epsilon) except *
cdef void update(const Settings* settings, double learning_rate, long long step,
                 floating* theta, const floating* grad, floating* m, floating* v,
                 Py_ssize_t first, Py_ssize_t stop, double penalty, double decay) noexcept nogil
