# Evaluation: predictions, and the loss and gradient over a whole data set.
from cython cimport floating

from archfit.kernels cimport Network, PredictionPlan, GradientPlan, Data

cdef int predict_rows(const Network* net, const PredictionPlan* plan, const floating* theta,
                      const floating* X, Py_ssize_t n, floating* out, void* memory) noexcept nogil
cdef int evaluate_rows(const Network* net, const PredictionPlan* plan, const floating* theta,
                       const Data* data, floating* out, void* memory,
                       double* loss) noexcept nogil
cdef int predict_small(const Network* net, const floating* theta, const floating* X,
                       Py_ssize_t n, floating* out, int threads) noexcept nogil
cdef int loss_grad(const Network* net, const GradientPlan* plan, const floating* theta,
                   const Data* data, double l2, floating* grad, void* memory,
                   double* loss) noexcept nogil
