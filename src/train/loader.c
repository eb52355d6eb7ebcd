/* Training batch loader (loader.h). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "train/augment.h"
#include "train/loader.h"

// --- one image ---------------------------------------------------------------------------------

/* Resize scratch of one worker (hy__aligned_alloc), grown when an image needs more than create
 * sized from the dataset's header sizes (a header that disagrees with its pixels). */
typedef struct rscratch {
    void *p;
    size_t n;
} rscratch;

static hy_status resize_linear(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, rscratch *rs) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh * 3);
        return HY_OK;
    }
    const size_t need = hy__resize_scratch_size(sw, sh, dw, dh);
    if (need > rs->n) {
        void *p = hy__aligned_alloc(64, need);
        if (!p) return hy__error(HY_ERR_NOMEM, "out of memory (resize scratch)");
        hy__aligned_free(rs->p);
        rs->p = p, rs->n = need;
    }
    hy__resize_linear_u8(src, sw, sh, (size_t)sw * 3, dst, dw, dh, (size_t)dw * 3, rs->p);
    return HY_OK;
}

/* hy__train_letterbox with the caller's buffers: unpad (s, s, 3) for the resized image. */
static hy_status letterbox_into(const hy_image *img, int s, const hy__val_label *labels, int n, uint8_t *dst,
                                float *rows, uint8_t *unpad, rscratch *rs) {
    const int w1 = img->width, h1 = img->height;
    const uint8_t *src = img->data;
    // LetterBox(new_shape=(s, s), auto=False, scaleup=True) straight from the decoded image
    const hy__letterbox lb = hy__letterbox_plan_ex(w1, h1, s, s, 0, 1, 32);
    HY_ASSERT(lb.out_w == s && lb.out_h == s && lb.unpad_w <= s && lb.unpad_h <= s);
    if (lb.unpad_w != w1 || lb.unpad_h != h1) {
        hy_status st = resize_linear(src, w1, h1, unpad, lb.unpad_w, lb.unpad_h, rs);
        if (st) return st;
        src = unpad;
    }
    memset(dst, 114, (size_t)s * (size_t)s * 3);
    for (int y = 0; y < lb.unpad_h; y++)
        memcpy(dst + ((size_t)(y + lb.top) * (size_t)s + (size_t)lb.left) * 3, src + (size_t)y * lb.unpad_w * 3,
               (size_t)lb.unpad_w * 3);
    // labels, float32 as numpy: xywh -> xyxy, denormalize(w1, h1), scale(r, r), add_padding,
    // normalise by (s, s), xyxy -> xywh
    const float rw = (float)lb.unpad_w / (float)w1, rh = (float)lb.unpad_h / (float)h1;
    for (int k = 0; k < n; k++) {
        const hy__val_label *L = &labels[k];
        float x1 = L->x - L->w / 2, y1 = L->y - L->h / 2, x2 = L->x + L->w / 2, y2 = L->y + L->h / 2;
        x1 = x1 * (float)w1 * rw + (float)lb.left;
        x2 = x2 * (float)w1 * rw + (float)lb.left;
        y1 = y1 * (float)h1 * rh + (float)lb.top;
        y2 = y2 * (float)h1 * rh + (float)lb.top;
        x1 /= (float)s, x2 /= (float)s, y1 /= (float)s, y2 /= (float)s;
        float *o = rows + 5 * (size_t)k;
        o[0] = (float)L->cls;
        o[1] = (x1 + x2) / 2;
        o[2] = (y1 + y2) / 2;
        o[3] = x2 - x1;
        o[4] = y2 - y1;
    }
    return HY_OK;
}

hy_status hy__train_letterbox(const hy_image *img, int imgsz, const hy__val_label *labels, int n, uint8_t *dst,
                              float *rows) {
    rscratch rs = {0};
    uint8_t *unpad = hy__malloc((size_t)imgsz * (size_t)imgsz * 3);
    if (!unpad) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy_status st = letterbox_into(img, imgsz, labels, n, dst, rows, unpad, &rs);
    hy__aligned_free(rs.p);
    hy__free(unpad);
    return st;
}

