/* Compiled fast path of the primal active-set method for
 *
 *     min 1/2 x'Kx + b'x   subject to   x >= 0, 1'x = 1        (K symmetric PSD, maybe singular)
 *
 * The same algorithm as fairmt_opt/_qp_active_set.py (active_set_qp): the working set F keeps
 * the KKT matrix M_F = [[0, 1'], [1, K_FF]] nonsingular; its inverse N is bordered when an index
 * is added and downdated (Schur complement) when one is dropped; a zero-curvature direction of a
 * singular K is followed by an exact line search to the next bound (no ridge). Two choices
 * differ from the Python implementation (neither affects exactness or termination): the index
 * added is the one of most negative multiplier per unit K-length of its edge e_j - x (a cheap
 * steepest-edge rule; the Python one takes the most negative multiplier), and a cold start
 * begins at the barycentre of a smaller first working set (the better half of the candidates,
 * by the same rule), not at the vertex with all of them. Plain C99 + libm,
 * no Python headers: loaded with ctypes by fairmt_opt/_qp_kernel.py.
 *
 * Entry point: fairmt_qp_solve (see the comment above it). Every result other than a clean,
 * verified optimum is reported by a nonzero return code; the caller then runs the Python
 * implementation, so correctness never depends on this file.
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
 * is inlined into it (flatten) so that the inner loops use the wider vectors. Define
 * FQP_NO_CLONES to build the baseline version only. */
#if !defined(FQP_NO_CLONES) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    (defined(__clang__) ? __clang_major__ >= 14 : (defined(__GNUC__) && __GNUC__ >= 11))
#define FQP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#else
#define FQP_CLONES
#endif

#define FQP_SING 1e-9     /* curvature (relative to max|K| = 1) treated as zero */
#define FQP_REFRESH 60    /* rebuild the inverse after this many updates */
#define FQP_STAT_TOL 1e-12

