/* Training batch loader (loader.h). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "image/image.h"
#include "train/loader.h"

// --- one image ---------------------------------------------------------------------------------

static hy_status resize_linear(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh * 3);
        return HY_OK;
    }
    void *scratch = hy__aligned_alloc(64, hy__resize_scratch_size(sw, sh, dw, dh));
    if (!scratch) return hy__error(HY_ERR_NOMEM, "out of memory (resize scratch)");
    hy__resize_linear_u8(src, sw, sh, (size_t)sw * 3, dst, dw, dh, (size_t)dw * 3, scratch);
    hy__aligned_free(scratch);
    return HY_OK;
}

hy_status hy__train_letterbox(const hy_image *img, int imgsz, const hy__val_label *labels, int n, uint8_t *dst,
                              float *rows) {
    const int w0 = img->width, h0 = img->height, s = imgsz;
    hy_status st = HY_OK;
    uint8_t *unpad = NULL;
    // LetterBox straight from the decoded image (loader.h)
    const int w1 = w0, h1 = h0;
    const uint8_t *src = img->data;
    // LetterBox(new_shape=(s, s), auto=False, scaleup=True)
    const hy__letterbox lb = hy__letterbox_plan_ex(w1, h1, s, s, 0, 1, 32);
    HY_ASSERT(lb.out_w == s && lb.out_h == s);
    if (lb.unpad_w != w1 || lb.unpad_h != h1) {
        if (!(unpad = hy__malloc((size_t)lb.unpad_w * (size_t)lb.unpad_h * 3))) {
            st = hy__error(HY_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = resize_linear(src, w1, h1, unpad, lb.unpad_w, lb.unpad_h))) goto done;
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
done:
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

// --- loader ------------------------------------------------------------------------------------

typedef struct titem {
    uint8_t *img;   /* (s, s, 3) cached letterbox, NULL when not cached */
    float *rows;    /* (n_labels, 5) mapped labels */
    int mapped;     /* rows valid */
} titem;