void hy__train_to_input(const uint8_t *src, int s, int flip, float *x) {
    const size_t plane = (size_t)s * (size_t)s;
    for (int y = 0; y < s; y++) {
        const uint8_t *row = src + (size_t)y * (size_t)s * 3;
        float *r0 = x + (size_t)y * (size_t)s, *r1 = r0 + plane, *r2 = r1 + plane;
        for (int i = 0; i < s; i++) {
            const uint8_t *p = row + 3 * (size_t)(flip ? s - 1 - i : i);
            r0[i] = (float)p[0] / 255.0f;
            r1[i] = (float)p[1] / 255.0f;
            r2[i] = (float)p[2] / 255.0f;
        }
    }
}

/* load_image's size: long side to s, the other min(ceil(side * r), s) (loader.h). */
static void load_size(int w0, int h0, int s, int *w, int *h) {
    const double r = (double)s / (double)HY_MAX(w0, h0);
    if (r == 1) {
        *w = w0, *h = h0;
        return;
    }
    *w = (int)HY_MIN(ceil(w0 * r), (double)s);
    *h = (int)HY_MIN(ceil(h0 * r), (double)s);
    *w = HY_MAX(*w, 1), *h = HY_MAX(*h, 1);
}

// --- loader ------------------------------------------------------------------------------------

typedef struct titem {
    uint8_t *img; /* cached pixels, NULL when not cached: augment 0 the (s, s, 3) letterbox,
                     augment 1 the (h, w, 3) load_image output; immutable once set */
    int w, h;
    float *rows; /* (n_labels, 5) mapped labels of the cached letterbox (augment 0) */
    int busy;    /* a worker is filling this item's cache entry */
} titem;

/* One worker's scratch, sized by create. */
typedef struct wscratch {
    uint8_t *tile[4];    /* (s, s, 3) each: images not cached (mosaic's 4) */
    uint8_t *unpad;      /* (s, s, 3) resize before the letterbox (augment 0) */
    uint8_t *canvas;     /* (2s, 2s, 3) mosaic canvas / (s, s, 3) letterbox (augment 1) */
    uint8_t *out;        /* (s, s, 3) warped image */
    hy__aug_box *boxes;  /* (4 * most labels of one image) */
    float *rows;         /* (most labels, 5) augment 0 */
    rscratch rs;
} wscratch;

struct hy__tloader {
    const hy__val_dataset *ds;
    hy__tloader_params p;
    int max_img_labels, max_labels;
    // cache (cache_mu)
    titem *items;
    size_t cached;
    pthread_mutex_t cache_mu;
    // epoch plan, written by start only while no batch is in flight
    size_t *order; /* (n) */
    unsigned char *flip;
    int plan_epoch;
    // staging: (batch, max_labels, 6) rows and (batch) counts, compacted by wait
    float *stage;
    int *stage_n;
    // threads
    int nth;
    wscratch *ws;
    pthread_t *th;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done;
    uint64_t gen;
    int pending, quit, running, sync_ok;
    atomic_int next_j;
    // current job
    int job_epoch, job_b, job_n;
    float *job_x, *job_t;
    int err_j;         /* lowest image index that failed (job_n: none) */
    hy_status job_st;
    char job_err[512];
};

/* splitmix64: a small, well-mixed stream (seeded per epoch). */
static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double sm64_unit(uint64_t *s) { return (double)(sm64(s) >> 11) * (1.0 / 9007199254740992.0); }

hy__tloader_params hy__tloader_default_params(void) {
    return (hy__tloader_params){.imgsz = 640,
                                .batch = 16,
                                .fliplr = 0.5,
                                .seed = 0,
                                .cache_bytes = (size_t)2 << 30,
                                .augment = 1,
                                .hsv_h = 0.015,
                                .hsv_s = 0.7,
                                .hsv_v = 0.4,
                                .degrees = 0.0,
                                .translate = 0.1,
                                .scale = 0.5,
                                .shear = 0.0,
                                .perspective = 0.0,
                                .flipud = 0.0,
                                .mosaic = 1.0,
                                .close_mosaic = 10,
                                .epochs = 100,
                                .workers = 2};
}

