/* Compiled accelerator of the active-set method of fairmt_opt/qp/_active_set.py for
 *
 *     min 1/2 x'Kx + b'x   subject to   x >= 0, 1'x = 1        (K symmetric PSD, maybe singular)
 *
 * This file runs exactly the algorithm of solve_active_set (the readable reference), step for
 * step and in the same order: block principal pivoting from the best vertex's first block (or
 * from a warm start), then the primal active-set method (bordered inverse of the KKT matrix,
 * Schur downdates, steepest-edge entering index, zero-curvature steps with an exact line
 * search, bans of stalled indices, rebuilds every max(60, |F|) updates), the verification of the
 * Frank-Wolfe gap and the proximal-point refinement. The dense factorisations are the same
 * algorithms as the Python code's LAPACK calls: LU with partial pivoting (dgesv; inline up to
 * FQP_SMALL_LU, where LAPACK's call overhead exceeds the arithmetic, SciPy's dgesv beyond) and
 * SciPy's dpstrf, passed by the loader through fairmt_qp_set_lapack (with dpotrf for the
 * positive-semidefiniteness pre-check). Only the order of floating-point operations differs,
 * so the iterates agree to round-off and the working sets are the same where the solution is
 * unique. Plain C99 + libm, no Python headers: loaded with ctypes by fairmt_opt/qp/_kernel.py.
 *
 * Every result other than a verified optimum is reported by a nonzero return code; the caller
 * then runs the Python implementation, so correctness never depends on this file.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#define FQP_EXPORT __declspec(dllexport)
#else
#define FQP_EXPORT __attribute__((visibility("default")))
#endif

/* On x86-64 Linux with GCC (or Clang), the entry point is also compiled for x86-64-v3 (AVX2,
 * FMA) and the loader picks the variant the CPU supports (target_clones); everything it calls
 * is inlined into it (flatten). Define FQP_NO_CLONES to build the baseline version only. */
#if !defined(FQP_NO_CLONES) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    (defined(__clang__) ? __clang_major__ >= 14 : (defined(__GNUC__) && __GNUC__ >= 11))
#define FQP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#else
#define FQP_CLONES
#endif

/* the constants of _active_set.py */
#define FQP_SING 1e-9     /* _SING: curvature (relative to max|K| = 1) treated as zero */
#define FQP_REFRESH 60    /* _REFRESH: rebuild the inverse after max(this, |F|) updates */
#define FQP_STAT_TOL 1e-12
#define FQP_RHO 1e-8      /* _RHO: proximal weight */
#define FQP_BLOCK_STEPS 8 /* block_steps of solve_active_set */

/* LAPACK (Fortran calling convention, as exported by scipy.linalg.cython_lapack) */
typedef void (*dgesv_t)(int *n, int *nrhs, double *a, int *lda, int *ipiv, double *b, int *ldb,
                        int *info);
typedef void (*dpstrf_t)(char *uplo, int *n, double *a, int *lda, int *piv, int *rank,
                         double *tol, double *work, int *info);
typedef void (*dpotrf_t)(char *uplo, int *n, double *a, int *lda, int *info);
static dgesv_t lp_dgesv = NULL;
static dpstrf_t lp_dpstrf = NULL;
static dpotrf_t lp_dpotrf = NULL;

/* Set the LAPACK routines (once, by the loader, before any solve). */
FQP_EXPORT void fairmt_qp_set_lapack(void *gesv, void *pstrf, void *potrf) {
    lp_dgesv = (dgesv_t)gesv;
    lp_dpstrf = (dpstrf_t)pstrf;
    lp_dpotrf = (dpotrf_t)potrf;
}

typedef struct {
    int T, ld;           /* problem size, leading dimension of N (T + 1) */
    const double *K;     /* scaled symmetric K (or K + rho I), row-major T x T */
    const double *b;     /* scaled b (or the proximal subproblem's) */
    double *N;           /* inverse of M_F, ld x ld, row-major */
    double *M, *R;       /* LAPACK scratch, ld x ld each */
    double *z, *c, *w, *u;  /* vectors of length ld */
    double *g;           /* gradient, length T */
    double *xb, *xt;     /* best block iterate, block iterate / scratch, length T */
    int *F, *inF, *ban, *banlist, *ipiv;  /* primal working set, bans, LAPACK pivots */
    int *bmask, *bF, *list, *tmask, *sF;  /* block working set, scratch lists and mask */
    int k, nban;
    int *trace, ntrace, cap;  /* working sets visited (sorted indices, -1 after each) */
    int carry_ok, carry_upd;  /* F, N and the update count carried between proximal steps */
} ws_t;

/* x'y with independent partial sums (a plain reduction loop is not vectorised without
 * -ffast-math, and its latency chain dominates at these sizes). */
static double dot(const double *x, const double *y, int n) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += x[i] * y[i];
        a1 += x[i + 1] * y[i + 1];
        a2 += x[i + 2] * y[i + 2];
        a3 += x[i + 3] * y[i + 3];
        a4 += x[i + 4] * y[i + 4];
        a5 += x[i + 5] * y[i + 5];
        a6 += x[i + 6] * y[i + 6];
        a7 += x[i + 7] * y[i + 7];
    }
    for (; i < n; ++i) a0 += x[i] * y[i];
    return ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7));
}

/* ---------------------------------------------------------------- trace */
static void rec_put(ws_t *W, int v) {
    if (W->ntrace < W->cap) W->trace[W->ntrace] = v;
    ++W->ntrace;
}

/* _record(trace, F) for the working set held in the mask m */
static void rec_mask(ws_t *W, const int *m) {
    if (!W->trace) return;
    for (int t = 0; t < W->T; ++t)
        if (m[t]) rec_put(W, t);
    rec_put(W, -1);
}

/* _record for a sorted list */
static void rec_list(ws_t *W, const int *F, int k) {
    if (!W->trace) return;
    for (int p = 0; p < k; ++p) rec_put(W, F[p]);
    rec_put(W, -1);
}

/* ---------------------------------------------------------------- products with K */
/* g = K x + b for x supported on F (k entries; K symmetric: rows of K instead of columns) */
static void grad_on(const double *K, const double *b, int T, const int *F, int k,
                    const double *x, double *g) {
    memcpy(g, b, (size_t)T * sizeof(double));
    int p = 0;
    for (; p + 8 <= k; p += 8) {  /* eight rows per pass over g (bound by loads and stores) */
        const double x0 = x[F[p]], x1 = x[F[p + 1]], x2 = x[F[p + 2]], x3 = x[F[p + 3]];
        const double x4 = x[F[p + 4]], x5 = x[F[p + 5]], x6 = x[F[p + 6]], x7 = x[F[p + 7]];
        const double *K0 = K + (size_t)F[p] * T, *K1 = K + (size_t)F[p + 1] * T;
        const double *K2 = K + (size_t)F[p + 2] * T, *K3 = K + (size_t)F[p + 3] * T;
        const double *K4 = K + (size_t)F[p + 4] * T, *K5 = K + (size_t)F[p + 5] * T;
        const double *K6 = K + (size_t)F[p + 6] * T, *K7 = K + (size_t)F[p + 7] * T;
        for (int t = 0; t < T; ++t)
            g[t] += ((x0 * K0[t] + x1 * K1[t]) + (x2 * K2[t] + x3 * K3[t])) +
                    ((x4 * K4[t] + x5 * K5[t]) + (x6 * K6[t] + x7 * K7[t]));
    }
    for (; p + 4 <= k; p += 4) {
        const double x0 = x[F[p]], x1 = x[F[p + 1]], x2 = x[F[p + 2]], x3 = x[F[p + 3]];
        const double *K0 = K + (size_t)F[p] * T, *K1 = K + (size_t)F[p + 1] * T;
        const double *K2 = K + (size_t)F[p + 2] * T, *K3 = K + (size_t)F[p + 3] * T;
        for (int t = 0; t < T; ++t) g[t] += (x0 * K0[t] + x1 * K1[t]) + (x2 * K2[t] + x3 * K3[t]);
    }
    for (; p < k; ++p) {
        const double xi = x[F[p]];
        const double *Ki = K + (size_t)F[p] * T;
        for (int t = 0; t < T; ++t) g[t] += xi * Ki[t];
    }
}

/* g = K x + b for any x (the support of x is gathered into list) */
static void grad_full(const double *K, const double *b, int T, const double *x, double *g,
                      int *list) {
    int k = 0;
    for (int t = 0; t < T; ++t)
        if (x[t] != 0.0) list[k++] = t;
    grad_on(K, b, T, list, k, x, g);
}

/* ---------------------------------------------------------------- dense solves (LAPACK) */
/* dgesv: A X = B for n x n A and n x nrhs B (both column-major, leading dimension n), A
 * overwritten by its LU factors, B by X, *info > 0 when a pivot is exactly zero (X is then not
 * computed). Up to FQP_SMALL_LU, inline: the unblocked LU with partial pivoting of LAPACK's
 * dgetf2 (pivot: the first entry of largest magnitude; the column scaled by the reciprocal of
 * the pivot) and its triangular solves, with none of LAPACK's call overhead, which dominates
 * at these sizes (measured 1.2x-2.3x faster than SciPy's OpenBLAS dgesv for n = 4..41; slower
 * from about n = 64); LAPACK beyond. The answers agree with LAPACK's to round-off. */
