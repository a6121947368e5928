/* Kernels of neuroplastic.quantization: packing rows into bits, and binary / bit-plane matrix products by
 * XNOR (XOR) / AND and popcount (Hubara et al. 2017, "Quantized neural networks", Section 5).
 *
 * Compiled at first use by neuroplastic._c_kernels (see quantization/packing.py), with -march=native so that
 * the popcount of the inner loops becomes the CPU's popcount instruction (POPCNT, or AVX-512 VPOPCNTQ over
 * eight words at a time where the CPU has it), and with OpenMP over output rows where the compiler has it.
 *
 * Layout. A packed row holds its K values in W 64-bit words (W = ceil(K / 64)); bit j of word w is the value
 * of feature 64 w + j; the padding bits of the last word are 0 in every packed row (inputs and weights).
 *   signs:  bit = 1 for +1 (x >= 0), 0 for -1.
 *   planes: an integer level l in {0, ..., 2^P - 1} as P bit-planes, plane p holding bit p of l; a packed
 *           activation row is [P, W] words.
 *
 * Products (x, w rows of K values, w in {-1, +1}):
 *   binary:  sum_j x_j w_j = K - 2 popcount(x XOR w)                 (x in {-1, +1}; padding bits agree)
 *   planes:  sum_j l_j w_j = sum_p 2^p (2 popcount(x_p AND w) - popcount(x_p))   (x_p the planes of l)
 * Both are exact integers (int32 outputs).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static inline int64_t popcount_xor(const uint64_t *a, const uint64_t *b, int64_t words) {
    int64_t count = 0;
    for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(a[w] ^ b[w]);
    return count;
}

static inline int64_t popcount_and(const uint64_t *a, const uint64_t *b, int64_t words) {
    int64_t count = 0;
    for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(a[w] & b[w]);
    return count;
}

static inline int64_t popcount_row(const uint64_t *a, int64_t words) {
    int64_t count = 0;
    for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(a[w]);
    return count;
}

/* Pack rows of float32 values: planes == 0 -> sign bits (x >= 0); planes >= 1 -> the bit-planes of the
 * integer levels x (already integers in [0, 2^planes - 1]). x: [rows, k]; out: [rows, max(planes, 1), words]. */
void pack_rows(int64_t rows, int64_t k, int64_t words, int planes, const float *x, uint64_t *out, int threads) {
    int nplanes = planes > 0 ? planes : 1;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t r = 0; r < rows; ++r) {
        const float *row = x + r * k;
        uint64_t *dst = out + r * nplanes * words;
        for (int64_t w = 0; w < words; ++w) {
            int64_t start = w * 64, stop = start + 64 < k ? start + 64 : k;
            if (planes == 0) {
                uint64_t bits = 0;
                for (int64_t j = start; j < stop; ++j) bits |= (uint64_t)(row[j] >= 0.0f) << (j - start);
                dst[w] = bits;
            } else {
                for (int p = 0; p < planes; ++p) {
                    uint64_t bits = 0;
                    for (int64_t j = start; j < stop; ++j) bits |= (uint64_t)(((int64_t)row[j] >> p) & 1) << (j - start);
                    dst[p * words + w] = bits;
                }
            }
        }
    }
    (void)threads;
}

/* out[b, o] = sum_j x[b, j] w[o, j] for x, w in {-1, +1}: x [batch, words], w [n_out, words], out [batch, n_out]. */
void binary_matmul(int64_t batch, int64_t n_out, int64_t words, int64_t k, const uint64_t *x, const uint64_t *w,
                   int32_t *out, int threads) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t o = 0; o < n_out; ++o) {
        const uint64_t *wrow = w + o * words;
        for (int64_t b = 0; b < batch; ++b)
            out[b * n_out + o] = (int32_t)(k - 2 * popcount_xor(x + b * words, wrow, words));
    }
    (void)threads;
}

/* out[b, o] = sum_j l[b, j] w[o, j], l the integer levels given as bit-planes: x [batch, planes, words]. */
int bitplane_matmul(int64_t batch, int64_t n_out, int64_t words, int planes, const uint64_t *x, const uint64_t *w,
                    int32_t *out, int threads) {
    int64_t *ones = malloc((size_t)(batch > 0 ? batch : 1) * sizeof(int64_t));
    if (ones == NULL) return 1;
    for (int64_t b = 0; b < batch; ++b) {  /* sum_p 2^p popcount(x_p): the row's sum of levels */
        int64_t total = 0;
        for (int p = 0; p < planes; ++p) total += popcount_row(x + (b * planes + p) * words, words) << p;
        ones[b] = total;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t o = 0; o < n_out; ++o) {
        const uint64_t *wrow = w + o * words;
        for (int64_t b = 0; b < batch; ++b) {
            int64_t total = 0;
            for (int p = 0; p < planes; ++p) total += popcount_and(x + (b * planes + p) * words, wrow, words) << p;
            out[b * n_out + o] = (int32_t)(2 * total - ones[b]);
        }
    }
    free(ones);
    (void)threads;
    return 0;
}
