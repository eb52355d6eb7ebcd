/* Box and label drawing in the style of Ultralytics' Annotator (cv2 path): a rectangle outline of
 * thickness t, and above it (or inside, when there is no room) a label box filled with the box
 * colour holding white text. Text is rendered by FreeType from DejaVu Sans (HY_FONT_PATH). */
#include <pthread.h>
#include <string.h>

#include <ft2build.h>
#include FT_FREETYPE_H

#include "image/image.h"

#ifndef HY_FONT_PATH
#define HY_FONT_PATH "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#endif

// --- palette -----------------------------------------------------------------------------------

void hy__palette(int class_id, uint8_t rgb[3]) {
    static const uint32_t hex[20] = {0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231,
                                     0x48F90A, 0x92CC17, 0x3DDB86, 0x1A9334, 0x00D4BB,
                                     0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF, 0x0018EC,
                                     0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
    const uint32_t c = hex[((class_id % 20) + 20) % 20];
    rgb[0] = (uint8_t)(c >> 16);
    rgb[1] = (uint8_t)(c >> 8);
    rgb[2] = (uint8_t)c;
}

// --- font (loaded once; FT_Face is not thread-safe, so rendering holds font_mu) ----------------

static pthread_once_t font_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t font_mu = PTHREAD_MUTEX_INITIALIZER;
static FT_Library font_lib; // still reachable for the process lifetime
static FT_Face font_face;
static int font_error; // FreeType error code of the failed step, 0 = ok

static void font_init(void) {
    int e = FT_Init_FreeType(&font_lib);
    if (e) {
        font_error = e;
        return;
    }
    e = FT_New_Face(font_lib, HY_FONT_PATH, 0, &font_face);
    if (e) font_error = e;
}

// --- pixels ------------------------------------------------------------------------------------

static void fill_rect(hy_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    // inclusive corners, clipped
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->width - 1) x1 = img->width - 1;
    if (y1 > img->height - 1) y1 = img->height - 1;
    for (int y = y0; y <= y1; y++) {
        uint8_t *p = img->data + ((size_t)y * img->width + x0) * 3;
        for (int x = x0; x <= x1; x++, p += 3) {
            p[0] = rgb[0];
            p[1] = rgb[1];
            p[2] = rgb[2];
        }
    }
}

/* Next code point of a UTF-8 string (invalid bytes read as U+FFFD). */
static uint32_t utf8_next(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (c >= 0x80 && extra == 0) c = 0xFFFD;
    else if (extra) c &= 0x3Fu >> extra;
    for (; extra > 0; extra--) {
        if ((*p & 0xC0) != 0x80) {
            c = 0xFFFD;
            break;
        }
        c = (c << 6) | (*p++ & 0x3F);
    }
    *s = p;
    return c;
}

/* Label box above (x1, y1) or just inside the box when it would leave the image. Caller holds
 * font_mu. px: font size in pixels. */
static void draw_label(hy_image *img, int x1, int y1, const uint8_t rgb[3], const char *label,
                       int px) {
    FT_Set_Pixel_Sizes(font_face, 0, (FT_UInt)px);
    const int asc = (int)(font_face->size->metrics.ascender >> 6);
    const int desc = (int)(-font_face->size->metrics.descender >> 6);
    int text_w = 0;
    for (const unsigned char *s = (const unsigned char *)label; *s;) {
        if (FT_Load_Char(font_face, utf8_next(&s), FT_LOAD_DEFAULT) == 0)
            text_w += (int)(font_face->glyph->advance.x >> 6);
    }
    const int box_w = text_w + 4, box_h = asc + desc + 2;
    const int outside = y1 - box_h >= 0; // Ultralytics: p1[1] - h >= 3
    const int top = outside ? y1 - box_h : y1;
    fill_rect(img, x1, top, x1 + box_w - 1, top + box_h - 1, rgb);

    int pen = x1 + 2;
    const int baseline = top + 1 + asc;
    for (const unsigned char *s = (const unsigned char *)label; *s;) {
        if (FT_Load_Char(font_face, utf8_next(&s), FT_LOAD_RENDER) != 0) continue;
        const FT_GlyphSlot g = font_face->glyph;
        const FT_Bitmap *bm = &g->bitmap;
        if (bm->pixel_mode == FT_PIXEL_MODE_GRAY) {
            for (unsigned r = 0; r < bm->rows; r++) {
                const int y = baseline - g->bitmap_top + (int)r;
                if (y < 0 || y >= img->height) continue;
                const unsigned char *a = bm->buffer + (long)r * bm->pitch;
                for (unsigned c = 0; c < bm->width; c++) {
                    const int x = pen + g->bitmap_left + (int)c;
                    if (x < 0 || x >= img->width || a[c] == 0) continue;
                    uint8_t *p = img->data + ((size_t)y * img->width + x) * 3;
                    for (int k = 0; k < 3; k++) // blend towards white by coverage
                        p[k] = (uint8_t)(p[k] + ((255 - p[k]) * a[c] + 127) / 255);
                }
            }
        }
        pen += (int)(g->advance.x >> 6);
    }
}