#ifndef FQP_SMALL_LU
#define FQP_SMALL_LU 48
#endif
static void gesv(int n, int nrhs, double *A, int *ipiv, double *B, int *info) {
    if (n > FQP_SMALL_LU) {
        lp_dgesv(&n, &nrhs, A, &n, ipiv, B, &n, info);
        return;
    }
    *info = 0;
    for (int k = 0; k < n; ++k) {
        double *Ak = A + (size_t)k * n;
        int p = k;
        double mx = fabs(Ak[k]);
        for (int i = k + 1; i < n; ++i) {
            const double v = fabs(Ak[i]);
            if (v > mx) { mx = v; p = i; }
        }
        ipiv[k] = p + 1;
        if (!(mx != 0.0)) { *info = k + 1; return; }  /* exactly singular (or NaN) */
        if (p != k) {
            for (int j = 0; j < n; ++j) {
                double *Aj = A + (size_t)j * n;
                const double t = Aj[k]; Aj[k] = Aj[p]; Aj[p] = t;
            }
            for (int j = 0; j < nrhs; ++j) {
                double *Bj = B + (size_t)j * n;
                const double t = Bj[k]; Bj[k] = Bj[p]; Bj[p] = t;
            }
        }
        const double inv = 1.0 / Ak[k];
        for (int i = k + 1; i < n; ++i) Ak[i] *= inv;
        for (int j = k + 1; j < n; ++j) {
            double *Aj = A + (size_t)j * n;
            const double a = Aj[k];
            if (a != 0.0)
                for (int i = k + 1; i < n; ++i) Aj[i] -= Ak[i] * a;
        }
        for (int j = 0; j < nrhs; ++j) {
            double *Bj = B + (size_t)j * n;
            const double a = Bj[k];
            if (a != 0.0)
                for (int i = k + 1; i < n; ++i) Bj[i] -= Ak[i] * a;
        }
    }
    for (int j = 0; j < nrhs; ++j) {
        double *Bj = B + (size_t)j * n;
        for (int k = n - 1; k >= 0; --k) {
            const double *Ak = A + (size_t)k * n;
            const double a = Bj[k] / Ak[k];
            Bj[k] = a;
            if (a != 0.0)
                for (int i = 0; i < k; ++i) Bj[i] -= Ak[i] * a;
        }
    }
}

/* dpotrf ('L'): the Cholesky factor L of the symmetric n x n A (column-major, leading
 * dimension n; the lower triangle is read and overwritten), *info = j > 0 when the leading
 * minor of order j is not positive definite. Up to FQP_SMALL_LU inline (the unblocked
 * right-looking algorithm), LAPACK beyond. */
static void potrf(int n, double *A, int *info) {
    if (n > FQP_SMALL_LU) {
        char uplo = 'L';
        lp_dpotrf(&uplo, &n, A, &n, info);
        return;
    }
    *info = 0;
    for (int j = 0; j < n; ++j) {
        double *Aj = A + (size_t)j * n;
        const double d = Aj[j];
        if (!(d > 0.0)) { *info = j + 1; return; }  /* also NaN */
        const double ljj = sqrt(d), inv = 1.0 / ljj;
        Aj[j] = ljj;
        for (int i = j + 1; i < n; ++i) Aj[i] *= inv;
        for (int c = j + 1; c < n; ++c) {
            double *Ac = A + (size_t)c * n;
            const double a = Aj[c];
            if (a != 0.0)
                for (int i = c; i < n; ++i) Ac[i] -= Aj[i] * a;
        }
    }
}

/* M = [[0, 1'], [1, K_FF]] into W->M (compact, leading dimension k + 1; symmetric, so the
 * row-major layout is also LAPACK's column-major one) */
static void kkt_matrix(ws_t *W, const int *F, int k) {
    const int n = k + 1, T = W->T;
    double *M = W->M;
    M[0] = 0.0;
    for (int q = 1; q < n; ++q) { M[q] = 1.0; M[(size_t)q * n] = 1.0; }
    for (int p = 0; p < k; ++p) {
        const double *Kp = W->K + (size_t)F[p] * T;
        double *Mp = M + (size_t)(p + 1) * n + 1;
        for (int q = 0; q < k; ++q) Mp[q] = Kp[F[q]];
    }
}

/* _kkt_inverse: N = inverse of M_F (dgesv against the identity), refused (-1) when singular,
 * not finite or max|N| max(1, k) > limit (1e12: kkt_inverse; no limit: _polish._inverse). */
static int kkt_inverse_lim(ws_t *W, const int *F, int k, double limit) {
    int n = k + 1, info = 0;
    kkt_matrix(W, F, k);
    double *R = W->R;
    memset(R, 0, (size_t)n * n * sizeof(double));
    for (int i = 0; i < n; ++i) R[(size_t)i * n + i] = 1.0;
    gesv(n, n, W->M, W->ipiv, R, &info);
    if (info != 0) return -1;
    double mx = 0.0;
    for (size_t i = 0; i < (size_t)n * n; ++i) {
        const double v = fabs(R[i]);
        if (!(v <= mx)) mx = v;  /* NaN propagates */
    }
    if (!(mx * (k > 1 ? (double)k : 1.0) <= limit) || !(mx <= 1.7976931348623157e308))
        return -1;
    const int ld = W->ld;
    for (int r = 0; r < n; ++r)  /* R is column-major: N[r][c] = R[r + c n] */
        for (int c = 0; c < n; ++c) W->N[(size_t)r * ld + c] = R[r + (size_t)c * n];
    return 0;
}

static int kkt_inverse(ws_t *W, const int *F, int k) { return kkt_inverse_lim(W, F, k, 1e12); }

/* _solve_on: z = (nu, x_F) solving M_F z = (1, -b_F); -1 if singular or max|z| >= 1e8.
 * From FQP_CHOL_MIN_K indices on, first through the Cholesky factor of K_FF (half the work of
 * the LU of M_F): x = u - nu v with K_FF u = -b_F, K_FF v = 1 and nu = (1'u - 1) / 1'v, taken
 * when K_FF is numerically positive definite (every pivot L_jj^2 at least FQP_CHOL_PIV
 * max_j K_jj, 1'v > 0, max|z| < 1e8); otherwise (a singular or ill-conditioned K_FF, where
 * M_F may still be well conditioned) the LU of M_F. */
#define FQP_CHOL_MIN_K 24  /* _CHOL_MIN_K */
#define FQP_CHOL_PIV 1e-8  /* _CHOL_PIV */
static int solve_on_chol(ws_t *W, const int *F, int k, double *z) {
    const int T = W->T;
    double *L = W->M, *u = W->c, *v = W->w;
    double dmax = 0.0;
    for (int p = 0; p < k; ++p) {
        const double *Kp = W->K + (size_t)F[p] * T;
        double *Lp = L + (size_t)p * k;  /* column p (K_FF symmetric) */
        for (int q = p; q < k; ++q) Lp[q] = Kp[F[q]];
        if (!(Lp[p] <= dmax)) dmax = Lp[p];
    }
    int info = 0;
    potrf(k, L, &info);
    if (info != 0) return -1;
    for (int p = 0; p < k; ++p) {
        const double l = L[(size_t)p * k + p];
        if (!(l * l >= FQP_CHOL_PIV * dmax)) return -1;
    }
    for (int p = 0; p < k; ++p) { u[p] = -W->b[F[p]]; v[p] = 1.0; }
    for (int j = 0; j < k; ++j) {  /* L y = r (columns of L contiguous) */
        const double *Lj = L + (size_t)j * k;
        const double a = u[j] / Lj[j], c = v[j] / Lj[j];
        u[j] = a; v[j] = c;
        for (int i = j + 1; i < k; ++i) { u[i] -= Lj[i] * a; v[i] -= Lj[i] * c; }
    }
    for (int j = k - 1; j >= 0; --j) {  /* L' w = y */
        const double *Lj = L + (size_t)j * k;
        double a = u[j], c = v[j];
        for (int i = j + 1; i < k; ++i) { a -= Lj[i] * u[i]; c -= Lj[i] * v[i]; }
        u[j] = a / Lj[j];
        v[j] = c / Lj[j];
    }
    double su = 0.0, sv = 0.0;
    for (int p = 0; p < k; ++p) { su += u[p]; sv += v[p]; }
    if (!(sv > 0.0)) return -1;
    const double nu = (su - 1.0) / sv;
    z[0] = nu;
    double mx = fabs(nu);
    for (int p = 0; p < k; ++p) {
        const double x = u[p] - nu * v[p];
        z[p + 1] = x;
        if (!(fabs(x) <= mx)) mx = fabs(x);
    }
    return mx < 1e8 ? 0 : -1;
}

