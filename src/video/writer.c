/* Annotated video output: H.264 (libx264, yuv420p, BT.601 limited range) in MP4, through
 * FFmpeg opened at run time (ff.h).
 *
 * Files are never clobbered by accident: without overwrite a file is created with
 * O_CREAT | O_EXCL (check and create in one step); with overwrite the new file is written
 * under a temporary name next to it and renamed over the old one once its header is written,
 * so an open that fails leaves the old file as it was. A writer whose open fails removes what
 * it created. FFmpeg writes through our own AVIOContext on that descriptor.
 *
 * Odd sizes: libx264's yuv420p needs an even width and height, so an odd frame is encoded one
 * column / row larger, the last column / row repeated (a w x h source gives a
 * (w + w % 2) x (h + h % 2) video); nothing is scaled or cut off. The padding is made in the
 * RGB staging copy, before the conversion, since the edge pixels share their chroma samples
 * with it.
 *
 * Time: write() puts frame k at k / fps; write_at(t) at t - t0 (t0 = the first frame's time)
 * rounded to a tick of 1/fps, never before the previous frame's next tick, so dropped frames
 * leave gaps (variable frame rate) and the video keeps the source's timing.
 *
 * Segments (segment_s > 0): a frame at time t goes to segment floor(t / segment_s);
 * crossing a boundary finishes the current file (encoder flushed, trailer written) and starts
 * the next one, PATH_000.mp4, PATH_001.mp4, ... each with its own encoder (so it starts with a
 * key frame) and timestamps from 0. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotyolo/stream.h"
#include "video/ff.h"

#define MAX_SIDE 16384 /* libx264's limit per side */

/* One output file: its muxer, encoder and descriptor. */
typedef struct segment {
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVIOContext *io;
    int fd;
    char *tmp;     /* overwrite: the temporary name until the header is written, else NULL */
    int created;   /* a file (path or tmp) was created by us */
    int header;    /* header written: the trailer is due */
    int64_t frames;     /* frames sent to this segment's encoder */
    int64_t first_tick; /* writer tick of its first frame: its pts 0 */
} segment;

struct hy_video_writer {
    char *base; /* path as given */
    char *path; /* the file being written now */
    int width, height;         /* input frame size */
    int enc_width, enc_height; /* encoded size (even) */
    hy_video_writer_params p;
    AVRational fps; /* frame rate as a rational (av_d2q) */
    const AVCodec *codec;
    int x264;
    struct SwsContext *sws;
    uint8_t *stage; /* enc_width x enc_height RGB: the input, edge repeated into the padding;
                       64-byte aligned rows with slack (swscale's SIMD reads ahead) */
    int stage_stride;
    AVFrame *frame;
    AVPacket *pkt;
    segment seg;
    int seg_index; /* index of the current segment (segment_s > 0): its file number */
    int64_t seg_slot; /* floor(time / segment_s) of the current segment */
    int open;      /* seg holds an open file */
    int64_t frames;
    /* Time in ticks of 1/fps from the first frame: frame k of write() is tick k; write_at(t)
       puts a frame at tick round((t - t0) * fps), t0 the first frame's time, kept increasing */
    int64_t next_tick;
    double t0;
    int have_t0;
};

hy_video_writer_params hy_video_writer_default_params(void) {
    hy_video_writer_params p;
    memset(&p, 0, sizeof p);
    p.crf = 23;
    return p;
}

/* ---- our AVIOContext on a file descriptor ------------------------------------------------ */

static int io_write(void *opaque, uint8_t *buf, int n) {
    int fd = *(int *)opaque;
    int done = 0;
    while (done < n) {
        ssize_t k = write(fd, buf + done, (size_t)(n - done));
        if (k < 0) {
            if (errno == EINTR) continue;
            return AVERROR(errno);
        }
        done += (int)k;
    }
    return n;
}

