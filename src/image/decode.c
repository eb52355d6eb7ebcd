/* Image decoding from memory: JPEG through libjpeg-turbo and PNG through libspng, producing the
 * same 8-bit RGB pixels as OpenCV's imread(IMREAD_COLOR) (then BGR->RGB):
 *   JPEG: default decompression (JDCT_ISLOW, fancy upsampling), CMYK converted with OpenCV's
 *         formula, EXIF orientation 2..8 applied. Data cut short decodes as in OpenCV (libjpeg
 *         warns "Premature end of JPEG file" and fills the rest with grey) up to the caller's
 *         hy_image_repair level and sets img->flags (NO_EOI when only the end marker is
 *         missing, else TRUNCATED); other corrupt data (bad Huffman code, a marker inside the
 *         data, ...) is an error.
 *   PNG:  16-bit -> 8-bit by >> 8 (png_set_strip_16), alpha dropped (png_set_strip_alpha),
 *         palette expanded, gray 1/2/4-bit scaled to 8-bit, gray replicated to RGB; no gamma. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <spng.h>

#include "image/image.h"

// --- EXIF orientation (libexif) ----------------------------------------------------------------

static void *exif_alloc(ExifLong n) { return hy__calloc(1, n); }
static void *exif_realloc(void *p, ExifLong n) { return hy__realloc(p, n); }
static void exif_free(void *p) { hy__free(p); }

/* Orientation tag (1..8) of an APP1 payload starting with "Exif\0\0"; 1 when absent/invalid. */
static int exif_orientation(const uint8_t *data, size_t len) {
    if (len < 6 || memcmp(data, "Exif\0\0", 6) != 0 || len > 0xFFFF) return 1;
    ExifMem *mem = exif_mem_new(exif_alloc, exif_realloc, exif_free);
    if (!mem) return 1;
    ExifData *ed = exif_data_new_mem(mem);
    exif_mem_unref(mem);
    if (!ed) return 1;
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION); // read as stored
    exif_data_load_data(ed, data, (unsigned int)len);
    int orientation = 1;
    ExifEntry *e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(ed));
        if (v >= 1 && v <= 8) orientation = v;
    }
    exif_data_unref(ed);
    return orientation;
}

// --- JPEG --------------------------------------------------------------------------------------

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int eof;       // JWRN_JPEG_EOF seen: the data ran out (libjpeg inserted a fake EOI)
    int after_eof; // warnings after it: pixel data was really missing (not just the EOI)
} jpeg_err;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_output(j_common_ptr c) { (void)c; } // the library never prints

/* Warnings that mean the data is damaged: fatal here (libjpeg would fill the rest with grey and
 * carry on) unless they follow JWRN_JPEG_EOF, i.e. the file is only cut short, which OpenCV
 * decodes. Extraneous bytes before a marker and the like stay warnings. */
static int jpeg_warning_is_fatal(int code) {
    switch (code) {
    case JWRN_JPEG_EOF:          // premature end of JPEG file (truncation)
    case JWRN_HIT_MARKER:        // premature end of data segment
    case JWRN_HUFF_BAD_CODE:     // bad Huffman code
    case JWRN_MUST_RESYNC:       // lost restart marker sync
    case JWRN_NOT_SEQUENTIAL:    // invalid SOS parameters for sequential JPEG
    case JWRN_BOGUS_PROGRESSION: // inconsistent progression sequence
        return 1;
    default:
        return 0;
    }
}

static void jpeg_on_message(j_common_ptr c, int level) {
    if (level >= 0) return; // trace messages
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->num_warnings++;
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        e->eof = 1;
        return;
    }
    if (e->eof) { // a consequence of the cut (the entropy decoder hit the fake EOI, ...)
        e->after_eof = 1;
        return;
    }
    if (jpeg_warning_is_fatal(c->err->msg_code)) {
        c->err->format_message(c, e->msg);
        longjmp(e->jump, 1);
    }
    char buf[JMSG_LENGTH_MAX];
    c->err->format_message(c, buf);
    hy__log(HY_LOG_WARN, "JPEG: %s", buf);
}