static int solve_on(ws_t *W, const int *F, int k, double *z) {
    if (k >= FQP_CHOL_MIN_K && solve_on_chol(W, F, k, z) == 0) return 0;
    int n = k + 1, info = 0;
    kkt_matrix(W, F, k);
    z[0] = 1.0;
    for (int p = 0; p < k; ++p) z[p + 1] = -W->b[F[p]];
    gesv(n, 1, W->M, W->ipiv, z, &info);
    if (info != 0) return -1;
    double mx = 0.0;
    for (int i = 0; i < n; ++i) {
        const double v = fabs(z[i]);
        if (!(v <= mx)) mx = v;
    }
    return mx < 1e8 ? 0 : -1;
}

/* Pivoted Cholesky (dpstrf) of the Gram matrix of the differences K-rows of rest (m entries)
 * to the reference index r: the rank and the pivots (1-based, in W->ipiv); -1 if LAPACK
 * reports an illegal argument. gmax receives the largest diagonal entry. */
static int gram_pstrf(ws_t *W, int r, const int *rest, int m, double rtol, int rel, int *rank,
                      double *gmax_out) {
    const int T = W->T;
    const double *K = W->K;
    double *G = W->M;
    const double krr = K[(size_t)r * T + r];
    double *k0 = W->u;
    for (int a = 0; a < m; ++a) k0[a] = K[(size_t)rest[a] * T + r];
    double gmax = -INFINITY;
    for (int a = 0; a < m; ++a) {
        const double *Ka = K + (size_t)rest[a] * T;
        double *Ga = G + (size_t)a * m;
        for (int q = 0; q < m; ++q) Ga[q] = ((Ka[rest[q]] - k0[a]) - k0[q]) + krr;
        if (Ga[a] > gmax || a == 0) gmax = Ga[a];
    }
    *gmax_out = gmax;
    if (!(gmax > FQP_SING)) return 1;
    int n = m, info = 0;
    double tol = rel ? rtol * gmax : rtol;
    char uplo = 'U';
    lp_dpstrf(&uplo, &n, G, &n, W->ipiv, rank, &tol, W->R, &info);
    return info < 0 ? -1 : 0;
}

/* _affine_basis: a largest subset of F (sorted, k entries) with M nonsingular, sorted, into
 * out; returns its size. */
static int affine_basis(ws_t *W, const int *F, int k, int *out) {
    const int T = W->T;
    int i0 = F[0];
    double best = INFINITY;
    for (int p = 0; p < k; ++p) {
        const int i = F[p];
        const double v = 0.5 * W->K[(size_t)i * T + i] + W->b[i];
        if (v < best || p == 0) { best = v; i0 = i; }
    }
    int m = 0;
    int *rest = W->list;
    for (int p = 0; p < k; ++p)
        if (F[p] != i0) rest[m++] = F[p];
    if (m == 0) { for (int p = 0; p < k; ++p) out[p] = F[p]; return k; }
    int rank = 0;
    double gmax;
    const int st = gram_pstrf(W, i0, rest, m, 1e-9, 1, &rank, &gmax);
    if (st != 0) { out[0] = i0; return 1; }
    /* sorted union of rest[piv[:rank] - 1] and i0, through a mask */
    int *tm = W->tmask;
    for (int t = 0; t < T; ++t) tm[t] = 0;
    tm[i0] = 1;
    for (int a = 0; a < rank; ++a) tm[rest[W->ipiv[a] - 1]] = 1;
    int n = 0;
    for (int t = 0; t < T; ++t)
        if (tm[t]) out[n++] = t;
    return n;
}

/* _affine_basis_keep: a maximal subset of F (k entries, in order, j among them) containing j
 * with M nonsingular, in the order keep + [j], into out; returns its size. */
static int affine_basis_keep(ws_t *W, const int *F, int k, int j, int *out) {
    int m = 0;
    int *rest = W->list;
    for (int p = 0; p < k; ++p)
        if (F[p] != j) rest[m++] = F[p];
    int n = 0;
    if (m > 0) {
        int rank = 0;
        double gmax;
        const int st = gram_pstrf(W, j, rest, m, FQP_SING, 0, &rank, &gmax);
        if (st == 0)
            for (int a = 0; a < rank; ++a) out[n++] = rest[W->ipiv[a] - 1];
    }
    out[n++] = j;
    return n;
}

/* ---------------------------------------------------------------- bordered inverse */
/* N <- inverse of M_{j} */
static void vertex_inverse(ws_t *W, int j) {
    double *N = W->N;
    N[0] = -W->K[(size_t)j * W->T + j];
    N[1] = 1.0;
    N[W->ld] = 1.0;
    N[W->ld + 1] = 0.0;
}

/* c = (1, K[F, j]), w = N c; returns s = K_jj - c'w */
static double schur(ws_t *W, int j) {
    const int k = W->k, ld = W->ld;
    const double *Kj = W->K + (size_t)j * W->T;
    double *c = W->c, *w = W->w;
    c[0] = 1.0;
    for (int p = 0; p < k; ++p) c[p + 1] = Kj[W->F[p]];
    for (int r = 0; r <= k; ++r) w[r] = dot(W->N + (size_t)r * ld, c, k + 1);
    return Kj[j] - dot(c, w, k + 1);
}

/* _add: border N with the new index j (w = N c, s the Schur complement). When b is given,
 * the same sweep also computes z = N (1, -b_F, -b_j) for the new working set (the next
 * subproblem solution: one pass over N instead of two; c is overwritten). */
static void border(ws_t *W, double s, const double *b, int j) {
    const int k = W->k, ld = W->ld;
    const double *w = W->w;
    double *ws = W->u, *N = W->N, *rh = W->c, *z = W->z;
    for (int q = 0; q <= k; ++q) ws[q] = w[q] / s;
    if (b) {
        rh[0] = 1.0;
        for (int p = 0; p < k; ++p) rh[p + 1] = -b[W->F[p]];
        rh[k + 1] = -b[j];
    }
    for (int r = 0; r <= k; ++r) {
        double *Nr = N + (size_t)r * ld;
        const double wr = w[r];
        if (b) {
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            int q = 0;
            for (; q + 4 <= k + 1; q += 4) {
                const double v0 = Nr[q] + wr * ws[q], v1 = Nr[q + 1] + wr * ws[q + 1];
                const double v2 = Nr[q + 2] + wr * ws[q + 2], v3 = Nr[q + 3] + wr * ws[q + 3];
                Nr[q] = v0; Nr[q + 1] = v1; Nr[q + 2] = v2; Nr[q + 3] = v3;
                a0 += v0 * rh[q]; a1 += v1 * rh[q + 1]; a2 += v2 * rh[q + 2]; a3 += v3 * rh[q + 3];
            }
            for (; q <= k; ++q) {
                const double v = Nr[q] + wr * ws[q];
                Nr[q] = v;
                a0 += v * rh[q];
            }
            Nr[k + 1] = -ws[r];
            z[r] = ((a0 + a1) + (a2 + a3)) + Nr[k + 1] * rh[k + 1];
        } else {
            for (int q = 0; q <= k; ++q) Nr[q] += wr * ws[q];
            Nr[k + 1] = -ws[r];
        }
    }
    double *Nl = N + (size_t)(k + 1) * ld;
    for (int q = 0; q <= k; ++q) Nl[q] = -ws[q];
    Nl[k + 1] = 1.0 / s;
    if (b) z[k + 1] = dot(Nl, rh, k + 2);
}

/* _drop: remove F[pos] (row/column pos + 1 of N) by a Schur downdate. When b is given, the
 * same sweep also computes z = N (1, -b_F) for the new working set (c is overwritten). */
static void drop(ws_t *W, int pos, const double *b) {
    const int ld = W->ld, k = W->k, q = pos + 1, last = k;
    double *N = W->N;
    if (q != last) {
        for (int c = 0; c <= k; ++c) {
            const double t = N[(size_t)q * ld + c];
            N[(size_t)q * ld + c] = N[(size_t)last * ld + c];
            N[(size_t)last * ld + c] = t;
        }
        for (int r = 0; r <= k; ++r) {
            const double t = N[(size_t)r * ld + q];
            N[(size_t)r * ld + q] = N[(size_t)r * ld + last];
            N[(size_t)r * ld + last] = t;
        }
        const int t = W->F[pos];
        W->F[pos] = W->F[k - 1];
        W->F[k - 1] = t;
    }
    const double *Nl = N + (size_t)last * ld;
    const double piv = Nl[last];
    double *u = W->u, *rh = W->c, *z = W->z;
    for (int c = 0; c < last; ++c) u[c] = Nl[c] / piv;
    if (b) {
        rh[0] = 1.0;
        for (int p = 0; p < k - 1; ++p) rh[p + 1] = -b[W->F[p]];
    }
    for (int r = 0; r < last; ++r) {
        double *Nr = N + (size_t)r * ld;
        const double f = Nr[last];
        if (b) {
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            int c = 0;
            for (; c + 4 <= last; c += 4) {
                const double v0 = Nr[c] - f * u[c], v1 = Nr[c + 1] - f * u[c + 1];
                const double v2 = Nr[c + 2] - f * u[c + 2], v3 = Nr[c + 3] - f * u[c + 3];
                Nr[c] = v0; Nr[c + 1] = v1; Nr[c + 2] = v2; Nr[c + 3] = v3;
                a0 += v0 * rh[c]; a1 += v1 * rh[c + 1]; a2 += v2 * rh[c + 2]; a3 += v3 * rh[c + 3];
            }
            for (; c < last; ++c) {
                const double v = Nr[c] - f * u[c];
                Nr[c] = v;
                a0 += v * rh[c];
            }
            z[r] = (a0 + a1) + (a2 + a3);
        } else {
            for (int c = 0; c < last; ++c) Nr[c] -= f * u[c];
        }
    }
    W->inF[W->F[k - 1]] = 0;
    W->k = k - 1;
}

