/* Kernels of neuroplastic.neurons: multi-step LIF (below), an event-driven linear layer, the LIF fed back its own
 * post-synaptic traces (the fused plastic layer), products of a spike tensor per batch row, and a linear scan.
 *
 * Multi-step leaky integrate-and-fire: forward and hand-written backward over a whole [B, T, N] sequence.
 *
 * Compiled at first use by neuroplastic._c_kernels with -DREAL=float -DREAL_IS_FLOAT or -DREAL=double
 * (see neurons/spike_kernels.py).
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

#ifdef __AVX__
#include <immintrin.h>
#endif

#define BLOCK 256
#define INLINE static inline __attribute__((always_inline))

enum { RESET_HARD = 0, RESET_SOFT = 1, RESET_NONE = 2 };
enum { SG_FAST_SIGMOID = 0, SG_ATAN = 1, SG_TRIANGLE = 2, SG_SIGMOID = 3, SG_RECTANGLE = 4 };

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
        case SG_RECTANGLE: /* p = half-width w: 1 / (2 w) on |x| < w */
            return FABS(x) < p ? (real)1 / ((real)2 * p) : (real)0;
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

/* One time step of the forward pass over m neurons (see the equations at the top): input xt, membrane v (in
 * place), spikes st and pre-spike membrane ht written. Shared by the LIF and the plastic LIF kernels. */
