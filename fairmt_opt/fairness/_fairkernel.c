/* Compiled fast path of the masked task losses and the soft group-fairness violations of a
 * training step, every task of every kind in one call (SPEC §3, §4):
 *
 *   forward   per task t: the masked loss sum and label count, the closed-form logit gradients
 *             of L_t = (sum of the per-sample losses) / count (times a factor), the soft group
 *             statistics (tp, pos, fp, neg per group and class for detection and
 *             classification; counts and error sums per group for regression), the violation
 *             psi_t and d psi_t / d(statistics) in closed form;
 *   backward  given weights w_t, the logit gradients of sum_t w_t psi_t (chain rule through the
 *             statistics and the sigmoid / softmax), and their column sums;
 *   combine   a_t * (loss gradient) + eta * (violation gradient), written into one buffer per
 *             task in the dtype of its outputs.
 *
 * The same formulas as the torch and NumPy code of fairmt_opt/torch/_violations.py and
 * fairmt_opt/torch/_losses.py (bucket_violations_grad, bucket_losses), which stay the reference:
 * the tests compare both on the same inputs. Everything is computed in double precision.
 * Plain C99 + libm, no Python headers: loaded with ctypes by fairmt_opt/fairness/_kernel.py.
 *
 * Layout. Task t has kind[t] (0 detection, 1 classification, 2 regression), C[t] output
 * columns, and its per-sample arrays (probabilities or errors, loss gradients, violation
 * gradients) occupy the block [N * col[t], N * (col[t] + C[t])) of an N * Q array, row-major
 * (sample, column). Statistics S are (4, G, Q), their coefficients gS (2, G, Q).
 *
 * Return codes: 0 success; 1 a classification target outside [0, C) on a labelled sample;
 * 2 a group id outside [0, G); 3 an unsupported dtype code. ip[IP_ERR_TASK], ip[IP_ERR_ROW]
 * then say where (the task is -1 for a group id).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#define FMK_EXPORT __declspec(dllexport)
#else
#define FMK_EXPORT __attribute__((visibility("default")))
#endif

/* integer parameters (int64), shared with fairmt_opt/fairness/_kernel.py */
enum {
    IP_N, IP_T, IP_G, IP_Q, IP_GPTR, IP_GDT, IP_GSTRIDE, IP_REG_LOSS, IP_REG_SCORE,
    IP_SYMMETRIC, IP_GROUP_MAX, IP_INCLUDE_FPR, IP_HAS_SCALE, IP_FAIR, IP_ERR_TASK, IP_ERR_ROW,
    IP_SIZE
};
/* double parameters */
enum { DP_TEMPERATURE, DP_SCALE, DP_LOSS_FACTOR, DP_PHI_FACTOR, DP_ETA, DP_SIZE };
/* per-task integer parameters, row t of a (T, TI_SIZE) int64 array */
enum {
    TI_KIND, TI_C, TI_COL, TI_ZPTR, TI_ZDT, TI_ZSTRIDE, TI_YPTR, TI_YDT, TI_YSTRIDE, TI_MPTR,
    TI_MSTRIDE, TI_OUTPTR, TI_OUTDT, TI_SIZE
};
/* buffers, an array of addresses */
enum {
    B_TOT, B_CNT, B_PSI, B_P, B_GL, B_GSUM, B_S, B_GS, B_W, B_DPHI, B_DSUM, B_ALPHA, B_WORK,
    B_SIZE
};

enum { K_DETECTION = 0, K_CLASSIFICATION = 1, K_REGRESSION = 2 };
/* dtype codes */
enum { DT_F32 = 0, DT_F64 = 1, DT_I64 = 2, DT_I32 = 3, DT_U8 = 4, DT_I16 = 5, DT_I8 = 6 };

static int read_value(const char *base, int64_t dt, int64_t idx, double *out) {
    switch (dt) {
    case DT_F32: *out = (double)((const float *)base)[idx]; return 0;
    case DT_F64: *out = ((const double *)base)[idx]; return 0;
    case DT_I64: *out = (double)((const int64_t *)base)[idx]; return 0;
    case DT_I32: *out = (double)((const int32_t *)base)[idx]; return 0;
    case DT_U8: *out = (double)((const uint8_t *)base)[idx]; return 0;
    case DT_I16: *out = (double)((const int16_t *)base)[idx]; return 0;
    case DT_I8: *out = (double)((const int8_t *)base)[idx]; return 0;
    default: return 3;
    }
}

