/* The SIMD body of packgemm.h, included once per element type and
 * instruction set with that pair's operations (avx2_ops.h or avx512_ops.h)
 * and its blocking defined: PK_MR (rows per register block), PK_KC (rows of W
 * per block), PK_MC (rows of A per block, a multiple of PK_MR, at most 96),
 * optionally PK_PACK_ROWS (a fast copy of PK_MR full rows of A). A panel is
 * PK_NR = two registers of columns. It undefines its PK_ macros at its end,
 * ready for the next type or instruction set. */
#define PK_NR (2 * AV_LANES)

/* Elements of the packed form of a (k, n) matrix. */
static inline ptrdiff_t AV_NAME(archfit_packed_size)(ptrdiff_t k, ptrdiff_t n) {
    return k * ((n + PK_NR - 1) / PK_NR) * PK_NR;
}

/* P := W (k x n, row-major, leading dimension ldw) as panels of PK_NR columns. */
static inline void AV_NAME(archfit_pack)(ptrdiff_t k, ptrdiff_t n, const AV_T* W, ptrdiff_t ldw,
                                    AV_T* P) {
    for (ptrdiff_t j = 0; j < n; j += PK_NR) {
        const ptrdiff_t w = n - j < PK_NR ? n - j : PK_NR;
        for (ptrdiff_t p = 0; p < k; p++, P += PK_NR) {
            const AV_T* row = W + p * ldw + j;
            ptrdiff_t c = 0;
            for (; c < w; c++) P[c] = row[c];
            for (; c < PK_NR; c++) P[c] = (AV_T)0;
        }
    }
}

/* Rows [r0, r1) of W (k x n) into P, laid out as AV_NAME(archfit_pack) lays out
 * all of W (padding columns untouched: zero from the first full packing).
 * Training re-packs the rows of each block of θ right after updating them. */
static inline void AV_NAME(archfit_pack_rows)(ptrdiff_t k, ptrdiff_t n, const AV_T* W,
                                         ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1, AV_T* P) {
    for (ptrdiff_t j = 0; j < n; j += PK_NR) {
        const ptrdiff_t w = n - j < PK_NR ? n - j : PK_NR;
        AV_T* panel = P + j * k;
        for (ptrdiff_t r = r0; r < r1; r++) {
            const AV_T* row = W + r * ldw + j;
            AV_T* dst = panel + r * PK_NR;
            for (ptrdiff_t c = 0; c < w; c++) dst[c] = row[c];
        }
    }
}

/* Rows [r0, r1) of W (k x n) into PT, the packed form of W^T (n x k): its
 * panels hold PK_NR rows of W each, element (r, p) at panel r / PK_NR,
 * position p * PK_NR + r % PK_NR. For the product D W^T of backpropagation. */
static inline void AV_NAME(archfit_pack_rows_t)(ptrdiff_t k, ptrdiff_t n, const AV_T* W,
                                           ptrdiff_t ldw, ptrdiff_t r0, ptrdiff_t r1,
                                           AV_T* PT) {
    (void)k;
    /* Panel by panel, p outer: each p writes whole 64-byte lines (PK_NR
     * rows' values) while the panel's rows are read as sequential streams;
     * scattering row by row would touch n lines per row instead. */
    for (ptrdiff_t g = r0 - r0 % PK_NR; g < r1; g += PK_NR) {
        const ptrdiff_t lo = g < r0 ? r0 : g;
        const ptrdiff_t hi = g + PK_NR < r1 ? g + PK_NR : r1;
        AV_T* panel = PT + g * n;      /* panel g / PK_NR holds n x PK_NR */
        if (lo == g && hi == g + PK_NR) {
            const AV_T* row = W + g * ldw;
            for (ptrdiff_t p = 0; p < n; p++) {
                AV_T* dst = panel + p * PK_NR;
                for (ptrdiff_t c = 0; c < PK_NR; c++) dst[c] = row[c * ldw + p];
            }
        } else {
            for (ptrdiff_t p = 0; p < n; p++) {
                AV_T* dst = panel + p * PK_NR;
                for (ptrdiff_t r = lo; r < hi; r++) dst[r - g] = W[r * ldw + p];
            }
        }
    }
}

