/* Fused NADE forward + backward for Bernoulli outputs, one image at a time per thread.
 *
 * Inputs are already in ordering position: x[b, d] is the d-th value drawn, W[d] the input
 * weights of that position (H floats), V[d] its output weights. The hidden pre-activation
 * a_d = c + sum_{k<d} W[k] x_k is updated in place going forward; the hidden activations of a
 * group of images are kept for the backward pass, which then needs no exp.
 * Gradients are summed over the batch into the caller's buffers; each thread but the first keeps
 * its own copy until the end. All scratch memory is the caller's workspace, reused from call to
 * call: fresh allocations of this size come from mmap, and faulting in their pages on every
 * training step cost a sixth of the kernel's time at batch 100.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int D, H, relu, first, last;
    const float *x, *W, *c, *V, *b;
    float *nll, *gW, *gc, *gV, *gb;
    float *scratch; /* per_thread_floats(D, H, backward) floats */
} job_t;

/* Images handled together by one thread: each weight row is loaded once per group. */
enum { GROUP = 16 };

/* exp(z) as 2^n * 2^f with n = round(z log2 e) and |f| <= 1/2, 2^f by a degree-6 polynomial
 * (least-squares fit on Chebyshev nodes, relative error 2e-9 before float rounding). Inline,
 * so the compiler vectorizes the sigmoid loops without calling libm: these loops are most of
 * the kernel's time. The argument is clamped so that 2^n stays a normal float (no infinities,
 * which -ffast-math assumes away); beyond +-80 the sigmoid is 0 or 1 to float precision. */
static inline float exp_clamped(float z) {
    z = z < -80.f ? -80.f : (z > 80.f ? 80.f : z);
    const float t = z * 1.44269504f, n = __builtin_roundf(t), f = t - n;
    float p = 1.53375770e-4f;
    p = p * f + 1.33998604e-3f;
    p = p * f + 9.61851953e-3f;
    p = p * f + 5.55032900e-2f;
    p = p * f + 2.40226466e-1f;
    p = p * f + 6.93147206e-1f;
    p = p * f + 1.f;
    int32_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (int32_t)n << 23;
    memcpy(&p, &bits, sizeof p);
    return p;
}

static inline float sigmoid(float z) { return 1.f / (1.f + exp_clamped(-z)); }

static size_t per_thread_floats(int D, int H, int backward) {
    return (size_t)GROUP * (2 * H + D) + (size_t)GROUP * (backward ? D : 1) * H;
}

static size_t gradient_floats(int D, int H) { return 2 * (size_t)D * H + H + D; }