void hy__tloader_epoch_plan(const hy__tloader *l, int epoch, size_t *order, unsigned char *flip) {
    const size_t n = l->ds->n;
    uint64_t s = l->p.seed * 0x2545F4914F6CDD1Dull + (uint64_t)epoch * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n; i > 1; i--) { // Fisher-Yates
        const size_t j = (size_t)(sm64(&s) % i);
        const size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < n; i++) flip[i] = (unsigned char)(l->p.fliplr > 0 && sm64_unit(&s) < l->p.fliplr);
}

int hy__tloader_num_batches(const hy__tloader *l) { return (int)((l->ds->n + (size_t)l->p.batch - 1) / (size_t)l->p.batch); }
int hy__tloader_batch_size(const hy__tloader *l, int b) {
    const size_t i0 = (size_t)b * (size_t)l->p.batch;
    return b < 0 || i0 >= l->ds->n ? 0 : (int)HY_MIN((size_t)l->p.batch, l->ds->n - i0);
}
int hy__tloader_max_labels(const hy__tloader *l) { return l->max_labels; }
size_t hy__tloader_cache_bytes(const hy__tloader *l) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&l->cache_mu;
    pthread_mutex_lock(mu);
    const size_t n = l->cached;
    pthread_mutex_unlock(mu);
    return n;
}

// --- decoding and the cache --------------------------------------------------------------------

/* Claims item i's cache entry for `bytes` when it is free and fits: returns the buffer to fill
 * (then publish), or NULL (decode into scratch). */
static uint8_t *cache_claim(hy__tloader *l, size_t i, size_t bytes) {
    titem *t = &l->items[i];
    int claim = 0;
    pthread_mutex_lock(&l->cache_mu);
    if (!t->img && !t->busy && l->cached + bytes <= l->p.cache_bytes) {
        t->busy = 1;
        l->cached += bytes;
        claim = 1;
    }
    pthread_mutex_unlock(&l->cache_mu);
    if (!claim) return NULL;
    uint8_t *c = hy__malloc(bytes);
    if (!c) { // out of memory for the cache: decode every time instead
        pthread_mutex_lock(&l->cache_mu);
        t->busy = 0;
        l->cached -= bytes;
        pthread_mutex_unlock(&l->cache_mu);
    }
    return c;
}

static void cache_publish(hy__tloader *l, size_t i, uint8_t *c, int w, int h, size_t bytes, int ok) {
    titem *t = &l->items[i];
    pthread_mutex_lock(&l->cache_mu);
    t->busy = 0;
    if (ok) {
        t->img = c, t->w = w, t->h = h;
    } else {
        l->cached -= bytes;
    }
    pthread_mutex_unlock(&l->cache_mu);
    if (!ok) hy__free(c);
}

static const uint8_t *cache_get(hy__tloader *l, size_t i, int *w, int *h) {
    titem *t = &l->items[i];
    pthread_mutex_lock(&l->cache_mu);
    const uint8_t *px = t->img;
    *w = t->w, *h = t->h;
    pthread_mutex_unlock(&l->cache_mu);
    return px;
}

/* augment 0: the letterbox of item i (cached or in ws->tile[0]) and its rows (n_labels, 5). */
static hy_status item_letterbox(hy__tloader *l, wscratch *ws, size_t i, const uint8_t **px, const float **rows) {
    int w, h;
    if ((*px = cache_get(l, i, &w, &h))) {
        *rows = l->items[i].rows;
        return HY_OK;
    }
    const hy__val_item *it = &l->ds->items[i];
    const int s = l->p.imgsz;
    const size_t bytes = (size_t)s * (size_t)s * 3;
    uint8_t *c = cache_claim(l, i, bytes);
    uint8_t *dst = c ? c : ws->tile[0];
    float *r = c ? l->items[i].rows : ws->rows; // the item's rows are written only by its claimer
    hy_image *img = NULL;
    hy_status st = hy_image_load(it->im_file, &img);
    if (!st) st = letterbox_into(img, s, it->labels, it->n_labels, dst, r, ws->unpad, &ws->rs);
    hy_image_free(img);
    if (c) cache_publish(l, i, c, s, s, bytes, st == HY_OK);
    if (st) return st;
    *px = dst, *rows = r;
    return HY_OK;
}