typedef struct {
    int T, ld;           /* problem size, leading dimension of N (T + 1) */
    const double *K;     /* scaled symmetric K, row-major T x T */
    const double *b;     /* scaled b */
    double *N, *N2;      /* inverse of M_F and a spare for rebuilds, ld x ld */
    double *z, *c, *w;   /* vectors of length T + 1 */
    double *g;           /* scaled gradient, length T */
    int *F, *inF, *ban, *banlist;
    int k, nban;
    int upd;             /* inverse updates since N was last built from scratch */
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

/* N <- inverse of M_{j} */
static void vertex_inverse(double *N, int ld, const double *K, int T, int j) {
    N[0] = -K[(size_t)j * T + j];
    N[1] = 1.0;
    N[ld] = 1.0;
    N[ld + 1] = 0.0;
}

/* c = (1, K[F, j]), w = N c, returns s = K_jj - c'w (Schur complement of M_{F+j}). */
static double schur(const double *N, int ld, int k, const double *K, int T, const int *F, int j,
                    double *c, double *w) {
    const double *Kj = K + (size_t)j * T;
    c[0] = 1.0;
    for (int p = 0; p < k; ++p) c[p + 1] = Kj[F[p]];
    double s = Kj[j];
    for (int r = 0; r <= k; ++r) {
        const double acc = dot(N + (size_t)r * ld, c, k + 1);
        w[r] = acc;
        s -= c[r] * acc;
    }
    return s;
}

/* Border N (size k + 1) with the new index: w = N c, s the Schur complement. */
static void border(double *N, int ld, int k, const double *w, double s) {
    const double inv = 1.0 / s;
    for (int r = 0; r <= k; ++r) {
        double *Nr = N + (size_t)r * ld;
        const double wr = w[r] * inv;
        for (int q = 0; q <= k; ++q) Nr[q] += wr * w[q];
        Nr[k + 1] = -wr;
    }
    double *Nl = N + (size_t)(k + 1) * ld;
    for (int q = 0; q <= k; ++q) Nl[q] = -w[q] * inv;
    Nl[k + 1] = inv;
}

/* Remove F[pos] (row/column pos + 1 of N). If z is not NULL it holds N rhs on entry and the
 * solution of the reduced system on return (O(k): z_A - N_Aq z_q / N_qq). Returns 0, or -1 on
 * a zero pivot. */
static int drop(ws_t *W, int pos, double *z) {
    const int ld = W->ld, k = W->k, q = pos + 1, last = k;
    double *N = W->N;
    if (q != last) {
        for (int c = 0; c <= k; ++c) {
            double t = N[(size_t)q * ld + c];
            N[(size_t)q * ld + c] = N[(size_t)last * ld + c];
            N[(size_t)last * ld + c] = t;
        }
        for (int r = 0; r <= k; ++r) {
            double t = N[(size_t)r * ld + q];
            N[(size_t)r * ld + q] = N[(size_t)r * ld + last];
            N[(size_t)r * ld + last] = t;
        }
        int t = W->F[pos];
        W->F[pos] = W->F[k - 1];
        W->F[k - 1] = t;
        if (z) {
            const double tz = z[q];
            z[q] = z[last];
            z[last] = tz;
        }
    }
    const double *Nl = N + (size_t)last * ld;
    const double piv = Nl[last];
    if (!(piv != 0.0) || !isfinite(piv)) return -1;
    if (z) {
        const double f = z[last] / piv;
        for (int r = 0; r < last; ++r) z[r] -= N[(size_t)r * ld + last] * f;
    }
    for (int r = 0; r < last; ++r) {
        double *Nr = N + (size_t)r * ld;
        const double f = Nr[last] / piv;
        for (int c = 0; c < last; ++c) Nr[c] -= f * Nl[c];
    }
    W->inF[W->F[k - 1]] = 0;
    W->k = k - 1;
    return 0;
}

/* Rebuild the inverse of M_F from scratch by bordering (into N2, swapped in on success). */
static int rebuild(ws_t *W) {
    const int k = W->k, ld = W->ld;
    double *N2 = W->N2;
    vertex_inverse(N2, ld, W->K, W->T, W->F[0]);
    for (int p = 1; p < k; ++p) {
        double s = schur(N2, ld, p, W->K, W->T, W->F, W->F[p], W->c, W->w);
        if (!(s > FQP_SING)) return -1;
        border(N2, ld, p, W->w, s);
    }
    W->N2 = W->N;
    W->N = N2;
    return 0;
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

/* g = K x + b on the support F (scaled data): eight (then four) rows of K per pass over g (the loop is
 * bound by the loads and stores of g, and this is the most frequent O(T |F|) operation). */
static void gradient(ws_t *W, const double *x) {
    const int T = W->T, k = W->k;
    const int *F = W->F;
    const double *K = W->K;
    double *g = W->g;
    memcpy(g, W->b, (size_t)T * sizeof(double));
    int p = 0;
    for (; p + 8 <= k; p += 8) {
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
        if (xi == 0.0) continue;
        const double *Ki = K + (size_t)F[p] * T;
        for (int t = 0; t < T; ++t) g[t] += xi * Ki[t];
    }
}

/* The primal active-set method from the working set in W (N, F, inF set up) and a feasible x
 * supported on F. Returns 0 (optimal), 1 (iteration budget), 2 (numerical trouble). */
static int primal(ws_t *W, double *x, double tol, int max_iter, int *nit_out) {
    const int T = W->T, ld = W->ld;
    const double *K = W->K, *b = W->b;
    double *z = W->z, *c = W->c, *w = W->w, *g = W->g;
    int *F = W->F, *inF = W->inF;
    int nit = 0, last_added = -1;
    int zok = 0;  /* z = N (1, -b_F) is up to date (kept by O(k) updates between rebuilds) */
    W->nban = 0;
    for (;;) {
        /* ---- move to the minimiser of the subproblem on F, dropping blocking indices */
        for (;;) {
            const int k = W->k;
            const double *N = W->N;
            if (!zok) {
                c[0] = 1.0;
                for (int p = 0; p < k; ++p) c[p + 1] = -b[F[p]];
                for (int r = 0; r <= k; ++r) z[r] = dot(N + (size_t)r * ld, c, k + 1);
                zok = 1;
            }
            double zsum = z[0], zmin = INFINITY;
            for (int r = 1; r <= k; ++r) {
                zsum += z[r];
                if (z[r] < zmin) zmin = z[r];
            }
            if (!isfinite(zsum)) { *nit_out = nit; return 2; }
            if (zmin >= 0.0) {
                for (int p = 0; p < k; ++p) x[F[p]] = z[p + 1];
                break;
            }
            /* ratio test along p = z - x_F */
            int pos = -1;
            double tmin = INFINITY;
            for (int p = 0; p < k; ++p) {
                const double xi = x[F[p]], d = z[p + 1] - xi;
                if (d < 0.0) {
                    const double r = (xi > 0.0 ? xi : 0.0) / -d;
                    if (r < tmin) { tmin = r; pos = p; }
                }
            }
            if (pos < 0) { *nit_out = nit; return 2; }
            for (int p = 0; p < k; ++p) {
                const double xi = x[F[p]], v = xi + tmin * (z[p + 1] - xi);
                x[F[p]] = v > 0.0 ? v : 0.0;
            }
            x[F[pos]] = 0.0;
            if (tmin > 0.0) clear_ban(W);
            else if (F[pos] == last_added) add_ban(W, last_added);
            if (drop(W, pos, z) != 0) { *nit_out = nit; return 2; }
            ++nit; ++W->upd;
            if (nit >= max_iter) { *nit_out = nit; return 1; }
        }
        /* ---- optimality test on the multipliers of the bounds x_j >= 0, j not in F */
        gradient(W, x);
        const int k = W->k;
        double lam = 0.0;
        for (int p = 0; p < k; ++p) lam += x[F[p]] * g[F[p]];
        int j = -1;
        double mumin = INFINITY;
        for (int t = 0; t < T; ++t) {
            if (inF[t] || W->ban[t]) continue;
            const double mu = g[t] - lam;
            if (mu < mumin) { mumin = mu; j = t; }
        }
        if (j < 0 || mumin >= -tol) {
            if (!isfinite(lam)) { *nit_out = nit; return 2; }
            double stat = 0.0;
            for (int p = 0; p < k; ++p) {
                const double d = fabs(g[F[p]] - lam);
                if (d > stat) stat = d;
            }
            if (stat > FQP_STAT_TOL && W->upd > 0 && rebuild(W) == 0) {
                W->upd = 0;
                zok = 0;
                continue;
            }
            *nit_out = nit;
            return 0;
        }
        if (nit >= max_iter) { *nit_out = nit; return 1; }
        {
            /* pricing: the most negative multiplier per unit length of the edge direction
             * e_t - x, |e_t - x|_K^2 = K_tt - 2 (Kx)_t + x'Kx (O(1) each from g) */
            double xkx = 0.0;
            for (int p = 0; p < k; ++p) xkx += x[F[p]] * (g[F[p]] - b[F[p]]);
            double best = 0.0;
            for (int t = 0; t < T; ++t) {
                if (inF[t] || W->ban[t]) continue;
                const double mu = g[t] - lam;
                if (!(mu < -tol)) continue;
                double cv = K[(size_t)t * T + t] - 2.0 * (g[t] - b[t]) + xkx;
                if (!(cv > 1e-300)) cv = 1e-300;
                const double sc = -(mu * mu) / cv;  /* mu < 0: -(mu / sqrt(cv))^2, no sqrt */
                if (sc < best) { best = sc; j = t; mumin = mu; }
            }
        }
        last_added = j;
        /* ---- add j to F */
        double s = schur(W->N, ld, k, K, T, F, j, c, w);
        ++nit; ++W->upd;
        if (!isfinite(s)) { *nit_out = nit; return 2; }
        if (s > FQP_SING) {
            /* the subproblem solution on F + {j} from z (O(k)): rhs = (1, -b_F), r_j = -b_j */
            double wr = w[0];
            for (int p = 0; p < k; ++p) wr -= w[p + 1] * b[F[p]];
            const double f = (wr + b[j]) / s;
            for (int r = 0; r <= k; ++r) z[r] += w[r] * f;
            z[k + 1] = -f;
            border(W->N, ld, k, w, s);
            F[k] = j; inF[j] = 1; W->k = k + 1;
        } else {
            zok = 0;
            /* zero curvature on F + {j}: d_F = -w_x, d_j = 1 is a descent direction */
            int pos = -1;
            double tb = INFINITY;
            for (int p = 0; p < k; ++p) {
                const double d = -w[p + 1];
                if (d < 0.0) {
                    const double xi = x[F[p]], r = (xi > 0.0 ? xi : 0.0) / -d;
                    if (r < tb) { tb = r; pos = p; }
                }
            }
            if (pos < 0) { *nit_out = nit; return 2; }
            if (s > 0.0 && -mumin < s * tb) {  /* decrease below round-off: skip j */
                add_ban(W, j);
                continue;
            }
            for (int p = 0; p < k; ++p) {
                const double v = x[F[p]] - tb * w[p + 1];
                x[F[p]] = v > 0.0 ? v : 0.0;
            }
            x[j] = tb;
            x[F[pos]] = 0.0;
            clear_ban(W);
            if (k == 1) {  /* from vertex F[0] straight to vertex j */
                inF[F[0]] = 0;
                F[0] = j; inF[j] = 1;
                vertex_inverse(W->N, ld, K, T, j);
                continue;
            }
            if (drop(W, pos, NULL) != 0) { *nit_out = nit; return 2; }
            const int k2 = W->k;
            s = schur(W->N, ld, k2, K, T, F, j, c, w);
            if (!(s > FQP_SING)) { *nit_out = nit; return 2; }  /* Python: basis restart */
            border(W->N, ld, k2, w, s);
            F[k2] = j; inF[j] = 1; W->k = k2 + 1;
        }
        if (W->upd >= FQP_REFRESH && rebuild(W) == 0) {
            W->upd = 0;
            zok = 0;
        }
    }
}

/* border(N, k, w, s) for the index j and, in the same pass over N, the Schur data of the next
 * candidate j2 on F + {j}: c2 = (1, K[F + j, j2]), w2 = N_new c2; returns s2. One sweep over
 * the inverse per addition instead of two (the build is bound by memory traffic). */
static double border_schur(ws_t *W, int k, const double *w, double s, int j, int j2,
                           double *c2, double *w2) {
    const int T = W->T, ld = W->ld;
    double *N = W->N;
    const double *K2 = W->K + (size_t)j2 * T;
    const double inv = 1.0 / s;
    c2[0] = 1.0;
    for (int p = 0; p < k; ++p) c2[p + 1] = K2[W->F[p]];
    const double cj = K2[j];  /* c2[k + 1] */
    double last = cj * inv;   /* w2[k + 1] = sum_q (-w_q / s) c2[q] + c2[k + 1] / s */
    for (int r = 0; r <= k; ++r) {
        double *Nr = N + (size_t)r * ld;
        const double wr = w[r] * inv;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
        int q = 0;
        for (; q + 4 <= k + 1; q += 4) {
            const double v0 = Nr[q] + wr * w[q], v1 = Nr[q + 1] + wr * w[q + 1];
            const double v2 = Nr[q + 2] + wr * w[q + 2], v3 = Nr[q + 3] + wr * w[q + 3];
            Nr[q] = v0; Nr[q + 1] = v1; Nr[q + 2] = v2; Nr[q + 3] = v3;
            a0 += v0 * c2[q]; a1 += v1 * c2[q + 1]; a2 += v2 * c2[q + 2]; a3 += v3 * c2[q + 3];
        }
        for (; q <= k; ++q) {
            const double v = Nr[q] + wr * w[q];
            Nr[q] = v;
            a0 += v * c2[q];
        }
        Nr[k + 1] = -wr;
        w2[r] = ((a0 + a1) + (a2 + a3)) - wr * cj;
        last -= wr * c2[r];
    }
    double *Nl = N + (size_t)(k + 1) * ld;
    for (int q = 0; q <= k; ++q) Nl[q] = -w[q] * inv;
    Nl[k + 1] = inv;
    w2[k + 1] = last;
    c2[k + 1] = cj;
    double s2 = K2[j2];
    for (int r = 0; r <= k + 1; ++r) s2 -= c2[r] * w2[r];
    return s2;
}

/* Set up F = {first} + the indices of cand (in order) whose addition keeps M_F nonsingular.
 * Returns the number of candidates skipped. */
static int build_set(ws_t *W, int first, const int *cand, int ncand) {
    const int T = W->T, ld = W->ld;
    int skipped = 0, have = 0;  /* have: W->w and s already hold the Schur data of cand[i] */
    double s = 0.0;
    for (int t = 0; t < T; ++t) W->inF[t] = 0;
    vertex_inverse(W->N, ld, W->K, T, first);
    W->F[0] = first; W->inF[first] = 1; W->k = 1;
    W->upd = 0;
    for (int i = 0; i < ncand; ++i) {
        const int j = cand[i];
        if (W->inF[j]) { have = 0; continue; }
        if (!have) s = schur(W->N, ld, W->k, W->K, T, W->F, j, W->c, W->w);
        have = 0;
        if (s > FQP_SING && isfinite(s)) {
            const int k = W->k;
            const int j2 = i + 1 < ncand ? cand[i + 1] : -1;
            if (j2 >= 0 && j2 != j && !W->inF[j2]) {
                /* z is free during the build: it receives w2, then becomes w */
                s = border_schur(W, k, W->w, s, j, j2, W->c, W->z);
                memcpy(W->w, W->z, (size_t)(k + 2) * sizeof(double));
                have = 1;
            } else {
                border(W->N, ld, k, W->w, s);
            }
            W->F[k] = j; W->inF[j] = 1; W->k = k + 1;
        } else {
            ++skipped;
        }
    }
    return skipped;
}

/* Cholesky U'U of A + delta I (U upper, row-major, right-looking so that the inner loop is a
 * contiguous axpy): 0 if it succeeds. */
static int chol_shifted(const double *A, int T, double delta, double *U) {
    for (int i = 0; i < T; ++i) {
        memcpy(U + (size_t)i * T + i, A + (size_t)i * T + i, (size_t)(T - i) * sizeof(double));
        U[(size_t)i * T + i] += delta;
    }
    int k = 0;
    for (; k + 1 < T; k += 2) {  /* two pivots at a time: rank-2 updates of the trailing rows */
        double *U0 = U + (size_t)k * T, *U1 = U0 + T;
        const double d0 = U0[k];
        if (!(d0 > 0.0) || !isfinite(d0)) return -1;
        const double r0 = sqrt(d0), i0 = 1.0 / r0;
        U0[k] = r0;
        for (int j = k + 1; j < T; ++j) U0[j] *= i0;
        const double f = U0[k + 1];
        for (int j = k + 1; j < T; ++j) U1[j] -= f * U0[j];
        const double d1 = U1[k + 1];
        if (!(d1 > 0.0) || !isfinite(d1)) return -1;
        const double r1 = sqrt(d1), i1 = 1.0 / r1;
        U1[k + 1] = r1;
        for (int j = k + 2; j < T; ++j) U1[j] *= i1;
        for (int i = k + 2; i < T; ++i) {
            const double f0 = U0[i], f1 = U1[i];
            double *Ui = U + (size_t)i * T;
            for (int j = i; j < T; ++j) Ui[j] -= f0 * U0[j] + f1 * U1[j];
        }
    }
    if (k < T) {
        const double d = U[(size_t)k * T + k];
        if (!(d > 0.0) || !isfinite(d)) return -1;
    }
    return 0;
}

/* Start: the working set of the support of x (the part of it that keeps M_F nonsingular, x
 * restricted to it), else the best vertex plus the better half of the indices with a negative
 * bound multiplier there, ranked by multiplier per unit K-length of the edge from the vertex
 * (x reset to the barycentre of that working set; the primal method adds the rest as needed:
 * a smaller first build, fewer drops, and fewer numerically singular working sets on
 * ill-conditioned K). */
static void start(ws_t *W, double *x, int use_x, double tol, int *cand) {
    const int T = W->T;
    if (use_x) {
        int nc = 0, first = -1;
        for (int i = 0; i < T; ++i)
            if (x[i] > 0.0) { if (first < 0) first = i; else cand[nc++] = i; }
        if (first >= 0) {
            if (build_set(W, first, cand, nc) == 0) return;
            /* some support indices would make M_F singular: start from x restricted to the
             * working set that was built (still feasible after renormalising) */
            double tot = 0.0;
            for (int i = 0; i < T; ++i) {
                if (!W->inF[i]) x[i] = 0.0;
                tot += x[i];
            }
            if (tot > 0.0 && isfinite(tot)) {
                for (int i = 0; i < T; ++i) x[i] /= tot;
                return;
            }
        }
    }
    int i0 = 0;
    double best = INFINITY;
    for (int i = 0; i < T; ++i) {
        const double v = 0.5 * W->K[(size_t)i * T + i] + W->b[i];
        if (v < best) { best = v; i0 = i; }
    }
    const double *K0 = W->K + (size_t)i0 * T;
    const double g0 = K0[i0] + W->b[i0];
    int nc = 0;
    double *key = W->g;  /* free until the primal method computes a gradient; insertion sort */
    for (int i = 0; i < T; ++i) {
        const double mu = K0[i] + W->b[i] - g0;
        if (i != i0 && mu < -tol) {
            double cv = W->K[(size_t)i * T + i] - 2.0 * K0[i] + K0[i0];
            if (!(cv > 1e-300)) cv = 1e-300;
            const double sc = -(mu * mu) / cv;
            int p = nc++;
            while (p > 0 && key[p - 1] > sc) { key[p] = key[p - 1]; cand[p] = cand[p - 1]; --p; }
            key[p] = sc;
            cand[p] = i;
        }
    }
    build_set(W, i0, cand, nc / 2);
    /* from the barycentre of F rather than the vertex: the ratio tests towards the minimiser
     * on F then drop the indices whose coordinates turn most negative, instead of breaking
     * the ties of a degenerate vertex by position (fewer working-set changes) */
    for (int i = 0; i < T; ++i) x[i] = 0.0;
    for (int p = 0; p < W->k; ++p) x[W->F[p]] = 1.0 / W->k;
}

/* max(x, 0) / sum; returns the sum. */
static double renormalise(double *x, int T) {
    double tot = 0.0;
    for (int i = 0; i < T; ++i) { if (!(x[i] > 0.0)) x[i] = 0.0; tot += x[i]; }
    if (tot > 0.0) for (int i = 0; i < T; ++i) x[i] /= tot;
    return tot;
}

/* Frank-Wolfe gap of x for (K - rho I, b) (K holds the proximal Hessian K + rho I). */
static double fw_gap(const double *K, const double *b, double rho, const double *x, int T) {
    double xg = 0.0, gmin = INFINITY;
    for (int i = 0; i < T; ++i) {
        const double gi = b[i] + dot(K + (size_t)i * T, x, T) - rho * x[i];
        xg += x[i] * gi;
        if (gi < gmin) gmin = gi;
    }
    return xg - gmin;
}

#define FQP_RHO 1e-8          /* proximal weight (relative to max|K| = 1) */
#define FQP_ROUNDOFF_GAP 1e-10

/* Proximal-point refinement (as _qp_active_set._proximal_refinement): x+ = argmin f(a) +
 * rho/2 |a - x|^2 over the simplex, each an exact active-set solve warm-started from x.
 * Returns 0 (mode 1: gap <= tol; mode 2: gap <= FQP_ROUNDOFF_GAP once progress creeps) or 1.
 * On return W->K is the original scaled K again. */
static int prox(ws_t *W, double *Kmut, const double *bs, double *bp, double *xbest, double *x,
                double tol, int max_iter, int *nit, int *mode, int *outer_out, double *gap_out,
                int *cand) {
    const int T = W->T;
    double hist[21];
    int nh = 0, outer = 0, status = 1;
    double best_gap = INFINITY;
    if (renormalise(x, T) <= 0.0) return 1;
    memcpy(xbest, x, (size_t)T * sizeof(double));
    for (int i = 0; i < T; ++i) Kmut[(size_t)i * T + i] += FQP_RHO;
    W->b = bp;
    for (outer = 1; outer <= 1000; ++outer) {
        for (int i = 0; i < T; ++i) bp[i] = bs[i] - FQP_RHO * x[i];
        /* the proximal Hessian is fixed: after the first step the working set and inverse of
         * the previous subproblem stay valid (x is supported on F), only b changes */
        if (outer == 1) start(W, x, 1, tol, cand);
        int k = 0, left = max_iter - *nit;
        int budget = 5 * T + 50;
        if (left < 1) left = 1;
        if (left < budget) budget = left;
        const int st = primal(W, x, tol, budget, &k);  /* the gap decides, not st */
        *nit += k;
        if (renormalise(x, T) <= 0.0) break;
        double gap;
        if (st == 0) {
            /* W->g = (K + rho I) x + b - rho x_centre at the subproblem optimum: the gradient
             * of f is W->g + rho (x_centre - x), O(T) instead of a product with K */
            double xg = 0.0, gmin = INFINITY;
            for (int i = 0; i < T; ++i) {
                const double gi = W->g[i] + (bs[i] - bp[i]) - FQP_RHO * x[i];
                xg += x[i] * gi;
                if (gi < gmin) gmin = gi;
            }
            gap = xg - gmin;
        } else {
            gap = fw_gap(Kmut, bs, FQP_RHO, x, T);
        }
        if (!isfinite(gap)) break;
        if (gap <= tol) {
            memcpy(xbest, x, (size_t)T * sizeof(double));
            best_gap = gap;
            *mode = 1;
            status = 0;
            break;
        }
        /* ring of the last 21 gaps: hist[(nh - m) % 21] is the gap m steps back */
        hist[nh % 21] = gap;
        ++nh;
        if (gap < best_gap) {
            best_gap = gap;
            memcpy(xbest, x, (size_t)T * sizeof(double));
        }
        if (nh > 10 && best_gap <= FQP_ROUNDOFF_GAP && gap > 0.95 * hist[(nh - 11) % 21]) break;
        if (nh > 20 && gap > (1.0 - 1e-3) * hist[(nh - 21) % 21]) break;
        if (*nit >= max_iter) break;
    }
    /* the reported gap, from a full product with K */
    if (best_gap < INFINITY) best_gap = fw_gap(Kmut, bs, FQP_RHO, xbest, T);
    if (status == 0 && !(best_gap <= fmax(tol, 1e-13))) status = 1;
    for (int i = 0; i < T; ++i) Kmut[(size_t)i * T + i] -= FQP_RHO;
    W->b = bs;
    memcpy(x, xbest, (size_t)T * sizeof(double));
    *outer_out = outer > 1000 ? 1000 : outer;
    *gap_out = best_gap;
    if (status == 0) return 0;
    if (best_gap <= FQP_ROUNDOFF_GAP) { *mode = 2; return 0; }
    return 1;
}

/* Size of the double and int work arrays for problem size T. */
FQP_EXPORT int fairmt_qp_work_size(int T, int which) {
    const int ld = T + 1;
    if (which == 0) return T * T + 2 * ld * ld + 4 * ld + 4 * T;
    return 5 * T + 4;
}

/* Solve the simplex QP.
 *
 * T >= 1; K: T x T row-major (C-contiguous); b: length T or NULL (zero); warm: a point of
 * length T or NULL (entries > 1e-12 are kept and renormalised, as the Python path does);
 * tol: relative tolerance on the bound multipliers; max_iter: working-set changes;
 * check: nonzero to check finiteness, symmetry (1e-8 relative) and positive semidefiniteness
 * (Cholesky of K + 1e-8 T max(1, max|K|) I, the Python pre-check).
 * Outputs: x (length T), g = K x + b on the caller's data (length T), info[0] = b'x,
 * info[1] = max|K|, info[2] = max|b|, info[3] = the final gap of the proximal refinement,
 * info[4] = its outer steps, info[5] = iinfo[0] = nit, info[6] = iinfo[1] = 0 (the primal
 * method converged), 1
 * (after proximal-point refinement to gap <= tol) or 2 (to round-off, gap <= 1e-10).
 * Return: 0 optimal and verified (Frank-Wolfe gap <= max(tol, 1e-13) on the scaled data, or the
 * proximal refinement's criteria above);
 * 1 iteration budget; 2 numerical trouble; 3 degenerate data (f constant) or a bad warm start;
 * -1 K not finite; -2 b not finite; -3 K not symmetric; -4 the PSD pre-check failed.
 */
FQP_EXPORT FQP_CLONES int fairmt_qp_solve(int T, const double *K, const double *b, const double *warm,
                               double tol, int max_iter, int check, double *x, double *g,
                               double *info, int *iinfo, double *work, int *iwork) {
    const int ld = T + 1;
    iinfo[0] = 0;
    if (T < 1) return 3;
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
    if (!isfinite(kabs) || !isfinite(bmin) || !isfinite(bmax)) return 2;
    const double babs = fmax(fabs(bmin), fabs(bmax));
    const double scale = fmax(kabs, bmax - bmin);
    if (!(scale > 0.0) || !isfinite(scale)) return 3;
    /* ---- work layout */
    double *Ks = work;
    double *N = Ks + (size_t)T * T;
    double *N2 = N + (size_t)ld * ld;
    double *z = N2 + (size_t)ld * ld, *c = z + ld, *w = c + ld, *x0 = w + ld;
    double *bs = x0 + ld, *gs = bs + T, *bp = gs + T, *xbest = bp + T;
    int *F = iwork, *inF = F + T, *ban = inF + T, *banlist = ban + T, *cand = banlist + T;
    /* ---- scaled symmetric copy (and the symmetry check) */
    const double inv = 1.0 / scale;
    for (int i = 0; i < T; ++i) {
        const double *Ki = K + (size_t)i * T;
        double *Si = Ks + (size_t)i * T;
        Si[i] = Ki[i] * inv;
        for (int j = 0; j < i; ++j) {
            const double a = Ki[j], bb = K[(size_t)j * T + i];
            const double d = fabs(a - bb);
            if (d > asym) asym = d;
            const double v = 0.5 * (a + bb) * inv;
            Si[j] = v;
            Ks[(size_t)j * T + i] = v;
        }
    }
    if (check && asym > 1e-8 * fmax(1.0, kabs)) return -3;
    if (check && kabs > 0.0) {
        const double delta = 1e-8 * T * fmax(1.0, kabs) * inv;
        if (chol_shifted(Ks, T, delta, N) != 0) return -4;  /* N is scratch here */
    }
    for (int i = 0; i < T; ++i) bs[i] = b ? (b[i] - bmin) * inv : 0.0;
    /* ---- warm start */
    int have_warm = 0;
    if (warm) {
        double tot = 0.0;
        for (int i = 0; i < T; ++i) {
            const double v = warm[i] > 1e-12 ? warm[i] : 0.0;
            x0[i] = v;
            tot += v;
        }
        if (!(tot > 0.0) || !isfinite(tot)) return 3;
        for (int i = 0; i < T; ++i) x0[i] /= tot;
        have_warm = 1;
    }
    ws_t W = {T, ld, Ks, bs, N, N2, z, c, w, gs, F, inF, ban, banlist, 0, 0, 0};
    for (int i = 0; i < T; ++i) { ban[i] = 0; x[i] = 0.0; }
    int budget = 5 * T + 50;
    if (max_iter < budget) budget = max_iter;
    int nit = 0, mode = 0, outer = 0;
    double pgap = 0.0;
    if (have_warm) for (int i = 0; i < T; ++i) x[i] = x0[i];
    start(&W, x, have_warm, tol, cand);
    int status = primal(&W, x, tol, budget, &nit);
    if (status == 0) {
        /* verify on the scaled data (full gradient, independent of the updates) */
        double sx = 0.0;
        for (int i = 0; i < T; ++i) sx += x[i];
        if (!(fabs(sx - 1.0) <= 1e-13 * T)) status = 2;
        else {
            for (int i = 0; i < T; ++i) x[i] /= sx;  /* exactly on the simplex, up to rounding */
            if (!(fw_gap(Ks, bs, 0.0, x, T) <= fmax(tol, 1e-13))) status = 2;
        }
    }
    if (status != 0 && nit < max_iter)  /* numerically singular working sets */
        status = prox(&W, Ks, bs, bp, xbest, x, tol, max_iter, &nit, &mode, &outer, &pgap, cand);
    iinfo[0] = nit;
    iinfo[1] = mode;
    info[3] = pgap;
    info[4] = (double)outer;
    info[5] = (double)nit;
    info[6] = (double)mode;
    if (status != 0) return status;
    /* ---- outputs on the caller's data */
    double bx = 0.0;
    for (int i = 0; i < T; ++i) {
        const double acc = (b ? b[i] : 0.0) + dot(K + (size_t)i * T, x, T);
        g[i] = acc;
        if (b) bx += b[i] * x[i];
    }
    info[0] = bx;
    info[1] = kabs;
    info[2] = babs;
    return 0;
}

/* The same with every buffer address in ctx (set up once per problem size by the caller, so
 * that a call converts five arguments instead of thirteen): ctx = {K, b, warm, x, g, info,
 * iinfo, work, iwork}; flags: 1 use b, 2 use warm, 4 check. */
FQP_EXPORT int fairmt_qp_solve_ctx(const intptr_t *ctx, int T, double tol, int max_iter,
                                   int flags) {
    return fairmt_qp_solve(T, (const double *)ctx[0],
                           (flags & 1) ? (const double *)ctx[1] : NULL,
                           (flags & 2) ? (const double *)ctx[2] : NULL, tol, max_iter,
                           (flags & 4) != 0, (double *)ctx[3], (double *)ctx[4],
                           (double *)ctx[5], (int *)ctx[6], (double *)ctx[7], (int *)ctx[8]);
}

/* Not a Python module: this symbol only satisfies build tools that export PyInit_<name>. */
FQP_EXPORT void *PyInit__qpkernel(void) { return NULL; }