static void run(job_t *j) {
    const int D = j->D, H = j->H, relu = j->relu;
    const int backward = j->gW != NULL;
    float *a = j->scratch, *acc = a + (size_t)GROUP * H, *logit = acc + (size_t)GROUP * H;
    /* hidden[d][g][h]: activations of the group, position-major for the backward pass */
    float *hidden = logit + (size_t)GROUP * D;
    for (int n0 = j->first; n0 < j->last; n0 += GROUP) {
        const int G = j->last - n0 < GROUP ? j->last - n0 : GROUP;
        const float *x = j->x + (size_t)n0 * D; /* x[g * D + d] */
        double loss[GROUP] = {0};
        for (int g = 0; g < G; g++) memcpy(a + (size_t)g * H, j->c, sizeof(float) * H);
        for (int d = 0; d < D; d++) {
            const float *v = j->V + (size_t)d * H, *w = j->W + (size_t)d * H;
            for (int g = 0; g < G; g++) {
                float *ag = a + (size_t)g * H;
                float *hd = hidden + ((backward ? (size_t)d * GROUP : 0) + g) * H;
                float s = 0.f;
                if (relu) {
                    for (int h = 0; h < H; h++) { hd[h] = ag[h] > 0.f ? ag[h] : 0.f; s += v[h] * hd[h]; }
                } else {
                    for (int h = 0; h < H; h++) { hd[h] = sigmoid(ag[h]); s += v[h] * hd[h]; }
                }
                const float l = s + j->b[d], xd = x[(size_t)g * D + d];
                logit[(size_t)g * D + d] = l;
                /* softplus(l) - x l, stable for either sign of l */
                loss[g] += (l > 0.f ? l + log1pf(expf(-l)) : log1pf(expf(l))) - xd * l;
                if (xd != 0.f)
                    for (int h = 0; h < H; h++) ag[h] += w[h] * xd;
            }
        }
        for (int g = 0; g < G; g++) j->nll[n0 + g] = (float)loss[g];
        if (!backward) continue;
        memset(acc, 0, sizeof(float) * GROUP * H); /* per image: sum of dL/da_k over k > d */
        for (int d = D - 1; d >= 0; d--) {
            const float *v = j->V + (size_t)d * H;
            float *gv = j->gV + (size_t)d * H, *gw = j->gW + (size_t)d * H;
            for (int g = 0; g < G; g++) {
                const float xd = x[(size_t)g * D + d];
                const float *hd = hidden + ((size_t)d * GROUP + g) * H;
                float *accg = acc + (size_t)g * H;
                if (xd != 0.f)
                    for (int h = 0; h < H; h++) gw[h] += xd * accg[h];
                const float grad = sigmoid(logit[(size_t)g * D + d]) - xd;
                j->gb[d] += grad;
                if (relu) {
                    for (int h = 0; h < H; h++) {
                        gv[h] += grad * hd[h];
                        accg[h] += hd[h] > 0.f ? grad * v[h] : 0.f;
                    }
                } else {
                    for (int h = 0; h < H; h++) {
                        gv[h] += grad * hd[h];
                        accg[h] += grad * v[h] * hd[h] * (1.f - hd[h]);
                    }
                }
            }
        }
        for (int g = 0; g < G; g++)
            for (int h = 0; h < H; h++) j->gc[h] += acc[(size_t)g * H + h];
    }
}

enum { MAX_THREADS = 64 };

static int clamp_threads(int threads, int B) {
    if (threads > B) threads = B;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    return threads < 1 ? 1 : threads;
}

/* Floats of workspace that nade_bernoulli needs for these sizes. */
size_t nade_workspace_floats(int B, int D, int H, int threads, int backward) {
    threads = clamp_threads(threads, B);
    return threads * per_thread_floats(D, H, backward)
           + (backward ? (size_t)(threads - 1) * gradient_floats(D, H) : 0);
}

/* The caller zeroes the gradients and passes nade_workspace_floats(...) floats of workspace;
 * with gW == NULL only the per-image NLL is computed. */
void nade_bernoulli(int B, int D, int H, int relu, int threads, const float *x, const float *W,
                    const float *c, const float *V, const float *b, float *nll, float *gW,
                    float *gc, float *gV, float *gb, float *workspace) {
    threads = clamp_threads(threads, B);
    job_t jobs[MAX_THREADS];
    const int backward = gW != NULL;
    const size_t big = (size_t)D * H, own = per_thread_floats(D, H, backward);
    float *gradients = workspace + threads * own; /* laid out gW, gV, gc, gb per thread */
    for (int t = 0; t < threads; t++) {
        job_t *j = &jobs[t];
        *j = (job_t){D, H, relu, (int)((long)B * t / threads), (int)((long)B * (t + 1) / threads),
                     x, W, c, V, b, nll, gW, gc, gV, gb, workspace + t * own};
        if (t > 0 && backward) {
            float *base = gradients + (t - 1) * gradient_floats(D, H);
            j->gW = base; j->gV = base + big; j->gc = base + 2 * big; j->gb = base + 2 * big + H;
        }
    }
    /* OpenMP rather than threads of our own: in a torch process this is torch's own runtime,
     * whose workers spin for milliseconds after each parallel torch op (the optimizer step just
     * before), and a second set of threads would be fighting them for the cores. */
#pragma omp parallel num_threads(threads)
    for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) {
        if (t > 0 && backward) memset(jobs[t].gW, 0, sizeof(float) * gradient_floats(D, H));
        run(&jobs[t]);
    }
    for (int t = 1; t < threads && backward; t++) {
        const job_t *j = &jobs[t];
        for (size_t i = 0; i < big; i++) { gW[i] += j->gW[i]; gV[i] += j->gV[i]; }
        for (int h = 0; h < H; h++) gc[h] += j->gc[h];
        for (int d = 0; d < D; d++) gb[d] += j->gb[d];
    }
}