static void clear_ban(ws_t *W) {
    for (int i = 0; i < W->nban; ++i) W->ban[W->banlist[i]] = 0;
    W->nban = 0;
}

static void add_ban(ws_t *W, int j) {
    if (!W->ban[j]) {
        W->ban[j] = 1;
        W->banlist[W->nban++] = j;
    }
}

static void set_F(ws_t *W, const int *F, int k) {
    for (int t = 0; t < W->T; ++t) W->inF[t] = 0;
    for (int p = 0; p < k; ++p) { W->F[p] = F[p]; W->inF[F[p]] = 1; }
    W->k = k;
}

/* ---------------------------------------------------------------- block_pivot */
/* Block principal pivoting from the mask W->bmask (solve_active_set's first phase). Returns 1
 * with the optimum in x; else 0, with *have_best set when W->xb holds the iterate with the
 * fewest infeasibilities. *changes counts the working-set exchanges. */
/* the ratio test of a step from x_F towards the subproblem solution z = (nu, z_F): the
 * position in F of the first coordinate to reach zero (-1 when no coordinate decreases) and,
 * in *t, the fraction of the step taken there */
static int ratio_test(const double *x, const int *F, const double *z, int k, double *t) {
    int pos = -1;
    double tmin = INFINITY;
    for (int p = 0; p < k; ++p) {
        const double xi = x[F[p]], d = z[p + 1] - xi;
        if (d < 0.0) {
            const double r = (xi > 0.0 ? xi : 0.0) / -d;
            if (pos < 0 || r < tmin) { tmin = r; pos = p; }
        }
    }
    *t = tmin;
    return pos;
}

static int block_pivot(ws_t *W, double tol, int max_steps, double *x, int *have_best,
                       int *changes) {
    const int T = W->T;
    int *m = W->bmask, *bF = W->bF;
    double *z = W->z, *g = W->g, *xt = W->xt;
    int best_count = -1, ch = 0;
    *have_best = 0;
    for (int step = 0; step < max_steps; ++step) {
        int k = 0;
        for (int t = 0; t < T; ++t)
            if (m[t]) bF[k++] = t;
        if (k == 0) break;
        rec_list(W, bF, k);
        if (solve_on(W, bF, k, z) != 0) {  /* singular: a maximal nonsingular part of F */
            const int k2 = affine_basis(W, bF, k, W->sF);
            if (k2 == k) break;
            for (int t = 0; t < T; ++t) m[t] = 0;
            for (int p = 0; p < k2; ++p) { bF[p] = W->sF[p]; m[bF[p]] = 1; }
            k = k2;
            ++ch;
            rec_list(W, bF, k);
            if (solve_on(W, bF, k, z) != 0) break;
        }
        for (int t = 0; t < T; ++t) xt[t] = 0.0;
        double xmin = INFINITY;
        for (int p = 0; p < k; ++p) {
            xt[bF[p]] = z[p + 1];
            if (!(z[p + 1] >= xmin)) xmin = z[p + 1];
        }
        grad_on(W->K, W->b, T, bF, k, xt, g);  /* mu = g + nu off F (nu = z[0] = -lambda) */
        const double nu = z[0];
        int count = 0, negmu = 0;
        for (int t = 0; t < T; ++t) {
            if (m[t]) count += xt[t] < 0.0;
            else if (g[t] + nu < -tol) ++negmu;
        }
        if (xmin >= 0.0 && negmu == 0) {
            memcpy(x, xt, (size_t)T * sizeof(double));
            *changes = ch;
            return 1;
        }
        count += negmu;
        /* progress: a third fewer infeasibilities than the best iterate (geometric on
         * well-conditioned K; otherwise the primal method takes over at once) */
        const int slow = best_count >= 0 && 3 * count > 2 * best_count;
        if (best_count < 0 || count < best_count) {
            best_count = count;
            memcpy(W->xb, xt, (size_t)T * sizeof(double));
            *have_best = 1;
        }
        if (slow) break;
        for (int t = 0; t < T; ++t)
            m[t] = m[t] ? !(xt[t] < 0.0) : (g[t] + nu < -tol);
        ++ch;
    }
    *changes = ch;
    return 0;
}

/* ---------------------------------------------------------------- active_set_qp */
/* The primal active-set method from the support sup (k0 entries, in order) and the point x0
 * (NULL: the barycentre of sup; may be x itself), else from the best vertex. x receives the
 * iterate. Returns 0 (optimal), 1 (iteration limit) or 2 (working set numerically singular).
 * use_state (the proximal subproblems, which share K): start from the working set, inverse and
 * update count left by the previous such call when W->carry_ok (x0 supported on that working
 * set), and leave them for the next one (W->carry_ok = 0 after a numerically singular set). */
