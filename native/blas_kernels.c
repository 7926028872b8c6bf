/*
 * Native float32 kernels for the course's wasm backend: convolution (forward, input gradient, filter gradient) and
 * batched matrix products, computed with the system's OpenBLAS directly ON THE WASM HEAP (no copies).
 *
 * Why: tfjs-node (libtensorflow) cannot be installed without internet access, and wasm's 128-bit SIMD kernels run a
 * convolution at ~20 GFLOP/s per core where a native AVX2/AVX-512 sgemm runs at 75-125. Everything else (elementwise
 * ops, reductions, the tape, memory management) stays in tfjs' wasm backend; lib/backend/native-kernels.ts registers
 * these as the wasm backend's Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter / BatchMatMul kernels when this
 * addon is built, and the project's kernel tests compare them with tfjs' cpu backend.
 *
 * Interface (Node-API, so one binary works in the main thread and in worker_threads):
 *   conv2d(heap, p)              y  = conv(x, w)            p: Float64Array, see CONV_* below
 *   conv2dBackpropInput(heap, p) dx = d conv / dx applied to dy
 *   conv2dBackpropFilter(heap, p) dw = d conv / dw applied to dy
 *   matmul(heap, p)              c[b] = op(a[b or 0]) · op(b[b or 0])   (batch broadcasting of a size-1 side)
 *   groupNorm(heap, p)           out = [SiLU](GroupNorm(x)·γ + β);  groupNormGrad(heap, p): dx, dγ, dβ
 *   sum(heap, p)                 out[o, i] = Σ_m x[o, m, i]  (tfjs Sum over a contiguous block of axes)
 *   copyBlocks(heap, p)          one part of a Concat / SplitV along an axis (strided memcpy)
 *   setThreads(n), threads(), config(), corename()
 * heap is the wasm memory's ArrayBuffer; all offsets are byte offsets into it (float32, 4-byte aligned).
 * Layouts are tfjs': x/y/dy NHWC, w [kh, kw, ci, co].
 *
 * Convolutions are im2col + one sgemm per chunk of output pixels (chunks bound the scratch memory, which lives
 * outside the wasm heap); a 1x1, stride-1, unpadded convolution is a plain sgemm on x.
 */
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* OpenBLAS extensions (declared in its cblas.h as well; repeated so that a generic cblas.h also compiles). */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

/* Parameter slots of the conv calls. */
enum {
  CONV_X, CONV_W, CONV_Y, /* byte offsets: input (x or dy for backprop-input), filter (or dw), output (y, dx or dw) */
  CONV_B, CONV_H, CONV_WD, CONV_CI, /* x: batch, height, width, in-channels */
  CONV_HO, CONV_WO, CONV_CO,        /* y: out height, out width, out-channels */
  CONV_KH, CONV_KW, CONV_SH, CONV_SW, CONV_DH, CONV_DW, CONV_PT, CONV_PL, /* filter, strides, dilations, pad top/left */
  CONV_BIAS,                        /* forward only: byte offset of a bias [co] added to y (FusedConv2D), or -1 */
  CONV_NPARAMS
};
/* Parameter slots of matmul. */
enum { MM_A, MM_B, MM_C, MM_BATCH_A, MM_BATCH_B, MM_M, MM_N, MM_K, MM_TA, MM_TB, MM_NPARAMS };

#define SCRATCH_FLOATS (2u << 20) /* 8 MB of im2col scratch per chunk */

typedef struct {
  int64_t b, h, w, ci, ho, wo, co, kh, kw, sh, sw, dh, dw, pt, pl;
  const float *bias; /* forward only; NULL: none */
} Conv;

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, "NATIVE_KERNEL", msg);
  return NULL;
}

/* Reads (heap, params) and checks that every region lies inside the heap. Returns the heap base or NULL (thrown). */
static char *read_args(napi_env env, napi_callback_info info, double *p, size_t want, size_t *heap_len) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    throw_error(env, "expected (heap: ArrayBuffer, params: Float64Array)");
    return NULL;
  }
  void *base = NULL;
  if (napi_get_arraybuffer_info(env, argv[0], &base, heap_len) != napi_ok) {
    throw_error(env, "first argument must be the wasm heap's ArrayBuffer");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok
      || type != napi_float64_array || length != want) {
    throw_error(env, "second argument must be a Float64Array of the call's parameters");
    return NULL;
  }
  memcpy(p, data, want * sizeof(double));
  return (char *)base;
}

static int in_heap(double offset, double floats, size_t heap_len) {
  return offset >= 0 && floats >= 0 && ((int64_t)offset & 3) == 0 && offset + floats * 4 <= (double)heap_len;
}

