/* Fused NADE forward + backward for Bernoulli outputs, one image at a time per thread.
 *
 * Inputs are already in ordering position: x[b, d] is the d-th value drawn, W[d] the input
 * weights of that position (H floats), V[d] its output weights. The hidden pre-activation
 * a_d = c + sum_{k<d} W[k] x_k is updated in place going forward; the hidden activations of a
 * group of images are kept for the backward pass, which then needs no exp.
 * Gradients are summed over the batch into the caller's buffers; each thread keeps its own copy
 * until the end.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int D, H, relu, first, last;
    const float *x, *W, *c, *V, *b;
    float *nll, *gW, *gc, *gV, *gb;
    int failed;
} job_t;

/* Images handled together by one thread: each weight row is loaded once per group. */
enum { GROUP = 16 };

/* Compiled with -ffast-math, which assumes no infinities: expf must never overflow, or
 * 1 / (1 + inf) comes out as NaN. Beyond +-80 the sigmoid is 0 or 1 to float precision. */
static inline float sigmoid(float z) {
    z = z < -80.f ? -80.f : (z > 80.f ? 80.f : z);
    return 1.f / (1.f + expf(-z));
}

static void *run(void *arg) {
    job_t *j = (job_t *)arg;
    const int D = j->D, H = j->H, relu = j->relu;
    float *a = malloc(sizeof(float) * GROUP * H), *acc = malloc(sizeof(float) * GROUP * H);
    float *logit = malloc(sizeof(float) * GROUP * D);
    /* hidden[d][g][h]: activations of the group, position-major for the backward pass */
    const int backward = j->gW != NULL;
    float *hidden = malloc(sizeof(float) * (size_t)GROUP * (backward ? D : 1) * H);
    if (!a || !acc || !logit || !hidden) {
        j->failed = 1;
        goto done;
    }
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
done:
    free(a); free(acc); free(logit); free(hidden);
    return NULL;
}

/* Returns 0 on success, 1 when memory could not be had. The caller zeroes the gradients;
 * with gW == NULL only the per-image NLL is computed. */
int nade_bernoulli(int B, int D, int H, int relu, int threads, const float *x, const float *W,
                   const float *c, const float *V, const float *b, float *nll, float *gW, float *gc,
                   float *gV, float *gb) {
    enum { MAX_THREADS = 64 };
    if (threads > B) threads = B;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    pthread_t tid[MAX_THREADS];
    job_t jobs[MAX_THREADS];
    const size_t big = (size_t)D * H, per_thread = 2 * big + H + D;
    const int backward = gW != NULL;
    float *scratch = threads > 1 && backward ? calloc((size_t)(threads - 1) * per_thread, sizeof(float)) : NULL;
    if (threads > 1 && backward && !scratch) return 1;
    for (int t = 0; t < threads; t++) {
        job_t *j = &jobs[t];
        *j = (job_t){D, H, relu, (int)((long)B * t / threads), (int)((long)B * (t + 1) / threads),
                     x, W, c, V, b, nll, gW, gc, gV, gb, 0};
        if (t > 0 && backward) {
            float *base = scratch + (size_t)(t - 1) * per_thread;
            j->gW = base; j->gV = base + big; j->gc = base + 2 * big; j->gb = base + 2 * big + H;
        }
    }
    for (int t = 1; t < threads; t++) pthread_create(&tid[t], NULL, run, &jobs[t]);
    run(&jobs[0]);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    int failed = 0;
    for (int t = 0; t < threads; t++) failed |= jobs[t].failed;
    for (int t = 1; t < threads && backward && !failed; t++) {
        const job_t *j = &jobs[t];
        for (size_t i = 0; i < big; i++) { gW[i] += j->gW[i]; gV[i] += j->gV[i]; }
        for (int h = 0; h < H; h++) gc[h] += j->gc[h];
        for (int d = 0; d < D; d++) gb[d] += j->gb[d];
    }
    free(scratch);
    return failed;
}