static int read_index(const char *base, int64_t dt, int64_t idx, int64_t *out) {
    switch (dt) {
    case DT_I64: *out = ((const int64_t *)base)[idx]; return 0;
    case DT_I32: *out = (int64_t)((const int32_t *)base)[idx]; return 0;
    case DT_U8: *out = (int64_t)((const uint8_t *)base)[idx]; return 0;
    case DT_I16: *out = (int64_t)((const int16_t *)base)[idx]; return 0;
    case DT_I8: *out = (int64_t)((const int8_t *)base)[idx]; return 0;
    default: return 3;
    }
}

static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double sign(double x) { return (x > 0) - (x < 0); }

/* the group of every sample (validated) into gid */
static int read_groups(int64_t *ip, int64_t *gid) {
    int64_t N = ip[IP_N], G = ip[IP_G];
    const char *gp = (const char *)(intptr_t)ip[IP_GPTR];
    for (int64_t i = 0; i < N; i++) {
        int64_t g;
        if (read_index(gp, ip[IP_GDT], i * ip[IP_GSTRIDE], &g)) return 3;
        if (g < 0 || g >= G) {
            ip[IP_ERR_TASK] = -1;
            ip[IP_ERR_ROW] = i;
            return 2;
        }
        gid[i] = g;
    }
    return 0;
}

/* One class column q of task t: the (rate, valid, higher-is-better) terms and their
 * reduction over the groups, as _np_reduce_with_coefs does. Without write, *pc and *has
 * receive the per-class value and whether the class counts; with write, the coefficients of
 * the statistics' numerators for the class outer factor `outer` go to gS. */