static int read_conv(napi_env env, napi_callback_info info, Conv *c, float **in, float **filt, float **out,
                     int64_t in_floats_kind) {
  double p[CONV_NPARAMS];
  size_t heap_len = 0;
  char *base = read_args(env, info, p, CONV_NPARAMS, &heap_len);
  if (!base) return 0;
  c->b = (int64_t)p[CONV_B]; c->h = (int64_t)p[CONV_H]; c->w = (int64_t)p[CONV_WD]; c->ci = (int64_t)p[CONV_CI];
  c->ho = (int64_t)p[CONV_HO]; c->wo = (int64_t)p[CONV_WO]; c->co = (int64_t)p[CONV_CO];
  c->kh = (int64_t)p[CONV_KH]; c->kw = (int64_t)p[CONV_KW]; c->sh = (int64_t)p[CONV_SH]; c->sw = (int64_t)p[CONV_SW];
  c->dh = (int64_t)p[CONV_DH]; c->dw = (int64_t)p[CONV_DW]; c->pt = (int64_t)p[CONV_PT]; c->pl = (int64_t)p[CONV_PL];
  if (c->b < 1 || c->h < 1 || c->w < 1 || c->ci < 1 || c->ho < 1 || c->wo < 1 || c->co < 1 || c->kh < 1 || c->kw < 1
      || c->sh < 1 || c->sw < 1 || c->dh < 1 || c->dw < 1 || c->pt < 0 || c->pl < 0) {
    throw_error(env, "conv: every size, stride and dilation must be >= 1 and the padding >= 0");
    return 0;
  }
  double xf = (double)c->b * c->h * c->w * c->ci, yf = (double)c->b * c->ho * c->wo * c->co;
  double wf = (double)c->kh * c->kw * c->ci * c->co;
  /* in_floats_kind: 0 forward (in = x, out = y), 1 input gradient (in = dy, out = dx), 2 filter gradient (in = x,
   * filter slot = dy, out = dw). */
  double sizes[3][3] = { { xf, wf, yf }, { yf, wf, xf }, { xf, yf, wf } };
  double *s = sizes[in_floats_kind];
  if (!in_heap(p[CONV_X], s[0], heap_len) || !in_heap(p[CONV_W], s[1], heap_len) || !in_heap(p[CONV_Y], s[2], heap_len)) {
    throw_error(env, "conv: a tensor lies outside the wasm heap (stale heap view or wrong shape)");
    return 0;
  }
  c->bias = NULL;
  if (in_floats_kind == 0 && p[CONV_BIAS] >= 0) {
    if (!in_heap(p[CONV_BIAS], (double)c->co, heap_len)) {
      throw_error(env, "conv: the bias lies outside the wasm heap");
      return 0;
    }
    c->bias = (const float *)(base + (int64_t)p[CONV_BIAS]);
  }
  *in = (float *)(base + (int64_t)p[CONV_X]);
  *filt = (float *)(base + (int64_t)p[CONV_W]);
  *out = (float *)(base + (int64_t)p[CONV_Y]);
  return 1;
}

static int is_pointwise(const Conv *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0
         && c->ho == c->h && c->wo == c->w;
}

/* Rows [r0, r0 + n) of the im2col matrix: row = (b, oy, ox), columns (i, j, c) in the filter's order. */
static void im2col(const Conv *c, const float *x, float *cols, int64_t r0, int64_t n) {
  const int64_t k = c->kh * c->kw * c->ci;
  for (int64_t r = 0; r < n; r++) {
    int64_t row = r0 + r;
    int64_t ox = row % c->wo, oy = (row / c->wo) % c->ho, b = row / (c->wo * c->ho);
    float *dst = cols + r * k;
    for (int64_t i = 0; i < c->kh; i++) {
      int64_t iy = oy * c->sh - c->pt + i * c->dh;
      for (int64_t j = 0; j < c->kw; j++, dst += c->ci) {
        int64_t ix = ox * c->sw - c->pl + j * c->dw;
        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) memset(dst, 0, (size_t)c->ci * sizeof(float));
        else memcpy(dst, x + ((b * c->h + iy) * c->w + ix) * c->ci, (size_t)c->ci * sizeof(float));
      }
    }
  }
}