/* augment 1: load_image of item i (cached, or in ws->tile[slot]): (h, w, 3). */
static hy_status item_load(hy__tloader *l, wscratch *ws, size_t i, int slot, const uint8_t **px, int *w, int *h) {
    if ((*px = cache_get(l, i, w, h))) return HY_OK;
    const hy__val_item *it = &l->ds->items[i];
    const int s = l->p.imgsz;
    hy_image *img = NULL;
    hy_status st = hy_image_load(it->im_file, &img);
    if (st) return st;
    int nw, nh;
    load_size(img->width, img->height, s, &nw, &nh);
    const size_t bytes = (size_t)nw * (size_t)nh * 3;
    uint8_t *c = cache_claim(l, i, bytes);
    uint8_t *dst = c ? c : ws->tile[slot];
    st = resize_linear(img->data, img->width, img->height, dst, nw, nh, &ws->rs);
    hy_image_free(img);
    if (c) cache_publish(l, i, c, nw, nh, bytes, st == HY_OK);
    if (st) return st;
    *px = dst, *w = nw, *h = nh;
    return HY_OK;
}

// --- one served image --------------------------------------------------------------------------

/* Whether epoch e has mosaic: Ultralytics' trainer closes it at e == epochs - close_mosaic. */
static int mosaic_open(const hy__tloader_params *p, int e) {
    if (p->mosaic <= 0) return 0;
    return !(p->close_mosaic > 0 && p->epochs - p->close_mosaic >= 0 && e >= p->epochs - p->close_mosaic);
}

/* Label n of item i as pixel xyxy on an image (w, h) shifted by (padw, padh), float32 as
 * Instances: xywh -> xyxy, denormalize, add_padding. */
static hy__aug_box label_box(const hy__val_label *L, int w, int h, int padw, int padh) {
    hy__aug_box b = {L->x - L->w / 2, L->y - L->h / 2, L->x + L->w / 2, L->y + L->h / 2, L->cls};
    b.x1 = b.x1 * (float)w + (float)padw, b.x2 = b.x2 * (float)w + (float)padw;
    b.y1 = b.y1 * (float)h + (float)padh, b.y2 = b.y2 * (float)h + (float)padh;
    return b;
}

/* Builds the pre-warp image of position pos (mosaic canvas or letterbox) in ws->canvas and its
 * boxes in ws->boxes; *in_s its side, *border the RandomPerspective border. */
static hy_status compose(hy__tloader *l, wscratch *ws, int epoch, size_t pos, hy__aug_rng *rng, int *in_s, int *nb,
                         int *border) {
    const hy__tloader_params *p = &l->p;
    const int s = p->imgsz;
    const size_t i = l->order[pos];
    const double u = hy__aug_unit(rng); // drawn always: the stream's layout does not depend on e
    int n = 0;
    if (mosaic_open(p, epoch) && u < p->mosaic) {
        size_t idx[4] = {i, 0, 0, 0};
        for (int k = 1; k < 4; k++) idx[k] = (size_t)(hy__aug_next(rng) % l->ds->n);
        const int yc = (int)hy__aug_uniform(rng, s / 2.0, 1.5 * s), xc = (int)hy__aug_uniform(rng, s / 2.0, 1.5 * s);
        memset(ws->canvas, 114, (size_t)4 * (size_t)s * (size_t)s * 3);
        for (int k = 0; k < 4; k++) {
            const uint8_t *px;
            int w, h;
            hy_status st = item_load(l, ws, idx[k], k, &px, &w, &h);
            if (st) return st;
            const hy__aug_tile t = hy__aug_mosaic_tile(k, s, xc, yc, w, h);
            hy__aug_mosaic_paste(ws->canvas, s, &t, px, w);
            const hy__val_item *it = &l->ds->items[idx[k]];
            for (int q = 0; q < it->n_labels; q++)
                ws->boxes[n++] = label_box(&it->labels[q], w, h, t.x1a - t.x1b, t.y1a - t.y1b);
        }
        // _cat_labels: clip to the canvas, drop zero-area rows
        const float s2 = 2.0f * (float)s;
        int kept = 0;
        for (int q = 0; q < n; q++) {
            hy__aug_box b = ws->boxes[q];
            b.x1 = fminf(fmaxf(b.x1, 0), s2), b.x2 = fminf(fmaxf(b.x2, 0), s2);
            b.y1 = fminf(fmaxf(b.y1, 0), s2), b.y2 = fminf(fmaxf(b.y2, 0), s2);
            if ((b.x2 - b.x1) * (b.y2 - b.y1) > 0) ws->boxes[kept++] = b;
        }
        *nb = kept, *in_s = 2 * s, *border = -s / 2;
        return HY_OK;
    }
    // LetterBox(new_shape=(s, s)) of the load_image output: r = 1, padding only
    const uint8_t *px;
    int w, h;
    hy_status st = item_load(l, ws, i, 0, &px, &w, &h);
    if (st) return st;
    const hy__letterbox lb = hy__letterbox_plan_ex(w, h, s, s, 0, 1, 32);
    HY_ASSERT(lb.unpad_w == w && lb.unpad_h == h && lb.out_w == s && lb.out_h == s);
    memset(ws->canvas, 114, (size_t)s * (size_t)s * 3);
    for (int y = 0; y < h; y++)
        memcpy(ws->canvas + ((size_t)(y + lb.top) * (size_t)s + (size_t)lb.left) * 3, px + (size_t)y * (size_t)w * 3,
               (size_t)w * 3);
    const hy__val_item *it = &l->ds->items[i];
    for (int q = 0; q < it->n_labels; q++) ws->boxes[n++] = label_box(&it->labels[q], w, h, lb.left, lb.top);
    *nb = n, *in_s = s, *border = 0;
    return HY_OK;
}

