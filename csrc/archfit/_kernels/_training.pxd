# The training driver: one epoch of mini-batch steps without the GIL.
from libc.stdint cimport uint64_t

from archfit.kernels cimport TrainingState, Data, Settings

cdef int run_epoch(TrainingState* state, const Data* data, double learning_rate,
                   uint64_t epoch, Py_ssize_t first, int threads, double* loss_sum,
                   double* weight_sum) noexcept nogil
cdef void run_population(TrainingState** states, const Data* data,
                         const double* learning_rates, const uint64_t* epochs, int n_members,
                         int threads, double* loss_sums, double* weight_sums,
                         int* statuses) noexcept nogil
cdef void order_of(const Settings* s, uint64_t epoch, Py_ssize_t n_samples,
                   Py_ssize_t* order) noexcept nogil