static int64_t io_seek(void *opaque, int64_t off, int whence) {
    int fd = *(int *)opaque;
    if (whence & AVSEEK_SIZE) {
        struct stat sb;
        return fstat(fd, &sb) ? AVERROR(errno) : (int64_t)sb.st_size;
    }
    off_t r = lseek(fd, (off_t)off, whence & ~AVSEEK_FORCE);
    return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* ---- one segment ------------------------------------------------------------------------- */

/* Frees the segment; removes its file when remove_file (an open that failed). */
static void seg_free(segment *s, const char *path, int remove_file) {
    if (s->io) {
        FF(av_freep)(&s->io->buffer);
        FF(avio_context_free)(&s->io);
    }
    if (s->oc) FF(avformat_free_context)(s->oc);
    if (s->enc) FF(avcodec_free_context)(&s->enc);
    if (s->fd >= 0) close(s->fd);
    if (s->created && (remove_file || s->tmp)) unlink(s->tmp ? s->tmp : path);
    hy__free(s->tmp);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* Creates path without replacing anything (O_EXCL), or, with overwrite, a temporary file next
 * to it (renamed over path by seg_open once the header is written). */
static hy_status seg_create(hy_video_writer *w, segment *s, const char *path) {
    if (!w->p.overwrite) {
        s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (s->fd < 0) {
            int e = errno;
            if (e == EEXIST)
                return hy__error(HY_ERR_IO, "video writer: %s exists (refusing to replace it; overwrite replaces it)",
                                 path);
            return hy__error(HY_ERR_IO, "video writer: cannot create %s: %s", path, strerror(e));
        }
        s->created = 1;
        return HY_OK;
    }
    size_t n = strlen(path) + 48;
    s->tmp = hy__malloc(n);
    if (!s->tmp) return hy__error(HY_ERR_NOMEM, "video writer: out of memory");
    for (int k = 0; k < 100; k++) {
        snprintf(s->tmp, n, "%s.%d.%d.tmp", path, (int)getpid(), k);
        s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (s->fd >= 0) break;
        if (errno != EEXIST) break;
    }
    if (s->fd < 0) return hy__error(HY_ERR_IO, "video writer: cannot create %s: %s", s->tmp, strerror(errno));
    s->created = 1;
    return HY_OK;
}

/* Sets up the encoder and muxer, creates the file and writes the header. On failure nothing
 * is left behind (the file removed, s freed). */
static hy_status seg_open(hy_video_writer *w, const char *path) {
    segment *s = &w->seg;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    hy_status st = HY_OK;
    AVDictionary *opts = NULL;
    int e;

    /* Encoder and muxer first: nothing on disk until they are known to work. */
    s->enc = FF(avcodec_alloc_context3)(w->codec);
    if (!s->enc) goto nomem;
    AVCodecContext *c = s->enc;
    c->width = w->enc_width;
    c->height = w->enc_height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){w->fps.den, w->fps.num};
    c->framerate = w->fps;
    c->gop_size = (int)HY_MAX(1.0, HY_MIN(600.0, round(2.0 * av_q2d(w->fps)))); /* a key frame every ~2 s */
    c->thread_count = 1; /* the cores are for inference */
    c->color_range = AVCOL_RANGE_MPEG; /* what swscale's RGB -> YUV gives: BT.601, limited range */
    c->colorspace = AVCOL_SPC_SMPTE170M;
    if (w->x264) {
        char crf[16];
        snprintf(crf, sizeof crf, "%d", w->p.crf);
        if (FF(av_dict_set)(&opts, "preset", "veryfast", 0) < 0 || FF(av_dict_set)(&opts, "crf", crf, 0) < 0)
            goto nomem;
    } else {
        /* mpeg4: a fixed quantiser from crf (0..51 -> 2..31) */
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * (2 + w->p.crf * 29 / 51);
    }

    e = FF(avformat_alloc_output_context2)(&s->oc, NULL, "mp4", path);
    if (e < 0 || !s->oc) {
        st = hy__error(HY_ERR_UNSUPPORTED, "video writer: %s: no MP4 muxer: %s", path, HY_FF_ERR(e));
        goto fail;
    }
    if (s->oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    e = FF(avcodec_open2)(c, w->codec, &opts);
    if (e < 0) {
        st = hy__error(HY_ERR_UNSUPPORTED, "video writer: %s: cannot open the %s encoder (%dx%d at %d/%d fps): %s",
                       path, w->codec->name, c->width, c->height, w->fps.num, w->fps.den, HY_FF_ERR(e));
        goto fail;
    }
    s->st = FF(avformat_new_stream)(s->oc, NULL);
    if (!s->st) goto nomem;
    s->st->time_base = c->time_base;
    s->st->avg_frame_rate = w->fps; /* so readers report the source's rate */
    s->st->r_frame_rate = w->fps;
    e = FF(avcodec_parameters_from_context)(s->st->codecpar, c);
    if (e < 0) {
        st = hy__error(HY_ERR_UNSUPPORTED, "video writer: %s: %s", path, HY_FF_ERR(e));
        goto fail;
    }

    st = seg_create(w, s, path);
    if (st != HY_OK) goto fail;
    enum { IO_BUF = 1 << 16 };
    uint8_t *buf = FF(av_malloc)(IO_BUF);
    if (!buf) goto nomem;
    s->io = FF(avio_alloc_context)(buf, IO_BUF, 1, &s->fd, NULL, io_write, io_seek);
    if (!s->io) {
        FF(av_free)(buf);
        goto nomem;
    }
    s->oc->pb = s->io;
    s->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    e = FF(avformat_write_header)(s->oc, NULL);
    if (e < 0) {
        st = hy__error(HY_ERR_IO, "video writer: %s: cannot write the header: %s", path, HY_FF_ERR(e));
        goto fail;
    }
    s->header = 1;
    if (s->tmp) {
        if (rename(s->tmp, path) != 0) {
            st = hy__error(HY_ERR_IO, "video writer: cannot replace %s: %s", path, strerror(errno));
            goto fail;
        }
        hy__free(s->tmp);
        s->tmp = NULL;
    }
    FF(av_dict_free)(&opts);
    return HY_OK;

nomem:
    st = hy__error(HY_ERR_NOMEM, "video writer: %s: out of memory", path);
fail:
    FF(av_dict_free)(&opts);
    seg_free(s, path, 1);
    return st;
}

/* Encoder output -> file. frame NULL flushes the encoder. */
static hy_status encode(hy_video_writer *w, AVFrame *frame) {
    segment *s = &w->seg;
    int e = FF(avcodec_send_frame)(s->enc, frame);
    if (e < 0) return hy__error(HY_ERR_IO, "video writer: %s: encoder: %s", w->path, HY_FF_ERR(e));
    for (;;) {
        e = FF(avcodec_receive_packet)(s->enc, w->pkt);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return HY_OK;
        if (e < 0) return hy__error(HY_ERR_IO, "video writer: %s: encoder: %s", w->path, HY_FF_ERR(e));
        if (w->pkt->duration <= 0) w->pkt->duration = 1; /* one frame, so the last one has a length */
        FF(av_packet_rescale_ts)(w->pkt, s->enc->time_base, s->st->time_base);
        w->pkt->stream_index = s->st->index;
        e = FF(av_interleaved_write_frame)(s->oc, w->pkt); /* takes the packet's data */
        if (e < 0) return hy__error(HY_ERR_IO, "video writer: %s: write failed: %s", w->path, HY_FF_ERR(e));
    }
}

/* Flushes the encoder, writes the trailer, closes the file. The first error, naming the file. */
static hy_status seg_finish(hy_video_writer *w) {
    segment *s = &w->seg;
    hy_status st = encode(w, NULL);
    int e = FF(av_write_trailer)(s->oc);
    if (e < 0 && st == HY_OK)
        st = hy__error(HY_ERR_IO, "video writer: %s: cannot write the trailer: %s", w->path, HY_FF_ERR(e));
    int fd = s->fd;
    s->fd = -1;
    if (close(fd) != 0 && st == HY_OK)
        st = hy__error(HY_ERR_IO, "video writer: %s: close failed: %s", w->path, strerror(errno));
    seg_free(s, w->path, 0);
    w->open = 0;
    return st;
}

/* PATH.mp4 -> PATH_%03d.mp4 (the extension as given). */
static void segment_path(hy_video_writer *w, int k) {
    size_t n = strlen(w->base);
    snprintf(w->path, n + 16, "%.*s_%03d%s", (int)(n - 4), w->base, k, w->base + n - 4);
}

static void free_writer(hy_video_writer *w) {
    if (w->sws) FF(sws_freeContext)(w->sws);
    if (w->frame) FF(av_frame_free)(&w->frame);
    if (w->pkt) FF(av_packet_free)(&w->pkt);
    if (w->stage) FF(av_free)(w->stage);
    hy__free(w->base);
    hy__free(w->path);
    hy__free(w);
}

hy_status hy_video_writer_open(const char *path, int width, int height, const hy_video_writer_params *p,
                               hy_video_writer **out) {
    if (!out) return hy__error(HY_ERR_INVALID_ARG, "video writer: out is NULL");
    *out = NULL;
    if (!path || !*path) return hy__error(HY_ERR_INVALID_ARG, "video writer: no path");
    size_t n = strlen(path);
    if (n < 5 || strcasecmp(path + n - 4, ".mp4") != 0 || path[n - 5] == '/')
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: the output must be an .mp4 file", path);
    if (!p) return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: params with the frame rate are required", path);
    if (width <= 0 || height <= 0 || width > MAX_SIDE || height > MAX_SIDE)
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: frame size %dx%d (1..%d per side)", path, width, height,
                         MAX_SIDE);
    if (!(p->fps > 0 && p->fps <= 1000))
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: frame rate %g fps (0 < fps <= 1000)", path, p->fps);
    if (p->crf < 0 || p->crf > 51)
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: crf %d (0..51)", path, p->crf);
    if (!(p->segment_s >= 0 && p->segment_s < 1e9))
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: segment length %g s (0 = one file, else > 0)", path,
                         p->segment_s);
    hy_status st = hy__ff_load();
    if (st != HY_OK) return hy__error_prefix(st, "video writer: %s", path);

    hy_video_writer *w = hy__calloc(1, sizeof *w);
    if (!w) return hy__error(HY_ERR_NOMEM, "video writer: out of memory");
    w->seg.fd = -1;
    w->p = *p;
    w->width = width;
    w->height = height;
    w->enc_width = width + (width & 1);
    w->enc_height = height + (height & 1);
    /* 65535 bounds numerator and denominator: 30000/1001 survives, mpeg4 takes the time base */
    w->fps = FF(av_d2q)(p->fps, 65535);
    w->base = hy__strdup(path);
    w->path = hy__malloc(n + 16);
    if (!w->base || !w->path) goto nomem;
    if (p->segment_s > 0)
        segment_path(w, 0);
    else
        memcpy(w->path, path, n + 1);

    w->codec = FF(avcodec_find_encoder_by_name)("libx264");
    w->x264 = w->codec != NULL;
    if (!w->codec) {
        w->codec = FF(avcodec_find_encoder_by_name)("mpeg4");
        if (!w->codec) {
            st = hy__error(HY_ERR_UNSUPPORTED, "video writer: %s: FFmpeg has neither the libx264 nor the mpeg4 encoder",
                           path);
            goto fail;
        }
        hy__log(HY_LOG_WARN, "video writer: FFmpeg has no libx264 encoder; writing MPEG-4 part 2 to %s", w->path);
    }

    w->sws = FF(sws_getContext)(w->enc_width, w->enc_height, AV_PIX_FMT_RGB24, w->enc_width, w->enc_height,
                                AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
    w->frame = FF(av_frame_alloc)();
    w->pkt = FF(av_packet_alloc)();
    if (!w->sws || !w->frame || !w->pkt) goto nomem;
    w->frame->format = AV_PIX_FMT_YUV420P;
    w->frame->width = w->enc_width;
    w->frame->height = w->enc_height;
    if (FF(av_frame_get_buffer)(w->frame, 0) < 0) goto nomem;
    w->stage_stride = (3 * w->enc_width + 63) & ~63;
    size_t stage_size = (size_t)w->stage_stride * (size_t)w->enc_height + 64;
    w->stage = FF(av_malloc)(stage_size);
    if (!w->stage) goto nomem;
    memset(w->stage, 0, stage_size);

    st = seg_open(w, w->path);
    if (st != HY_OK) goto fail;
    w->open = 1;
    *out = w;
    return HY_OK;

nomem:
    st = hy__error(HY_ERR_NOMEM, "video writer: %s: out of memory", path);
fail:
    free_writer(w);
    return st;
}

/* img -> stage, the last column / row repeated into the padding of an odd size. */
static void stage_frame(hy_video_writer *w, const hy_image *img) {
    size_t row = 3 * (size_t)w->width, stride = (size_t)w->stage_stride;
    for (int y = 0; y < w->height; y++) {
        uint8_t *d = w->stage + (size_t)y * stride;
        memcpy(d, img->data + (size_t)y * row, row);
        if (w->width & 1) memcpy(d + row, d + row - 3, 3);
    }
    if (w->height & 1)
        memcpy(w->stage + (size_t)w->height * stride, w->stage + (size_t)(w->height - 1) * stride,
               3 * (size_t)w->enc_width);
}

/* Encodes img at writer tick `tick` (> every earlier frame's). */
static hy_status write_tick(hy_video_writer *w, const hy_image *img, int64_t tick) {
    if (!w || !img || !img->data) return hy__error(HY_ERR_INVALID_ARG, "video writer: NULL writer or image");
    if (img->width != w->width || img->height != w->height)
        return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: frame is %dx%d, the video %dx%d", w->path, img->width,
                         img->height, w->width, w->height);
    hy_status st;
    if (w->p.segment_s > 0) {
        /* segment of this frame; 1e-9 absorbs rounding at exact boundaries (frame 10 at 10 fps, 1 s) */
        double t = (double)tick * w->fps.den / w->fps.num;
        int64_t k = (int64_t)floor(t / w->p.segment_s + 1e-9);
        if (w->open && k > w->seg_slot) {
            st = seg_finish(w);
            w->seg_index++;
            w->seg_slot = k;
            segment_path(w, w->seg_index);
            if (st != HY_OK) return st;
        }
    }
    if (!w->open) {
        st = seg_open(w, w->path);
        if (st != HY_OK) return st;
        w->open = 1;
        w->seg.first_tick = tick;
    }

    int e = FF(av_frame_make_writable)(w->frame); /* new buffers only if the encoder kept the old ones */
    if (e < 0) return hy__error(HY_ERR_NOMEM, "video writer: %s: %s", w->path, HY_FF_ERR(e));
    stage_frame(w, img);
    const uint8_t *src[4] = {w->stage, NULL, NULL, NULL};
    const int src_stride[4] = {w->stage_stride, 0, 0, 0};
    FF(sws_scale)(w->sws, src, src_stride, 0, w->enc_height, w->frame->data, w->frame->linesize);
    w->frame->pts = tick - w->seg.first_tick;
    st = encode(w, w->frame);
    if (st != HY_OK) return st;
    w->seg.frames++;
    w->frames++;
    w->next_tick = tick + 1;
    return HY_OK;
}

