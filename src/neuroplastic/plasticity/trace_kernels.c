/* Hebbian-trace kernels for the fused plastic scan (neuroplastic.plasticity.fused_scan), one pass per step.

   Built at first use by neuroplastic.plasticity.trace_kernels with the machine's C compiler, once with
   REAL=float and once with REAL=double; loaded with ctypes. Shapes: traces [B, I, O] contiguous; per-row
   vectors [B, I] or [B, O] with unit inner stride and a row stride ("ld"); alpha [I, O] contiguous.

   trace_step   h_out = rule(h_in): h * keep[j] (decaying rule only) + pre[i] * delta[j], clipped to
                [-clip, clip] (clip rule only); no update when delta is NULL. Optionally
                s[j] = sum_i nxt[i] alpha[i,j] h_out[i,j] (the next step's plastic input),
                q[j] = sum_i nxt[i] h_out[i,j], and a copy of h_out.
   trace_backward  one step of the backward pass, two optional halves in one sweep over G:
                first back through the plastic input s_{t+1} = pre_in @ (alpha * H_t) with dL/ds = g:
                G += alpha * pre_in (x) g, alpha_grad += sum_b pre_in (x) g * H_t (into one [I, O] part per
                thread, summed by the caller), dpre_in[i] = sum_j alpha[i,j] H_t[i,j] g[j];
                then back through the update H_t = rule(H_{t-1}): G <- dL/dH_{t-1} through the update (masked
                where the clip was active, times keep for the decaying rule), v[j] = sum_i pre[i] G'[i,j],
                dpre[i] = sum_j G'[i,j] delta[j], gdt[j] = sum_i G'[i,j] H_{t-1}[i,j] (decaying rule).

   Each [I, O] row of a batch element is handled by a few simple loops over O contiguous numbers, which the
   compiler vectorises; the row stays in L1 between them. Work is split across threads by batch element. */
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifndef REAL
#define REAL float
#endif

void trace_step(int64_t B, int64_t I, int64_t O, const REAL *h_in, REAL *h_out,
                const REAL *pre, int64_t pre_ld, const REAL *delta, int64_t delta_ld,
                const REAL *keep, int64_t keep_ld, REAL clip, int has_clip,
                const REAL *nxt, int64_t nxt_ld, const REAL *alpha,
                REAL *s_out, int64_t s_ld, REAL *q_out, int64_t q_ld, REAL *copy_out, int nthreads) {
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const REAL *db = delta ? delta + b * delta_ld : 0;
        const REAL *kb = keep ? keep + b * keep_ld : 0;
        REAL *sb = nxt ? s_out + b * s_ld : 0;
        REAL *qb = (nxt && q_out) ? q_out + b * q_ld : 0;
        if (sb) for (int64_t j = 0; j < O; j++) sb[j] = 0;
        if (qb) for (int64_t j = 0; j < O; j++) qb[j] = 0;
        for (int64_t i = 0; i < I; i++) {
            const REAL *hr = h_in + (b * I + i) * O; /* h_in may be h_out (update in place) */
            REAL *row = h_out + (b * I + i) * O;
            if (db) {
                const REAL p = pre[b * pre_ld + i];
                if (kb) {
                    for (int64_t j = 0; j < O; j++) row[j] = hr[j] * kb[j] + p * db[j];
                } else {
                    for (int64_t j = 0; j < O; j++) row[j] = hr[j] + p * db[j];
                }
                if (has_clip)
                    for (int64_t j = 0; j < O; j++) row[j] = row[j] < -clip ? -clip : (row[j] > clip ? clip : row[j]);
            } else {
                row = (REAL *)hr;
            }
            if (copy_out) {
                REAL *restrict cr = copy_out + (b * I + i) * O;
                for (int64_t j = 0; j < O; j++) cr[j] = row[j];
            }
            if (sb) {
                const REAL n = nxt[b * nxt_ld + i];
                const REAL *restrict ar = alpha + i * O;
                for (int64_t j = 0; j < O; j++) sb[j] += n * ar[j] * row[j];
                if (qb) for (int64_t j = 0; j < O; j++) qb[j] += n * row[j];
            }
        }
    }
}

void trace_backward(int64_t B, int64_t I, int64_t O, REAL *G,
                    /* back through s_{t+1} = pre @ (alpha * H_t), skipped if g is NULL */
                    const REAL *h_mid, const REAL *pre_in, int64_t pre_in_ld, const REAL *g, int64_t g_ld,
                    const REAL *alpha, REAL *alpha_grad_parts, REAL *dpre_in_out,
                    /* then back through the update H_t = rule(H_{t-1}), skipped if h_prev is NULL */
                    const REAL *h_prev, const REAL *pre, int64_t pre_ld, const REAL *delta, int64_t delta_ld,
                    const REAL *keep, int64_t keep_ld, REAL clip, int has_clip,
                    REAL *v_out, REAL *dpre_out, REAL *gdt_out, int nthreads) {
    #pragma omp parallel num_threads(nthreads)
    {
#ifdef _OPENMP
        REAL *agp = g ? alpha_grad_parts + (int64_t)omp_get_thread_num() * I * O : 0;
#else
        REAL *agp = g ? alpha_grad_parts : 0;
#endif
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            const REAL *restrict gb = g ? g + b * g_ld : 0;
            const REAL *restrict db = h_prev ? delta + b * delta_ld : 0;
            const REAL *restrict kb = (h_prev && keep) ? keep + b * keep_ld : 0;
            REAL *restrict vb = h_prev ? v_out + b * O : 0;
            REAL *restrict gdb = (h_prev && gdt_out) ? gdt_out + b * O : 0;
            if (vb) for (int64_t j = 0; j < O; j++) vb[j] = 0;
            if (gdb) for (int64_t j = 0; j < O; j++) gdb[j] = 0;
            for (int64_t i = 0; i < I; i++) {
                REAL *restrict gr = G + (b * I + i) * O;
                if (gb) {
                    const REAL *restrict hr = h_mid + (b * I + i) * O;
                    const REAL *restrict ar = alpha + i * O;
                    REAL *restrict agr = agp + i * O;
                    const REAL p = pre_in[b * pre_in_ld + i];
                    REAL acc = 0;
                    #pragma omp simd reduction(+:acc)
                    for (int64_t j = 0; j < O; j++) acc += ar[j] * gb[j] * hr[j];
                    dpre_in_out[b * I + i] = acc;
                    for (int64_t j = 0; j < O; j++) gr[j] += ar[j] * gb[j] * p;
                    for (int64_t j = 0; j < O; j++) agr[j] += p * gb[j] * hr[j];
                }
                if (db) {
                    const REAL *restrict hr = h_prev + (b * I + i) * O;
                    const REAL p = pre[b * pre_ld + i];
                    if (has_clip)
                        for (int64_t j = 0; j < O; j++) {
                            const REAL z = hr[j] + p * db[j];
                            gr[j] = (z >= -clip && z <= clip) ? gr[j] : (REAL)0;
                        }
                    REAL acc = 0;
                    #pragma omp simd reduction(+:acc)
                    for (int64_t j = 0; j < O; j++) acc += gr[j] * db[j];
                    dpre_out[b * I + i] = acc;
                    for (int64_t j = 0; j < O; j++) vb[j] += p * gr[j];
                    if (kb) {
                        for (int64_t j = 0; j < O; j++) gdb[j] += gr[j] * hr[j];
                        for (int64_t j = 0; j < O; j++) gr[j] *= kb[j];
                    }
                }
            }
        }
    }
}