struct hy__tloader {
    const hy__val_dataset *ds;
    hy__tloader_params p;
    titem *items;
    size_t cached;
    int max_labels;
    uint8_t *scratch; /* (s, s, 3) letterbox of an image not cached */
    size_t *order;    /* (n) current epoch */
    unsigned char *flip;
    int plan_epoch;
    // worker
    pthread_t th;
    int running;
    int job_epoch, job_b;
    float *job_x, *job_t;
    int job_nt;
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

hy_status hy__tloader_create(const hy__val_dataset *ds, const hy__tloader_params *p, hy__tloader **out) {
    if (!ds || !p || !out || ds->n == 0 || p->imgsz < 32 || p->batch < 1)
        return hy__error(HY_ERR_INVALID_ARG, "hy__tloader_create: bad argument");
    hy__tloader *l = hy__calloc(1, sizeof *l);
    if (!l) return hy__error(HY_ERR_NOMEM, "out of memory");
    l->ds = ds;
    l->p = *p;
    l->plan_epoch = -1;
    const size_t s = (size_t)p->imgsz;
    if (!(l->items = hy__calloc(ds->n, sizeof *l->items)) || !(l->scratch = hy__malloc(s * s * 3)) ||
        !(l->order = hy__calloc(ds->n, sizeof *l->order)) || !(l->flip = hy__calloc(ds->n, 1)))
        goto nomem;
    for (size_t i = 0; i < ds->n; i++) {
        const int nl = ds->items[i].n_labels;
        if (nl > HY_TRAIN_MAX_LABELS) {
            /* the loss's scratch is batch x (most labels of one image): bounded before it is sized */
            hy__tloader_free(l);
            return hy__error(HY_ERR_FORMAT, "%s: %d labels, more than the %d a training image may have",
                             ds->items[i].im_file, nl, HY_TRAIN_MAX_LABELS);
        }
        if (nl > l->max_labels) l->max_labels = nl;
        if (nl > 0 && !(l->items[i].rows = hy__malloc((size_t)nl * 5 * sizeof(float)))) goto nomem;
    }
    *out = l;
    return HY_OK;
nomem:
    hy__tloader_free(l);
    return hy__error(HY_ERR_NOMEM, "out of memory (training loader)");
}

void hy__tloader_free(hy__tloader *l) {
    if (!l) return;
    if (l->running) pthread_join(l->th, NULL);
    if (l->items)
        for (size_t i = 0; i < l->ds->n; i++) {
            hy__free(l->items[i].img);
            hy__free(l->items[i].rows);
        }
    hy__free(l->items);
    hy__free(l->scratch);
    hy__free(l->order);
    hy__free(l->flip);
    hy__free(l);
}

int hy__tloader_num_batches(const hy__tloader *l) { return (int)((l->ds->n + (size_t)l->p.batch - 1) / (size_t)l->p.batch); }
int hy__tloader_batch_size(const hy__tloader *l, int b) {
    const size_t i0 = (size_t)b * (size_t)l->p.batch;
    return i0 >= l->ds->n ? 0 : (int)HY_MIN((size_t)l->p.batch, l->ds->n - i0);
}
int hy__tloader_max_labels(const hy__tloader *l) { return l->max_labels; }
size_t hy__tloader_cache_bytes(const hy__tloader *l) { return l->cached; }

/* Letterboxed pixels of item i (cached, or decoded into l->scratch) with its rows mapped. */
static hy_status item_pixels(hy__tloader *l, size_t i, const uint8_t **px) {
    titem *t = &l->items[i];
    if (t->img) {
        *px = t->img;
        return HY_OK;
    }
    const hy__val_item *it = &l->ds->items[i];
    const size_t bytes = (size_t)l->p.imgsz * (size_t)l->p.imgsz * 3;
    uint8_t *dst = l->scratch;
    if (l->cached + bytes <= l->p.cache_bytes) {
        uint8_t *c = hy__malloc(bytes);
        if (c) dst = c; // out of memory for the cache: decode every time instead
    }
    hy_image *img = NULL;
    hy_status st = hy_image_load(it->im_file, &img);
    if (!st) {
        st = hy__train_letterbox(img, l->p.imgsz, it->labels, it->n_labels, dst, t->rows);
        hy_image_free(img);
    }
    if (st) {
        if (dst != l->scratch) hy__free(dst);
        return st;
    }
    t->mapped = 1;
    if (dst != l->scratch) {
        t->img = dst;
        l->cached += bytes;
    }
    *px = dst;
    return HY_OK;
}

hy_status hy__tloader_fill(hy__tloader *l, int epoch, int b, float *x, float *targets, int *n_targets) {
    const int n = hy__tloader_batch_size(l, b);
    if (n <= 0) return hy__error(HY_ERR_INVALID_ARG, "training loader: batch %d out of range", b);
    if (l->plan_epoch != epoch) {
        hy__tloader_epoch_plan(l, epoch, l->order, l->flip);
        l->plan_epoch = epoch;
    }
    const size_t s = (size_t)l->p.imgsz, per = 3 * s * s;
    int nt = 0;
    for (int j = 0; j < n; j++) {
        const size_t pos = (size_t)b * (size_t)l->p.batch + (size_t)j, i = l->order[pos];
        const int flip = l->flip[pos];
        const uint8_t *px;
        hy_status st = item_pixels(l, i, &px);
        if (st) return st;
        hy__train_to_input(px, (int)s, flip, x + per * (size_t)j);
        const titem *t = &l->items[i];
        for (int k = 0; k < l->ds->items[i].n_labels; k++) {
            float *o = targets + 6 * (size_t)nt++;
            const float *r = t->rows + 5 * (size_t)k;
            o[0] = (float)j;
            o[1] = r[0];
            o[2] = flip ? 1.0f - r[1] : r[1];
            o[3] = r[2];
            o[4] = r[3];
            o[5] = r[4];
        }
    }
    *n_targets = nt;
    return HY_OK;
}

static void *worker(void *arg) {
    hy__tloader *l = arg;
    l->job_st = hy__tloader_fill(l, l->job_epoch, l->job_b, l->job_x, l->job_t, &l->job_nt);
    if (l->job_st) snprintf(l->job_err, sizeof l->job_err, "%s", hy_last_error());
    return NULL;
}

hy_status hy__tloader_start(hy__tloader *l, int epoch, int b, float *x, float *targets) {
    if (l->running) return hy__error(HY_ERR_BUSY, "training loader: a batch is already being prepared");
    l->job_epoch = epoch;
    l->job_b = b;
    l->job_x = x;
    l->job_t = targets;
    l->job_nt = 0;
    l->job_st = HY_OK;
    l->job_err[0] = 0;
    if (pthread_create(&l->th, NULL, worker, l) != 0) { // no thread: fill now
        hy_status st = hy__tloader_fill(l, epoch, b, x, targets, &l->job_nt);
        l->job_st = st;
        if (st) snprintf(l->job_err, sizeof l->job_err, "%s", hy_last_error());
        return HY_OK;
    }
    l->running = 1;
    return HY_OK;
}

hy_status hy__tloader_wait(hy__tloader *l, int *n_targets) {
    if (l->running) {
        pthread_join(l->th, NULL);
        l->running = 0;
    }
    if (l->job_st) return hy__error(l->job_st, "%s", l->job_err);
    *n_targets = l->job_nt;
    return HY_OK;
}