static int active_set_qp(ws_t *W, double *x, double tol, int max_iter, const int *sup, int k0,
                         const double *x0, int *nit_out, int use_state) {
    const int T = W->T, ld = W->ld;
    const double *K = W->K, *b = W->b;
    double *z = W->z, *c = W->c, *w = W->w, *g = W->g;
    int *F = W->F, *inF = W->inF;
    int ok = 0, updates = 0;
    if (use_state && W->carry_ok) {
        ok = 1;
        updates = W->carry_upd;
        for (int t = 0; t < T; ++t) x[t] = inF[t] ? x0[t] : 0.0;
    } else if (k0 > 0 && kkt_inverse(W, sup, k0) == 0) {
        ok = 1;
        set_F(W, sup, k0);
        if (x0) {
            for (int t = 0; t < T; ++t) x[t] = inF[t] ? x0[t] : 0.0;
        } else {
            for (int t = 0; t < T; ++t) x[t] = inF[t] ? 1.0 / k0 : 0.0;
        }
    }
    if (!ok) {  /* cold start at the best vertex */
        int i0 = 0;
        double best = INFINITY;
        for (int i = 0; i < T; ++i) {
            const double v = 0.5 * K[(size_t)i * T + i] + b[i];
            if (v < best) { best = v; i0 = i; }
        }
        set_F(W, &i0, 1);
        vertex_inverse(W, i0);
        for (int t = 0; t < T; ++t) x[t] = 0.0;
        x[i0] = 1.0;
    }
    rec_mask(W, inF);
    int nit = 0, last_added = -1, restarts = 0;
    int zfix = 0, refined_at = -1;  /* z holds a refined solution on F (not N (1, -b_F)) */
    int zok = 0;                    /* z = N (1, -b_F) already (computed by border / drop) */
    clear_ban(W);
#define FQP_RET(code) do {                                              \
        *nit_out = nit;                                                 \
        if (use_state) { W->carry_ok = (code) != 2; W->carry_upd = updates; } \
        return (code);                                                  \
    } while (0)
    for (;;) {
        /* ---- move to the minimiser of the subproblem on F (dropping blocking indices) */
        for (;;) {
            const int k = W->k;
            if (!zfix && !zok) {
                c[0] = 1.0;
                for (int p = 0; p < k; ++p) c[p + 1] = -b[F[p]];
                for (int r = 0; r <= k; ++r) z[r] = dot(W->N + (size_t)r * ld, c, k + 1);
            }
            zfix = zok = 0;
            double zsum = 0.0, zmin = INFINITY;
            for (int r = 0; r <= k; ++r) {
                zsum += z[r];
                if (r > 0 && !(z[r] >= zmin)) zmin = z[r];
            }
            if (!isfinite(zsum)) FQP_RET(2);
            if (zmin >= 0.0) {
                for (int p = 0; p < k; ++p) x[F[p]] = z[p + 1];
                break;
            }
            double tmin;
            const int pos = ratio_test(x, F, z, k, &tmin);
            if (pos < 0) FQP_RET(2);
            for (int p = 0; p < k; ++p) {
                const double xi = x[F[p]], v = xi + tmin * (z[p + 1] - xi);
                x[F[p]] = v > 0.0 ? v : 0.0;
            }
            x[F[pos]] = 0.0;
            if (tmin > 0.0) clear_ban(W);
            else if (F[pos] == last_added) add_ban(W, last_added);
            drop(W, pos, b);
            zok = 1;
            rec_mask(W, inF);
            ++nit; ++updates;
            if (nit >= max_iter) FQP_RET(1);
        }
        /* ---- optimality test on the multipliers of the bounds x_j >= 0, j not in F */
        const int k = W->k;
        grad_on(K, b, T, F, k, x, g);
        double lam = 0.0;
        for (int p = 0; p < k; ++p) lam += x[F[p]] * g[F[p]];
        int j = -1;
        double mumin = INFINITY;
        for (int t = 0; t < T; ++t) {
            if (inF[t] || W->ban[t]) continue;
            const double mu = g[t] - lam;
            if (j < 0 || mu < mumin) { mumin = mu; j = t; }
        }
        if (j < 0 || mumin >= -tol) {
            double stat = 0.0;
            for (int p = 0; p < k; ++p) {
                const double d = fabs(g[F[p]] - lam);
                if (!(d <= stat)) stat = d;
            }
            if (stat > FQP_STAT_TOL && updates > 0 && refined_at != nit) {
                /* accumulated round-off in N: one step of iterative refinement first, O(k^2):
                 * z += N (rhs - M_F z), the residual being (1 - 1'x_F, -(g_F + nu)) */
                refined_at = nit;
                double sx = 0.0;
                for (int p = 0; p < k; ++p) sx += x[F[p]];
                c[0] = 1.0 - sx;
                for (int p = 0; p < k; ++p) c[p + 1] = -(g[F[p]] + z[0]);
                for (int r = 0; r <= k; ++r) w[r] = dot(W->N + (size_t)r * ld, c, k + 1);
                for (int r = 0; r <= k; ++r) z[r] += w[r];
                zfix = 1;
                continue;
            }
            if (stat > FQP_STAT_TOL && updates > 0 && kkt_inverse(W, F, k) == 0) {
                updates = 0;  /* then a rebuild, retry */
                continue;
            }
            FQP_RET(0);
        }
        if (nit >= max_iter) FQP_RET(1);
        {   /* steepest edge among the negative multipliers */
            double xkx = 0.0;
            for (int p = 0; p < k; ++p) xkx += x[F[p]] * (g[F[p]] - b[F[p]]);
            double best = 0.0;
            for (int t = 0; t < T; ++t) {
                if (inF[t] || W->ban[t]) continue;
                const double mu = g[t] - lam;
                if (!(mu < -tol)) continue;
                double cv = (K[(size_t)t * T + t] - 2.0 * (g[t] - b[t])) + xkx;
                if (!(cv > 1e-300)) cv = 1e-300;
                const double sc = -(mu * mu) / cv;
                if (sc < best) { best = sc; j = t; mumin = mu; }
            }
        }
        last_added = j;
        /* ---- add j to F */
        double s = schur(W, j);
        ++nit; ++updates;
        if (!isfinite(s)) FQP_RET(2);
        if (s > FQP_SING) {
            border(W, s, b, j);
            zok = 1;
            F[k] = j; inF[j] = 1; W->k = k + 1;
        } else {
            /* zero (or negligible) curvature on F + {j}: d_F = -w_x, d_j = 1 is a descent
             * direction with slope mu_j < 0 */
            int pos = -1;
            double tb = INFINITY;
            for (int p = 0; p < k; ++p) {
                if (-w[p + 1] < 0.0) {
                    const double xi = x[F[p]], r = (xi > 0.0 ? xi : 0.0) / w[p + 1];
                    if (pos < 0 || r < tb) { tb = r; pos = p; }
                }
            }
            if (pos < 0) FQP_RET(2);
            if (s > 0.0 && -mumin < s * tb) {  /* decrease below round-off: skip j */
                add_ban(W, j);
                continue;
            }
            for (int p = 0; p < k; ++p) {
                const double v = x[F[p]] + tb * -w[p + 1];
                x[F[p]] = v > 0.0 ? v : 0.0;
            }
            x[j] = tb;
            x[F[pos]] = 0.0;
            clear_ban(W);
            if (k == 1) {  /* from vertex F[0] straight to vertex j */
                set_F(W, &j, 1);
                vertex_inverse(W, j);
                rec_mask(W, inF);
                continue;
            }
            drop(W, pos, NULL);
            s = schur(W, j);
            if (s > FQP_SING) {
                const int k2 = W->k;
                border(W, s, NULL, j);
                F[k2] = j; inF[j] = 1; W->k = k2 + 1;
            } else {  /* round-off made F + {j} - {i} look singular: rebuild from a basis */
                if (++restarts > 3) FQP_RET(2);
                const int k2 = W->k;
                for (int p = 0; p < k2; ++p) W->bF[p] = F[p];
                W->bF[k2] = j;
                const int k3 = affine_basis_keep(W, W->bF, k2 + 1, j, W->sF);
                set_F(W, W->sF, k3);
                double tot = 0.0;
                for (int t = 0; t < T; ++t) {
                    if (!inF[t]) x[t] = 0.0;
                    tot += x[t];
                }
                for (int t = 0; t < T; ++t) x[t] /= tot;
                if (kkt_inverse(W, F, k3) != 0) FQP_RET(2);
                updates = 0;
            }
        }
        rec_mask(W, inF);
        if (updates >= (W->k > FQP_REFRESH ? W->k : FQP_REFRESH)) {
            /* O(|F|^3) rebuild amortised over |F| updates; refused (M_F numerically
             * singular): the proximal refinement takes over */
            if (kkt_inverse(W, F, W->k) != 0) FQP_RET(2);
            updates = 0;
            zok = 0;
        }
    }
#undef FQP_RET
}

/* ---------------------------------------------------------------- solve_active_set */
typedef struct {
    const double *Ks, *bs;  /* the scaled problem */
    double *Kp, *bp;        /* the proximal subproblem's data */
    double *xbest;          /* best point of the proximal refinement */
    double roundoff;        /* roundoff_gap */
    int mode, outer;        /* 0 / 1 (refined to tol) / 2 (to round-off); outer steps */
    double pgap;            /* the refinement's final gap (polished: the returned point's) */
    int polished;           /* polish_support changed the point */
} prox_t;

static int prox(ws_t *W, prox_t *P, double *x, double tol, int max_iter, int *nit_out);
static void polish_support(ws_t *W, prox_t *P, double *x, double tol, int max_iter,
                           int face, int *nit_out);

/* x'g - min g, g = Ks x + bs (the Frank-Wolfe gap of the scaled problem) */
static double fw_gap(ws_t *W, const double *K, const double *b, const double *x) {
    const int T = W->T;
    grad_full(K, b, T, x, W->g, W->list);
    double xg = 0.0, gmin = INFINITY;
    for (int i = 0; i < T; ++i) {
        xg += x[i] * W->g[i];
        if (!(W->g[i] >= gmin)) gmin = W->g[i];
    }
    return xg - gmin;
}

/* solve_active_set on (W->K, W->b): block pivoting from the mask W->bmask when have_support
 * (else from the best vertex's first block), then the primal method from x0 (NULL: from the
 * best block iterate), the verification and (polish) the proximal refinement. x0 may be x.
 * Returns 0 (optimal) or nonzero. */
static int solve_active_set(ws_t *W, prox_t *P, double *x, double tol, int max_iter,
                            int have_support, const double *x0, int polish, int *nit_out) {
    const int T = W->T;
    const double *K = W->K, *b = W->b;
    int *m = W->bmask;
    int any = 0;
    if (have_support)
        for (int t = 0; t < T && !any; ++t) any = m[t] != 0;
    if (!any) {
        int i0 = 0;
        double best = INFINITY;
        for (int i = 0; i < T; ++i) {
            const double v = 0.5 * K[(size_t)i * T + i] + b[i];
            if (v < best) { best = v; i0 = i; }
        }
        const double *K0 = K + (size_t)i0 * T;
        const double gi0 = K0[i0] + b[i0];
        for (int t = 0; t < T; ++t) m[t] = (K0[t] + b[t]) < gi0 - tol;
        m[i0] = 1;
    }
    int have_best = 0, steps = 0;
    const int max_steps = max_iter < FQP_BLOCK_STEPS ? max_iter : FQP_BLOCK_STEPS;
    if (block_pivot(W, tol, max_steps, x, &have_best, &steps)) {
        if (polish && steps < max_iter) {  /* the exact support (polish_support) */
            int n3 = 0;
            polish_support(W, P, x, tol, max_iter - steps, 0, &n3);
            steps += n3;
        }
        *nit_out = steps;
        return 0;
    }
    int k0 = 0;
    const double *start = NULL;
    if (x0) {
        for (int t = 0; t < T; ++t)
            if (x0[t] > 0.0) W->sF[k0++] = t;
        start = x0;
    } else if (have_best) {
        int n = 0;
        for (int t = 0; t < T; ++t)
            if (W->xb[t] > 0.0) W->bF[n++] = t;
        if (n > 0) {  /* the positive part, reduced to a nonsingular working set */
            k0 = affine_basis(W, W->bF, n, W->sF);
            double *xs = W->xt, tot = 0.0;
            for (int t = 0; t < T; ++t) xs[t] = 0.0;
            for (int p = 0; p < k0; ++p) xs[W->sF[p]] = W->xb[W->sF[p]];
            for (int t = 0; t < T; ++t) tot += xs[t];
            if (tot > 0.0) {
                for (int t = 0; t < T; ++t) xs[t] /= tot;
                start = xs;
            } else {
                k0 = 0;
            }
        }
    }
    int budget = max_iter - steps;
    if (budget < 1) budget = 1;
    if (polish && budget > 5 * T + 50) budget = 5 * T + 50;
    int nit = 0;
    int status = active_set_qp(W, x, tol, budget, W->sF, k0, start, &nit, 0);
    nit += steps;
    if (status == 0 && polish) {  /* verify: round-off in the inverse updates */
        double sx = 0.0;
        for (int t = 0; t < T; ++t) sx += x[t];
        if (!(fabs(sx - 1.0) <= 1e-13 * T) || !(fw_gap(W, K, b, x) <= fmax(tol, 1e-13)))
            status = 1;
    }
    const int face = status == 0;  /* W->F, W->N: the primal method's last working set */
    if (status != 0 && polish && nit < max_iter) {
        int n2 = 0;
        status = prox(W, P, x, tol, max_iter - nit, &n2);
        nit += n2;
    }
    if (status == 0 && polish && nit < max_iter) {  /* the exact support (polish_support) */
        int n3 = 0;
        polish_support(W, P, x, tol, max_iter - nit, face, &n3);
        nit += n3;
    }
    *nit_out = nit;
    return status;
}