/* Image at position pos of epoch e into x (3, s, s) and rows (.., 6) with batch index j. */
static hy_status serve_augmented(hy__tloader *l, wscratch *ws, int epoch, size_t pos, int j, float *x, float *rows,
                                 int *n_rows) {
    const hy__tloader_params *p = &l->p;
    const int s = p->imgsz;
    hy__aug_rng rng = hy__aug_rng_key(p->seed, (uint64_t)epoch, pos);
    int in_s, nb, border;
    hy_status st = compose(l, ws, epoch, pos, &rng, &in_s, &nb, &border);
    if (st) return st;
    // RandomPerspective: output (in_s + 2 border) = s
    const hy__aug_affine_params ap = {p->degrees, p->translate, p->scale, p->shear, p->perspective};
    const hy__aug_affine_draw d = hy__aug_affine_sample(&ap, &rng);
    float M[9];
    hy__aug_affine_matrix(&d, in_s, in_s, s, s, M);
    const float I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    if (border != 0 || memcmp(M, I, sizeof M) != 0)
        hy__aug_warp(ws->canvas, in_s, in_s, M, p->perspective != 0, ws->out, s, s);
    else
        memcpy(ws->out, ws->canvas, (size_t)s * (size_t)s * 3);
    nb = hy__aug_boxes_warp(ws->boxes, nb, M, p->perspective != 0, (float)d.scale, s, s);
    // RandomHSV
    if (p->hsv_h != 0 || p->hsv_s != 0 || p->hsv_v != 0) {
        double r[3];
        r[0] = hy__aug_uniform(&rng, -1, 1) * p->hsv_h + 1;
        r[1] = hy__aug_uniform(&rng, -1, 1) * p->hsv_s + 1;
        r[2] = hy__aug_uniform(&rng, -1, 1) * p->hsv_v + 1;
        uint8_t lut[3][256];
        hy__aug_hsv_luts(r, lut);
        hy__aug_hsv_apply(ws->out, (size_t)s * (size_t)s, lut);
    }
    // RandomFlip vertical, then horizontal (the epoch plan's flip)
    if (hy__aug_unit(&rng) < p->flipud) hy__aug_flipud(ws->out, s, s, ws->boxes, nb);
    const int flip = l->flip[pos];
    hy__train_to_input(ws->out, s, flip, x);
    const float fs = (float)s;
    for (int k = 0; k < nb; k++) {
        hy__aug_box b = ws->boxes[k];
        if (flip) {
            const float x1 = b.x1;
            b.x1 = fs - b.x2, b.x2 = fs - x1;
        }
        float *o = rows + 6 * (size_t)k;
        o[0] = (float)j;
        o[1] = (float)b.cls;
        o[2] = (b.x1 + b.x2) / 2 / fs;
        o[3] = (b.y1 + b.y2) / 2 / fs;
        o[4] = (b.x2 - b.x1) / fs;
        o[5] = (b.y2 - b.y1) / fs;
    }
    *n_rows = nb;
    return HY_OK;
}

