/* Kernels of neuroplastic.neurons: multi-step LIF (below) and an event-driven linear layer (at the end).
 *
 * Multi-step leaky integrate-and-fire: forward and hand-written backward over a whole [B, T, N] sequence.
 *
 * Compiled at first use by neuroplastic._native with -DREAL=float -DREAL_IS_FLOAT or -DREAL=double
 * (see neurons/native.py).
 * Every (batch row, block of neurons) is independent; the time loop runs inside, over contiguous rows of
 * N numbers, so the state of a block stays in L1 cache and the inner loop vectorises.
 *
 * Forward, per step t (decay d, threshold th per neuron):
 *   h_t = d * v_{t-1} + x_t
 *   z_t = rect ? mpr(h_t) : h_t,   mpr(h) = 2 th phi(h / (2 th))   (Guo et al. 2022, see lif.py)
 *   s_t = z_t > th
 *   v_t = h_t * (1 - s_t) + v_reset * s_t   (hard)  |  h_t - th * s_t  (soft)  |  h_t  (none)
 * It stores h_t (the pre-spike membrane); the backward recomputes s_t and v_t from it.
 *
 * Backward, from t = T-1 down to 0, with gv = dL/dv_t and gs_in = dL/ds_t from the outputs:
 *   sg    = surrogate'(z_t - th)
 *   gs    = gs_in + (detach ? 0 : gv * dv/ds)          dv/ds: -th (soft), v_reset - h (hard), 0 (none)
 *   gh    = gv * dv/dh + gs * sg * dz/dh              dv/dh: 1 (soft, none), 1 - s (hard)
 *   gth  += gv * dv/dth + gs * sg * (dz/dth - 1)      dv/dth: -s (soft), 0 otherwise
 *   gx_t  = gh;  gd += gh * v_{t-1};  gv <- gh * d
 * Parameter gradients are written per batch row ([B, N]) and summed over the batch by the caller.
 * The arithmetic follows the PyTorch step-by-step form operation by operation (compile with
 * -ffp-contract=off; the resets are selects, equal to these products up to the sign of a zero), so the
 * spikes are the same bit for bit. Specialised copies: forward per rectifier setting, backward per (rectifier,
 * surrogate); the reset mode and detach_reset are runtime selects (cheap, and a short compile).
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef REAL
#define REAL float
#endif
typedef REAL real;

#define BLOCK 256
#define INLINE static inline __attribute__((always_inline))

enum { RESET_HARD = 0, RESET_SOFT = 1, RESET_NONE = 2 };
enum { SG_FAST_SIGMOID = 0, SG_ATAN = 1, SG_TRIANGLE = 2, SG_SIGMOID = 3 };

#ifdef REAL_IS_FLOAT
#define TANH tanhf
#define CBRT cbrtf
#define EXP expf
#define FABS fabsf
#else
#define TANH tanh
#define CBRT cbrt
#define EXP exp
#define FABS fabs
#endif

/* The rectifier phi(u) and its derivative; mid_div = 2 tanh(K / 2). */
INLINE real mpr_phi(real u, real k, real mid_div, real *dphi) {
    if (u < 0) {
        real c = CBRT((real)1 - u);
        *dphi = (real)1 / ((real)3 * c * c);
        return (real)1 - c;
    }
    if (u > 1) {
        real c = CBRT(u);
        *dphi = (real)1 / ((real)3 * c * c);
        return c;
    }
    real t = TANH(k * (u - (real)0.5));
    *dphi = k * ((real)1 - t * t) / mid_div;
    return t / mid_div + (real)0.5;
}