/* max(x, 0) / sum; returns the sum */
static double renormalise(double *x, int T) {
    double tot = 0.0;
    for (int i = 0; i < T; ++i) { if (!(x[i] > 0.0)) x[i] = 0.0; tot += x[i]; }
    for (int i = 0; i < T; ++i) x[i] /= tot;
    return tot;
}

/* _proximal_refinement: x+ = argmin f(a) + rho/2 |a - x|^2 over the simplex, each solved
 * exactly by active_set_qp from the point x, continuing from the previous subproblem's working
 * set and inverse (all share K + rho I); the first one starts from the support of x. */
static int prox(ws_t *W, prox_t *P, double *x, double tol, int max_iter, int *nit_out) {
    const int T = W->T;
    double hist[22];
    int nh = 0, nit = 0, outer;
    double best_gap = INFINITY;
    *nit_out = 0;
    if (!(renormalise(x, T) > 0.0)) return 1;
    memcpy(P->xbest, x, (size_t)T * sizeof(double));
    memcpy(P->Kp, P->Ks, (size_t)T * T * sizeof(double));
    for (int i = 0; i < T; ++i) P->Kp[(size_t)i * T + i] += FQP_RHO;
    W->carry_ok = 0;
    for (outer = 1; outer <= 1000; ++outer) {
        int k0 = 0;
        for (int i = 0; i < T; ++i) {
            P->bp[i] = P->bs[i] - FQP_RHO * x[i];
            if (x[i] > 0.0) W->sF[k0++] = i;
        }
        W->K = P->Kp;
        W->b = P->bp;
        int left = max_iter - nit, k = 0;
        if (left < 1) left = 1;
        active_set_qp(W, x, tol, left, W->sF, k0, x, &k, 1);
        W->K = P->Ks;
        W->b = P->bs;
        nit += k;
        if (!(renormalise(x, T) > 0.0)) break;
        const double gap = fw_gap(W, P->Ks, P->bs, x);
        if (gap <= tol) {
            memcpy(P->xbest, x, (size_t)T * sizeof(double));
            P->mode = 1;
            P->outer = outer;
            P->pgap = gap;
            *nit_out = nit;
            return 0;
        }
        hist[nh % 22] = gap;
        ++nh;
        if (gap < best_gap) {
            best_gap = gap;
            memcpy(P->xbest, x, (size_t)T * sizeof(double));
        }
        if (nh > 3 && best_gap <= fmin(P->roundoff, 5.0 * tol) && gap > 0.5 * hist[(nh - 4) % 22])
            break;  /* within a few tol and creeping */
        if (nh > 10 && best_gap <= P->roundoff && gap > 0.95 * hist[(nh - 11) % 22]) break;
        if (nh > 20 && gap > (1.0 - 1e-3) * hist[(nh - 21) % 22]) break;
        if (nit >= max_iter) break;
    }
    memcpy(x, P->xbest, (size_t)T * sizeof(double));
    *nit_out = nit;
    P->outer = outer > 1000 ? 1000 : outer;
    P->pgap = best_gap;
    if (best_gap <= P->roundoff) { P->mode = 2; return 0; }
    return 1;
}

/* ---------------------------------------------------------------- polish_support */
/* the constants of _polish.py */
#define FQP_POLISH_TOL 1e-16 /* POLISH_TOL: multiplier test (below float64 round-off of g) */
#define FQP_POLISH_MAX_TOL 1e-12 /* POLISH_MAX_TOL: the phase runs for tol up to this */
#define FQP_Z_MAX 1e8        /* _Z_MAX: a subproblem solution beyond this is singular */
#define FQP_REFINE 3         /* _REFINE: refinement steps */
#define FQP_STAT 1e-14       /* _STAT: stationarity residual that calls for the exact solve */
#define FQP_STAT_REL 1e-6    /* _STAT_REL: or this fraction of |lambda| */
#define FQP_LAM_MIN 1e-14    /* _LAM_MIN: the phase runs when |lambda| is above this */
#define FQP_RES_TOL 1e-15    /* _RES_TOL: accepted residual, relative to 1 + max|z| */
#ifndef FQP_POLISH_BLOCK
#define FQP_POLISH_BLOCK 16  /* BLOCK_ENTRY: indices entering per step at most */
#endif

/* _refined: z = N (1, -b_F) into W->z, refined against M_F by z += N (rhs - M_F z) up to
 * FQP_REFINE times: in double until max|residual| <= FQP_RES_TOL (1 + max|z|); with ext,
 * always FQP_REFINE times with the residual summed in long double, then the same test.
 * Returns 0 (accepted) or -1 (not accepted, z not finite or max|z| >= FQP_Z_MAX). Uses c, w,
 * u; have_z: z already holds N (1, -b_F). */
static int pol_refined(ws_t *W, const double *KF, int ext, int have_z) {
    const int k = W->k, ld = W->ld, T = W->T;
    const double *b = W->b;
    const int *F = W->F;
    double *z = W->z, *rh = W->c, *r = W->w;
    rh[0] = 1.0;
    for (int p = 0; p < k; ++p) rh[p + 1] = -b[F[p]];
    if (!have_z)  /* else z = N rh already (computed by border / drop in their sweep) */
        for (int q = 0; q <= k; ++q) z[q] = dot(W->N + (size_t)q * ld, rh, k + 1);
    int ok = 0;
    for (int step = 0; step <= FQP_REFINE; ++step) {
        double rmax = 0.0, zmax = 0.0;
        if (ext) {
            long double sx = 0.0L;
            for (int p = 0; p < k; ++p) sx += (long double)z[p + 1];
            r[0] = (double)((long double)rh[0] - sx);
            for (int p = 0; p < k; ++p) {
                const double *Kp = KF + (size_t)p * T;
                long double a = 0.0L;
                for (int q = 0; q < k; ++q) a += (long double)Kp[q] * (long double)z[q + 1];
                r[p + 1] = (double)((long double)rh[p + 1] - ((long double)z[0] + a));
            }
        } else {
            double sx = 0.0;
            for (int p = 0; p < k; ++p) sx += z[p + 1];
            r[0] = rh[0] - sx;
            for (int p = 0; p < k; ++p)
                r[p + 1] = rh[p + 1] - (z[0] + dot(KF + (size_t)p * T, z + 1, k));
        }
        for (int q = 0; q <= k; ++q) {
            const double a = fabs(z[q]), e = fabs(r[q]);
            if (!(a <= zmax)) zmax = a;
            if (!(e <= rmax)) rmax = e;
        }
        ok = zmax < FQP_Z_MAX && rmax <= FQP_RES_TOL * (1.0 + zmax);
        if (!ext && ok) return 0;
        if (step < FQP_REFINE) {
            double *d = W->u;
            for (int q = 0; q <= k; ++q) d[q] = dot(W->N + (size_t)q * ld, r, k + 1);
            for (int q = 0; q <= k; ++q) z[q] += d[q];
        }
    }
    return ext && ok ? 0 : -1;
}

/* row and column p of KF = K_FF (compact, leading dimension T, in the order of W->F) */
static void kff_row(ws_t *W, double *KF, int p) {
    const int T = W->T, k = W->k;
    const double *Kp = W->K + (size_t)W->F[p] * T;
    for (int q = 0; q < k; ++q) {
        const double v = Kp[W->F[q]];
        KF[(size_t)p * T + q] = v;
        KF[(size_t)q * T + p] = v;
    }
}

static void kff_all(ws_t *W, double *KF) {
    for (int p = 0; p < W->k; ++p) kff_row(W, KF, p);
}

/* _f_ext: f(x) summed in long double over the support of x */
static long double f_ext(ws_t *W, const double *x) {
    const int T = W->T;
    const double *K = W->K, *b = W->b;
    int m = 0;
    int *S = W->list;
    for (int t = 0; t < T; ++t)
        if (x[t] != 0.0) S[m++] = t;
    long double q = 0.0L, l = 0.0L;
    for (int p = 0; p < m; ++p) {
        const double *Kp = K + (size_t)S[p] * T;
        long double a = 0.0L;
        for (int r = 0; r < m; ++r) a += (long double)Kp[S[r]] * (long double)x[S[r]];
        q += (long double)x[S[p]] * a;
        l += (long double)b[S[p]] * (long double)x[S[p]];
    }
    return 0.5L * q + l;
}