static hy_status serve_plain(hy__tloader *l, wscratch *ws, size_t pos, int j, float *x, float *rows, int *n_rows) {
    const size_t i = l->order[pos];
    const int flip = l->flip[pos];
    const uint8_t *px;
    const float *r5;
    hy_status st = item_letterbox(l, ws, i, &px, &r5);
    if (st) return st;
    hy__train_to_input(px, l->p.imgsz, flip, x);
    const int n = l->ds->items[i].n_labels;
    for (int k = 0; k < n; k++) {
        float *o = rows + 6 * (size_t)k;
        const float *r = r5 + 5 * (size_t)k;
        o[0] = (float)j;
        o[1] = r[0];
        o[2] = flip ? 1.0f - r[1] : r[1];
        o[3] = r[2];
        o[4] = r[3];
        o[5] = r[4];
    }
    *n_rows = n;
    return HY_OK;
}

// --- worker threads ----------------------------------------------------------------------------

typedef struct wctx {
    hy__tloader *l;
    int id;
} wctx;

static void run_job(hy__tloader *l, wscratch *ws) {
    const size_t s = (size_t)l->p.imgsz, per = 3 * s * s, slot = (size_t)l->max_labels * 6;
    for (;;) {
        const int j = atomic_fetch_add(&l->next_j, 1);
        if (j >= l->job_n) break;
        const size_t pos = (size_t)l->job_b * (size_t)l->p.batch + (size_t)j;
        float *x = l->job_x + per * (size_t)j, *rows = l->stage + slot * (size_t)j;
        hy_status st = l->p.augment ? serve_augmented(l, ws, l->job_epoch, pos, j, x, rows, &l->stage_n[j])
                                    : serve_plain(l, ws, pos, j, x, rows, &l->stage_n[j]);
        if (st) {
            pthread_mutex_lock(&l->mu);
            if (j < l->err_j) { // the lowest failing image reports, whatever the timing
                l->err_j = j;
                l->job_st = st;
                snprintf(l->job_err, sizeof l->job_err, "%s", hy_last_error());
            }
            pthread_mutex_unlock(&l->mu);
        }
    }
}

static void *worker_main(void *arg) {
    wctx *c = arg;
    hy__tloader *l = c->l;
    wscratch *ws = &l->ws[c->id];
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (l->gen == seen && !l->quit) pthread_cond_wait(&l->cv_job, &l->mu);
        if (l->quit) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        seen = l->gen;
        pthread_mutex_unlock(&l->mu);
        run_job(l, ws);
        pthread_mutex_lock(&l->mu);
        if (--l->pending == 0) pthread_cond_signal(&l->cv_done);
        pthread_mutex_unlock(&l->mu);
    }
    hy__free(c);
    return NULL;
}

// --- create / free -----------------------------------------------------------------------------

static int params_ok(const hy__tloader_params *p) {
    const double pr[] = {p->fliplr, p->flipud, p->mosaic};
    for (size_t k = 0; k < HY_ARRAY_LEN(pr); k++)
        if (!(pr[k] >= 0 && pr[k] <= 1)) return 0;
    const double g[] = {p->hsv_h, p->hsv_s, p->hsv_v, p->degrees, p->translate, p->scale, p->shear, p->perspective};
    for (size_t k = 0; k < HY_ARRAY_LEN(g); k++)
        if (!(g[k] >= 0 && g[k] <= 1000)) return 0;
    return p->imgsz >= 32 && p->imgsz <= 8192 && p->batch >= 1 && p->workers >= 0 && p->workers <= 256 &&
           p->close_mosaic >= 0 && p->epochs >= 0 && (p->augment == 0 || p->augment == 1);
}