hy_status hy_video_writer_write(hy_video_writer *w, const hy_image *img) {
    if (w && !w->have_t0) w->have_t0 = 1, w->t0 = 0;
    return write_tick(w, img, w ? w->next_tick : 0);
}

hy_status hy_video_writer_write_at(hy_video_writer *w, const hy_image *img, double t) {
    if (!w) return hy__error(HY_ERR_INVALID_ARG, "video writer: NULL writer or image");
    if (!isfinite(t)) return hy__error(HY_ERR_INVALID_ARG, "video writer: %s: frame time %g s", w->path, t);
    if (!w->have_t0) w->have_t0 = 1, w->t0 = t;
    double ticks = (t - w->t0) * w->fps.num / w->fps.den;
    int64_t tick = w->next_tick;
    if (ticks > (double)tick + 0.5) tick = ticks < 9e15 ? (int64_t)llround(ticks) : tick;
    return write_tick(w, img, tick);
}

hy_status hy_video_writer_close(hy_video_writer *w) {
    if (!w) return HY_OK;
    hy_status st = w->open ? seg_finish(w) : HY_OK;
    free_writer(w);
    return st;
}

const char *hy_video_writer_path(const hy_video_writer *w) { return w ? w->path : NULL; }

int64_t hy_video_writer_frames(const hy_video_writer *w) { return w ? w->frames : 0; }
