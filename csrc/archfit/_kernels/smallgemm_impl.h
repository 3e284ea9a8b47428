/* The SIMD body of smallgemm.h, included once per element type and
 * instruction set with that pair's operations (avx2_ops.h or avx512_ops.h)
 * and SG_MR (rows per block) defined; it undefines SG_MR at its end. A block
 * of C is SG_MR rows x 2 registers: 4 x 16 floats (8 doubles) in 8 of AVX2's
 * 16 registers, 8 x 32 floats (16 doubles) in 16 of AVX-512's 32. */

/* Rows [i, i + R) of C, columns [j, j + 2 * AV_LANES) (masked past n). R is a
 * constant at every call, so the accumulators live in registers. */
AV_TARGET __attribute__((always_inline))
static inline void AV_NAME(archfit_sg_block)(const int R, int trans_a, ptrdiff_t i, ptrdiff_t j,
                                             ptrdiff_t n, ptrdiff_t k, const AV_T* A,
                                             ptrdiff_t lda, const AV_T* B, ptrdiff_t ldb,
                                             AV_T* C, ptrdiff_t ldc) {
    const AV_MASK_T m0 = AV_MASK(n - j), m1 = AV_MASK(n - j - AV_LANES);
    const int full = j + 2 * AV_LANES <= n;
    AV_V acc[SG_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = AV_ZERO();
    /* the k loop specialised for full or masked columns and for op(A): no
     * test of either inside it */
#define SG_KLOOP(FULL, TRANS)                                                     \
    do {                                                                          \
        const AV_T* b = B + j;                                                    \
        for (ptrdiff_t p = 0; p < k; p++, b += ldb) {                             \
            const AV_V b0 = (FULL) ? AV_LOAD(b) : AV_MLOAD(b, m0);                \
            const AV_V b1 = (FULL) ? AV_LOAD(b + AV_LANES) : AV_MLOAD(b + AV_LANES, m1); \
            _Pragma("GCC unroll 8")                                               \
            for (int r = 0; r < R; r++) {                                         \
                const AV_V a = AV_SET1((TRANS) ? A[p * lda + i + r] : A[(i + r) * lda + p]); \
                acc[r][0] = AV_FMA(a, b0, acc[r][0]);                             \
                acc[r][1] = AV_FMA(a, b1, acc[r][1]);                             \
            }                                                                     \
        }                                                                         \
    } while (0)
    if (full) {
        if (trans_a) SG_KLOOP(1, 1); else SG_KLOOP(1, 0);
    } else {
        if (trans_a) SG_KLOOP(0, 1); else SG_KLOOP(0, 0);
    }
#undef SG_KLOOP
    AV_T* c = C + i * ldc + j;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++, c += ldc) {
        if (full) {
            AV_STORE(c, acc[r][0]);
            AV_STORE(c + AV_LANES, acc[r][1]);
        } else {
            AV_MSTORE(c, m0, acc[r][0]);
            AV_MSTORE(c + AV_LANES, m1, acc[r][1]);
        }
    }
}

AV_TARGET
static inline void AV_NAME(archfit_small_gemm)(int trans_a, int trans_b, ptrdiff_t m,
                                               ptrdiff_t n, ptrdiff_t k, const AV_T* A,
                                               ptrdiff_t lda, const AV_T* B, ptrdiff_t ldb,
                                               AV_T* C, ptrdiff_t ldc, AV_T* scratch) {
    ptrdiff_t i = 0;
    B = AV_TYPED(archfit_rows_of_b)(trans_b, n, k, B, &ldb, scratch);
    for (; i + SG_MR <= m; i += SG_MR)
        for (ptrdiff_t j = 0; j < n; j += 2 * AV_LANES)
            AV_NAME(archfit_sg_block)(SG_MR, trans_a, i, j, n, k, A, lda, B, ldb, C, ldc);
    for (; i < m; i++)      /* the last rows */
        AV_NAME(archfit_vecmat)(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                                C + i * ldc);
}

#undef SG_MR