/* Progressive files can hold any number of scans, each a full pass over the image: a small
 * file could keep the decoder busy for minutes. Real encoders write about 10. */
#define JPEG_MAX_SCANS 500

static void jpeg_on_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(e->jump, 1);
    }
}

/* Decoder state lives in the caller's frame so that it stays valid across longjmp. */
typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    struct jpeg_progress_mgr progress;
    const uint8_t *buf;
    size_t len;
    hy_image *img;   // output (h, w, 3), owned until returned
    uint8_t *row4;   // (w, 4) CMYK scanline
    int created;     // cinfo needs jpeg_destroy_decompress
    int orientation; // EXIF orientation 1..8
    int scans_whole; // every coefficient got its full precision (always 1 for one scan)
} jpeg_job;

/* Reads the markers up to the first scan and the EXIF orientation; 0 if a side is 0. Called
 * under the caller's setjmp (libjpeg errors longjmp there). */
static int jpeg_head(jpeg_job *j) {
    struct jpeg_decompress_struct *ci = &j->cinfo;
    jpeg_create_decompress(ci);
    j->created = 1;
    j->progress.progress_monitor = jpeg_on_progress;
    ci->progress = &j->progress;
    jpeg_mem_src(ci, j->buf, (unsigned long)j->len);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF); // EXIF lives in APP1
    jpeg_read_header(ci, TRUE);
    // Saved markers live in the image pool that jpeg_finish_decompress frees: read EXIF now.
    j->orientation = 1;
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            j->orientation = exif_orientation(m->data, m->data_length);
            break;
        }
    }
    return ci->image_width != 0 && ci->image_height != 0;
}

/* Header only: size as decoded (orientations 5..8 swap the sides). */
static hy_status jpeg_probe_run(jpeg_job *j, int *w, int *h) {
    struct jpeg_decompress_struct *ci = &j->cinfo;
    if (setjmp(j->err.jump)) return hy__error(HY_ERR_FORMAT, "JPEG: %s", j->err.msg);
    if (!jpeg_head(j)) return hy__error(HY_ERR_FORMAT, "JPEG: invalid size %ux%u", ci->image_width,
                                        ci->image_height);
    if (ci->image_width > HY_IMAGE_MAX_SIDE || ci->image_height > HY_IMAGE_MAX_SIDE ||
        (uint64_t)ci->image_width * ci->image_height > HY_IMAGE_MAX_PIXELS)
        return hy__error(HY_ERR_UNSUPPORTED, "JPEG: size %ux%u is outside the accepted range",
                         ci->image_width, ci->image_height);
    const int swap = j->orientation >= 5;
    *w = (int)(swap ? ci->image_height : ci->image_width);
    *h = (int)(swap ? ci->image_width : ci->image_height);
    return HY_OK;
}