hy_status hy__tloader_create(const hy__val_dataset *ds, const hy__tloader_params *p, hy__tloader **out) {
    if (!ds || !p || !out || ds->n == 0 || !params_ok(p))
        return hy__error(HY_ERR_INVALID_ARG, "hy__tloader_create: bad argument");
    hy__tloader *l = hy__calloc(1, sizeof *l);
    if (!l) return hy__error(HY_ERR_NOMEM, "out of memory");
    l->ds = ds;
    l->p = *p;
    l->plan_epoch = -1;
    pthread_mutex_init(&l->cache_mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_job, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    const int s = p->imgsz;
    const size_t ss3 = (size_t)s * (size_t)s * 3;
    size_t rs_need = 0;
    if (!(l->items = hy__calloc(ds->n, sizeof *l->items)) || !(l->order = hy__calloc(ds->n, sizeof *l->order)) ||
        !(l->flip = hy__calloc(ds->n, 1)))
        goto nomem;
    for (size_t i = 0; i < ds->n; i++) {
        const hy__val_item *it = &ds->items[i];
        const int nl = it->n_labels;
        if (nl > HY_TRAIN_MAX_LABELS) {
            /* the loss's scratch is batch x (most labels of one image): bounded before it is sized */
            hy__tloader_free(l);
            return hy__error(HY_ERR_FORMAT, "%s: %d labels, more than the %d a training image may have", it->im_file,
                             nl, HY_TRAIN_MAX_LABELS);
        }
        if (nl > l->max_img_labels) l->max_img_labels = nl;
        if (!p->augment && nl > 0 && !(l->items[i].rows = hy__malloc((size_t)nl * 5 * sizeof(float)))) goto nomem;
        // resize scratch from the header size (grown later if the pixels disagree)
        if (it->w > 0 && it->h > 0 && (size_t)it->w * (size_t)it->h <= HY_IMAGE_MAX_PIXELS) {
            int nw, nh;
            if (p->augment) {
                load_size(it->w, it->h, s, &nw, &nh);
            } else {
                const hy__letterbox lb = hy__letterbox_plan_ex(it->w, it->h, s, s, 0, 1, 32);
                nw = lb.unpad_w, nh = lb.unpad_h;
            }
            if (nw != it->w || nh != it->h) rs_need = HY_MAX(rs_need, hy__resize_scratch_size(it->w, it->h, nw, nh));
        }
    }
    const int mosaic = p->augment && p->mosaic > 0;
    l->max_labels = (mosaic ? 4 : 1) * l->max_img_labels;
    const size_t slot = (size_t)HY_MAX(l->max_labels, 1) * 6;
    if (!(l->stage = hy__malloc(slot * (size_t)p->batch * sizeof(float))) ||
        !(l->stage_n = hy__calloc((size_t)p->batch, sizeof(int))))
        goto nomem;
    l->nth = HY_MAX(p->workers, 1);
    if (!(l->ws = hy__calloc((size_t)l->nth, sizeof *l->ws)) || !(l->th = hy__calloc((size_t)l->nth, sizeof *l->th)))
        goto nomem;
    for (int w = 0; w < l->nth; w++) {
        wscratch *ws = &l->ws[w];
        for (int k = 0; k < (mosaic ? 4 : 1); k++)
            if (!(ws->tile[k] = hy__malloc(ss3))) goto nomem;
        const size_t nbox = (size_t)HY_MAX(l->max_labels, 1);
        if (!(ws->boxes = hy__malloc(nbox * sizeof *ws->boxes)) ||
            !(ws->rows = hy__malloc((size_t)HY_MAX(l->max_img_labels, 1) * 5 * sizeof(float))))
            goto nomem;
        if (p->augment) {
            if (!(ws->canvas = hy__malloc((mosaic ? 4 : 1) * ss3)) || !(ws->out = hy__malloc(ss3))) goto nomem;
        } else if (!(ws->unpad = hy__malloc(ss3))) {
            goto nomem;
        }
        if (rs_need && !(ws->rs.p = hy__aligned_alloc(64, rs_need))) goto nomem;
        ws->rs.n = rs_need;
    }
    for (int w = 0; w < l->nth; w++) {
        wctx *c = hy__malloc(sizeof *c);
        if (!c) goto nomem;
        c->l = l, c->id = w;
        if (pthread_create(&l->th[w], NULL, worker_main, c) != 0) {
            hy__free(c);
            hy__tloader_free(l);
            return hy__error(HY_ERR_NOMEM, "training loader: cannot start worker thread %d of %d", w + 1, l->nth);
        }
        l->n_started++;
    }
    *out = l;
    return HY_OK;
nomem:
    hy__tloader_free(l);
    return hy__error(HY_ERR_NOMEM, "out of memory (training loader)");
}

void hy__tloader_free(hy__tloader *l) {
    if (!l) return;
    if (l->running) {
        int n;
        (void)hy__tloader_wait(l, &n);
    }
    pthread_mutex_lock(&l->mu);
    l->quit = 1;
    pthread_cond_broadcast(&l->cv_job);
    pthread_mutex_unlock(&l->mu);
    for (int w = 0; w < l->n_started; w++) pthread_join(l->th[w], NULL);
    if (l->items)
        for (size_t i = 0; i < l->ds->n; i++) {
            hy__free(l->items[i].img);
            hy__free(l->items[i].rows);
        }
    if (l->ws)
        for (int w = 0; w < l->nth; w++) {
            wscratch *ws = &l->ws[w];
            for (int k = 0; k < 4; k++) hy__free(ws->tile[k]);
            hy__free(ws->unpad);
            hy__free(ws->canvas);
            hy__free(ws->out);
            hy__free(ws->boxes);
            hy__free(ws->rows);
            hy__aligned_free(ws->rs.p);
        }
    pthread_mutex_destroy(&l->cache_mu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_job);
    pthread_cond_destroy(&l->cv_done);
    hy__free(l->ws);
    hy__free(l->th);
    hy__free(l->stage);
    hy__free(l->stage_n);
    hy__free(l->items);
    hy__free(l->order);
    hy__free(l->flip);
    hy__free(l);
}

// --- batches -----------------------------------------------------------------------------------

hy_status hy__tloader_start(hy__tloader *l, int epoch, int b, float *x, float *targets) {
    if (l->running) return hy__error(HY_ERR_BUSY, "training loader: a batch is already being prepared");
    const int n = hy__tloader_batch_size(l, b);
    if (n <= 0 || epoch < 0) return hy__error(HY_ERR_INVALID_ARG, "training loader: batch %d out of range", b);
    if (l->plan_epoch != epoch) { // no worker reads the plan now
        hy__tloader_epoch_plan(l, epoch, l->order, l->flip);
        l->plan_epoch = epoch;
    }
    pthread_mutex_lock(&l->mu);
    l->job_epoch = epoch, l->job_b = b, l->job_n = n;
    l->job_x = x, l->job_t = targets;
    l->err_j = n, l->job_st = HY_OK, l->job_err[0] = 0;
    atomic_store(&l->next_j, 0);
    l->pending = l->nth;
    l->gen++;
    pthread_cond_broadcast(&l->cv_job);
    pthread_mutex_unlock(&l->mu);
    l->running = 1;
    return HY_OK;
}

hy_status hy__tloader_wait(hy__tloader *l, int *n_targets) {
    if (!l->running) return hy__error(HY_ERR_INVALID_ARG, "training loader: no batch was started");
    pthread_mutex_lock(&l->mu);
    while (l->pending > 0) pthread_cond_wait(&l->cv_done, &l->mu);
    pthread_mutex_unlock(&l->mu);
    l->running = 0;
    if (l->job_st) return hy__error(l->job_st, "%s", l->job_err);
    // rows of the images in batch order
    const size_t slot = (size_t)l->max_labels * 6;
    int nt = 0;
    for (int j = 0; j < l->job_n; j++) {
        if (l->stage_n[j] > 0)
            memcpy(l->job_t + 6 * (size_t)nt, l->stage + slot * (size_t)j, (size_t)l->stage_n[j] * 6 * sizeof(float));
        nt += l->stage_n[j];
    }
    *n_targets = nt;
    return HY_OK;
}

hy_status hy__tloader_fill(hy__tloader *l, int epoch, int b, float *x, float *targets, int *n_targets) {
    hy_status st = hy__tloader_start(l, epoch, b, x, targets);
    return st ? st : hy__tloader_wait(l, n_targets);
}