/* polish_support (_polish.py): from the feasible x, a primal active-set method with the
 * multiplier test at min(tol, FQP_POLISH_TOL), no zero-curvature test, up to FQP_POLISH_BLOCK
 * of the most negative multipliers entering per step (bordered in order), the inverse of M_F
 * updated by border / drop and every subproblem solution refined against M_F (rebuilt when
 * the refinement fails; the entering index banned when it still fails or its Schur
 * complement is not positive); the last face refined with long double residuals; x is kept
 * when the polished point is not lower in f. P->xbest holds the start. face: W->F and W->N
 * are the primal method's last working set and inverse (used when F is the support of x). */
static void polish_support(ws_t *W, prox_t *P, double *x, double tol, int max_iter,
                           int face, int *nit_out) {
    const int T = W->T;
    const double *K = W->K, *b = W->b;
    const double tp = tol < FQP_POLISH_TOL ? tol : FQP_POLISH_TOL;
    double *g = W->g, *z = W->z;
    int *F = W->F, *inF = W->inF;
    *nit_out = 0;
    if (!(tol <= FQP_POLISH_MAX_TOL)) return;
    grad_full(K, b, T, x, g, W->list);
    double xg = 0.0;
    for (int t = 0; t < T; ++t) xg += x[t] * g[t];
    double stat = 0.0, mumin = INFINITY;
    for (int t = 0; t < T; ++t) {
        const double mu = g[t] - xg;
        if (x[t] > 0.0) {
            if (fabs(mu) > stat) stat = fabs(mu);
        } else if (mu < mumin) {
            mumin = mu;
        }
    }
    const double lam = fabs(xg);
    if (!(lam > FQP_LAM_MIN && (mumin < -tp || stat > fmin(FQP_STAT, FQP_STAT_REL * lam))))
        return;
    int k0 = 0;
    for (int t = 0; t < T; ++t)
        if (x[t] > 0.0) W->sF[k0++] = t;
    int same = face && W->k == k0;  /* the primal method's working set is the support */
    for (int p = 0; p < W->k && same; ++p) same = x[F[p]] > 0.0;
    if (!same) {
        if (kkt_inverse_lim(W, W->sF, k0, INFINITY) != 0) return;
        set_F(W, W->sF, k0);
    }
    double *KF = P->Kp;  /* K_FF (free after the proximal refinement) */
    kff_all(W, KF);
    memcpy(P->xbest, x, (size_t)T * sizeof(double));
    clear_ban(W);
    int nit = 0, last = -1, zok = 0;
    rec_mask(W, inF);
    while (nit < max_iter) {
        const int k = W->k;
        const int have_z = zok;
        zok = 0;
        if (pol_refined(W, KF, 0, have_z) != 0) {  /* lost the inverse: rebuild it once */
            if (kkt_inverse_lim(W, F, k, INFINITY) != 0 || pol_refined(W, KF, 0, 0) != 0) {
                if (last < 0) break;  /* still not: the last entering index made M_F singular */
                add_ban(W, last);
                int m = 0;
                for (int p = 0; p < k; ++p)
                    if (F[p] != last) F[m++] = F[p];
                inF[last] = 0;
                W->k = m;
                kff_all(W, KF);
                last = -1;
                if (kkt_inverse_lim(W, F, m, INFINITY) != 0) break;
                ++nit;
                rec_mask(W, inF);
                continue;
            }
        }
        double zmin = INFINITY;
        for (int p = 0; p < k; ++p)
            if (!(z[p + 1] >= zmin)) zmin = z[p + 1];
        if (zmin < 0.0) {  /* move towards z until the first coordinate hits zero; drop it */
            double tmin;
            const int pos = ratio_test(x, F, z, k, &tmin);
            if (pos < 0) break;
            for (int p = 0; p < k; ++p) {
                const double xi = x[F[p]], v = xi + tmin * (z[p + 1] - xi);
                x[F[p]] = v > 0.0 ? v : 0.0;
            }
            x[F[pos]] = 0.0;
            last = -1;
            drop(W, pos, b);
            zok = 1;
            if (pos < W->k) kff_row(W, KF, pos);  /* F[pos] is the former last index */
            ++nit;
            rec_mask(W, inF);
            continue;
        }
        for (int p = 0; p < k; ++p) x[F[p]] = z[p + 1];
        grad_on(K, b, T, F, k, x, g);
        xg = 0.0;
        for (int t = 0; t < T; ++t) xg += x[t] * g[t];
        int j = -1;
        mumin = INFINITY;
        for (int t = 0; t < T; ++t) {
            if (inF[t] || W->ban[t]) continue;
            const double mu = g[t] - xg;
            if (j < 0 || mu < mumin) { mumin = mu; j = t; }
        }
        if (j < 0 || !(mumin < -tp)) {  /* optimal: the last face once more, long double */
            if (pol_refined(W, KF, 1, 0) == 0) {
                zmin = INFINITY;
                for (int p = 0; p < k; ++p)
                    if (!(z[p + 1] >= zmin)) zmin = z[p + 1];
                if (zmin >= 0.0)
                    for (int p = 0; p < k; ++p) x[F[p]] = z[p + 1];
            }
            break;
        }
        for (int e = 0; e < FQP_POLISH_BLOCK; ++e) {  /* the most negative multipliers enter */
            const double s = schur(W, j);
            ++nit;
            if (!(s > 0.0)) {  /* numerically singular: j cannot enter */
                add_ban(W, j);
            } else {
                const int kk = W->k;
                border(W, s, b, j);
                zok = 1;
                F[kk] = j;
                inF[j] = 1;
                W->k = kk + 1;
                kff_row(W, KF, kk);
                last = j;
                rec_mask(W, inF);
            }
            j = -1;  /* the next: the lowest multiplier at x outside F and the bans */
            mumin = INFINITY;
            for (int t = 0; t < T; ++t) {
                if (inF[t] || W->ban[t]) continue;
                const double mu = g[t] - xg;
                if (j < 0 || mu < mumin) { mumin = mu; j = t; }
            }
            if (j < 0 || !(mumin < -tp && nit < max_iter)) break;
        }
    }
    *nit_out = nit;
    renormalise(x, T);
    if (!(f_ext(W, x) <= f_ext(W, P->xbest))) {  /* round-off: keep the start */
        memcpy(x, P->xbest, (size_t)T * sizeof(double));
        return;
    }
    int moved = 0;
    for (int t = 0; t < T && !moved; ++t) moved = x[t] != P->xbest[t];
    if (moved) {  /* the message quotes the returned point's gap */
        P->polished = 1;
        P->pgap = fw_gap(W, K, b, x);
    }
}

/* Size of the double (which = 0) and int (which = 1) work arrays for problem size T. */
FQP_EXPORT int fairmt_qp_work_size(int T, int which) {
    const int ld = T + 1;
    if (which == 0) return 2 * T * T + 3 * ld * ld + 4 * ld + 7 * T;
    return 9 * T + ld;
}

/* Solve the simplex QP: solve_active_set on the data scaled as solve_simplex_qp scales it.
 *
 * ctx = {K, b, warm, x, g, info, iinfo, work, iwork, trace, params}: K T x T row-major; b (length T,
 * used when flags & 1, else zero); warm (a point of length T, used when flags & 2; entries
 * > 1e-12 are kept and renormalised, as the Python path does); flags & 12: the input checks
 * of certificates._qp.check_symmetric_psd with r = rtol (input_rtol of the caller's dtype),
 * relative to s = max|K| with no absolute floor and delta = r T s: finiteness, symmetry
 * (max|K - K'| <= r s) and, for flags & 4 (T <= FULL_CHECK_T), a Cholesky factorisation of
 * (K + K')/2 + delta I; for flags & 8 (larger T), the O(T^2) necessary conditions (diagonal
 * >= -delta, |S_ij| <= sqrt((S_ii + delta)(S_jj + delta)) + r s for i >= j, S = (K + K')/2,
 * as the Python blocks read them) and then
 * check_curvature_at at the solution (x'Kx and the edges e_j - x against -delta |v|^2, a
 * Cholesky factorisation of K_FF + delta I on the support F); tol: relative tolerance on the
 * bound multipliers; max_iter: working-set changes; roundoff: the refinement's roundoff_gap.
 * trace (NULL, or iinfo[2] ints): the working sets visited, each as its sorted indices and -1;
 * iinfo[3] receives the number of ints written (more than iinfo[2]: truncated).
 * Outputs: x, g = (K x + b - min b) / scale (the gradient of the scaled problem, read on
 * b - min b as the certificate reads it), info[0] = b'x, info[1] = max|K|, info[2] = min b
 * (0 without b), info[3] = the refinement's final gap, info[4] = its outer steps,
 * info[5] = nit, info[6] = mode (0: the primal method or block pivoting converged, 1: refined
 * to gap <= tol, 2: to round-off; 3 more when polish_support changed the point, info[3] then
 * being the returned point's gap), info[7] = the data scale max(max|K|, max b - min b) by
 * which the problem was divided (> 0 here: data_scale of the certificates); iinfo[0] = nit,
 * iinfo[1] = mode.
 * Return: 0 optimal and verified; 1 not solved (iteration budget, numerically singular working
 * sets that the refinement did not resolve); 3 degenerate data (f constant, T < 3, max b - min b
 * beyond the float range: the Python path solves it from the halves) or a bad warm start; 4 no LAPACK; -1 K not finite; -2 b not finite; -3 K not symmetric; -4 the PSD
 * pre-check failed; -5 the curvature test at the solution failed (flags & 8).
 */