/* Runs libjpeg under setjmp; returns HY_OK or an error with the message set. */
static hy_status jpeg_run(jpeg_job *j) {
    struct jpeg_decompress_struct *ci = &j->cinfo;
    if (setjmp(j->err.jump)) return hy__error(HY_ERR_FORMAT, "JPEG: %s", j->err.msg);

    if (!jpeg_head(j)) return hy__error(HY_ERR_FORMAT, "JPEG: invalid size %ux%u", ci->image_width,
                                        ci->image_height);
    /* OpenCV: 4 components -> CMYK then its own CMYK->BGR; everything else -> 3-channel. */
    const int cmyk = ci->num_components == 4;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

    hy_status st = hy__image_create((int)ci->image_width, (int)ci->image_height, &j->img);
    if (st) return hy__error_prefix(st, "JPEG");
    const int w = j->img->width;
    if (cmyk && !(j->row4 = hy__malloc((size_t)w * 4)))
        return hy__error(HY_ERR_NOMEM, "JPEG: cannot allocate a %d-pixel CMYK row", w);

    jpeg_start_decompress(ci); // multi-scan files: the whole input is absorbed here
    j->scans_whole = 1;
    if (jpeg_has_multiple_scans(ci)) {
        // Cut between scans, a file ends with no warning but the fake EOI: the scans read so
        // far are whole only if every coefficient reached bit 0 (progressive coef_bits).
        // Sequential multi-scan files cannot tell: counted as truncated when the EOI is missing.
        j->scans_whole = ci->progressive_mode && ci->coef_bits;
        for (int c = 0; j->scans_whole && c < ci->num_components; c++)
            for (int k = 0; k < DCTSIZE2; k++)
                if (ci->coef_bits[c][k] != 0) j->scans_whole = 0;
    }
    if ((int)ci->output_width != w || (int)ci->output_height != j->img->height ||
        ci->output_components != (cmyk ? 4 : 3))
        return hy__error(HY_ERR_FORMAT, "JPEG: unexpected output %ux%ux%d", ci->output_width,
                         ci->output_height, ci->output_components);
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = j->img->data + (size_t)ci->output_scanline * w * 3;
        JSAMPROW row = cmyk ? j->row4 : dst;
        if (jpeg_read_scanlines(ci, &row, 1) != 1)
            return hy__error(HY_ERR_FORMAT, "JPEG: no data at row %u", ci->output_scanline);
        if (cmyk) {
            // OpenCV icvCvt_CMYK2BGR_8u_C4C3R: v = k - ((255 - v) * k >> 8).
            for (int x = 0; x < w; x++) {
                const uint8_t *s = j->row4 + 4 * x;
                int k = s[3];
                dst[3 * x + 0] = (uint8_t)(k - ((255 - s[0]) * k >> 8));
                dst[3 * x + 1] = (uint8_t)(k - ((255 - s[1]) * k >> 8));
                dst[3 * x + 2] = (uint8_t)(k - ((255 - s[2]) * k >> 8));
            }
        }
    }
    jpeg_finish_decompress(ci); // reads up to EOI: a missing tail is reported here
    if (j->err.eof) {
        const int whole = !j->err.after_eof && j->scans_whole;
        j->img->flags |= whole ? HY_IMAGE_FLAG_NO_EOI : HY_IMAGE_FLAG_TRUNCATED;
    }
    return HY_OK;
}

static void jpeg_job_init(jpeg_job *j, const uint8_t *buf, size_t len) {
    memset(j, 0, sizeof *j);
    j->buf = buf;
    j->len = len;
    j->cinfo.err = jpeg_std_error(&j->err.pub);
    j->err.pub.error_exit = jpeg_on_error;
    j->err.pub.emit_message = jpeg_on_message;
    j->err.pub.output_message = jpeg_on_output;
}

static hy_status probe_jpeg(const uint8_t *buf, size_t len, int *w, int *h) {
    jpeg_job j;
    jpeg_job_init(&j, buf, len);
    hy_status st = jpeg_probe_run(&j, w, h);
    if (j.created) jpeg_destroy_decompress(&j.cinfo);
    return st;
}

static hy_status decode_jpeg(const uint8_t *buf, size_t len, hy_image_repair repair,
                             hy_image **out) {
    jpeg_job j;
    jpeg_job_init(&j, buf, len);
    hy_status st = jpeg_run(&j);
    if (j.created) jpeg_destroy_decompress(&j.cinfo);
    hy__free(j.row4);
    if (st == HY_OK && j.img->flags) {
        const int cut = (j.img->flags & HY_IMAGE_FLAG_TRUNCATED) != 0;
        if (repair < (cut ? HY_IMAGE_REPAIR_TRUNCATED : HY_IMAGE_REPAIR_NO_EOI))
            st = hy__error(HY_ERR_FORMAT, "JPEG: Premature end of JPEG file (%s, %zu bytes)",
                           cut ? "pixel data is missing" : "the end-of-image marker is missing",
                           len);
    }
    if (st == HY_OK) st = hy__image_orient(j.img, j.orientation);
    if (st) {
        hy_image_free(j.img);
        return st;
    }
    *out = j.img;
    return HY_OK;
}

// --- PNG ---------------------------------------------------------------------------------------