INLINE real surrogate_grad(int sg, real p, real x) {
    switch (sg) {
        case SG_FAST_SIGMOID: {
            real a = (real)1 + p * FABS(x);
            return (real)1 / (a * a);
        }
        case SG_ATAN: {
            /* p = alpha; slope = pi / 2 * alpha rounded once, as PyTorch does with a Python scalar */
            real c = (real)(1.5707963267948966 * (double)p);
            real y = c * x;
            return (p / (real)2) / ((real)1 + y * y);
        }
        case SG_TRIANGLE: {
            real y = (real)1 - FABS(x) / p;
            return (y > 0 ? y : (real)0) / p;
        }
        default: {
            real s = (real)1 / ((real)1 + EXP(-(p * x)));
            return p * s * ((real)1 - s);
        }
    }
}

/* The reset, as selects (vectorised as blends). Equal to PyTorch's h - th * s and h * (1 - s) + v_reset * s
 * for finite h: multiplying by s = 1 or 0 and adding 0 are exact (up to the sign of a zero). */
INLINE real reset_value(int reset, real h, int fired, real th, real v_reset) {
    const real after = reset == RESET_SOFT ? h - th : (reset == RESET_HARD ? v_reset : h);
    return fired ? after : h;
}

INLINE void forward_block(int64_t T, int64_t N, int64_t n0, int64_t n1, const real *x, const real *v0,
                          const real *decay, const real *thr, int reset, real v_reset, int rect, real k, real mid_div,
                          real *spikes, real *h_out, real *v_out) {
    real v[BLOCK];
    const int64_t m = n1 - n0;
    for (int64_t i = 0; i < m; i++) v[i] = v0 ? v0[n0 + i] : (real)0;
    for (int64_t t = 0; t < T; t++) {
        const real *xt = x + t * N + n0;
        real *st = spikes + t * N + n0;
        real *ht = h_out + t * N + n0;
        for (int64_t i = 0; i < m; i++) {
            const real th = thr[n0 + i];
            const real h = decay[n0 + i] * v[i] + xt[i];
            real z = h;
            if (rect) {
                real two = (real)2 * th, dphi;
                z = two * mpr_phi(h / two, k, mid_div, &dphi);
            }
            const int fired = z > th;
            st[i] = fired ? (real)1 : (real)0;
            ht[i] = h;
            v[i] = reset_value(reset, h, fired, th, v_reset);
        }
    }
    for (int64_t i = 0; i < m; i++) v_out[n0 + i] = v[i];
}

/* One specialised function per rectifier setting (a compile-time constant inside). */
#define DEFINE_FORWARD(RECT)                                                                                     \
    static __attribute__((noinline)) void forward_rect##RECT(                                                    \
        int64_t B, int64_t T, int64_t N, const real *x, const real *v0, const real *decay, const real *thr,      \
        int reset, real v_reset, real k, real mid_div, real *spikes, real *h_out, real *v_out, int threads) {    \
        const int64_t blocks = (N + BLOCK - 1) / BLOCK;                                                          \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                                       \
        for (int64_t w = 0; w < B * blocks; w++) {                                                               \
            const int64_t b = w / blocks, n0 = (w % blocks) * BLOCK;                                             \
            const int64_t n1 = n0 + BLOCK < N ? n0 + BLOCK : N;                                                  \
            forward_block(T, N, n0, n1, x + b * T * N, v0 ? v0 + b * N : NULL, decay, thr, reset, v_reset, RECT, \
                          k, mid_div, spikes + b * T * N, h_out + b * T * N, v_out + b * N);                     \
        }                                                                                                        \
    }
DEFINE_FORWARD(0)
DEFINE_FORWARD(1)

void lif_forward(int64_t B, int64_t T, int64_t N, const real *x, const real *v0, const real *decay, const real *thr,
                 int reset, real v_reset, int rect, real k, real *spikes, real *h_out, real *v_out, int threads) {
    const real mid_div = (real)(2.0 * tanh((double)k / 2.0));
    (rect ? forward_rect1 : forward_rect0)(B, T, N, x, v0, decay, thr, reset, v_reset, k, mid_div, spikes, h_out,
                                           v_out, threads);
}