/* dx += the rows [r0, r0 + n) of an im2col-shaped gradient, scattered back to the pixels they were read from. */
static void col2im_add(const Conv *c, const float *cols, float *dx, int64_t r0, int64_t n) {
  const int64_t k = c->kh * c->kw * c->ci;
  for (int64_t r = 0; r < n; r++) {
    int64_t row = r0 + r;
    int64_t ox = row % c->wo, oy = (row / c->wo) % c->ho, b = row / (c->wo * c->ho);
    const float *src = cols + r * k;
    for (int64_t i = 0; i < c->kh; i++) {
      int64_t iy = oy * c->sh - c->pt + i * c->dh;
      for (int64_t j = 0; j < c->kw; j++, src += c->ci) {
        int64_t ix = ox * c->sw - c->pl + j * c->dw;
        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
        float *d = dx + ((b * c->h + iy) * c->w + ix) * c->ci;
        for (int64_t ch = 0; ch < c->ci; ch++) d[ch] += src[ch];
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ threads
 * Convolutions run their chunks on g_threads threads (this file's own, created per call; OpenBLAS itself runs one
 * thread per call): OpenBLAS' threading gains nothing on the skinny products of a small U-Net (measured: sgemm
 * 50176×288 · 288×32 takes 12.5 ms on 1 thread and 11.8 on 2), whereas independent chunks scale. */
static int g_threads = 1;

typedef struct {
  void (*fn)(void *ctx, int64_t chunk, int worker);
  void *ctx;
  int64_t n_chunks;
  atomic_llong next;
} ParallelFor;

typedef struct { ParallelFor *pf; int worker; } WorkerArg;

static void *parallel_worker(void *arg) {
  WorkerArg *w = (WorkerArg *)arg;
  for (;;) {
    int64_t c = atomic_fetch_add(&w->pf->next, 1);
    if (c >= w->pf->n_chunks) break;
    w->pf->fn(w->pf->ctx, c, w->worker);
  }
  return NULL;
}

/* Runs fn(ctx, chunk, worker) for every chunk on up to `workers` threads (the caller's included); worker ids are
 * < workers. Falls back to the calling thread alone if a thread cannot be created. */
static void parallel_for(int workers, int64_t n_chunks, void (*fn)(void *, int64_t, int), void *ctx) {
  ParallelFor pf = { fn, ctx, n_chunks, 0 };
  if (workers > n_chunks) workers = (int)n_chunks;
  pthread_t tids[64];
  WorkerArg args[64];
  int started = 0;
  for (int t = 1; t < workers && t < 64; t++) {
    args[t].pf = &pf;
    args[t].worker = t;
    if (pthread_create(&tids[t], NULL, parallel_worker, &args[t]) != 0) break;
    started = t;
  }
  args[0].pf = &pf;
  args[0].worker = 0;
  parallel_worker(&args[0]);
  for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
}

/* ------------------------------------------------------------------------------------------ convolutions
 * Work is split in chunks of whole images, so that the input-gradient chunks scatter into disjoint parts of dx. */
typedef struct {
  Conv c;
  const float *in, *filt;  /* x or dy; w or dy (filter gradient) */
  float *out;              /* y, dx, or the per-worker dw partials */
  int64_t imgs_per_chunk, k;
  float **scratch;         /* one im2col buffer per worker */
  int pointwise;
} ConvJob;

static int64_t images_per_chunk(const Conv *c, int64_t k, int workers) {
  int64_t per_img = c->ho * c->wo;
  int64_t n = (int64_t)SCRATCH_FLOATS / (k * per_img); /* images whose im2col fits the scratch budget */
  if (n < 1) n = 1;
  int64_t fair = (c->b + workers - 1) / workers;      /* at least one chunk per worker */
  return n < fair ? n : fair;
}

/* The images [b0, b0 + nb) of a chunk, i.e. the output-pixel rows [r0, r0 + n). */
typedef struct { int64_t b0, nb, r0, n; } Chunk;

static Chunk chunk_at(const ConvJob *j, int64_t chunk) {
  Chunk ch;
  int64_t per_img = j->c.ho * j->c.wo;
  ch.b0 = chunk * j->imgs_per_chunk;
  ch.nb = j->c.b - ch.b0 < j->imgs_per_chunk ? j->c.b - ch.b0 : j->imgs_per_chunk;
  ch.r0 = ch.b0 * per_img;
  ch.n = ch.nb * per_img;
  return ch;
}

/* The chunk's im2col matrix [n, k] (x itself for a pointwise convolution). */
static const float *chunk_cols(const ConvJob *j, const Chunk *ch, int worker) {
  if (j->pointwise) return j->in + ch->r0 * j->k;
  im2col(&j->c, j->in, j->scratch[worker], ch->r0, ch->n);
  return j->scratch[worker];
}

static void conv_forward_chunk(void *ctx, int64_t chunk, int worker) {
  const ConvJob *j = (const ConvJob *)ctx;
  const Chunk ch = chunk_at(j, chunk);
  const int co = (int)j->c.co;
  float *y = j->out + ch.r0 * co;
  if (j->c.bias) { /* y = bias, then y += cols · w: the bias add costs no extra pass over y */
    for (int64_t r = 0; r < ch.n; r++) memcpy(y + r * co, j->c.bias, (size_t)co * sizeof(float));
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ch.n, co, (int)j->k, 1.0f, chunk_cols(j, &ch, worker),
              (int)j->k, j->filt, co, j->c.bias ? 1.0f : 0.0f, y, co);
}

static void conv_input_grad_chunk(void *ctx, int64_t chunk, int worker) {
  const ConvJob *j = (const ConvJob *)ctx;
  const Conv *c = &j->c;
  const Chunk ch = chunk_at(j, chunk);
  const int co = (int)c->co;
  /* dcols [n, k] = dy rows [n, co] · w^T [co, k]; pointwise: that is dx itself, else scattered back into this
   * chunk's own images of dx */
  float *dcols = j->pointwise ? j->out + ch.r0 * j->k : j->scratch[worker];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ch.n, (int)j->k, co, 1.0f, j->in + ch.r0 * co, co,
              j->filt, co, 0.0f, dcols, (int)j->k);
  if (j->pointwise) return;
  memset(j->out + ch.b0 * c->h * c->w * c->ci, 0, (size_t)(ch.nb * c->h * c->w * c->ci) * sizeof(float));
  col2im_add(c, dcols, j->out, ch.r0, ch.n);
}

static void conv_filter_grad_chunk(void *ctx, int64_t chunk, int worker) {
  const ConvJob *j = (const ConvJob *)ctx;
  const Chunk ch = chunk_at(j, chunk);
  const int co = (int)j->c.co;
  /* this worker's partial dw [k, co] += cols^T [k, n] · dy rows [n, co] (partials start at zero) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)j->k, co, (int)ch.n, 1.0f, chunk_cols(j, &ch, worker),
              (int)j->k, j->filt + ch.r0 * co, co, 1.0f, j->out + (int64_t)worker * j->k * co, co);
}

/* kind: 0 forward, 1 input gradient, 2 filter gradient. Returns 0 (and has thrown) when memory ran out. */
static int run_conv(napi_env env, Conv *c, const float *in, const float *filt, float *out, int kind) {
  const int64_t k = c->kh * c->kw * c->ci;
  int workers = g_threads;
  ConvJob j = { *c, in, filt, out, 0, k, NULL, is_pointwise(c) };
  j.imgs_per_chunk = images_per_chunk(c, k, workers);
  int64_t n_chunks = (c->b + j.imgs_per_chunk - 1) / j.imgs_per_chunk;
  if (workers > n_chunks) workers = (int)n_chunks;
  float *scratch[64] = { 0 };
  j.scratch = scratch;
  float *partials = NULL;
  int ok = 1;
  if (!j.pointwise) {
    for (int t = 0; t < workers && ok; t++) {
      scratch[t] = malloc((size_t)(j.imgs_per_chunk * c->ho * c->wo * k) * sizeof(float));
      ok = scratch[t] != NULL;
    }
  }
  if (ok && kind == 2) {
    partials = calloc((size_t)(workers * k * c->co), sizeof(float));
    ok = partials != NULL;
    j.out = partials;
  }
  if (ok) {
    void (*fn)(void *, int64_t, int) = kind == 0 ? conv_forward_chunk : kind == 1 ? conv_input_grad_chunk
                                                                                 : conv_filter_grad_chunk;
    parallel_for(workers, n_chunks, fn, &j);
    if (kind == 2) {
      memcpy(out, partials, (size_t)(k * c->co) * sizeof(float));
      for (int t = 1; t < workers; t++) {
        const float *part = partials + (int64_t)t * k * c->co;
        for (int64_t i = 0; i < k * c->co; i++) out[i] += part[i];
      }
    }
  }
  for (int t = 0; t < 64; t++) free(scratch[t]);
  free(partials);
  if (!ok) throw_error(env, "conv: out of memory for the im2col scratch");
  return ok;
}

/* kind 0: y = conv(x, w); 1: dx from (dy, w); 2: dw from (x, dy) — the (in, filter slot, out) of read_conv. */
static napi_value conv_entry(napi_env env, napi_callback_info info, int kind) {
  Conv c;
  float *in, *filt, *out;
  if (read_conv(env, info, &c, &in, &filt, &out, kind)) run_conv(env, &c, in, filt, out, kind);
  return NULL;
}

static napi_value conv2d(napi_env env, napi_callback_info info) { return conv_entry(env, info, 0); }
static napi_value conv2d_backprop_input(napi_env env, napi_callback_info info) { return conv_entry(env, info, 1); }
static napi_value conv2d_backprop_filter(napi_env env, napi_callback_info info) { return conv_entry(env, info, 2); }

static napi_value matmul(napi_env env, napi_callback_info info) {
  double p[MM_NPARAMS];
  size_t heap_len = 0;
  char *base = read_args(env, info, p, MM_NPARAMS, &heap_len);
  if (!base) return NULL;
  int64_t ba = (int64_t)p[MM_BATCH_A], bb = (int64_t)p[MM_BATCH_B];
  int64_t m = (int64_t)p[MM_M], n = (int64_t)p[MM_N], k = (int64_t)p[MM_K];
  int ta = p[MM_TA] != 0, tb = p[MM_TB] != 0;
  if (m < 1 || n < 1 || k < 1 || ba < 1 || bb < 1 || (ba != bb && ba != 1 && bb != 1)) {
    return throw_error(env, "matmul: sizes must be >= 1 and the batch sizes equal or one of them 1");
  }
  int64_t batch = ba > bb ? ba : bb;
  if (!in_heap(p[MM_A], (double)ba * m * k, heap_len) || !in_heap(p[MM_B], (double)bb * k * n, heap_len)
      || !in_heap(p[MM_C], (double)batch * m * n, heap_len)) {
    return throw_error(env, "matmul: a tensor lies outside the wasm heap (stale heap view or wrong shape)");
  }
  const float *a = (const float *)(base + (int64_t)p[MM_A]);
  const float *b = (const float *)(base + (int64_t)p[MM_B]);
  float *out = (float *)(base + (int64_t)p[MM_C]);
  for (int64_t i = 0; i < batch; i++) {
    const float *ai = a + (ba == 1 ? 0 : i * m * k);
    const float *bi = b + (bb == 1 ? 0 : i * k * n);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                1.0f, ai, ta ? (int)m : (int)k, bi, tb ? (int)k : (int)n, 0.0f, out + i * m * n, (int)n);
  }
  return NULL;
}


/* ------------------------------------------------------------------------------------------ group norm (+ SiLU)
 * Group normalization over x [B, P, C] (P = H·W pixels, G groups of C/G channels), then y = x̂·γ + β, optionally
 * out = SiLU(y) = y·σ(y). One fused pass instead of ~12 tfjs ops (moments, broadcasts, their gradients) per call.
 * Statistics in double, two passes (mean, then Σ(x − mean)²), as the composite in lib/nn/layers.ts computes them. */
enum { GN_X, GN_GAMMA, GN_BETA, GN_OUT, GN_DY, GN_DX, GN_DGAMMA, GN_DBETA, GN_B, GN_P, GN_C, GN_G, GN_EPS, GN_SILU,
       GN_NPARAMS };

typedef struct { int64_t b, p, c, g; double eps; int silu; } GroupNorm;

static char *read_gn(napi_env env, napi_callback_info info, double *p, GroupNorm *gn, int backward) {
  size_t heap_len = 0;
  char *base = read_args(env, info, p, GN_NPARAMS, &heap_len);
  if (!base) return NULL;
  gn->b = (int64_t)p[GN_B]; gn->p = (int64_t)p[GN_P]; gn->c = (int64_t)p[GN_C]; gn->g = (int64_t)p[GN_G];
  gn->eps = p[GN_EPS]; gn->silu = p[GN_SILU] != 0;
  if (gn->b < 1 || gn->p < 1 || gn->c < 1 || gn->g < 1 || gn->c % gn->g != 0 || !(gn->eps > 0)) {
    throw_error(env, "groupNorm: sizes must be >= 1, channels divisible by groups and eps > 0");
    return NULL;
  }
  double n = (double)gn->b * gn->p * gn->c;
  int ok = in_heap(p[GN_X], n, heap_len) && in_heap(p[GN_GAMMA], (double)gn->c, heap_len)
           && in_heap(p[GN_BETA], (double)gn->c, heap_len);
  if (backward) {
    ok = ok && in_heap(p[GN_DY], n, heap_len) && in_heap(p[GN_DX], n, heap_len)
         && in_heap(p[GN_DGAMMA], (double)gn->c, heap_len) && in_heap(p[GN_DBETA], (double)gn->c, heap_len);
  } else {
    ok = ok && in_heap(p[GN_OUT], n, heap_len);
  }
  if (!ok) {
    throw_error(env, "groupNorm: a tensor lies outside the wasm heap (stale heap view or wrong shape)");
    return NULL;
  }
  return base;
}

/* e^x in float, written without library calls so that the loops calling it vectorise (libm's expf, and even
 * rintf/fminf in a -fPIC build, stay scalar calls: measured 6.2 ms vs 0.4 ms for SiLU over 1.6 M floats): 2^k · p(r) with k = round(x/ln2), r = x − k·ln2 in [−ln2/2, ln2/2] and p the degree-6 Taylor
 * polynomial; relative error < 2e-7 (checked against exp in double over [−5, 5], and by the group-norm tests). */
static inline float exp_vec(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest: adding 1.5·2^23 drops the fraction */
  float r = x - k * 0.693145752f - k * 1.42860677e-6f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  int32_t bits = ((int32_t)k + 127) << 23; /* 2^k, built in the exponent bits */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* Per-channel copies of its group's mean and 1/sqrt(var + eps), for one sample xb [P, C]. */
static void gn_stats(const GroupNorm *gn, const float *xb, float *mean_c, float *rstd_c, double *acc) {
  const int64_t cg = gn->c / gn->g, C = gn->c;
  const double n = (double)gn->p * cg;
  for (int64_t c = 0; c < C; c++) acc[c] = 0;
  for (int64_t q = 0; q < gn->p; q++) {
    const float *row = xb + q * C;
    for (int64_t c = 0; c < C; c++) acc[c] += row[c];
  }
  for (int64_t g = 0; g < gn->g; g++) {
    double s = 0;
    for (int64_t c = g * cg; c < (g + 1) * cg; c++) s += acc[c];
    for (int64_t c = g * cg; c < (g + 1) * cg; c++) mean_c[c] = (float)(s / n);
  }
  for (int64_t c = 0; c < C; c++) acc[c] = 0;
  for (int64_t q = 0; q < gn->p; q++) {
    const float *row = xb + q * C;
    for (int64_t c = 0; c < C; c++) {
      double d = (double)row[c] - mean_c[c];
      acc[c] += d * d;
    }
  }
  for (int64_t g = 0; g < gn->g; g++) {
    double s = 0;
    for (int64_t c = g * cg; c < (g + 1) * cg; c++) s += acc[c];
    for (int64_t c = g * cg; c < (g + 1) * cg; c++) rstd_c[c] = (float)(1.0 / sqrt(s / n + gn->eps));
  }
}

/* One pixel's row of the forward pass (restrict: distinct arrays, so the loop vectorises). */
static inline void gn_row(int64_t C, int silu, const float *restrict row, const float *restrict scale,
                          const float *restrict shift, float *restrict o) {
  if (silu) {
    for (int64_t c = 0; c < C; c++) { float y = row[c] * scale[c] + shift[c]; o[c] = y / (1.0f + exp_vec(-y)); }
  } else {
    for (int64_t c = 0; c < C; c++) o[c] = row[c] * scale[c] + shift[c];
  }
}

static napi_value group_norm(napi_env env, napi_callback_info info) {
  double p[GN_NPARAMS];
  GroupNorm gn;
  char *base = read_gn(env, info, p, &gn, 0);
  if (!base) return NULL;
  const float *x = (const float *)(base + (int64_t)p[GN_X]);
  const float *gamma = (const float *)(base + (int64_t)p[GN_GAMMA]);
  const float *beta = (const float *)(base + (int64_t)p[GN_BETA]);
  float *out = (float *)(base + (int64_t)p[GN_OUT]);
  const int64_t C = gn.c;
  double *acc = malloc((size_t)C * sizeof(double));
  float *f = malloc((size_t)(4 * C) * sizeof(float));
  if (!acc || !f) { free(acc); free(f); return throw_error(env, "groupNorm: out of memory"); }
  float *mean_c = f, *rstd_c = f + C, *scale = f + 2 * C, *shift = f + 3 * C;
  for (int64_t b = 0; b < gn.b; b++) {
    const float *xb = x + b * gn.p * C;
    float *ob = out + b * gn.p * C;
    gn_stats(&gn, xb, mean_c, rstd_c, acc);
    for (int64_t c = 0; c < C; c++) { /* y = x·a + s with a = γ·rstd, s = β − mean·γ·rstd */
      scale[c] = gamma[c] * rstd_c[c];
      shift[c] = beta[c] - mean_c[c] * scale[c];
    }
    for (int64_t q = 0; q < gn.p; q++) {
      const float *row = xb + q * C;
      float *o = ob + q * C;
      gn_row(C, gn.silu, row, scale, shift, o);
    }
  }
  free(acc);
  free(f);
  return NULL;
}

/* One pixel's row of the backward pass (restrict: every array is distinct, so the loop vectorises). */
static inline void gn_grad_row(int64_t C, int silu, const float *restrict row, const float *restrict drow,
                               const float *restrict mean_c, const float *restrict rstd_c,
                               const float *restrict gamma, const float *restrict beta, float *restrict xh,
                               float *restrict grow, float *restrict pdb, float *restrict pdg,
                               float *restrict accg, float *restrict accgx) {
  for (int64_t c = 0; c < C; c++) {
    float h = (row[c] - mean_c[c]) * rstd_c[c];
    float d = drow[c];
    if (silu) {
      float y = h * gamma[c] + beta[c];
      float s = 1.0f / (1.0f + exp_vec(-y));
      d *= s * (1.0f + y * (1.0f - s));
    }
    xh[c] = h;
    pdb[c] += d;
    pdg[c] += d * h;
    float g = d * gamma[c];
    grow[c] = g;
    accg[c] += g;
    accgx[c] += g * h;
  }
}

/* dx, dγ, dβ of out = [SiLU](x̂·γ + β) given d out. With g = dL/dy·γ per element, per group:
 *   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)),  dγ_c = Σ dL/dy · x̂,  dβ_c = Σ dL/dy. */
static napi_value group_norm_grad(napi_env env, napi_callback_info info) {
  double p[GN_NPARAMS];
  GroupNorm gn;
  char *base = read_gn(env, info, p, &gn, 1);
  if (!base) return NULL;
  const float *x = (const float *)(base + (int64_t)p[GN_X]);
  const float *gamma = (const float *)(base + (int64_t)p[GN_GAMMA]);
  const float *beta = (const float *)(base + (int64_t)p[GN_BETA]);
  const float *dout = (const float *)(base + (int64_t)p[GN_DY]);
  float *dx = (float *)(base + (int64_t)p[GN_DX]);
  float *dgamma = (float *)(base + (int64_t)p[GN_DGAMMA]);
  float *dbeta = (float *)(base + (int64_t)p[GN_DBETA]);
  const int64_t cg = gn.c / gn.g, C = gn.c;
  const double n = (double)gn.p * cg;
  double *dacc = malloc((size_t)(3 * C) * sizeof(double));
  float *f = malloc((size_t)(8 * C) * sizeof(float));
  float *xhat = malloc((size_t)(gn.p * C) * sizeof(float));
  if (!dacc || !f || !xhat) { free(dacc); free(f); free(xhat); return throw_error(env, "groupNormGrad: out of memory"); }
  double *acc = dacc, *dg = dacc + C, *db = dacc + 2 * C;
  float *mean_c = f, *rstd_c = f + C, *accg = f + 2 * C, *accgx = f + 3 * C, *sg = f + 4 * C, *sgx = f + 5 * C;
  float *pdg = f + 6 * C, *pdb = f + 7 * C;
  for (int64_t c = 0; c < C; c++) { dg[c] = 0; db[c] = 0; }
  for (int64_t b = 0; b < gn.b; b++) {
    const float *xb = x + b * gn.p * C, *gb = dout + b * gn.p * C;
    float *dxb = dx + b * gn.p * C; /* holds g = dL/dy·γ until the last pass */
    gn_stats(&gn, xb, mean_c, rstd_c, acc);
    for (int64_t c = 0; c < C; c++) { accg[c] = 0; accgx[c] = 0; pdg[c] = 0; pdb[c] = 0; }
    for (int64_t q = 0; q < gn.p; q++) gn_grad_row(C, gn.silu, xb + q * C, gb + q * C, mean_c, rstd_c, gamma, beta,
                                                   xhat + q * C, dxb + q * C, pdb, pdg, accg, accgx);
    for (int64_t c = 0; c < C; c++) { dg[c] += pdg[c]; db[c] += pdb[c]; }
    for (int64_t g = 0; g < gn.g; g++) {
      double s1 = 0, s2 = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; c++) { s1 += accg[c]; s2 += accgx[c]; }
      for (int64_t c = g * cg; c < (g + 1) * cg; c++) { sg[c] = (float)(s1 / n); sgx[c] = (float)(s2 / n); }
    }
    for (int64_t q = 0; q < gn.p; q++) {
      const float *xh = xhat + q * C;
      float *grow = dxb + q * C;
      for (int64_t c = 0; c < C; c++) grow[c] = rstd_c[c] * (grow[c] - sg[c] - xh[c] * sgx[c]);
    }
  }
  for (int64_t c = 0; c < C; c++) { dgamma[c] = (float)dg[c]; dbeta[c] = (float)db[c]; }
  free(dacc);
  free(f);
  free(xhat);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ sum over an axis block
 * out[o, i] = Σ_m x[o, m, i]: tfjs' Sum over a contiguous block of axes (e.g. a bias gradient sums dy [B, H, W, C]
 * over B, H, W). wasm's Sum transposes the reduced axes to the end first; this reads x once. Double accumulators. */
enum { RS_X, RS_OUT, RS_OUTER, RS_MID, RS_INNER, RS_NPARAMS };

static inline void add_row(int64_t n, const float *restrict row, double *restrict acc) {
  for (int64_t i = 0; i < n; i++) acc[i] += row[i];
}

static napi_value reduce_sum(napi_env env, napi_callback_info info) {
  double p[RS_NPARAMS];
  size_t heap_len = 0;
  char *base = read_args(env, info, p, RS_NPARAMS, &heap_len);
  if (!base) return NULL;
  int64_t outer = (int64_t)p[RS_OUTER], mid = (int64_t)p[RS_MID], inner = (int64_t)p[RS_INNER];
  if (outer < 1 || mid < 1 || inner < 1) return throw_error(env, "sum: outer, reduced and inner sizes must be >= 1");
  if (!in_heap(p[RS_X], (double)outer * mid * inner, heap_len) || !in_heap(p[RS_OUT], (double)outer * inner, heap_len)) {
    return throw_error(env, "sum: a tensor lies outside the wasm heap (stale heap view or wrong shape)");
  }
  const float *x = (const float *)(base + (int64_t)p[RS_X]);
  float *out = (float *)(base + (int64_t)p[RS_OUT]);
  double *acc = malloc((size_t)inner * sizeof(double));
  if (!acc) return throw_error(env, "sum: out of memory");
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) acc[i] = 0;
    if (inner == 1) {
      const float *row = x + o * mid;
      double s = 0;
      for (int64_t m = 0; m < mid; m++) s += row[m];
      acc[0] = s;
    } else {
      for (int64_t m = 0; m < mid; m++) add_row(inner, x + (o * mid + m) * inner, acc);
    }
    for (int64_t i = 0; i < inner; i++) out[o * inner + i] = (float)acc[i];
  }
  free(acc);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ strided block copy
 * dst[o·dst_stride + dst_off + i] = src[o·src_stride + src_off + i] for o < outer, i < n (in floats): one part of a
 * Concat or SplitV along an axis (x viewed as [outer, axis·inner]). wasm's SplitV slices element by element. */
enum { CP_SRC, CP_DST, CP_OUTER, CP_N, CP_SRC_STRIDE, CP_DST_STRIDE, CP_SRC_OFF, CP_DST_OFF, CP_NPARAMS };

static napi_value copy_blocks(napi_env env, napi_callback_info info) {
  double p[CP_NPARAMS];
  size_t heap_len = 0;
  char *base = read_args(env, info, p, CP_NPARAMS, &heap_len);
  if (!base) return NULL;
  int64_t outer = (int64_t)p[CP_OUTER], n = (int64_t)p[CP_N];
  int64_t ss = (int64_t)p[CP_SRC_STRIDE], ds = (int64_t)p[CP_DST_STRIDE];
  int64_t so = (int64_t)p[CP_SRC_OFF], dof = (int64_t)p[CP_DST_OFF];
  if (outer < 1 || n < 1 || so < 0 || dof < 0 || so + n > ss || dof + n > ds) {
    return throw_error(env, "copyBlocks: blocks must be non-empty and lie inside their rows");
  }
  if (!in_heap(p[CP_SRC], (double)outer * ss, heap_len) || !in_heap(p[CP_DST], (double)outer * ds, heap_len)) {
    return throw_error(env, "copyBlocks: a tensor lies outside the wasm heap (stale heap view or wrong shape)");
  }
  const float *src = (const float *)(base + (int64_t)p[CP_SRC]);
  float *dst = (float *)(base + (int64_t)p[CP_DST]);
  for (int64_t o = 0; o < outer; o++) memcpy(dst + o * ds + dof, src + o * ss + so, (size_t)n * sizeof(float));
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1
      || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    return throw_error(env, "setThreads(n): n must be an integer >= 1");
  }
  g_threads = n > 64 ? 64 : n;
  openblas_set_num_threads(1); /* parallelism comes from this file's chunks, not from inside each sgemm */
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, g_threads, &v);
  return v;
}

static napi_value js_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s ? s : "unknown", NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value get_config(napi_env env, napi_callback_info info) { (void)info; return js_string(env, openblas_get_config()); }
static napi_value get_corename(napi_env env, napi_callback_info info) { (void)info; return js_string(env, openblas_get_corename()); }

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "conv2d", conv2d },
    { "conv2dBackpropInput", conv2d_backprop_input },
    { "conv2dBackpropFilter", conv2d_backprop_filter },
    { "matmul", matmul },
    { "groupNorm", group_norm },
    { "groupNormGrad", group_norm_grad },
    { "sum", reduce_sum },
    { "copyBlocks", copy_blocks },
    { "setThreads", set_threads },
    { "threads", get_threads },
    { "config", get_config },
    { "corename", get_corename },
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