static void reduce_class(const int64_t *ip, const double *S, double *gS, int kind, int64_t q,
                         double *work, int write, double outer, double *pc, int *has) {
    int64_t G = ip[IP_G], Q = ip[IP_Q];
    int nterms = (kind == K_REGRESSION) ? 1 : (ip[IP_INCLUDE_FPR] ? 2 : 1);
    double *r = work, *v = work + 2 * G, *act = work + 4 * G, *member = work + 6 * G;
    double *bracket = work + 7 * G, *inner = work + 8 * G, *den = work + 9 * G;
    int hib[2];
    for (int j = 0; j < nterms; j++) {
        int64_t sn, sd;
        if (kind == K_REGRESSION) { sn = 1; sd = 0; hib[j] = 1; }
        else if (j == 0) { sn = 0; sd = 1; hib[j] = 1; }
        else { sn = 2; sd = 3; hib[j] = 0; }
        for (int64_t g = 0; g < G; g++) {
            double dn = S[(sd * G + g) * Q + q], nm = S[(sn * G + g) * Q + q];
            int ok = dn > 0;
            double rate = ok ? nm / dn : 0.0;
            if (kind == K_REGRESSION) rate = -rate;
            r[j * G + g] = rate;
            v[j * G + g] = ok;
            den[j * G + g] = ok ? dn : 1.0;
        }
    }
    if (ip[IP_SYMMETRIC]) {
        double per = 0.0;
        int any = 0;
        double okj[2] = {0, 0}, nhi[2] = {0, 0}, nlo[2] = {0, 0}, hi[2], lo[2];
        for (int j = 0; j < nterms; j++) {
            int64_t nv = 0;
            hi[j] = -INFINITY;
            lo[j] = INFINITY;
            for (int64_t g = 0; g < G; g++) {
                if (!v[j * G + g]) continue;
                nv++;
                double x = r[j * G + g];
                if (x > hi[j]) hi[j] = x;
                if (x < lo[j]) lo[j] = x;
            }
            int comparable = nv >= 2;
            per += comparable ? hi[j] - lo[j] : 0.0;
            any |= comparable;
            okj[j] = comparable;
            for (int64_t g = 0; g < G; g++) {
                double xh = v[j * G + g] ? r[j * G + g] : -INFINITY;
                double xl = v[j * G + g] ? r[j * G + g] : INFINITY;
                nhi[j] += xh == hi[j];
                nlo[j] += xl == lo[j];
            }
        }
        if (!write) { *pc = per; *has = any; return; }
        for (int j = 0; j < 2; j++) {
            for (int64_t g = 0; g < G; g++) {
                double c = 0.0;
                if (j < nterms && okj[j] && v[j * G + g]) {
                    double x = r[j * G + g];
                    double gg = (double)(x == hi[j]) / nhi[j] - (double)(x == lo[j]) / nlo[j];
                    c = gg * outer;
                    c = (kind == K_REGRESSION) ? -c / den[j * G + g] : c / den[j * G + g];
                }
                if (kind == K_REGRESSION && j == 1) c = 0.0;
                gS[(j * G + g) * Q + q] = c;
            }
        }
        return;
    }
    for (int64_t g = 0; g < G; g++) { member[g] = 0; bracket[g] = 0; }
    for (int j = 0; j < nterms; j++) {
        int64_t nv = 0;
        double ref = hib[j] ? -INFINITY : INFINITY;
        for (int64_t g = 0; g < G; g++) {
            if (!v[j * G + g]) continue;
            nv++;
            double x = r[j * G + g];
            if (hib[j] ? x > ref : x < ref) ref = x;
        }
        int comparable = nv >= 2;
        for (int64_t g = 0; g < G; g++) {
            double x = r[j * G + g];
            double d = hib[j] ? ref - x : x - ref;
            int cell = v[j * G + g] && comparable;
            int a = cell && d > 0;
            act[j * G + g] = a;
            bracket[g] += a ? d : 0.0;
            if (cell) member[g] = 1;
        }
    }
    double value;
    int any = 0;
    if (!ip[IP_GROUP_MAX]) {
        double n = 0, s = 0;
        for (int64_t g = 0; g < G; g++) {
            n += member[g];
            s += member[g] ? bracket[g] : 0.0;
        }
        double ns = n > 0 ? n : 1.0;
        value = s / ns;
        for (int64_t g = 0; g < G; g++) inner[g] = member[g] / ns;
        any = n > 0;
    } else {
        double mx = -INFINITY, ne = 0;
        for (int64_t g = 0; g < G; g++) {
            double x = member[g] ? bracket[g] : 0.0;
            if (x > mx) mx = x;
            any |= member[g] != 0;
        }
        for (int64_t g = 0; g < G; g++) ne += (member[g] ? bracket[g] : 0.0) == mx;
        value = mx;
        for (int64_t g = 0; g < G; g++) {
            double x = member[g] ? bracket[g] : 0.0;
            inner[g] = member[g] ? (double)(x == mx) / ne : 0.0;
        }
    }
    if (!write) { *pc = value; *has = any; return; }
    for (int j = 0; j < 2; j++) {
        for (int64_t g = 0; g < G; g++) {
            double c = 0.0;
            if (j < nterms && act[j * G + g]) {
                double base = inner[g] * outer;
                c = hib[j] ? -base : base;
                c = (kind == K_REGRESSION) ? -c / den[j * G + g] : c / den[j * G + g];
            }
            gS[(j * G + g) * Q + q] = c;
        }
    }
}

/* psi_t and the coefficients gS of the columns of task t */
static double reduce_task(const int64_t *ip, const double *dp, const double *S, double *gS,
                          int kind, int64_t col, int64_t C, double *work) {
    double *pcs = work + 12 * ip[IP_G];
    int64_t nh = 0;
    double tot = 0.0;
    for (int64_t c = 0; c < C; c++) {
        double pc;
        int has;
        reduce_class(ip, S, gS, kind, col + c, work, 0, 0.0, &pc, &has);
        pcs[c] = has;
        if (has) { nh++; tot += pc; }
    }
    double nhs = nh > 0 ? (double)nh : 1.0;
    double scale = ip[IP_HAS_SCALE] ? dp[DP_SCALE] : 1.0;
    for (int64_t c = 0; c < C; c++) {
        double outer = pcs[c] / nhs;
        if (ip[IP_HAS_SCALE]) outer /= scale;
        reduce_class(ip, S, gS, kind, col + c, work, 1, outer, NULL, NULL);
    }
    double psi = tot / nhs;
    return ip[IP_HAS_SCALE] ? psi / scale : psi;
}