INLINE void forward_step(int64_t m, const real *restrict xt, real *restrict v, const real *restrict decay,
                         const real *restrict thr, int reset, real v_reset, int rect, real k, real mid_div,
                         real *restrict st, real *restrict ht) {
    for (int64_t i = 0; i < m; i++) {
        const real th = thr[i];
        const real h = decay[i] * v[i] + xt[i];
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

INLINE void forward_block(int64_t T, int64_t N, int64_t n0, int64_t n1, const real *x, const real *v0,
                          const real *decay, const real *thr, int reset, real v_reset, int rect, real k, real mid_div,
                          real *spikes, real *h_out, real *v_out) {
    real v[BLOCK];
    const int64_t m = n1 - n0;
    for (int64_t i = 0; i < m; i++) v[i] = v0 ? v0[n0 + i] : (real)0;
    for (int64_t t = 0; t < T; t++)
        forward_step(m, x + t * N + n0, v, decay + n0, thr + n0, reset, v_reset, rect, k, mid_div,
                     spikes + t * N + n0, h_out + t * N + n0);
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
DEFINE_BACKWARD(0, 4)
DEFINE_BACKWARD(1, 0)
DEFINE_BACKWARD(1, 1)
DEFINE_BACKWARD(1, 2)
DEFINE_BACKWARD(1, 3)
DEFINE_BACKWARD(1, 4)

typedef void (*backward_fn)(int64_t, int64_t, int64_t, const real *, const real *, const real *, const real *, int,
                            real, real, real, int, real, const real *, real, const real *, real *, real *, real *, real *,
                            int);

void lif_backward(int64_t B, int64_t T, int64_t N, const real *h, const real *v0, const real *decay, const real *thr,
                  int reset, real v_reset, int rect, real k, int detach, int sg, real sgp, const real *gs_in,
                  real gs_const, const real *gv_T, real *gx, real *gv0, real *gd, real *gth, int threads) {
    static const backward_fn table[2][5] = {
        {backward_0_0, backward_0_1, backward_0_2, backward_0_3, backward_0_4},
        {backward_1_0, backward_1_1, backward_1_2, backward_1_3, backward_1_4}};
    const real mid_div = (real)(2.0 * tanh((double)k / 2.0));
    table[rect ? 1 : 0][(unsigned)sg < 5 ? sg : 0](B, T, N, h, v0, decay, thr, reset, v_reset, k, mid_div, detach, sgp, gs_in, gs_const, gv_T, gx,
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

/* y [R, O] = x W^T + bias, x as CSR, W [O, I] as stored by nn.Linear (transposed == 0) or its transpose
 * W^T [I, O] (transposed == 1: the [in, out] weights of the plastic layers, read without a copy), bias [O] or NULL.
 * Per tile of TILE outputs, W[o0:o0+TILE, :] is first packed as [I][TILE] (contiguous rows of TILE numbers):
 * reading W^T rows in place would stride by O numbers, a power of two that maps them all to a few cache sets. */
void spike_linear_forward(int64_t R, int64_t I, int64_t O, const int64_t *row_ptr, const int32_t *cols,
                          const real *vals, const real *w, int transposed, const real *bias, real *y, int threads) {
    const int64_t tiles = (O + TILE - 1) / TILE;
#pragma omp parallel num_threads(threads)
    {
        real *packed = aligned_buffer((size_t)I * TILE);
#pragma omp for schedule(static)
        for (int64_t tile = 0; tile < tiles; tile++) {
            const int64_t o0 = tile * TILE;
            const int64_t m = o0 + TILE <= O ? TILE : O - o0;
            if (transposed) {
                for (int64_t i = 0; i < I; i++) {
                    const real *wr = w + i * O + o0;
                    for (int64_t j = 0; j < TILE; j++) packed[i * TILE + j] = j < m ? wr[j] : (real)0;
                }
            } else {
                for (int64_t j = 0; j < TILE; j++) {
                    const real *wr = w + (o0 + (j < m ? j : 0)) * I;
                    const real keep = j < m ? (real)1 : (real)0;
                    for (int64_t i = 0; i < I; i++) packed[i * TILE + j] = keep * wr[i];
                }
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

/* dW [O, I] = gy^T x, x as CSC (col_ptr [I + 1], rows, cvals), gy [R, O] contiguous; dW is written as [O, I]
 * (transposed == 0) or as its transpose [I, O] (transposed == 1, the layout of the weights it is the gradient of).
 * Per tile of TILE outputs, gy[:, o0:o0+TILE] is packed as [R][TILE] and the tile's gradient is gathered as
 * [I][TILE], then written to the TILE rows of dW (or TILE numbers of each of its I rows: contiguous writes). */
void spike_linear_weight_grad(int64_t R, int64_t I, int64_t O, const int64_t *col_ptr, const int32_t *rows,
                              const real *cvals, const real *gy, real *dw, int transposed, int threads) {
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
            if (transposed) {
                for (int64_t i = 0; i < I; i++) {
                    real *dr = dw + i * O + o0;
                    for (int64_t j = 0; j < m; j++) dr[j] = grad[i * TILE + j];
                }
            } else {
                for (int64_t j = 0; j < m; j++) {
                    real *dr = dw + (o0 + j) * I;
                    for (int64_t i = 0; i < I; i++) dr[i] = grad[i * TILE + j];
                }
            }
        }
        free(packed);
        free(grad);
    }
}

/* ------------------------------------------------------------------------------------------------------------
 * LIF neurons fed back their own post-synaptic traces through a causal mixing matrix: the sequential part of
 * the fused plastic spiking layer (neuroplastic.plasticity.spiking, backend "fused"; the derivation is in
 * neuroplastic.neurons.fused_lif.plastic_lif_sequence). Per batch row b (A [T, T] per row, its upper triangle
 * not read; alpha, decay, thr [N]; l = l_post a number):
 *   P_t  = sum_{s<t} A[t, s] y_s
 *   c_t  = drive_t + alpha * P_t
 *   z_t, v_t = LIF step of c_t (forward_step above)
 *   y_t  = l * y_{t-1} + z_t                                   (y_{-1} = y0, or 0)
 * Stored for the backward pass: z, h (pre-spike membrane), P and Y = (y_t); returned: the final v.
 * Backward, t = T-1 down to 0, with R_t = sum_{u>t} A[u, t] q_u filled in as u goes down:
 *   G_t   = gY_t + R_t + l G_{t+1}                             (dL/dy_t in total, G_T = 0)
 *   gz_t  = gZ_t + G_t;   g_l += G_t * y_{t-1}
 *   gc_t  = the LIF backward step (backward_step above) with dL/dz_t = gz_t   (= dL/d drive_t)
 *   q_t   = alpha * gc_t;   g_alpha += gc_t * P_t
 *   for s < t: gA[t, s] = q_t . y_s;   R_s += A[t, s] q_t      (gA[t, s] = 0 for s >= t)
 *   g_y0 = l G_0;   g_v0 = dL/dv_{-1}
 * Cost O(T^2 N) per row, forward and backward. Rows are independent (one thread each); per-neuron gradients
 * (alpha, decay, threshold, l) are written per row, [B, N], and summed by the caller.
 *
 * Hebbian mode (gram != NULL; A is then not given but built per row, and its gradient not returned): the
 * decaying Hebbian rule's mixing matrix from the Gram matrix of the inputs C[t, r] = s_t . s_r, the overlaps
 * with the initial pre-synaptic trace u[t] = s_t . x_init (NULL: 0), the rate eta and the pre-trace decay lp:
 *   G[t, s] = lp G[t, s-1] + C[t, s],  G[t, -1] = u[t]          (= s_t . x_s, x_s the pre-synaptic trace)
 *   A[t, s] = G[t, s] * (eta * keep^(t-1-s)),  keep = 1 - eta,  s < t
 * and its backward from gA (per row t, s from t-1 down to 0, with H the reverse scan of gG):
 *   gG = gA[t, s] eta keep^k (k = t-1-s);  g_eta += gA[t, s] G[t, s] (keep^k - eta k keep^(k-1))
 *   H_s = gG + lp H_{s+1};  gC[t, s] = H_s;  g_lp += H_s G[t, s-1];  gu[t] = lp H_0
 * ---------------------------------------------------------------------------------------------------------- */

#define VW ((int64_t)(32 / sizeof(real))) /* numbers per vec */

/* Returns q . y and adds a * q to r (n numbers), in vector registers. */
INLINE real dot_and_axpy(int64_t n, const real *restrict q, const real *restrict y, real a, real *restrict r) {
    vec acc0 = {0}, acc1 = {0};
    int64_t i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        const vec q0 = *(const uvec *)(q + i), q1 = *(const uvec *)(q + i + VW);
        acc0 += q0 * *(const uvec *)(y + i);
        acc1 += q1 * *(const uvec *)(y + i + VW);
        *(uvec *)(r + i) = *(const uvec *)(r + i) + a * q0;
        *(uvec *)(r + i + VW) = *(const uvec *)(r + i + VW) + a * q1;
    }
    const vec acc = acc0 + acc1;
    const real *lanes = (const real *)&acc;
    real dot = 0;
    for (int64_t j = 0; j < VW; j++) dot += lanes[j];
    for (; i < n; i++) {
        dot += q[i] * y[i];
        r[i] += a * q[i];
    }
    return dot;
}

#define TB 4 /* steps of the backward pass that share a pass over the earlier steps' y_s and R_s */

/* For the TB rows q_k (row k at q + k * n): d[k] = q_k . y, and r += sum_k a[k] q_k; one pass over y and r. */
INLINE void dots_and_axpys(int64_t n, const real *restrict q, const real *restrict y, const real *a,
                           real *restrict r, real *d) {
    const real *restrict q0 = q, *restrict q1 = q + n, *restrict q2 = q + 2 * n, *restrict q3 = q + 3 * n;
    const real a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    int64_t i = 0;
    for (; i + VW <= n; i += VW) {
        const vec yv = *(const uvec *)(y + i);
        const vec v0 = *(const uvec *)(q0 + i), v1 = *(const uvec *)(q1 + i), v2 = *(const uvec *)(q2 + i),
                  v3 = *(const uvec *)(q3 + i);
        s0 += v0 * yv;
        s1 += v1 * yv;
        s2 += v2 * yv;
        s3 += v3 * yv;
        *(uvec *)(r + i) = *(const uvec *)(r + i) + ((a0 * v0 + a1 * v1) + (a2 * v2 + a3 * v3));
    }
    const vec *sums[4] = {&s0, &s1, &s2, &s3};
    for (int k = 0; k < 4; k++) {
        const real *lanes = (const real *)sums[k];
        real sum = 0;
        for (int64_t j = 0; j < VW; j++) sum += lanes[j];
        d[k] = sum;
    }
    for (; i < n; i++) {
        d[0] += q0[i] * y[i];
        d[1] += q1[i] * y[i];
        d[2] += q2[i] * y[i];
        d[3] += q3[i] * y[i];
        r[i] += (a0 * q0[i] + a1 * q1[i]) + (a2 * q2[i] + a3 * q3[i]);
    }
}

/* out = sum_{j < count} a[j * stride] rows[j] (rows of n numbers, row j at rows + j * n), 4 rows at a time. */
INLINE void combine_rows(int64_t n, int64_t count, const real *a, int64_t stride, const real *restrict rows,
                         real *restrict out) {
    for (int64_t i = 0; i < n; i++) out[i] = 0;
    int64_t j = 0;
    for (; j + 4 <= count; j += 4) {
        const real a0 = a[j * stride], a1 = a[(j + 1) * stride], a2 = a[(j + 2) * stride], a3 = a[(j + 3) * stride];
        const real *restrict r0 = rows + j * n, *restrict r1 = r0 + n, *restrict r2 = r1 + n, *restrict r3 = r2 + n;
        for (int64_t i = 0; i < n; i++) out[i] += (a0 * r0[i] + a1 * r1[i]) + (a2 * r2[i] + a3 * r3[i]);
    }
    for (; j < count; j++) {
        const real aj = a[j * stride];
        const real *restrict r = rows + j * n;
        for (int64_t i = 0; i < n; i++) out[i] += aj * r[i];
    }
}

/* keep^k for k = 0..T-1 (by repeated products, as a cumulative product does). */
INLINE void keep_powers(int64_t T, real eta, real *pw) {
    const real keep = (real)1 - eta;
    pw[0] = 1;
    for (int64_t j = 1; j < T; j++) pw[j] = pw[j - 1] * keep;
}

/* A [T, T] of one row in Hebbian mode (see above); C [T, T], u [T] or NULL. */
INLINE void hebbian_mixing(int64_t T, const real *C, const real *u, real eta, real lp, const real *pw, real *A) {
    for (int64_t t = 0; t < T; t++) {
        const real *ct = C + t * T;
        real *at = A + t * T;
        real g = u ? u[t] : (real)0;
        for (int64_t s = 0; s < t; s++) {
            g = lp * g + ct[s];
            at[s] = g * (eta * pw[t - 1 - s]);
        }
        for (int64_t s = t; s < T; s++) at[s] = 0;
    }
}

/* The backward pass of hebbian_mixing for one row: gC [T, T] and gu [T] (either may be NULL) written, the
 * row's gradients of eta and lp returned in *g_eta, *g_lp. G: scratch of T numbers. */
INLINE void hebbian_mixing_backward(int64_t T, const real *C, const real *u, real eta, real lp, const real *pw,
                                    const real *gA, real *gC, real *gu, real *g_eta, real *g_lp, real *G) {
    real ge = 0, gl = 0;
    for (int64_t t = 0; t < T; t++) {
        const real *ct = C + t * T, *gat = gA + t * T;
        const real u0 = u ? u[t] : (real)0;
        real g = u0;
        for (int64_t s = 0; s < t; s++) {
            g = lp * g + ct[s];
            G[s] = g;
        }
        real h = 0;
        for (int64_t s = t - 1; s >= 0; s--) {
            const int64_t k = t - 1 - s;
            const real ga = gat[s];
            ge += ga * G[s] * (pw[k] - (k ? eta * (real)k * pw[k - 1] : (real)0));
            h = ga * (eta * pw[k]) + lp * h;
            if (gC) gC[t * T + s] = h;
            gl += h * (s ? G[s - 1] : u0);
        }
        if (gu) gu[t] = lp * h;
        if (gC)
            for (int64_t s = t; s < T; s++) gC[t * T + s] = 0;
    }
    *g_eta = ge;
    *g_lp = gl;
}

INLINE void plastic_forward_row(int64_t T, int64_t N, const real *drive, const real *A, const real *alpha,
                                const real *v0, const real *y0, const real *decay, const real *thr, real l, int reset,
                                real v_reset, int rect, real k, real mid_div, real *spikes, real *h, real *P, real *Y,
                                real *v_out, real *v, real *c) {
    for (int64_t i = 0; i < N; i++) v[i] = v0 ? v0[i] : (real)0;
    for (int64_t t = 0; t < T; t++) {
        real *restrict pt = P + t * N;
        combine_rows(N, t, A + t * T, 1, Y, pt); /* P_t = sum_{s<t} A[t, s] y_s */
        const real *dt = drive + t * N;
        for (int64_t i = 0; i < N; i++) c[i] = dt[i] + alpha[i] * pt[i];
        real *st = spikes + t * N;
        forward_step(N, c, v, decay, thr, reset, v_reset, rect, k, mid_div, st, h + t * N);
        const real *yp = t ? Y + (t - 1) * N : y0;
        real *restrict yt = Y + t * N;
        if (yp)
            for (int64_t i = 0; i < N; i++) yt[i] = l * yp[i] + st[i];
        else
            for (int64_t i = 0; i < N; i++) yt[i] = l * (real)0 + st[i];
    }
    for (int64_t i = 0; i < N; i++) v_out[i] = v[i];
}

#define DEFINE_PLASTIC_FORWARD(RECT)                                                                             \
    static __attribute__((noinline)) void plastic_forward_rect##RECT(                                            \
        int64_t B, int64_t T, int64_t N, const real *drive, const real *A, const real *gram, const real *u,      \
        real eta, real lp, const real *alpha, const real *v0, const real *y0, const real *decay, const real *thr, \
        real l, int reset, real v_reset, real k, real mid_div, real *spikes, real *h, real *P, real *Y,          \
        real *v_out, int threads) {                                                                              \
        _Pragma("omp parallel num_threads(threads)") {                                                           \
            real *scratch = (real *)malloc((size_t)(2 * N + T * T + T) * sizeof(real));                          \
            real *a_row = scratch + 2 * N, *pw = a_row + T * T;                                                  \
            if (gram) keep_powers(T, eta, pw);                                                                   \
            _Pragma("omp for schedule(static)") for (int64_t b = 0; b < B; b++) {                                \
                const int64_t o = b * T * N;                                                                     \
                if (gram) hebbian_mixing(T, gram + b * T * T, u ? u + b * T : NULL, eta, lp, pw, a_row);         \
                plastic_forward_row(T, N, drive + o, gram ? a_row : A + b * T * T, alpha, v0 ? v0 + b * N : NULL, \
                                    y0 ? y0 + b * N : NULL, decay, thr, l, reset, v_reset, RECT, k, mid_div,     \
                                    spikes + o, h + o, P + o, Y + o, v_out + b * N, scratch, scratch + N);       \
            }                                                                                                    \
            free(scratch);                                                                                       \
        }                                                                                                        \
    }
DEFINE_PLASTIC_FORWARD(0)
DEFINE_PLASTIC_FORWARD(1)

void plastic_lif_forward(int64_t B, int64_t T, int64_t N, const real *drive, const real *A, const real *gram,
                         const real *u, real eta, real lp, const real *alpha, const real *v0, const real *y0,
                         const real *decay, const real *thr, real l, int reset, real v_reset, int rect, real k,
                         real *spikes, real *h, real *P, real *Y, real *v_out, int threads) {
    const real mid_div = (real)(2.0 * tanh((double)k / 2.0));
    (rect ? plastic_forward_rect1 : plastic_forward_rect0)(B, T, N, drive, A, gram, u, eta, lp, alpha, v0, y0, decay,
                                                           thr, l, reset, v_reset, k, mid_div, spikes, h, P, Y, v_out,
                                                           threads);
}

/* The backward pass of one batch row; gZ, gY, gv_T, v0, y0, gv0, gy0 may be NULL (gZ NULL: every dL/dz_t is
 * gz_const). scratch: (4 + TB + T) N numbers. R_s is filled in as the later steps are done (R_s += A[t, s] q_t in
 * the same pass over y_s as gA[t, s] = q_t . y_s), by groups of TB steps: within a group step by step, then for
 * the earlier steps s one pass over y_s and R_s for the whole group. */
INLINE void plastic_backward_row(int64_t T, int64_t N, const real *h, const real *A, const real *alpha, const real *P,
                                 const real *Y, const real *v0, const real *y0, const real *decay, const real *thr,
                                 real l, int reset, real v_reset, int rect, real k, real mid_div, real through_reset,
                                 int sg, real sgp, const real *gZ, real gz_const, const real *gY, const real *gv_T,
                                 real *g_drive, real *gA, real *galpha, real *gv0, real *gy0, real *gd, real *gth,
                                 real *gl, real *scratch) {
    real *gv = scratch, *ghp = scratch + N, *G = scratch + 2 * N, *gz = scratch + 3 * N;
    real *Qg = scratch + 4 * N; /* the group's q rows: row j is step t_hi - j */
    real *R = Qg + TB * N;
    for (int64_t i = 0; i < N; i++) {
        gv[i] = gv_T ? gv_T[i] : (real)0;
        ghp[i] = G[i] = 0;
        gd[i] = gth[i] = galpha[i] = gl[i] = 0;
    }
    for (int64_t i = 0; i < T * N; i++) R[i] = 0;
    int64_t t_hi = T - 1;
    for (int64_t t = T - 1; t >= 0; t--) {
        if (t_hi - t == TB) t_hi = t;
        const int64_t t_lo = t_hi - TB + 1 >= 0 ? t_hi - TB + 1 : 0;
        const real *rt = R + t * N;
        const real *yp = t ? Y + (t - 1) * N : y0;
        for (int64_t i = 0; i < N; i++) {
            const real g = (gY ? gY[t * N + i] : (real)0) + rt[i] + l * G[i];
            G[i] = g;
            gz[i] = (gZ ? gZ[t * N + i] : gz_const) + g;
            gl[i] += g * (yp ? yp[i] : (real)0);
        }
        real *gct = g_drive + t * N;
        backward_step(N, h + t * N, gz, 1, 0, decay, thr, reset, v_reset, rect, k, mid_div, through_reset, sg, sgp,
                      gv, gd, gth, ghp, gct);
        const real *pt = P + t * N;
        real *restrict q = Qg + (t_hi - t) * N;
        for (int64_t i = 0; i < N; i++) {
            q[i] = alpha[i] * gct[i];
            galpha[i] += gct[i] * pt[i];
        }
        const real *at = A + t * T;
        real *gat = gA + t * T;
        for (int64_t s = t_lo; s < t; s++) gat[s] = dot_and_axpy(N, q, Y + s * N, at[s], R + s * N);
        for (int64_t s = t; s < T; s++) gat[s] = 0;
        if (t != t_lo) continue;
        /* the group t_lo..t_hi is done: its contributions to the earlier steps s < t_lo */
        if (t_hi - t_lo + 1 == TB) {
            for (int64_t s = 0; s < t_lo; s++) {
                real a[TB], d[TB];
                for (int j = 0; j < TB; j++) a[j] = A[(t_hi - j) * T + s];
                dots_and_axpys(N, Qg, Y + s * N, a, R + s * N, d);
                for (int j = 0; j < TB; j++) gA[(t_hi - j) * T + s] = d[j];
            }
        } else {
            for (int64_t u = t_hi; u >= t_lo; u--)
                for (int64_t s = 0; s < t_lo; s++)
                    gA[u * T + s] = dot_and_axpy(N, Qg + (t_hi - u) * N, Y + s * N, A[u * T + s], R + s * N);
        }
    }
    for (int64_t i = 0; i < N; i++) {
        gd[i] += ghp[i] * (v0 ? v0[i] : (real)0);
        if (gv0) gv0[i] = gv[i];
        if (gy0) gy0[i] = l * G[i];
    }
}

#define DEFINE_PLASTIC_BACKWARD(RECT, SG)                                                                        \
    static __attribute__((noinline)) void plastic_backward_##RECT##_##SG(                                        \
        int64_t B, int64_t T, int64_t N, const real *h, const real *A, const real *gram, const real *u, real eta, \
        real lp, const real *alpha, const real *P, const real *Y, const real *v0, const real *y0,                 \
        const real *decay, const real *thr, real l, int reset, real v_reset, real k, real mid_div, int detach,    \
        real sgp, const real *gZ, real gz_const, const real *gY, const real *gv_T, real *g_drive, real *gA,       \
        real *gC, real *gu, real *g_eta, real *g_lp, real *galpha, real *gv0, real *gy0, real *gd, real *gth,     \
        real *gl, int threads) {                                                                                 \
        const real through_reset = detach ? (real)0 : (real)1;                                                   \
        _Pragma("omp parallel num_threads(threads)") {                                                           \
            real *scratch = (real *)malloc((size_t)((4 + TB + T) * N + 2 * T * T + 2 * T) * sizeof(real));       \
            real *a_row = scratch + (4 + TB + T) * N, *ga_row = a_row + T * T, *pw = ga_row + T * T;             \
            real *g_row = pw + T;                                                                                \
            if (gram) keep_powers(T, eta, pw);                                                                   \
            _Pragma("omp for schedule(static)") for (int64_t b = 0; b < B; b++) {                                \
                const int64_t o = b * T * N, r = b * N, bt = b * T * T;                                          \
                if (gram) hebbian_mixing(T, gram + bt, u ? u + b * T : NULL, eta, lp, pw, a_row);                \
                plastic_backward_row(T, N, h + o, gram ? a_row : A + bt, alpha, P + o, Y + o, v0 ? v0 + r : NULL, \
                                     y0 ? y0 + r : NULL, decay, thr, l, reset, v_reset, RECT, k, mid_div,        \
                                     through_reset, SG, sgp, gZ ? gZ + o : NULL, gz_const, gY ? gY + o : NULL,   \
                                     gv_T ? gv_T + r : NULL, g_drive + o, gram ? ga_row : gA + bt, galpha + r,   \
                                     gv0 ? gv0 + r : NULL, gy0 ? gy0 + r : NULL, gd + r, gth + r, gl + r,        \
                                     scratch);                                                                   \
                if (gram)                                                                                        \
                    hebbian_mixing_backward(T, gram + bt, u ? u + b * T : NULL, eta, lp, pw, ga_row,             \
                                            gC ? gC + bt : NULL, gu ? gu + b * T : NULL, g_eta + b, g_lp + b,    \
                                            g_row);                                                              \
            }                                                                                                    \
            free(scratch);                                                                                       \
        }                                                                                                        \
    }
DEFINE_PLASTIC_BACKWARD(0, 0)
DEFINE_PLASTIC_BACKWARD(0, 1)
DEFINE_PLASTIC_BACKWARD(0, 2)
DEFINE_PLASTIC_BACKWARD(0, 3)
DEFINE_PLASTIC_BACKWARD(0, 4)
DEFINE_PLASTIC_BACKWARD(1, 0)
DEFINE_PLASTIC_BACKWARD(1, 1)
DEFINE_PLASTIC_BACKWARD(1, 2)
DEFINE_PLASTIC_BACKWARD(1, 3)
DEFINE_PLASTIC_BACKWARD(1, 4)

typedef void (*plastic_backward_fn)(int64_t, int64_t, int64_t, const real *, const real *, const real *, const real *,
                                    real, real, const real *, const real *, const real *, const real *, const real *,
                                    const real *, const real *, real, int, real, real, real, int, real, const real *,
                                    real, const real *, const real *, real *, real *, real *, real *, real *, real *,
                                    real *, real *, real *, real *, real *, real *, int);

/* gA, gC, gu, g_eta [B], g_lp [B]: gA for a given A (gram NULL); the others in Hebbian mode (gC, gu may be
 * NULL). */
void plastic_lif_backward(int64_t B, int64_t T, int64_t N, const real *h, const real *A, const real *gram,
                          const real *u, real eta, real lp, const real *alpha, const real *P, const real *Y,
                          const real *v0, const real *y0, const real *decay, const real *thr, real l, int reset,
                          real v_reset, int rect, real k, int detach, int sg, real sgp, const real *gZ, real gz_const,
                          const real *gY, const real *gv_T, real *g_drive, real *gA, real *gC, real *gu, real *g_eta,
                          real *g_lp, real *galpha, real *gv0, real *gy0, real *gd, real *gth, real *gl, int threads) {
    static const plastic_backward_fn table[2][5] = {
        {plastic_backward_0_0, plastic_backward_0_1, plastic_backward_0_2, plastic_backward_0_3, plastic_backward_0_4},
        {plastic_backward_1_0, plastic_backward_1_1, plastic_backward_1_2, plastic_backward_1_3, plastic_backward_1_4}};
    const real mid_div = (real)(2.0 * tanh((double)k / 2.0));
    table[rect ? 1 : 0][(unsigned)sg < 5 ? sg : 0](B, T, N, h, A, gram, u, eta, lp, alpha, P, Y, v0, y0, decay, thr, l, reset, v_reset, k,
                                mid_div, detach, sgp, gZ, gz_const, gY, gv_T, g_drive, gA, gC, gu, g_eta, g_lp, galpha,
                                gv0, gy0, gd, gth, gl, threads);
}

/* ------------------------------------------------------------------------------------------------------------
 * Products with a mostly-zero S [B, T, I] (spike inputs) per batch row, in time proportional to its nonzeros:
 *   spike_gram:          C_b = S_b S_b^T          [T, T]   (C[t, r] = s_t . s_r)
 *   spike_outer_sum:     H_b = S_b^T M_b          [I, O]   (H[i, :] = sum_t S[t, i] M[t, :])
 *   spike_rows_product:  Q_b = S_b G_b            [T, O]   (Q[t, :] = sum_i S[t, i] G[i, :]; H's backward)
 * The nonzeros of S_b are first listed by column (branch-free: every entry is written, the count advances
 * past nonzeros only). Sums run in increasing index order.
 * ---------------------------------------------------------------------------------------------------------- */

/* Per-thread scratch of list_columns: cnt [I] and cols [I + 1] in one block, idx / val [I * T]. */
typedef struct {
    int32_t *cnt, *cols, *idx;
    real *val;
} ColumnLists;

static ColumnLists column_lists_new(int64_t T, int64_t I) {
    ColumnLists lists;
    lists.cnt = (int32_t *)malloc((size_t)(2 * I + 1) * sizeof(int32_t));
    lists.cols = lists.cnt + I;
    lists.idx = (int32_t *)malloc((size_t)(I * T) * sizeof(int32_t));
    lists.val = (real *)malloc((size_t)(I * T) * sizeof(real));
    return lists;
}

static void column_lists_free(ColumnLists *lists) {
    free(lists->cnt);
    free(lists->idx);
    free(lists->val);
}

/* cnt[i] = nonzeros in column i of S_b [T, I]; their rows and values at idx / val [i * T + j]. Each row's
 * nonzero columns are first listed in cols (I numbers of scratch, sequential writes), then only they are
 * scattered to their columns' lists. */
INLINE void list_columns(int64_t T, int64_t I, const real *S, ColumnLists *lists) {
    int32_t *cnt = lists->cnt, *idx = lists->idx, *cols = lists->cols;
    real *val = lists->val;
    for (int64_t i = 0; i < I; i++) cnt[i] = 0;
    for (int64_t t = 0; t < T; t++) {
        const real *row = S + t * I;
        int64_t n = 0;
        for (int64_t i = 0; i < I; i++) {
            cols[n] = (int32_t)i;
            n += row[i] != 0;
        }
        for (int64_t j = 0; j < n; j++) {
            const int32_t i = cols[j];
            const int64_t at = (int64_t)i * T + cnt[i]++;
            idx[at] = (int32_t)t;
            val[at] = row[i];
        }
    }
}

void spike_gram(int64_t B, int64_t T, int64_t I, const real *S, real *C, int threads) {
#pragma omp parallel num_threads(threads)
    {
        ColumnLists lists = column_lists_new(T, I);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            list_columns(T, I, S + b * T * I, &lists);
            const int32_t *cnt = lists.cnt, *idx = lists.idx;
            const real *val = lists.val;
            real *cb = C + b * T * T;
            for (int64_t j = 0; j < T * T; j++) cb[j] = 0;
            for (int64_t i = 0; i < I; i++) {
                const int32_t *ti = idx + i * T;
                const real *vi = val + i * T;
                for (int32_t p = 0; p < cnt[i]; p++) {
                    real *row = cb + (int64_t)ti[p] * T;
                    const real x = vi[p];
                    for (int32_t q = 0; q < cnt[i]; q++) row[ti[q]] += x * vi[q];
                }
            }
        }
        column_lists_free(&lists);
    }
}

/* *p = v for a 32-byte-aligned p, bypassing the caches where the CPU can (AVX non-temporal stores): H is
 * written once and not read back by this kernel, and at B=16, I=O=2048 it is 268 MB, many times the caches,
 * so ordinary stores would first read every line of it into the cache (measured, one thread, fresh memory:
 * 112 ms -> 87 ms at that size). Elsewhere an ordinary store. */
INLINE void store_streaming(real *p, vec v) {
#if defined(__AVX__) && defined(REAL_IS_FLOAT)
    _mm256_stream_ps(p, (__m256)v);
#elif defined(__AVX__)
    _mm256_stream_pd(p, (__m256d)v);
#else
    *(vec *)p = v;
#endif
}

void spike_outer_sum(int64_t B, int64_t T, int64_t I, int64_t O, const real *S, const real *M, real *H, int threads) {
#pragma omp parallel num_threads(threads)
    {
        ColumnLists lists = column_lists_new(T, I);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            list_columns(T, I, S + b * T * I, &lists);
            const int32_t *cnt = lists.cnt, *idx = lists.idx;
            const real *val = lists.val;
            const real *mb = M + b * T * O;
            for (int64_t i = 0; i < I; i++) {
                real *restrict hi = H + (b * I + i) * O;
                const int32_t *ti = idx + i * T;
                const real *vi = val + i * T;
                const int32_t c = cnt[i];
                const int aligned = ((uintptr_t)hi & 31) == 0;
                int64_t o = 0;
                for (; o + 4 * VW <= O; o += 4 * VW) { /* a tile of 4 vectors summed in registers */
                    vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                    for (int32_t p = 0; p < c; p++) {
                        const real x = vi[p];
                        const real *mr = mb + (int64_t)ti[p] * O + o;
                        a0 += x * *(const uvec *)mr;
                        a1 += x * *(const uvec *)(mr + VW);
                        a2 += x * *(const uvec *)(mr + 2 * VW);
                        a3 += x * *(const uvec *)(mr + 3 * VW);
                    }
                    if (aligned) {
                        store_streaming(hi + o, a0);
                        store_streaming(hi + o + VW, a1);
                        store_streaming(hi + o + 2 * VW, a2);
                        store_streaming(hi + o + 3 * VW, a3);
                    } else {
                        *(uvec *)(hi + o) = a0;
                        *(uvec *)(hi + o + VW) = a1;
                        *(uvec *)(hi + o + 2 * VW) = a2;
                        *(uvec *)(hi + o + 3 * VW) = a3;
                    }
                }
                for (; o < O; o++) {
                    real acc = 0;
                    for (int32_t p = 0; p < c; p++) acc += vi[p] * mb[(int64_t)ti[p] * O + o];
                    hi[o] = acc;
                }
            }
        }
#if defined(__AVX__)
        _mm_sfence(); /* the streaming stores are weakly ordered: make them visible before the threads join */
#endif
        column_lists_free(&lists);
    }
}

void spike_rows_product(int64_t B, int64_t T, int64_t I, int64_t O, const real *S, const real *G, real *Q,
                        int threads) {
#pragma omp parallel num_threads(threads)
    {
        int32_t *cols = (int32_t *)malloc((size_t)(I + 1) * sizeof(int32_t));
#pragma omp for schedule(static)
        for (int64_t bt = 0; bt < B * T; bt++) {
            const real *row = S + bt * I;
            const real *gb = G + (bt / T) * I * O;
            int64_t n = 0;
            for (int64_t i = 0; i < I; i++) {
                cols[n] = (int32_t)i;
                n += row[i] != 0;
            }
            real *restrict qr = Q + bt * O;
            for (int64_t o = 0; o < O; o++) qr[o] = 0;
            for (int64_t j = 0; j < n; j++) {
                const real x = row[cols[j]];
                const real *restrict gr = gb + (int64_t)cols[j] * O;
                for (int64_t o = 0; o < O; o++) qr[o] += x * gr[o];
            }
        }
        free(cols);
    }
}

/* A first-order linear recurrence along time, per batch row: out_t = decay * out_{t-1} + w_t x_t (forward) or
 * out_t = decay * out_{t+1} + w_t x_t (reverse), from 0; x, out [B, T, N], decay a number, w [T] or NULL (ones).
 * The traces of the fused plastic layer (the backward pass of one such scan is the scan of the other direction). */
void linear_scan(int64_t B, int64_t T, int64_t N, const real *x, const real *w, real decay, int reverse, real *out,
                 int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < B; b++) {
        const real *xb = x + b * T * N;
        real *ob = out + b * T * N;
        for (int64_t j = 0; j < T; j++) {
            const int64_t t = reverse ? T - 1 - j : j;
            const real *restrict xt = xb + t * N;
            real *restrict ot = ob + t * N;
            if (j == 0 && w) {
                for (int64_t i = 0; i < N; i++) ot[i] = w[t] * xt[i];
            } else if (j == 0) {
                for (int64_t i = 0; i < N; i++) ot[i] = xt[i];
            } else if (w) {
                const real *restrict prev = ob + (reverse ? t + 1 : t - 1) * N;
                const real wt = w[t];
                for (int64_t i = 0; i < N; i++) ot[i] = decay * prev[i] + wt * xt[i];
            } else {
                const real *restrict prev = ob + (reverse ? t + 1 : t - 1) * N;
                for (int64_t i = 0; i < N; i++) ot[i] = decay * prev[i] + xt[i];
            }
        }
    }
}
