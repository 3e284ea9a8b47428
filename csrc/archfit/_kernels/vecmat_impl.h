/* The SIMD body of vecmat.h, included once per element type and instruction
 * set with that pair's operations (avx2_ops.h or avx512_ops.h) defined.
 * y[0:n] = x @ W, columns in blocks of 8, 4 and 1 registers, the last
 * columns masked; each output one FMA chain over i. */

#define VM_BLOCK(R)                                                              \
    for (; j + (R) * AV_LANES <= n; j += (R) * AV_LANES) {                       \
        AV_V acc[R];                                                             \
        const AV_T* r = W + j;                                                   \
        _Pragma("GCC unroll 8")                                                  \
        for (int q = 0; q < (R); q++) acc[q] = AV_ZERO();                        \
        for (ptrdiff_t i = 0; i < k; i++, r += ldw) {                            \
            const AV_V xi = AV_BCAST(x + i * incx);                              \
            _Pragma("GCC unroll 8")                                              \
            for (int q = 0; q < (R); q++)                                        \
                acc[q] = AV_FMA(xi, AV_LOAD(r + q * AV_LANES), acc[q]);          \
        }                                                                        \
        _Pragma("GCC unroll 8")                                                  \
        for (int q = 0; q < (R); q++) AV_STORE(y + j + q * AV_LANES, acc[q]);    \
    }

AV_TARGET
static inline void AV_NAME(archfit_vecmat)(ptrdiff_t k, ptrdiff_t n, const AV_T* x, ptrdiff_t incx,
                                        const AV_T* W, ptrdiff_t ldw, AV_T* y) {
    ptrdiff_t j = 0;
    VM_BLOCK(8)
    VM_BLOCK(4)
    VM_BLOCK(1)
    if (j < n) {                /* the last columns: masked loads and store */
        const AV_MASK_T mask = AV_MASK(n - j);
        AV_V a = AV_ZERO();
        const AV_T* r = W + j;
        for (ptrdiff_t i = 0; i < k; i++, r += ldw)
            a = AV_FMA(AV_BCAST(x + i * incx), AV_MLOAD(r, mask), a);
        AV_MSTORE(y + j, mask, a);
    }
}

#undef VM_BLOCK