/* One time step of the backward pass over m neurons (see the equations at the top). */
INLINE void backward_step(int64_t m, const real *restrict ht, const real *restrict gst, int has_gs, real gs_const,
                          const real *restrict decay, const real *restrict thr, int reset, real v_reset, int rect,
                          real k, real mid_div, real through_reset, int sg, real sgp, real *restrict gv,
                          real *restrict gd, real *restrict gth, real *restrict ghp, real *restrict gxt) {
    /* 0/1 weights of the reset modes' derivatives (exact: each is x * 1 or x * 0 added to the others' 0) */
    const real soft = reset == RESET_SOFT ? (real)1 : (real)0, hard = reset == RESET_HARD ? (real)1 : (real)0;
    const real dvdh_fired = (real)1 - hard, dvdth_fired = -soft;
    for (int64_t i = 0; i < m; i++) {
        const real th = thr[i];
        const real hh = ht[i];
        real z = hh, dzdh = 1, dzdth = 0;
        if (rect) {
            real two = (real)2 * th, dphi;
            real u = hh / two;
            real p = mpr_phi(u, k, mid_div, &dphi);
            z = two * p;
            dzdh = dphi;
            dzdth = (real)2 * (p - u * dphi);
        }
        const int fired = z > th;
        const real v = reset_value(reset, hh, fired, th, v_reset);
        const real dvdh = fired ? dvdh_fired : (real)1;
        const real dvds = soft * -th + hard * (v_reset - hh);
        const real dvdth = fired ? dvdth_fired : (real)0;
        /* gh of step t+1 times v_t: the decay's gradient */
        gd[i] += ghp[i] * v;
        const real g = gv[i];
        const real gs = (has_gs ? gst[i] : gs_const) + through_reset * (g * dvds);
        const real gsg = gs * surrogate_grad(sg, sgp, z - th);
        const real gh = g * dvdh + gsg * dzdh;
        gth[i] += g * dvdth + gsg * (dzdth - (real)1);
        gxt[i] = gh;
        ghp[i] = gh;
        gv[i] = gh * decay[i];
    }
}

/* One block of the backward pass; b-offset pointers. gv_T, v0 may be NULL (zeros); gs_in NULL means that
 * every dL/ds_t is gs_const (e.g. the 1 of spikes.sum()). */
INLINE void backward_block(int64_t T, int64_t N, int64_t n0, int64_t n1, const real *h, const real *v0,
                           const real *decay, const real *thr, int reset, real v_reset, int rect, real k,
                           real mid_div, int detach, int sg, real sgp, const real *gs_in, real gs_const, const real *gv_T,
                           real *gx, real *gv0, real *gd_out, real *gth_out) {
    real gv[BLOCK], gd[BLOCK], gth[BLOCK], ghp[BLOCK];
    const int64_t m = n1 - n0;
    const real through_reset = detach ? (real)0 : (real)1;
    for (int64_t i = 0; i < m; i++) {
        gv[i] = gv_T ? gv_T[n0 + i] : (real)0;
        gd[i] = 0;
        gth[i] = 0;
        ghp[i] = 0;
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        const real *ht = h + t * N + n0;
        real *gxt = gx + t * N + n0;
        /* two copies of the step, with and without incoming spike gradients, so neither has a branch */
        if (gs_in)
            backward_step(m, ht, gs_in + t * N + n0, 1, 0, decay + n0, thr + n0, reset, v_reset, rect, k, mid_div,
                          through_reset, sg, sgp, gv, gd, gth, ghp, gxt);
        else
            backward_step(m, ht, NULL, 0, gs_const, decay + n0, thr + n0, reset, v_reset, rect, k, mid_div, through_reset, sg,
                          sgp, gv, gd, gth, ghp, gxt);
    }
    for (int64_t i = 0; i < m; i++) {
        gd[i] += ghp[i] * (v0 ? v0[n0 + i] : (real)0);
        if (gv0) gv0[n0 + i] = gv[i];
        gd_out[n0 + i] = gd[i];
        gth_out[n0 + i] = gth[i];
    }
}