FQP_EXPORT FQP_CLONES int fairmt_qp_solve(const intptr_t *ctx, int T, double tol, int max_iter,
                                          int flags, double roundoff, double rtol) {
    const double *K = (const double *)ctx[0];
    const double *b = (flags & 1) ? (const double *)ctx[1] : NULL;
    const double *warm = (flags & 2) ? (const double *)ctx[2] : NULL;
    const int check = (flags & 12) != 0, full = (flags & 4) != 0, minors = (flags & 8) != 0;
    double *x = (double *)ctx[3], *g = (double *)ctx[4], *info = (double *)ctx[5];
    int *iinfo = (int *)ctx[6];
    double *work = (double *)ctx[7];
    int *iwork = (int *)ctx[8];
    int *trace = (int *)ctx[9];
    const int ld = T + 1;
    iinfo[0] = 0;
    iinfo[3] = 0;
    if (T < 3) return 3;
    if (!lp_dgesv || !lp_dpstrf || !lp_dpotrf) return 4;
    /* ---- data scale and checks */
    double kabs = 0.0, asym = 0.0;
    int finite = 1;
    for (int i = 0; i < T; ++i) {
        const double *Ki = K + (size_t)i * T;
        for (int j = 0; j < T; ++j) {
            const double v = fabs(Ki[j]);
            if (!(v <= 1.7976931348623157e308)) finite = 0;
            if (v > kabs) kabs = v;
        }
    }
    if (check && !finite) return -1;
    double bmin = 0.0, bmax = 0.0;
    if (b) {
        bmin = INFINITY; bmax = -INFINITY;
        int bfin = 1;
        for (int i = 0; i < T; ++i) {
            const double v = b[i];
            if (!(fabs(v) <= 1.7976931348623157e308)) bfin = 0;
            if (v < bmin) bmin = v;
            if (v > bmax) bmax = v;
        }
        if (check && !bfin) return -2;
    }
    if (!finite || !isfinite(bmin) || !isfinite(bmax)) return 1;
    const double scale = fmax(kabs, bmax - bmin);
    if (!(scale > 0.0) || !isfinite(scale)) return 3;
    /* ---- work layout */
    double *Ks = work, *Kp = Ks + (size_t)T * T;
    double *N = Kp + (size_t)T * T, *M = N + (size_t)ld * ld, *R = M + (size_t)ld * ld;
    double *z = R + (size_t)ld * ld, *c = z + ld, *w = c + ld, *u = w + ld;
    double *gs = u + ld, *xb = gs + T, *xt = xb + T, *bs = xt + T, *bp = bs + T;
    double *xbest = bp + T, *x0 = xbest + T;
    int *F = iwork, *inF = F + T, *ban = inF + T, *banlist = ban + T, *bmask = banlist + T;
    int *bF = bmask + T, *list = bF + T, *tmask = list + T, *sF = tmask + T, *ipiv = sF + T;
    /* ---- scaled symmetric copy, (K/2 + K'/2) / scale (halves first: K + K' overflows for
     * entries above half the float range), and the symmetry check; with
     * flags & 8 also the 2 x 2 principal minors |S_ij| <= dd_i dd_j + r s, dd = sqrt(S_ii +
     * delta), all on the scaled data (xb holds dd until the solve) */
    const double inv = 1.0 / scale;
    const double delta = rtol * T * kabs;  /* on the caller's data */
    const double rs = rtol * kabs * inv;   /* r s, scaled */
    double excess = 0.0;
    if (check && minors) {
        for (int i = 0; i < T; ++i) {
            const double d = K[(size_t)i * T + i];
            if (d < -delta) return -4;
            xb[i] = sqrt(fmax((d + delta) * inv, 0.0));
        }
    }
    for (int i = 0; i < T; ++i) {
        const double *Ki = K + (size_t)i * T;
        double *Si = Ks + (size_t)i * T;
        Si[i] = Ki[i] * inv;
        for (int j = 0; j < i; ++j) {
            const double a = Ki[j], bb = K[(size_t)j * T + i];
            const double d = fabs(a - bb);
            if (d > asym) asym = d;
            const double v = (0.5 * a + 0.5 * bb) * inv;
            Si[j] = v;
            Ks[(size_t)j * T + i] = v;
        }
        if (check && minors) {
            const double ddi = xb[i];
            for (int j = 0; j <= i; ++j) {  /* j = i as the Python blocks read it */
                const double e = fabs(Si[j]) - ddi * xb[j];
                if (e > excess) excess = e;
            }
        }
    }
    if (check && asym > rtol * kabs) return -3;
    if (check && excess > rs) return -4;
    if (check && full && kabs > 0.0) {
        /* Cholesky (dpotrf) of the scaled (K + K')/2 + delta I; Kp is scratch here */
        const double ds = delta * inv;
        memcpy(Kp, Ks, (size_t)T * T * sizeof(double));
        for (int i = 0; i < T; ++i) Kp[(size_t)i * T + i] += ds;
        int info = 0;
        potrf(T, Kp, &info);
        if (info != 0) return -4;
    }
    for (int i = 0; i < T; ++i) bs[i] = b ? (b[i] - bmin) * inv : 0.0;
    /* ---- warm start: a point (its support is the first working set) */
    ws_t W = {T, ld, Ks, bs, N, M, R, z, c, w, u, gs, xb, xt, F, inF, ban, banlist, ipiv,
              bmask, bF, list, tmask, sF, 0, 0, trace, 0, trace ? iinfo[2] : 0};
    for (int i = 0; i < T; ++i) { ban[i] = 0; bmask[i] = 0; }
    const double *start = NULL;
    if (warm) {
        double tot = 0.0;
        for (int i = 0; i < T; ++i) {
            const double v = warm[i] > 1e-12 ? warm[i] : 0.0;
            x0[i] = v;
            tot += v;
        }
        if (!(tot > 0.0) || !isfinite(tot)) return 3;
        for (int i = 0; i < T; ++i) {
            x0[i] /= tot;
            bmask[i] = x0[i] != 0.0;
        }
        start = x0;
    }
    prox_t P = {Ks, bs, Kp, bp, xbest, roundoff, 0, 0, 0.0, 0};
    int nit = 0;
    const int status = solve_active_set(&W, &P, x, tol, max_iter, start != NULL, start, 1,
                                        &nit);
    iinfo[0] = nit;
    iinfo[1] = P.mode;
    iinfo[3] = W.ntrace;
    info[3] = P.pgap;
    info[4] = (double)P.outer;
    info[5] = (double)nit;
    info[6] = (double)(P.mode + 3 * P.polished);
    if (status != 0) return 1;
    /* ---- outputs on the caller's data */
    double bx = 0.0, xKx = 0.0, xx = 0.0;
    for (int i = 0; i < T; ++i) {
        const double kx = dot(K + (size_t)i * T, x, T);
        xt[i] = kx;  /* K x (scratch after the solve) */
        g[i] = kx * inv + bs[i];
        if (b) bx += b[i] * x[i];
        if (x[i] > 0.0) {
            xKx += x[i] * kx;
            xx += x[i] * x[i];
        }
    }
    if (check && minors && kabs > 0.0) {
        /* check_curvature_at: along x, along every edge e_j - x, and on the support */
        if (xKx < -delta * xx) return -5;
        for (int j = 0; j < T; ++j) {
            const double c = K[(size_t)j * T + j] - 2.0 * xt[j] + xKx
                             + delta * (1.0 - 2.0 * x[j] + xx);
            if (c < 0.0) return -5;
        }
        int m = 0;
        for (int i = 0; i < T; ++i)
            if (x[i] > 0.0) sF[m++] = i;
        if (m > 1) {
            const double ds = delta * inv;
            for (int p = 0; p < m; ++p) {
                const double *Si = Ks + (size_t)sF[p] * T;
                for (int q = 0; q < m; ++q) Kp[(size_t)p * m + q] = Si[sF[q]];
                Kp[(size_t)p * m + p] += ds;
            }
            int info2 = 0;
            potrf(m, Kp, &info2);
            if (info2 != 0) return -5;
        }
    }
    info[0] = bx;
    info[1] = kabs;
    info[2] = bmin;
    info[7] = scale;
    return 0;
}

/* fairmt_qp_solve with its arguments read from ctx[10], a double array
 * {T, tol, max_iter, flags, roundoff, rtol} that the caller rewrites only when they change
 * (a call with one argument costs less from ctypes than one with seven). */
FQP_EXPORT int fairmt_qp_solve_ctx(const intptr_t *ctx) {
    const double *p = (const double *)ctx[10];
    return fairmt_qp_solve(ctx, (int)p[0], p[1], (int)p[2], (int)p[3], p[4], p[5]);
}

/* Not a Python module: this symbol only satisfies build tools that export PyInit_<name>. */
FQP_EXPORT void *PyInit__qpkernel(void) { return NULL; }
