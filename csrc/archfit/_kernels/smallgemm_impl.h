/* The type-generic body of smallgemm.h, included once per element type with
 * SG_FN, SG_VECMAT(_AVX2) and the type's operations (avx2_ops.h) defined; it
 * undefines its SG_ macros at its end. A block of C is 4 rows x 2 registers
 * (16 floats or 8 doubles). */

static inline const AV_T* SG_FN(archfit_rows_of_b)(int trans_b, ptrdiff_t n, ptrdiff_t k,
                                                  const AV_T* B, ptrdiff_t* ldb,
                                                  AV_T* scratch) {
    if (!trans_b) return B;
    for (ptrdiff_t p = 0; p < k; p++)
        for (ptrdiff_t j = 0; j < n; j++) scratch[p * n + j] = B[j * *ldb + p];
    *ldb = n;
    return scratch;
}

static inline void SG_FN(archfit_small_gemm_portable)(int trans_a, int trans_b, ptrdiff_t m,
                                                     ptrdiff_t n, ptrdiff_t k, const AV_T* A,
                                                     ptrdiff_t lda, const AV_T* B,
                                                     ptrdiff_t ldb, AV_T* C, ptrdiff_t ldc,
                                                     AV_T* scratch) {
    B = SG_FN(archfit_rows_of_b)(trans_b, n, k, B, &ldb, scratch);
    for (ptrdiff_t i = 0; i < m; i++)
        SG_VECMAT(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb, C + i * ldc);
}

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2,fma")))
static inline void SG_FN(archfit_small_gemm_avx2)(int trans_a, int trans_b, ptrdiff_t m,
                                                 ptrdiff_t n, ptrdiff_t k, const AV_T* A,
                                                 ptrdiff_t lda, const AV_T* B, ptrdiff_t ldb,
                                                 AV_T* C, ptrdiff_t ldc, AV_T* scratch) {
    ptrdiff_t i = 0;
    B = SG_FN(archfit_rows_of_b)(trans_b, n, k, B, &ldb, scratch);
    for (; i + 4 <= m; i += 4) {
        for (ptrdiff_t j = 0; j < n; j += 2 * AV_LANES) {
            /* masks for the last, partial block of columns */
            const __m256i m0 = AV_MASK(n - j, AV_LANE_INDEX), m1 = AV_MASK(n - j - AV_LANES, AV_LANE_INDEX);
            const int full = j + 2 * AV_LANES <= n;
            AV_V c00 = AV_ZERO(), c01 = c00, c10 = c00, c11 = c00,
                 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            const AV_T* b = B + j;
            for (ptrdiff_t p = 0; p < k; p++, b += ldb) {
                const AV_V b0 = full ? AV_LOAD(b) : AV_MLOAD(b, m0);
                const AV_V b1 = full ? AV_LOAD(b + AV_LANES) : AV_MLOAD(b + AV_LANES, m1);
                AV_V a = AV_SET1(ARCHFIT_A(i, p));
                c00 = AV_FMA(a, b0, c00); c01 = AV_FMA(a, b1, c01);
                a = AV_SET1(ARCHFIT_A(i + 1, p));
                c10 = AV_FMA(a, b0, c10); c11 = AV_FMA(a, b1, c11);
                a = AV_SET1(ARCHFIT_A(i + 2, p));
                c20 = AV_FMA(a, b0, c20); c21 = AV_FMA(a, b1, c21);
                a = AV_SET1(ARCHFIT_A(i + 3, p));
                c30 = AV_FMA(a, b0, c30); c31 = AV_FMA(a, b1, c31);
            }
            AV_T* c = C + i * ldc + j;
            if (full) {
                AV_STORE(c, c00); AV_STORE(c + AV_LANES, c01); c += ldc;
                AV_STORE(c, c10); AV_STORE(c + AV_LANES, c11); c += ldc;
                AV_STORE(c, c20); AV_STORE(c + AV_LANES, c21); c += ldc;
                AV_STORE(c, c30); AV_STORE(c + AV_LANES, c31);
            } else {
                AV_MSTORE(c, m0, c00); AV_MSTORE(c + AV_LANES, m1, c01); c += ldc;
                AV_MSTORE(c, m0, c10); AV_MSTORE(c + AV_LANES, m1, c11); c += ldc;
                AV_MSTORE(c, m0, c20); AV_MSTORE(c + AV_LANES, m1, c21); c += ldc;
                AV_MSTORE(c, m0, c30); AV_MSTORE(c + AV_LANES, m1, c31);
            }
        }
    }
    for (; i < m; i++)      /* the last 1..3 rows */
        SG_VECMAT_AVX2(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                       C + i * ldc);
}
#endif

#undef SG_FN
#undef SG_VECMAT
#undef SG_VECMAT_AVX2
