# The training driver: one epoch of mini-batch steps without the GIL.
from cython cimport floating
from libc.stdint cimport uint64_t

from archfit.kernels cimport TrainingState, Data

cdef int run_epoch(TrainingState* state, const Data* data, double learning_rate,
                   uint64_t epoch, int threads, double* loss_sum, double* weight_sum,
                   floating* theta) noexcept nogil