/* Work size (doubles) for G groups and at most Cmax columns per task, plus N group ids. */
FMK_EXPORT int64_t fairmt_fk_work_size(int64_t N, int64_t G, int64_t Cmax) {
    return 12 * G + 2 * Cmax + N + 16;
}

FMK_EXPORT int fairmt_fk_forward(int64_t *ip, const double *dp, const int64_t *ti,
                                 const intptr_t *buf) {
    int64_t N = ip[IP_N], T = ip[IP_T], G = ip[IP_G], Q = ip[IP_Q];
    double *tot = (double *)buf[B_TOT], *cnt = (double *)buf[B_CNT], *psi = (double *)buf[B_PSI];
    double *P = (double *)buf[B_P], *Gl = (double *)buf[B_GL], *gsum = (double *)buf[B_GSUM];
    double *S = (double *)buf[B_S], *gS = (double *)buf[B_GS], *work = (double *)buf[B_WORK];
    int64_t Cmax = 1;
    for (int64_t t = 0; t < T; t++)
        if (ti[t * TI_SIZE + TI_C] > Cmax) Cmax = ti[t * TI_SIZE + TI_C];
    int64_t *gid = (int64_t *)(work + 12 * G + 2 * Cmax + 8);
    int rc = read_groups(ip, gid);
    if (rc) return rc;
    double temp = dp[DP_TEMPERATURE];
    memset(S, 0, sizeof(double) * 4 * G * Q);
    for (int64_t t = 0; t < T; t++) {
        const int64_t *tt = ti + t * TI_SIZE;
        int kind = (int)tt[TI_KIND];
        int64_t C = tt[TI_C], col = tt[TI_COL];
        const char *zp = (const char *)(intptr_t)tt[TI_ZPTR];
        const char *yp = (const char *)(intptr_t)tt[TI_YPTR];
        const uint8_t *mp = (const uint8_t *)(intptr_t)tt[TI_MPTR];
        int64_t zdt = tt[TI_ZDT], zs = tt[TI_ZSTRIDE], ydt = tt[TI_YDT], ys = tt[TI_YSTRIDE];
        int64_t ms = tt[TI_MSTRIDE];
        if (zdt != DT_F32 && zdt != DT_F64) return 3;
        double n = 0;
        for (int64_t i = 0; i < N; i++) n += mp[i * ms] != 0;
        double scale = dp[DP_LOSS_FACTOR] / (n > 1.0 ? n : 1.0);
        double *Pt = P + N * col, *Gt = Gl + N * col;
        double sum = 0.0;
        for (int64_t c = 0; c < C; c++) gsum[col + c] = 0.0;
        for (int64_t i = 0; i < N; i++) {
            int m = mp[i * ms] != 0;
            int64_t g = gid[i];
            if (kind == K_CLASSIFICATION) {
                double *pr = Pt + i * C, *gr = Gt + i * C;
                double *z = work + 12 * G;  /* C logits */
                double zmax = -INFINITY;
                for (int64_t c = 0; c < C; c++) {
                    (void)read_value(zp, zdt, i * zs + c, &z[c]);
                    if (z[c] > zmax) zmax = z[c];
                }
                if (!m) {
                    for (int64_t c = 0; c < C; c++) { pr[c] = 0.0; gr[c] = 0.0; }
                    continue;
                }
                int64_t y;
                if (read_index(yp, ydt, i * ys, &y)) return 3;
                if (y < 0 || y >= C) {
                    ip[IP_ERR_TASK] = t;
                    ip[IP_ERR_ROW] = i;
                    return 1;
                }
                double se = 0.0;
                for (int64_t c = 0; c < C; c++) se += exp(z[c] - zmax);
                double lse = log(se);
                sum += -(z[y] - zmax - lse);
                /* soft probabilities at the temperature (the loss uses temperature 1) */
                if (temp == 1.0) {
                    for (int64_t c = 0; c < C; c++) pr[c] = exp(z[c] - zmax - lse);
                } else {
                    double smax = zmax / temp, ss = 0.0;
                    for (int64_t c = 0; c < C; c++) { pr[c] = exp(z[c] / temp - smax); ss += pr[c]; }
                    for (int64_t c = 0; c < C; c++) pr[c] /= ss;
                }
                double *Sg = S + g * Q + col;
                for (int64_t c = 0; c < C; c++) {
                    double p = pr[c], yc = (double)(c == y);
                    double gc = (exp(z[c] - zmax - lse) - yc) * scale;
                    gr[c] = gc;
                    gsum[col + c] += gc;
                    Sg[c] += p * yc;                 /* tp  */
                    Sg[G * Q + c] += yc;             /* pos */
                    Sg[2 * G * Q + c] += p * (1 - yc); /* fp  */
                    Sg[3 * G * Q + c] += 1 - yc;     /* neg */
                }
                continue;
            }
            double z, y = 0.0;
            (void)read_value(zp, zdt, i * zs, &z);
            if (!m) { Pt[i] = 0.0; Gt[i] = 0.0; continue; }
            if (read_value(yp, ydt, i * ys, &y)) return 3;
            double gi;
            if (kind == K_DETECTION) {
                double mv = -z > 0 ? -z : 0.0;
                sum += (1.0 - y) * z + mv + log(exp(-mv) + exp(-z - mv));
                gi = (sigmoid(z) - y) * scale;
                double p = sigmoid(z / temp);
                Pt[i] = p;
                double *Sg = S + g * Q + col;
                Sg[0] += p * y;
                Sg[G * Q] += y;
                Sg[2 * G * Q] += p * (1.0 - y);
                Sg[3 * G * Q] += 1.0 - y;
            } else {
                double diff = z - y;
                if (ip[IP_REG_LOSS] == 0) { sum += diff * diff; gi = 2.0 * diff * scale; }
                else { sum += fabs(diff); gi = sign(diff) * scale; }
                Pt[i] = diff;
                double *Sg = S + g * Q + col;
                Sg[0] += 1.0;
                Sg[G * Q] += ip[IP_REG_SCORE] == 0 ? fabs(diff) : diff * diff;
            }
            Gt[i] = gi;
            gsum[col] += gi;
        }
        tot[t] = sum;
        cnt[t] = n;
    }
    for (int64_t t = 0; t < T; t++) {
        const int64_t *tt = ti + t * TI_SIZE;
        psi[t] = reduce_task(ip, dp, S, gS, (int)tt[TI_KIND], tt[TI_COL], tt[TI_C], work);
    }
    return 0;
}