static const char *png_color_name(int ct) {
    switch (ct) {
    case SPNG_COLOR_TYPE_GRAYSCALE: return "gray";
    case SPNG_COLOR_TYPE_TRUECOLOR: return "RGB";
    case SPNG_COLOR_TYPE_INDEXED: return "palette";
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return "gray+alpha";
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: return "RGBA";
    default: return "unknown";
    }
}

/* Sample i of a row in the PNG's own layout (SPNG_FMT_PNG: packed MSB-first below 8 bits,
 * host-endian 16-bit), reduced to 8 bits the way libpng's strip_16 / expand_gray do. */
static inline uint8_t png_sample(const uint8_t *row, size_t i, int depth, int scale_gray) {
    switch (depth) {
    case 16: return (uint8_t)(((const uint16_t *)row)[i] >> 8);
    case 8: return row[i];
    default: {
        size_t bit = i * (size_t)depth;
        int v = (row[bit >> 3] >> (8 - depth - (int)(bit & 7))) & ((1 << depth) - 1);
        if (!scale_gray) return (uint8_t)v; // palette index
        return (uint8_t)(depth == 1 ? v * 255 : depth == 2 ? v * 0x55 : v * 0x11);
    }
    }
}

/* Walks the chunk headers: 1 when an IEND chunk, CRC included, lies inside buf. libspng stops
 * before IEND's CRC, libpng (OpenCV) reads it; a file cut inside IEND is refused like libpng. */
static int png_iend_complete(const uint8_t *buf, size_t len) {
    size_t off = 8;
    while (len - off >= 12) {
        const uint32_t n = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 |
                           (uint32_t)buf[off + 2] << 8 | buf[off + 3];
        if (n > len - off - 12) return 0;
        if (memcmp(buf + off + 4, "IEND", 4) == 0) return 1;
        off += 12 + (size_t)n;
    }
    return 0;
}

/* The IHDR size against the decoder's limits (before any pixel allocation). */
static hy_status png_size_check(const struct spng_ihdr *ih) {
    if (ih->width == 0 || ih->height == 0 || ih->width > HY_IMAGE_MAX_SIDE || ih->height > HY_IMAGE_MAX_SIDE ||
        (uint64_t)ih->width * ih->height > HY_IMAGE_MAX_PIXELS)
        return hy__error(ih->width && ih->height ? HY_ERR_UNSUPPORTED : HY_ERR_FORMAT,
                         "PNG: IHDR size %ux%u is outside the accepted range (each side 1..%d, at "
                         "most %llu pixels)",
                         ih->width, ih->height, HY_IMAGE_MAX_SIDE, (unsigned long long)HY_IMAGE_MAX_PIXELS);
    return HY_OK;
}

static hy_status probe_png(const uint8_t *buf, size_t len, int *w, int *h) {
    struct spng_alloc al = {hy__malloc, hy__realloc, hy__calloc, hy__free};
    spng_ctx *ctx = spng_ctx_new2(&al, 0);
    if (!ctx) return hy__error(HY_ERR_NOMEM, "PNG: cannot create decoder");
    struct spng_ihdr ih;
    int r = spng_set_png_buffer(ctx, buf, len);
    if (!r) r = spng_get_ihdr(ctx, &ih);
    spng_ctx_free(ctx);
    if (r) return hy__error(HY_ERR_FORMAT, "PNG: bad signature or IHDR: %s", spng_strerror(r));
    hy_status st = png_size_check(&ih);
    if (st) return st;
    *w = (int)ih.width;
    *h = (int)ih.height;
    return HY_OK;
}