/* One specialised function per (rectifier, surrogate); reset and detach are runtime selects. */
#define DEFINE_BACKWARD(RECT, SG)                                                                                \
    static __attribute__((noinline)) void backward_##RECT##_##SG(                                                \
        int64_t B, int64_t T, int64_t N, const real *h, const real *v0, const real *decay, const real *thr,      \
        int reset, real v_reset, real k, real mid_div, int detach, real sgp, const real *gs_in, real gs_const,     \
        const real *gv_T,                                                                                        \
        real *gx, real *gv0, real *gd, real *gth, int threads) {                                                 \
        const int64_t blocks = (N + BLOCK - 1) / BLOCK;                                                          \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                                       \
        for (int64_t w = 0; w < B * blocks; w++) {                                                               \
            const int64_t b = w / blocks, n0 = (w % blocks) * BLOCK;                                             \
            const int64_t n1 = n0 + BLOCK < N ? n0 + BLOCK : N;                                                  \
            backward_block(T, N, n0, n1, h + b * T * N, v0 ? v0 + b * N : NULL, decay, thr, reset, v_reset,      \
                           RECT, k, mid_div, detach, SG, sgp, gs_in ? gs_in + b * T * N : NULL, gs_const,        \
                           gv_T ? gv_T + b * N : NULL, gx + b * T * N, gv0 ? gv0 + b * N : NULL, gd + b * N,     \
                           gth + b * N);                                                                         \
        }                                                                                                        \
    }
DEFINE_BACKWARD(0, 0)
DEFINE_BACKWARD(0, 1)
DEFINE_BACKWARD(0, 2)
DEFINE_BACKWARD(0, 3)
DEFINE_BACKWARD(1, 0)
DEFINE_BACKWARD(1, 1)
DEFINE_BACKWARD(1, 2)
DEFINE_BACKWARD(1, 3)

typedef void (*backward_fn)(int64_t, int64_t, int64_t, const real *, const real *, const real *, const real *, int,
                            real, real, real, int, real, const real *, real, const real *, real *, real *, real *, real *,
                            int);

void lif_backward(int64_t B, int64_t T, int64_t N, const real *h, const real *v0, const real *decay, const real *thr,
                  int reset, real v_reset, int rect, real k, int detach, int sg, real sgp, const real *gs_in,
                  real gs_const, const real *gv_T, real *gx, real *gv0, real *gd, real *gth, int threads) {
    static const backward_fn table[2][4] = {{backward_0_0, backward_0_1, backward_0_2, backward_0_3},
                                            {backward_1_0, backward_1_1, backward_1_2, backward_1_3}};
    const real mid_div = (real)(2.0 * tanh((double)k / 2.0));
    table[rect ? 1 : 0][sg & 3](B, T, N, h, v0, decay, thr, reset, v_reset, k, mid_div, detach, sgp, gs_in, gs_const, gv_T, gx,
                                gv0, gd, gth, threads);
}

/* ------------------------------------------------------------------------------------------------------------
 * Event-driven linear layer for spike inputs: y = x W^T + b where most entries of x are zero.
 *
 * x [R, I] is indexed once into compressed rows (CSR: for each row, the columns and values of its nonzero
 * entries). Then
 *   forward:  y[r, :] = b + sum_{k in row r} val_k * Wt[col_k, :]      (Wt = W^T, [I, O] contiguous)
 *   backward: dW[:, i] = sum_{k in column i} val_k * gy[row_k, :]      (CSC of x, built from the CSR)
 * Both run over tiles of TILE output features, so that the rows of Wt (resp. gy) they read stay in L2 cache
 * and the TILE accumulators stay in vector registers. The work is proportional to the number of nonzeros,
 * instead of R * I for a dense product.
 * ---------------------------------------------------------------------------------------------------------- */

#define TILE 32