/* dphi = sum_t w_t * factor * d psi_t / d z_t (labelled samples only), and its column sums */
FMK_EXPORT int fairmt_fk_backward(int64_t *ip, const double *dp, const int64_t *ti,
                                  const intptr_t *buf) {
    int64_t N = ip[IP_N], T = ip[IP_T], G = ip[IP_G], Q = ip[IP_Q];
    const double *P = (const double *)buf[B_P], *gS = (const double *)buf[B_GS];
    const double *w = (const double *)buf[B_W];
    double *dphi = (double *)buf[B_DPHI], *dsum = (double *)buf[B_DSUM];
    double *work = (double *)buf[B_WORK];
    int64_t Cmax = 1;
    for (int64_t t = 0; t < T; t++)
        if (ti[t * TI_SIZE + TI_C] > Cmax) Cmax = ti[t * TI_SIZE + TI_C];
    const int64_t *gid = (const int64_t *)(work + 12 * G + 2 * Cmax + 8);  /* from forward */
    double temp = dp[DP_TEMPERATURE];
    for (int64_t t = 0; t < T; t++) {
        const int64_t *tt = ti + t * TI_SIZE;
        int kind = (int)tt[TI_KIND];
        int64_t C = tt[TI_C], col = tt[TI_COL];
        const char *yp = (const char *)(intptr_t)tt[TI_YPTR];
        const uint8_t *mp = (const uint8_t *)(intptr_t)tt[TI_MPTR];
        int64_t ydt = tt[TI_YDT], ys = tt[TI_YSTRIDE], ms = tt[TI_MSTRIDE];
        double wt = w[t] * dp[DP_PHI_FACTOR];
        const double *Pt = P + N * col;
        double *Dt = dphi + N * col;
        for (int64_t c = 0; c < C; c++) dsum[col + c] = 0.0;
        for (int64_t i = 0; i < N; i++) {
            int m = mp[i * ms] != 0;
            int64_t g = gid[i];
            if (!m || wt == 0.0) {
                for (int64_t c = 0; c < C; c++) Dt[i * C + c] = 0.0;
                continue;
            }
            const double *A0 = gS + g * Q + col, *A1 = gS + (G + g) * Q + col;
            if (kind == K_CLASSIFICATION) {
                int64_t y;
                if (read_index(yp, ydt, i * ys, &y)) return 3;
                const double *pr = Pt + i * C;
                double *pb = work + 12 * G + Cmax;
                double s = 0.0;
                for (int64_t c = 0; c < C; c++) {
                    pb[c] = (c == y ? A0[c] : A1[c]) * wt;
                    s += pb[c] * pr[c];
                }
                for (int64_t c = 0; c < C; c++) {
                    double gc = pr[c] * (pb[c] - s) / temp;
                    Dt[i * C + c] = gc;
                    dsum[col + c] += gc;
                }
            } else if (kind == K_DETECTION) {
                double y;
                if (read_value(yp, ydt, i * ys, &y)) return 3;
                double p = Pt[i];
                double pb = (y * A0[0] + (1.0 - y) * A1[0]) * wt;
                double gi = pb * (1.0 - p) * p / temp;
                Dt[i] = gi;
                dsum[col] += gi;
            } else {
                double err = Pt[i];
                double gg = A0[0] * wt;
                double gi = ip[IP_REG_SCORE] == 0 ? gg * sign(err) : 2.0 * err * gg;
                Dt[i] = gi;
                dsum[col] += gi;
            }
        }
    }
    return 0;
}