static hy_status decode_png(const uint8_t *buf, size_t len, hy_image **out) {
    struct spng_alloc al = {hy__malloc, hy__realloc, hy__calloc, hy__free};
    hy_status st = HY_OK;
    hy_image *img = NULL;
    uint8_t *raw = NULL;
    spng_ctx *ctx = spng_ctx_new2(&al, 0);
    if (!ctx) return hy__error(HY_ERR_NOMEM, "PNG: cannot create decoder");

    int r = spng_set_png_buffer(ctx, buf, len);
    if (!r) r = spng_set_chunk_limits(ctx, (size_t)64 << 20, (size_t)64 << 20);
    struct spng_ihdr ih;
    if (!r) r = spng_get_ihdr(ctx, &ih);
    if (r) {
        st = hy__error(HY_ERR_FORMAT, "PNG: bad signature or IHDR: %s", spng_strerror(r));
        goto done;
    }
    // Check the size before any pixel allocation.
    if ((st = png_size_check(&ih))) goto done;
    const int w = (int)ih.width, h = (int)ih.height, depth = ih.bit_depth, ct = ih.color_type;
    int nch;
    switch (ct) {
    case SPNG_COLOR_TYPE_GRAYSCALE: nch = 1; break;
    case SPNG_COLOR_TYPE_TRUECOLOR: nch = 3; break;
    case SPNG_COLOR_TYPE_INDEXED: nch = 1; break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: nch = 2; break;
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: nch = 4; break;
    default:
        st = hy__error(HY_ERR_FORMAT, "PNG: IHDR colour type %d is invalid", ct);
        goto done;
    }
    struct spng_plte plte = {0};
    if (ct == SPNG_COLOR_TYPE_INDEXED && (r = spng_get_plte(ctx, &plte)) != 0) {
        st = hy__error(HY_ERR_FORMAT, "PNG: palette image without a valid PLTE: %s", spng_strerror(r));
        goto done;
    }

    size_t rawlen;
    if ((r = spng_decoded_image_size(ctx, SPNG_FMT_PNG, &rawlen)) != 0) {
        st = hy__error(HY_ERR_FORMAT, "PNG: %s", spng_strerror(r));
        goto done;
    }
    if ((st = hy__image_create(w, h, &img)) != HY_OK) {
        hy__error_prefix(st, "PNG");
        goto done;
    }
    if (!(raw = hy__malloc(rawlen))) {
        st = hy__error(HY_ERR_NOMEM, "PNG: cannot allocate %zu bytes for %dx%d", rawlen, w, h);
        goto done;
    }
    r = spng_decode_image(ctx, raw, rawlen, SPNG_FMT_PNG, 0);
    if (!r) r = spng_decode_chunks(ctx); // up to IEND: a cut-off file is an error, as with libpng
    if (r) {
        st = hy__error(HY_ERR_FORMAT, "PNG (%dx%d %s %d-bit): %s", w, h, png_color_name(ct), depth,
                       spng_strerror(r));
        goto done;
    }

    if (!png_iend_complete(buf, len)) {
        st = hy__error(HY_ERR_FORMAT, "PNG (%dx%d): file ends before a complete IEND chunk", w, h);
        goto done;
    }

    const size_t rowbytes = rawlen / (size_t)h;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = raw + (size_t)y * rowbytes;
        uint8_t *d = img->data + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, d += 3) {
            size_t i = (size_t)x * nch;
            if (ct == SPNG_COLOR_TYPE_INDEXED) {
                int idx = png_sample(row, i, depth, 0);
                // libpng's palette is 256 zeroed entries: out-of-range indices read black.
                if ((uint32_t)idx < plte.n_entries) {
                    d[0] = plte.entries[idx].red;
                    d[1] = plte.entries[idx].green;
                    d[2] = plte.entries[idx].blue;
                } else {
                    d[0] = d[1] = d[2] = 0;
                }
            } else if (nch <= 2) { // gray (+ alpha, dropped)
                d[0] = d[1] = d[2] = png_sample(row, i, depth, 1);
            } else { // RGB (+ alpha, dropped)
                d[0] = png_sample(row, i, depth, 1);
                d[1] = png_sample(row, i + 1, depth, 1);
                d[2] = png_sample(row, i + 2, depth, 1);
            }
        }
    }

done:
    hy__free(raw);
    spng_ctx_free(ctx);
    if (st) {
        hy_image_free(img);
        return st;
    }
    *out = img;
    return HY_OK;
}

// --- dispatch ----------------------------------------------------------------------------------