hy_status hy__draw_box(hy_image *img, int x1, int y1, int x2, int y2, int t, const uint8_t rgb[3],
                       const char *label) {
    if (!img || !img->data || !rgb) return hy__error(HY_ERR_INVALID_ARG, "hy__draw_box: NULL argument");
    if (x2 < x1) { int s = x1; x1 = x2; x2 = s; }
    if (y2 < y1) { int s = y1; y1 = y2; y2 = s; }
    if (t < 1) t = 1;
    // Outline of t pixels centred on the edges, as cv2.rectangle(thickness=t).
    const int lo = t / 2, hi = t - 1 - lo;
    fill_rect(img, x1 - lo, y1 - lo, x2 + hi, y1 + hi, rgb); // top
    fill_rect(img, x1 - lo, y2 - lo, x2 + hi, y2 + hi, rgb); // bottom
    fill_rect(img, x1 - lo, y1 - lo, x1 + hi, y2 + hi, rgb); // left
    fill_rect(img, x2 - lo, y1 - lo, x2 + hi, y2 + hi, rgb); // right
    if (!label || !*label) return HY_OK;

    pthread_once(&font_once, font_init);
    if (font_error)
        return hy__error(HY_ERR_NOT_FOUND, "label font %s: cannot load (FreeType error %d)",
                         HY_FONT_PATH, font_error);
    // Ultralytics: fontScale = lw / 3 on Hershey simplex (cap height ~22 px at scale 1);
    // DejaVu's cap height is ~0.73 em, so an em of ~10 * lw px matches.
    const int px = t * 10 < 10 ? 10 : t * 10;
    pthread_mutex_lock(&font_mu);
    draw_label(img, x1 - lo, y1 - lo, rgb, label, px);
    pthread_mutex_unlock(&font_mu);
    return HY_OK;
}

// --- free text (plots) ---------------------------------------------------------------------------

/* Caller holds font_mu. */
static void text_locked(hy_image *img, int x, int y, int px, const uint8_t rgb[3], const char *text,
                        int *w_out, int *h_out) {
    FT_Set_Pixel_Sizes(font_face, 0, (FT_UInt)px);
    const int asc = (int)(font_face->size->metrics.ascender >> 6);
    const int desc = (int)(-font_face->size->metrics.descender >> 6);
    const int baseline = y + asc;
    int pen = x;
    for (const unsigned char *s = (const unsigned char *)text; *s;) {
        if (FT_Load_Char(font_face, utf8_next(&s), img ? FT_LOAD_RENDER : FT_LOAD_DEFAULT) != 0)
            continue;
        const FT_GlyphSlot g = font_face->glyph;
        const FT_Bitmap *bm = &g->bitmap;
        if (img && bm->pixel_mode == FT_PIXEL_MODE_GRAY) {
            for (unsigned r = 0; r < bm->rows; r++) {
                const int yy = baseline - g->bitmap_top + (int)r;
                if (yy < 0 || yy >= img->height) continue;
                const unsigned char *a = bm->buffer + (long)r * bm->pitch;
                for (unsigned c = 0; c < bm->width; c++) {
                    const int xx = pen + g->bitmap_left + (int)c;
                    if (xx < 0 || xx >= img->width || a[c] == 0) continue;
                    uint8_t *p = img->data + ((size_t)yy * img->width + xx) * 3;
                    for (int k = 0; k < 3; k++) // blend towards rgb by coverage
                        p[k] = (uint8_t)(p[k] + ((int)rgb[k] - (int)p[k]) * (int)a[c] / 255);
                }
            }
        }
        pen += (int)(g->advance.x >> 6);
    }
    if (w_out) *w_out = pen - x;
    if (h_out) *h_out = asc + desc;
}

hy_status hy__draw_text(hy_image *img, int x, int y, int px, const uint8_t rgb[3], const char *text,
                        int *w, int *h) {
    if (!text || (img && (!img->data || !rgb)) || px < 1 || px > 1000)
        return hy__error(HY_ERR_INVALID_ARG, "hy__draw_text: bad argument");
    pthread_once(&font_once, font_init);
    if (font_error)
        return hy__error(HY_ERR_NOT_FOUND, "text font %s: cannot load (FreeType error %d)",
                         HY_FONT_PATH, font_error);
    pthread_mutex_lock(&font_mu);
    text_locked(img, x, y, px, rgb, text, w, h);
    pthread_mutex_unlock(&font_mu);
    return HY_OK;
}