/* Nonzeros per row of x [R, I]. */
void spike_row_counts(int64_t R, int64_t I, const real *x, int64_t *counts, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < R; r++) {
        const real *xr = x + r * I;
        int64_t c = 0;
        for (int64_t i = 0; i < I; i++) c += xr[i] != 0;
        counts[r] = c;
    }
}

/* Fill the CSR of x given row_ptr [R + 1] (exclusive prefix sums of the counts). Branch-free: every column
 * index is written to a per-thread scratch row and the position advances only past nonzeros (a branch per
 * entry would be mispredicted at every spike). */
void spike_fill_csr(int64_t R, int64_t I, const real *x, const int64_t *row_ptr, int32_t *cols, real *vals,
                    int threads) {
#pragma omp parallel num_threads(threads)
    {
        int32_t *scratch = (int32_t *)malloc((size_t)(I + 1) * sizeof(int32_t));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const real *xr = x + r * I;
            int64_t k = 0;
            for (int64_t i = 0; i < I; i++) {
                scratch[k] = (int32_t)i;
                k += xr[i] != 0;
            }
            const int64_t start = row_ptr[r];
            for (int64_t j = 0; j < k; j++) {
                cols[start + j] = scratch[j];
                vals[start + j] = xr[scratch[j]];
            }
        }
        free(scratch);
    }
}

/* CSC from CSR (counting sort by column; rows stay in increasing order within a column). col_ptr: [I + 1]. */
void spike_csr_to_csc(int64_t R, int64_t I, const int64_t *row_ptr, const int32_t *cols, const real *vals,
                      int64_t *col_ptr, int32_t *rows, real *cvals) {
    for (int64_t i = 0; i <= I; i++) col_ptr[i] = 0;
    const int64_t nnz = row_ptr[R];
    for (int64_t k = 0; k < nnz; k++) col_ptr[cols[k] + 1]++;
    for (int64_t i = 0; i < I; i++) col_ptr[i + 1] += col_ptr[i];
    int64_t *next = col_ptr; /* reuse: advance col_ptr[i] while filling, then shift back */
    for (int64_t r = 0; r < R; r++) {
        for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; k++) {
            int64_t dst = next[cols[k]]++;
            rows[dst] = (int32_t)r;
            cvals[dst] = vals[k];
        }
    }
    for (int64_t i = I; i > 0; i--) col_ptr[i] = col_ptr[i - 1];
    col_ptr[0] = 0;
}

/* TILE numbers as NV vectors of 32 bytes (GCC/Clang vector extensions: AVX on x86, pairs of NEON on ARM). */
typedef real vec __attribute__((vector_size(32)));
typedef real uvec __attribute__((vector_size(32), aligned(sizeof(real)))); /* unaligned access */
#define NV (TILE * (int)sizeof(real) / 32)

static real *aligned_buffer(size_t count) {
    void *p = NULL;
    return posix_memalign(&p, 64, count * sizeof(real) + 64) == 0 ? (real *)p : NULL;
}

/* acc = init + sum_k val[k] * rows[idx[k]] over the packed [*][TILE] rows; two interleaved sets of
 * accumulators keep 2 NV independent dependency chains in flight. */
INLINE void gather_tile(vec *restrict out, const vec *restrict init, const real *restrict packed,
                        const int32_t *restrict idx, const real *restrict val, int64_t k0, int64_t k1) {
    vec a[NV], b[NV];
    for (int v = 0; v < NV; v++) {
        a[v] = init[v];
        b[v] = (vec){0};
    }
    int64_t k = k0;
    for (; k + 1 < k1; k += 2) {
        const vec *p = (const vec *)(packed + (int64_t)idx[k] * TILE);
        const vec *q = (const vec *)(packed + (int64_t)idx[k + 1] * TILE);
        const real x = val[k], z = val[k + 1];
        for (int v = 0; v < NV; v++) {
            a[v] += x * p[v];
            b[v] += z * q[v];
        }
    }
    if (k < k1) {
        const vec *p = (const vec *)(packed + (int64_t)idx[k] * TILE);
        const real x = val[k];
        for (int v = 0; v < NV; v++) a[v] += x * p[v];
    }
    for (int v = 0; v < NV; v++) out[v] = a[v] + b[v];
}