/* One block of R (1..PK_MR) rows x PK_NR columns over kc rows of W; A's rows packed
 * by archfit_pk_pack_a (a[p * PK_MR + r]). `first`: the chain starts at zero,
 * else it continues from C. Columns past the edge are neither read nor
 * written (masks). R is a constant at every call, so the accumulators live in
 * registers. */
AV_TARGET __attribute__((always_inline))
static inline void AV_NAME(archfit_pk_block)(const int R, ptrdiff_t kc, const AV_T* a,
                                        const AV_T* b, AV_T* c, ptrdiff_t ldc, int first,
                                        int full, AV_MASK_T m0, AV_MASK_T m1) {
    AV_V acc[PK_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        if (first) {
            acc[r][0] = AV_ZERO();
            acc[r][1] = AV_ZERO();
        } else if (full) {
            acc[r][0] = AV_LOAD(c + r * ldc);
            acc[r][1] = AV_LOAD(c + r * ldc + AV_LANES);
        } else {
            acc[r][0] = AV_MLOAD(c + r * ldc, m0);
            acc[r][1] = AV_MLOAD(c + r * ldc + AV_LANES, m1);
        }
    }
    for (ptrdiff_t p = 0; p < kc; p++, b += PK_NR, a += PK_MR) {
        const AV_V b0 = AV_LOAD(b), b1 = AV_LOAD(b + AV_LANES);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            const AV_V x = AV_BCAST(a + r);
            acc[r][0] = AV_FMA(x, b0, acc[r][0]);
            acc[r][1] = AV_FMA(x, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        if (full) {
            AV_STORE(c + r * ldc, acc[r][0]);
            AV_STORE(c + r * ldc + AV_LANES, acc[r][1]);
        } else {
            AV_MSTORE(c + r * ldc, m0, acc[r][0]);
            AV_MSTORE(c + r * ldc + AV_LANES, m1, acc[r][1]);
        }
    }
}

/* Rows [i0, i1) x columns [p0, p0 + kc) of op(A) into `work` as groups of
 * PK_MR rows, each kc x PK_MR with the row index fastest (zeros past i1): the kernel
 * then reads A in order, whatever op(A)'s layout. Without the copy, rows of A
 * a power of two apart (k = 1024, 2048) fall into the same L1 sets. */
static inline void AV_NAME(archfit_pk_pack_a)(int trans_a, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t p0,
                                         ptrdiff_t kc, const AV_T* A, ptrdiff_t lda,
                                         AV_T* work) {
    for (ptrdiff_t g = i0; g < i1; g += PK_MR, work += kc * PK_MR) {
        const ptrdiff_t rows = i1 - g < PK_MR ? i1 - g : PK_MR;
        if (trans_a && rows == PK_MR) {
            /* op(A)'s PK_MR rows are contiguous in each row of A: a copy of
             * fixed length, which the compiler turns into vector moves */
            for (ptrdiff_t p = 0; p < kc; p++) {
                const AV_T* src = A + (p0 + p) * lda + g;
                for (ptrdiff_t r = 0; r < PK_MR; r++) work[p * PK_MR + r] = src[r];
            }
        } else if (trans_a) {
            for (ptrdiff_t p = 0; p < kc; p++) {
                const AV_T* src = A + (p0 + p) * lda + g;
                for (ptrdiff_t r = 0; r < PK_MR; r++)
                    work[p * PK_MR + r] = r < rows ? src[r] : (AV_T)0;
            }
        } else {
            const AV_T* src = A + g * lda + p0;
            ptrdiff_t done = 0;
            /* the next group's rows, a group ahead: A is often fresh from
             * memory (a prediction's rows), and each row's piece of kc
             * elements is too short a stream for the prefetchers */
            for (ptrdiff_t r = PK_MR; r < 2 * PK_MR && g + r < i1; r++)
                for (ptrdiff_t b = 0; b < kc * (ptrdiff_t)sizeof(AV_T); b += 64)
                    _mm_prefetch((const char*)(src + r * lda) + b, _MM_HINT_T0);
#ifdef PK_PACK_ROWS
            if (rows == PK_MR)
                done = PK_PACK_ROWS(kc, src, lda, work);
#endif
            for (ptrdiff_t r = 0; r < PK_MR; r++)
                for (ptrdiff_t p = done; p < kc; p++)
                    work[p * PK_MR + r] = r < rows ? src[r * lda + p] : (AV_T)0;
        }
    }
}

/* Rows [i0, i1) (packed in `work`) of C's columns [j, j + PK_NR), over W's rows
 * [p0, p0 + kc). */
AV_TARGET
static inline void AV_NAME(archfit_pk_panel)(ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t p0, ptrdiff_t kc,
                                        ptrdiff_t j, ptrdiff_t n, ptrdiff_t k,
                                        const AV_T* work, const AV_T* P, AV_T* C,
                                        ptrdiff_t ldc) {
    const int full = j + PK_NR <= n, first = p0 == 0;
    const AV_MASK_T m0 = AV_MASK(n - j), m1 = AV_MASK(n - j - AV_LANES);
    const AV_T* b = P + j * k + p0 * PK_NR;   /* panel j / PK_NR, from row p0 */
    const AV_T* a = work;
    AV_T* c = C + i0 * ldc + j;
    ptrdiff_t i = i0;
    /* A packed W of ARCHFIT_PK_FAR bytes or more lies in memory or far in L3:
     * the first row group to meet a panel would wait on every line of it, so
     * the next panel's block is fetched a slice per row group. (Nearer, the
     * extra lines in L1 cost more than they save: measured.) */
    const char* next = (const char*)(b + k * PK_NR);
    const ptrdiff_t lines = j + PK_NR < n && k * n * (ptrdiff_t)sizeof(AV_T) >= ARCHFIT_PK_FAR
                            ? kc * PK_NR * (ptrdiff_t)sizeof(AV_T) / 64 : 0;
    const ptrdiff_t groups = (i1 - i0) / PK_MR;     /* the full groups prefetch */
    const ptrdiff_t per = groups ? (lines + groups - 1) / groups : 0;
    ptrdiff_t line = 0;
    for (; i + PK_MR <= i1; i += PK_MR, a += PK_MR * kc,
                                     c += PK_MR * ldc) {
        for (ptrdiff_t q = 0; q < per && line < lines; q++, line++)
            _mm_prefetch(next + line * 64, _MM_HINT_T0);
        AV_NAME(archfit_pk_block)(PK_MR, kc, a, b, c, ldc, first, full, m0, m1);
    }
    switch (i1 - i) {     /* the last 1..PK_MR-1 rows */
#define PK_TAIL(R) case R: AV_NAME(archfit_pk_block)(R, kc, a, b, c, ldc, first, full, m0, m1); break;
#if PK_MR > 6
    PK_TAIL(11) PK_TAIL(10) PK_TAIL(9) PK_TAIL(8) PK_TAIL(7) PK_TAIL(6)
#endif
    PK_TAIL(5) PK_TAIL(4) PK_TAIL(3) PK_TAIL(2) PK_TAIL(1)
#undef PK_TAIL
    default: break;
    }
}

AV_TARGET
static inline void AV_NAME(archfit_packed_gemm)(int trans_a, ptrdiff_t m, ptrdiff_t n,
                                                ptrdiff_t k, const AV_T* A, ptrdiff_t lda,
                                                const AV_T* P, AV_T* C, ptrdiff_t ldc,
                                                AV_T* work) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += ARCHFIT_PK_NC) {
        const ptrdiff_t j1 = n - j0 < ARCHFIT_PK_NC ? n : j0 + ARCHFIT_PK_NC;
        for (ptrdiff_t i0 = 0; i0 < m; i0 += PK_MC) {
            const ptrdiff_t i1 = m - i0 < PK_MC ? m : i0 + PK_MC;
            for (ptrdiff_t p0 = 0; p0 < k; p0 += PK_KC) {
                const ptrdiff_t kc = k - p0 < PK_KC ? k - p0 : PK_KC;
                AV_NAME(archfit_pk_pack_a)(trans_a, i0, i1, p0, kc, A, lda, work);
                for (ptrdiff_t j = j0; j < j1; j += PK_NR)
                    AV_NAME(archfit_pk_panel)(i0, i1, p0, kc, j, n, k, work, P, C, ldc);
            }
        }
    }
}

#undef PK_PACK_ROWS
#undef PK_NR
#undef PK_MR
#undef PK_KC
#undef PK_MC