/* out_t = alpha_t * (loss gradient) + eta * (violation gradient, when IP_FAIR), per task into
 * ti[TI_OUTPTR] (contiguous N x C, dtype ti[TI_OUTDT]; tasks with a null pointer are skipped) */
FMK_EXPORT int fairmt_fk_combine(int64_t *ip, const double *dp, const int64_t *ti,
                                 const intptr_t *buf) {
    int64_t N = ip[IP_N], T = ip[IP_T];
    const double *Gl = (const double *)buf[B_GL], *dphi = (const double *)buf[B_DPHI];
    const double *alpha = (const double *)buf[B_ALPHA];
    double eta = dp[DP_ETA];
    int fair = ip[IP_FAIR] != 0;
    for (int64_t t = 0; t < T; t++) {
        const int64_t *tt = ti + t * TI_SIZE;
        if (!tt[TI_OUTPTR]) continue;
        int64_t n = N * tt[TI_C], off = N * tt[TI_COL];
        double a = alpha[t];
        const double *g = Gl + off, *d = dphi + off;
        if (tt[TI_OUTDT] == DT_F32) {
            float *o = (float *)(intptr_t)tt[TI_OUTPTR];
            if (fair) for (int64_t k = 0; k < n; k++) o[k] = (float)(a * g[k] + eta * d[k]);
            else for (int64_t k = 0; k < n; k++) o[k] = (float)(a * g[k]);
        } else if (tt[TI_OUTDT] == DT_F64) {
            double *o = (double *)(intptr_t)tt[TI_OUTPTR];
            if (fair) for (int64_t k = 0; k < n; k++) o[k] = a * g[k] + eta * d[k];
            else for (int64_t k = 0; k < n; k++) o[k] = a * g[k];
        } else {
            return 3;
        }
    }
    return 0;
}

/* Not a Python module: this symbol only satisfies build tools that export PyInit_<name>. */
FMK_EXPORT void *PyInit__fairkernel(void) { return NULL; }