/* y [R, O] = x W^T + bias, x as CSR, W [O, I] as stored by nn.Linear, bias [O] or NULL.
 * Per tile of TILE outputs, W[o0:o0+TILE, :] is first packed as [I][TILE] (contiguous rows of TILE numbers):
 * reading W^T rows in place would stride by O numbers, a power of two that maps them all to a few cache sets. */
void spike_linear_forward(int64_t R, int64_t I, int64_t O, const int64_t *row_ptr, const int32_t *cols,
                          const real *vals, const real *w, const real *bias, real *y, int threads) {
    const int64_t tiles = (O + TILE - 1) / TILE;
#pragma omp parallel num_threads(threads)
    {
        real *packed = aligned_buffer((size_t)I * TILE);
#pragma omp for schedule(static)
        for (int64_t tile = 0; tile < tiles; tile++) {
            const int64_t o0 = tile * TILE;
            const int64_t m = o0 + TILE <= O ? TILE : O - o0;
            for (int64_t j = 0; j < TILE; j++) {
                const real *wr = w + (o0 + (j < m ? j : 0)) * I;
                const real keep = j < m ? (real)1 : (real)0;
                for (int64_t i = 0; i < I; i++) packed[i * TILE + j] = keep * wr[i];
            }
            vec init[NV], acc[NV];
            real *bi = (real *)init;
            for (int j = 0; j < TILE; j++) bi[j] = (bias && j < m) ? bias[o0 + j] : (real)0;
            for (int64_t r = 0; r < R; r++) {
                gather_tile(acc, init, packed, cols, vals, row_ptr[r], row_ptr[r + 1]);
                real *yr = y + r * O + o0;
                if (m == TILE) {
                    for (int v = 0; v < NV; v++) ((uvec *)yr)[v] = acc[v];
                } else {
                    const real *ar = (const real *)acc;
                    for (int64_t j = 0; j < m; j++) yr[j] = ar[j];
                }
            }
        }
        free(packed);
    }
}

/* dW [O, I] = gy^T x, x as CSC (col_ptr [I + 1], rows, cvals), gy [R, O] contiguous.
 * Per tile of TILE outputs, gy[:, o0:o0+TILE] is packed as [R][TILE] and the tile's gradient is gathered as
 * [I][TILE], then written to the TILE rows of dW (contiguous writes). */
void spike_linear_weight_grad(int64_t R, int64_t I, int64_t O, const int64_t *col_ptr, const int32_t *rows,
                              const real *cvals, const real *gy, real *dw, int threads) {
    const int64_t tiles = (O + TILE - 1) / TILE;
#pragma omp parallel num_threads(threads)
    {
        real *packed = aligned_buffer((size_t)R * TILE);
        real *grad = aligned_buffer((size_t)I * TILE);
#pragma omp for schedule(static)
        for (int64_t tile = 0; tile < tiles; tile++) {
            const int64_t o0 = tile * TILE;
            const int64_t m = o0 + TILE <= O ? TILE : O - o0;
            for (int64_t r = 0; r < R; r++) {
                const real *g = gy + r * O + o0;
                real *pr = packed + r * TILE;
                for (int64_t j = 0; j < TILE; j++) pr[j] = j < m ? g[j] : (real)0;
            }
            vec zero[NV];
            for (int v = 0; v < NV; v++) zero[v] = (vec){0};
            for (int64_t i = 0; i < I; i++)
                gather_tile((vec *)(grad + i * TILE), zero, packed, rows, cvals, col_ptr[i], col_ptr[i + 1]);
            for (int64_t j = 0; j < m; j++) {
                real *dr = dw + (o0 + j) * I;
                for (int64_t i = 0; i < I; i++) dr[i] = grad[i * TILE + j];
            }
        }
        free(packed);
        free(grad);
    }
}