/* "first bytes 3c 21 44 4f ("<!DO")" for error messages. */
static void describe_bytes(const uint8_t *b, size_t len, char *out, size_t cap) {
    size_t n = len < 8 ? len : 8, o = 0;
    o += (size_t)snprintf(out + o, cap - o, "first bytes");
    for (size_t i = 0; i < n && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, " %02x", b[i]);
    if (o < cap) o += (size_t)snprintf(out + o, cap - o, " (\"");
    for (size_t i = 0; i < n && o + 4 < cap; i++) out[o++] = (b[i] >= 32 && b[i] < 127) ? (char)b[i] : '.';
    if (o + 3 < cap) snprintf(out + o, cap - o, "\")");
}

/* The error for data that is neither JPEG nor PNG, naming what it looks like. */
static hy_status unknown_format(const uint8_t *b, size_t len) {
    char what[96];
    describe_bytes(b, len, what, sizeof what);
    const char *known = NULL;
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) known = "GIF";
    else if (len >= 2 && b[0] == 'B' && b[1] == 'M') known = "BMP";
    else if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) known = "WebP";
    else if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) known = "TIFF";
    if (known)
        return hy__error(HY_ERR_UNSUPPORTED, "%s images are not supported (JPEG and PNG are); %s",
                         known, what);
    return hy__error(HY_ERR_FORMAT, "unknown image format, not JPEG or PNG (%zu bytes, %s)", len,
                     what);
}

static int is_jpeg(const uint8_t *b, size_t len) { return len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
static int is_png(const uint8_t *b, size_t len) { return len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0; }

hy_status hy_image_decode_ex(const void *buf, size_t len, hy_image_repair repair, hy_image **out) {
    if (!out) return hy__error(HY_ERR_INVALID_ARG, "hy_image_decode: out is NULL");
    if (!buf && len) return hy__error(HY_ERR_INVALID_ARG, "hy_image_decode: buf is NULL");
    if (repair < HY_IMAGE_REPAIR_NONE || repair > HY_IMAGE_REPAIR_TRUNCATED)
        return hy__error(HY_ERR_INVALID_ARG, "hy_image_decode_ex: repair level %d is not one of "
                         "HY_IMAGE_REPAIR_*", (int)repair);
    if (len == 0) return hy__error(HY_ERR_FORMAT, "empty image data (0 bytes)");
    const uint8_t *b = buf;
    hy_status st;
    if (is_jpeg(b, len))
        st = decode_jpeg(b, len, repair, out);
    else if (is_png(b, len))
        return decode_png(b, len, out);
    else
        return unknown_format(b, len);
    if (st == HY_OK && (*out)->flags)
        hy__log(HY_LOG_WARN, "JPEG: Premature end of JPEG file: %s",
                (*out)->flags & HY_IMAGE_FLAG_TRUNCATED
                    ? "pixel data is missing, filled in with grey as OpenCV does"
                    : "only the end-of-image marker is missing (every pixel read)");
    return st;
}

hy_status hy_image_decode(const void *buf, size_t len, hy_image **out) {
    return hy_image_decode_ex(buf, len, HY_IMAGE_REPAIR_NO_EOI, out);
}

hy_status hy_image_load_ex(const char *path, hy_image_repair repair, hy_image **out) {
    if (!path || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_image_load: NULL argument");
    uint8_t *buf;
    size_t len;
    hy_status st = hy__file_read(path, &buf, &len); // its errors name the path
    if (st) return st;
    hy_image *img;
    st = hy_image_decode_ex(buf, len, repair, &img);
    hy__free(buf);
    if (st) return hy__error_prefix(st, "%s", path);
    *out = img;
    return HY_OK;
}

hy_status hy_image_probe(const void *buf, size_t len, int *width, int *height) {
    if (!width || !height) return hy__error(HY_ERR_INVALID_ARG, "hy_image_probe: width and height are required");
    if (!buf && len) return hy__error(HY_ERR_INVALID_ARG, "hy_image_probe: buf is NULL");
    if (len == 0) return hy__error(HY_ERR_FORMAT, "empty image data (0 bytes)");
    const uint8_t *b = buf;
    if (is_jpeg(b, len)) return probe_jpeg(b, len, width, height);
    if (is_png(b, len)) return probe_png(b, len, width, height);
    return unknown_format(b, len);
}
