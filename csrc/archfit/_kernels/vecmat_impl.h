/* The AVX2 body of vecmat.h, included once per element type with VM_T,
 * VM_FN, VM_V, VM_LANES and the AVX2 operations defined (see vecmat.h); it
 * undefines them at its end. y[0:n] = x @ W, columns in blocks of 8, 4 and 1
 * registers, the last columns masked; each output one FMA chain over i. */

#define VM_BLOCK(R)                                                              \
    for (; j + (R) * VM_LANES <= n; j += (R) * VM_LANES) {                       \
        VM_V acc[R];                                                             \
        const VM_T* r = W + j;                                                   \
        _Pragma("GCC unroll 8")                                                  \
        for (int q = 0; q < (R); q++) acc[q] = VM_ZERO();                        \
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {                            \
            const VM_V xi = VM_BCAST(x + i * incx);                              \
            _Pragma("GCC unroll 8")                                              \
            for (int q = 0; q < (R); q++)                                        \
                acc[q] = VM_FMA(xi, VM_LOAD(r + q * VM_LANES), acc[q]);          \
        }                                                                        \
        _Pragma("GCC unroll 8")                                                  \
        for (int q = 0; q < (R); q++) VM_STORE(y + j + q * VM_LANES, acc[q]);    \
    }

__attribute__((target("avx2,fma")))
static inline void VM_FN(archfit_vecmat)(ptrdiff_t k, ptrdiff_t n, const VM_T* x, ptrdiff_t incx,
                                        const VM_T* W, ptrdiff_t ldw, VM_T* y) {
    ptrdiff_t j = 0;
    VM_BLOCK(8)
    VM_BLOCK(4)
    VM_BLOCK(1)
    if (j < n) {                /* the last columns: masked loads and store */
        const __m256i mask = VM_MASK(n - j);
        VM_V a = VM_ZERO();
        const VM_T* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = VM_FMA(VM_BCAST(x + i * incx), VM_MLOAD(r, mask), a);
        VM_MSTORE(y + j, mask, a);
    }
}

#undef VM_BLOCK
#undef VM_T
#undef VM_FN
#undef VM_V
#undef VM_LANES
#undef VM_LOAD
#undef VM_STORE
#undef VM_MLOAD
#undef VM_MSTORE
#undef VM_ZERO
#undef VM_BCAST
#undef VM_FMA
#undef VM_MASK
