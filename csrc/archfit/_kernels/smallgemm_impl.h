/* The type-generic body of smallgemm.h, included once per element type with
 * SG_T, SG_FN, SG_VECMAT(_AVX2), SG_LANES and the AVX2 operations defined
 * (see smallgemm.h); it undefines them at its end. A block of C is 4 rows x
 * 2 registers (16 floats or 8 doubles). */

static inline const SG_T* SG_FN(archfit_rows_of_b)(int trans_b, ptrdiff_t n, ptrdiff_t k,
                                                  const SG_T* B, ptrdiff_t* ldb,
                                                  SG_T* scratch) {
    if (!trans_b) return B;
    for (ptrdiff_t p = 0; p < k; p++)
        for (ptrdiff_t j = 0; j < n; j++) scratch[p * n + j] = B[j * *ldb + p];
    *ldb = n;
    return scratch;
}

static inline void SG_FN(archfit_small_gemm_portable)(int trans_a, int trans_b, ptrdiff_t m,
                                                     ptrdiff_t n, ptrdiff_t k, const SG_T* A,
                                                     ptrdiff_t lda, const SG_T* B,
                                                     ptrdiff_t ldb, SG_T* C, ptrdiff_t ldc,
                                                     SG_T* scratch) {
    B = SG_FN(archfit_rows_of_b)(trans_b, n, k, B, &ldb, scratch);
    for (ptrdiff_t i = 0; i < m; i++)
        SG_VECMAT(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb, C + i * ldc);
}

#ifdef ARCHFIT_X86_DISPATCH
__attribute__((target("avx2,fma")))
static inline void SG_FN(archfit_small_gemm_avx2)(int trans_a, int trans_b, ptrdiff_t m,
                                                 ptrdiff_t n, ptrdiff_t k, const SG_T* A,
                                                 ptrdiff_t lda, const SG_T* B, ptrdiff_t ldb,
                                                 SG_T* C, ptrdiff_t ldc, SG_T* scratch) {
    ptrdiff_t i = 0;
    B = SG_FN(archfit_rows_of_b)(trans_b, n, k, B, &ldb, scratch);
    for (; i + 4 <= m; i += 4) {
        for (ptrdiff_t j = 0; j < n; j += 2 * SG_LANES) {
            /* masks for the last, partial block of columns */
            const __m256i m0 = SG_MASK(n - j), m1 = SG_MASK(n - j - SG_LANES);
            const int full = j + 2 * SG_LANES <= n;
            SG_V c00 = SG_ZERO(), c01 = c00, c10 = c00, c11 = c00,
                 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            const SG_T* b = B + j;
            for (ptrdiff_t p = 0; p < k; p++, b += ldb) {
                const SG_V b0 = full ? SG_LOAD(b) : SG_MLOAD(b, m0);
                const SG_V b1 = full ? SG_LOAD(b + SG_LANES) : SG_MLOAD(b + SG_LANES, m1);
                SG_V a = SG_SET1(ARCHFIT_A(i, p));
                c00 = SG_FMA(a, b0, c00); c01 = SG_FMA(a, b1, c01);
                a = SG_SET1(ARCHFIT_A(i + 1, p));
                c10 = SG_FMA(a, b0, c10); c11 = SG_FMA(a, b1, c11);
                a = SG_SET1(ARCHFIT_A(i + 2, p));
                c20 = SG_FMA(a, b0, c20); c21 = SG_FMA(a, b1, c21);
                a = SG_SET1(ARCHFIT_A(i + 3, p));
                c30 = SG_FMA(a, b0, c30); c31 = SG_FMA(a, b1, c31);
            }
            SG_T* c = C + i * ldc + j;
            if (full) {
                SG_STORE(c, c00); SG_STORE(c + SG_LANES, c01); c += ldc;
                SG_STORE(c, c10); SG_STORE(c + SG_LANES, c11); c += ldc;
                SG_STORE(c, c20); SG_STORE(c + SG_LANES, c21); c += ldc;
                SG_STORE(c, c30); SG_STORE(c + SG_LANES, c31);
            } else {
                SG_MSTORE(c, m0, c00); SG_MSTORE(c + SG_LANES, m1, c01); c += ldc;
                SG_MSTORE(c, m0, c10); SG_MSTORE(c + SG_LANES, m1, c11); c += ldc;
                SG_MSTORE(c, m0, c20); SG_MSTORE(c + SG_LANES, m1, c21); c += ldc;
                SG_MSTORE(c, m0, c30); SG_MSTORE(c + SG_LANES, m1, c31);
            }
        }
    }
    for (; i < m; i++)      /* the last 1..3 rows */
        SG_VECMAT_AVX2(k, n, trans_a ? A + i : A + i * lda, trans_a ? lda : 1, B, ldb,
                       C + i * ldc);
}
#endif

/* `scratch` holds k * n elements when trans_b (op(B) is copied there). */
static inline void SG_FN(archfit_small_gemm)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n,
                                            ptrdiff_t k, const SG_T* A, ptrdiff_t lda,
                                            const SG_T* B, ptrdiff_t ldb, SG_T* C,
                                            ptrdiff_t ldc, SG_T* scratch) {
#ifdef ARCHFIT_X86_DISPATCH
    if (archfit_have_avx2()) {
        SG_FN(archfit_small_gemm_avx2)(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                                       scratch);
        return;
    }
#endif
    SG_FN(archfit_small_gemm_portable)(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc,
                                       scratch);
}

#undef SG_T
#undef SG_FN
#undef SG_VECMAT
#undef SG_VECMAT_AVX2
#undef SG_LANES
#undef SG_V
#undef SG_LOAD
#undef SG_STORE
#undef SG_MLOAD
#undef SG_MSTORE
#undef SG_ZERO
#undef SG_SET1
#undef SG_FMA
#undef SG_MASK
