from cython cimport floating

cdef enum Optimizer:
    SGD = 0
    MOMENTUM = 1
    ADAM = 2
    ADAMW = 3

cdef struct OptimizerConfig:
    int kind
    double learning_rate
    double momentum      # MOMENTUM
    bint nesterov        # MOMENTUM
    double beta1         # ADAM, ADAMW
    double beta2         # ADAM, ADAMW
    double epsilon       # ADAM, ADAMW
    long long step       # number of this update, counting from 1

cdef void update(const OptimizerConfig* config, floating* theta, const floating* grad,
                 floating* m, floating* v, Py_ssize_t first, Py_ssize_t stop,
                 double penalty, double decay) noexcept nogil
