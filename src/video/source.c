/* Video sources (hy_stream_*): FFmpeg demux + decode on a thread of their own,
 * frames converted to RGB24 (libswscale, the ffmpeg CLI's own scaler flags)
 * into a ring of images allocated at open; the consumer reads them in order
 * (files) or newest-first with drops (live).
 *
 * Untrusted input: every open is bounded (allow-lists of protocols, demuxers
 * and decoders; 5 MB / 5 s of probing; 16 streams; frame size checked before
 * anything frame-sized is allocated; an I/O deadline and the interrupt flag in
 * FFmpeg's interrupt callback). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "hotyolo/stream.h"
#include "image/image.h"
#include "video/ff.h"
#include "video/video.h"

/* Scaler flags of the ffmpeg CLI's auto-inserted scale filter (fftools sets
 * "flags=bicubic"): frames are then byte-identical to `ffmpeg -i V -pix_fmt
 * rgb24 f%04d.png` (tests/test_stream.c). At the same size the kernel does not
 * matter (yuv2rgb fast path); SWS_ACCURATE_RND would (different pixels, the
 * test fails with it). */
#define HY_SWS_FLAGS SWS_BICUBIC

#define PROBESIZE "5000000"       /* bytes */
#define ANALYZEDURATION "5000000" /* microseconds */
#define MAX_STREAMS "16"
#define RING_BUDGET ((size_t)256 << 20) /* bytes of RGB frames in the ring */
#define POLL_NS 20000000L               /* 20 ms: how often blocked waits look at the interrupt flag */

/* Demuxers a source may be read with (FFmpeg short names; "mov" is
 * mov,mp4,m4a,3gp,3g2,mj2, "matroska" is matroska,webm). Images (image2,
 * *_pipe) are not videos. */
#define DEMUXERS_FILE                                                                                        \
    "mov,matroska,avi,mpegts,flv,asf,mpeg,mpegvideo,gif,mjpeg,mpjpeg,h264,hevc,"                             \
    "m4v,ivf"
#define DEMUXERS_NET DEMUXERS_FILE ",rtsp,rtp,sdp,hls"
#define DEMUXERS_CAMERA "v4l2"
/* Video decoders a source may use. */
static const char DECODERS[] = "h264,hevc,mpeg4,mjpeg,vp8,vp9,libdav1d,av1,mpeg1video,mpeg2video,gif,h263,"
                               "h263p,"
                               "flv,msmpeg4v1,msmpeg4v2,msmpeg4,wmv1,wmv2,wmv3,vc1,rawvideo";

enum { SLOT_FREE, SLOT_READY, SLOT_HELD, SLOT_FILLING };

typedef struct slot {
    hy_image *img;
    int64_t index;
    double pts, decode_ms, t_out; /* t_out: hy__now_ms when it left the decoder */
} slot;

struct hy_stream {
    char *source;
    hy_stream_kind kind;
    hy_stream_params p;
    int live;
    char protocols[128];
    const char *demuxers;
    /* memory source (fuzzing) */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    /* FFmpeg state: owned by the decoding thread once it runs */
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt;
    int vstream;
    AVRational tb;
    int64_t start_pts;
    double deadline_ms; /* I/O deadline (network) for the interrupt callback; 0 =
                           none */
    /* info */
    int width, height;
    double fps, duration_s;
    int64_t n_frames;
    char codec[32], format[64];
    /* ring: queue waiting + 1 held by the consumer */
    slot *slots;
    int n_slots;
    int *fifo; /* ready slot ids, oldest first: fifo[(head + i) % n_slots] */
    int fifo_head, fifo_count;
    int held; /* slot the consumer holds, -1 none */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    atomic_int stop;      /* hy_stream_interrupt / close / max_frames */
    int done;             /* decoder finished: end_status says how (under mu) */
    hy_status end_status; /* HY_END or an error */
    char end_error[640];
    hy_stream_stats st;
    double latency_sum, decode_sum;
    int64_t n_latency, n_converted;
    int64_t decoded; /* frames out of the decoder (index of the next) */
};

/* ---- names ----------------------------------------------------------------------------------- */

static const char *const NET_SCHEMES[] = {"rtsp", "rtmp", "rtmps", "http", "https",
                                          "udp",  "tcp",  "rtp",   "srt"};
/* Protocols each scheme needs (same order). */
static const char *const NET_PROTOCOLS[] = {"rtsp,rtp,srtp,tcp,udp,tls",
                                            "rtmp,tcp",
                                            "rtmps,rtmp,tcp,tls",
                                            "http,tcp,hls,crypto,httpproxy",
                                            "https,http,tls,tcp,hls,crypto,httpproxy",
                                            "udp",
                                            "tcp",
                                            "rtp,udp",
                                            "srt"};

static int scheme_index(const char *s) {
    const char *c = strstr(s, "://");
    if (!c) return -1;
    size_t n = (size_t)(c - s);
    for (size_t i = 0; i < HY_ARRAY_LEN(NET_SCHEMES); i++)
        if (strlen(NET_SCHEMES[i]) == n && !strncasecmp(s, NET_SCHEMES[i], n)) return (int)i;
    return -1;
}

static int all_digits(const char *s) {
    if (!*s || strlen(s) > 6) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

hy_stream_kind hy_stream_kind_of(const char *source) {
    if (!source) return HY_STREAM_FILE;
    if (scheme_index(source) >= 0) return HY_STREAM_NETWORK;
    if (!strncmp(source, "/dev/video", 10) || all_digits(source)) return HY_STREAM_CAMERA;
    return HY_STREAM_FILE;
}

int hy_stream_is_video_path(const char *path) {
    static const char *const ext[] = {"asf", "avi",  "gif", "m4v", "mkv", "mov",
                                      "mp4", "mpeg", "mpg", "ts",  "wmv", "webm"};
    if (!path) return 0;
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(ext); i++)
        if (!strcasecmp(dot + 1, ext[i])) return 1;
    return 0;
}

hy_stream_params hy_stream_default_params(void) {
    hy_stream_params p = {.vid_stride = 1,
                          .live = -1,
                          .queue = 0,
                          .reconnect = 0,
                          .reconnect_timeout_s = 60,
                          .timeout_s = 10,
                          .max_width = 4096,
                          .max_height = 4096,
                          .max_frames = 0};
    return p;
}

/* ---- FFmpeg callbacks ------------------------------------------------------------------------ */

static int interrupt_cb(void *opaque) {
    hy_stream *s = opaque;
    if (atomic_load(&s->stop)) return 1;
    return s->deadline_ms > 0 && hy__now_ms() > s->deadline_ms;
}

static void arm_deadline(hy_stream *s) {
    s->deadline_ms =
        s->kind == HY_STREAM_NETWORK && s->p.timeout_s > 0 ? hy__now_ms() + s->p.timeout_s * 1e3 : 0;
}

static int mem_read(void *opaque, uint8_t *buf, int n) {
    hy_stream *s = opaque;
    size_t left = s->mem_len - s->mem_pos;
    if (!left) return AVERROR_EOF;
    size_t k = HY_MIN(left, (size_t)n);
    memcpy(buf, s->mem + s->mem_pos, k);
    s->mem_pos += k;
    return (int)k;
}

static int64_t mem_seek(void *opaque, int64_t off, int whence) {
    hy_stream *s = opaque;
    if (whence & AVSEEK_SIZE) return (int64_t)s->mem_len;
    int64_t base = (whence & 3) == SEEK_CUR   ? (int64_t)s->mem_pos
                   : (whence & 3) == SEEK_END ? (int64_t)s->mem_len
                                              : 0;
    if ((whence & 3) != SEEK_SET && (whence & 3) != SEEK_CUR && (whence & 3) != SEEK_END)
        return AVERROR(EINVAL);
    int64_t pos = base + off;
    if (pos < 0 || pos > (int64_t)s->mem_len) return AVERROR(EINVAL);
    s->mem_pos = (size_t)pos;
    return pos;
}

/* ---- opening --------------------------------------------------------------------------------- */

static int on_list(const char *name, const char *list) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* 1 if any of a comma-separated list of names is on list. */
static int on_list_any(const char *names, const char *list) {
    char one[64];
    for (const char *p = names; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        snprintf(one, sizeof one, "%.*s", (int)HY_MIN(k, sizeof one - 1), p);
        if (on_list(one, list)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Names what a file's first bytes look like to FFmpeg (for "not a video"
 * messages). */
static const char *probe_file(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t head[4096 + AVPROBE_PADDING_SIZE];
    memset(head, 0, sizeof head);
    size_t k = fread(head, 1, 4096, f);
    fclose(f);
    AVProbeData pd = {.filename = "", .buf = head, .buf_size = (int)k, .mime_type = NULL};
    const AVInputFormat *fmt = FF(av_probe_input_format)(&pd, 1);
    if (!fmt) return NULL;
    snprintf(buf, n, "%s", fmt->name);
    return buf;
}

static hy_status open_error(hy_stream *s, int ret) {
    const char *src = s->source;
    if (atomic_load(&s->stop)) return hy__error(HY_ERR_IO, "%s: interrupted", src);
    if (ret == AVERROR_EXIT && s->deadline_ms > 0)
        return hy__error(HY_ERR_IO, "%s: unreachable: no answer within %g s", src, s->p.timeout_s);
    const char *why = HY_FF_ERR(ret);
    if (s->kind == HY_STREAM_CAMERA) {
        if (ret == AVERROR(ENOENT) || ret == AVERROR(ENODEV) || ret == AVERROR(ENXIO))
            return hy__error(HY_ERR_NOT_FOUND, "%s: camera missing (%s)", src, why);
        return hy__error(HY_ERR_IO, "%s: cannot open camera: %s", src, why);
    }
    if (s->kind == HY_STREAM_NETWORK) {
        if (ret == AVERROR_INVALIDDATA || ret == AVERROR(EINVAL))
            return hy__error(HY_ERR_FORMAT, "%s: not a video stream (%s)", src, why);
        return hy__error(HY_ERR_IO, "%s: unreachable: %s", src, why);
    }
    if (ret == AVERROR(ENOENT)) return hy__error(HY_ERR_NOT_FOUND, "%s: no such file", src);
    if (ret == AVERROR(EACCES)) return hy__error(HY_ERR_IO, "%s: permission denied", src);
    char name[64];
    const char *probed = s->mem ? NULL : probe_file(s->source, name, sizeof name);
    if (probed && !on_list_any(probed, s->demuxers))
        return hy__error(HY_ERR_FORMAT, "%s: not a video (FFmpeg reads it as '%s', not a video container)",
                         src, probed);
    if (probed && !strncmp(probed, "mov", 3))
        return hy__error(HY_ERR_FORMAT,
                         "%s: not a video: MP4/MOV data that cannot be read (%s; a "
                         "truncated MP4 lacks "
                         "its index, the moov atom)",
                         src, why);
    return hy__error(HY_ERR_FORMAT, "%s: not a video (%s)", src, why);
}

static void close_input(hy_stream *s) {
    if (s->dec) FF(avcodec_free_context)(&s->dec);
    if (s->fmt) {
        AVIOContext *pb = s->mem ? s->fmt->pb : NULL;
        FF(avformat_close_input)(&s->fmt);
        if (pb) {
            FF(av_freep)(&pb->buffer);
            FF(avio_context_free)(&pb);
        }
    }
}

/* Opens the container and the decoder of its best video stream (s->fmt, s->dec,
 * s->vstream); sets the frame size (checked against the limits) and the timing.
 * Errors name the source. */
static hy_status open_input(hy_stream *s) {
    hy_status st = HY_OK;
    AVDictionary *opts = NULL, *dopts = NULL;
    AVIOContext *pb = NULL;
    const AVInputFormat *ifmt = NULL;
    char url[4200];
    const char *name = s->source;
    int ret;

    s->fmt = FF(avformat_alloc_context)();
    if (!s->fmt) return hy__error(HY_ERR_NOMEM, "%s: out of memory", s->source);
    s->fmt->interrupt_callback.callback = interrupt_cb;
    s->fmt->interrupt_callback.opaque = s;
    if (s->mem) {
        s->mem_pos = 0;
        uint8_t *buf = FF(av_malloc)(4096);
        if (buf) pb = FF(avio_alloc_context)(buf, 4096, 0, s, mem_read, NULL, mem_seek);
        if (!pb) {
            FF(av_free)(buf);
            FF(avformat_free_context)(s->fmt);
            s->fmt = NULL;
            return hy__error(HY_ERR_NOMEM, "%s: out of memory", s->source);
        }
        s->fmt->pb = pb;
        s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
        name = "";
    } else if (s->kind == HY_STREAM_CAMERA) {
        ifmt = FF(av_find_input_format)("v4l2");
        if (!ifmt) {
            FF(avformat_free_context)(s->fmt);
            s->fmt = NULL;
            return hy__error(HY_ERR_UNSUPPORTED, "%s: this FFmpeg has no V4L2 input (cameras)", s->source);
        }
        if (all_digits(s->source)) {
            snprintf(url, sizeof url, "/dev/video%s", s->source);
            name = url;
        }
    } else if (s->kind == HY_STREAM_FILE) {
        /* "file:" keeps a name with a colon from being read as a protocol */
        snprintf(url, sizeof url, "file:%s", s->source);
        name = url;
    }
    FF(av_dict_set)(&opts, "protocol_whitelist", s->protocols, 0);
    FF(av_dict_set)(&opts, "format_whitelist", s->demuxers, 0);
    FF(av_dict_set)(&opts, "codec_whitelist", DECODERS, 0);
    FF(av_dict_set)(&opts, "probesize", PROBESIZE, 0);
    FF(av_dict_set)(&opts, "analyzeduration", ANALYZEDURATION, 0);
    FF(av_dict_set)(&opts, "max_streams", MAX_STREAMS, 0);
    if (s->kind == HY_STREAM_NETWORK) {
        char us[32];
        snprintf(us, sizeof us, "%lld", (long long)(s->p.timeout_s * 1e6));
        FF(av_dict_set)(&opts, "rw_timeout", us, 0);
    }
    arm_deadline(s);
    ret = FF(avformat_open_input)(&s->fmt, name, ifmt, &opts); /* frees s->fmt on failure */
    FF(av_dict_free)(&opts);
    if (ret < 0) {
        if (pb) {
            FF(av_freep)(&pb->buffer);
            FF(avio_context_free)(&pb);
        }
        return open_error(s, ret);
    }
    arm_deadline(s);
    ret = FF(avformat_find_stream_info)(s->fmt, NULL);
    if (ret < 0) {
        st = atomic_load(&s->stop) || s->kind == HY_STREAM_NETWORK
                 ? open_error(s, ret)
                 : hy__error(HY_ERR_FORMAT, "%s: not a video (%s)", s->source, HY_FF_ERR(ret));
        goto fail;
    }
    const AVCodec *codec = NULL;
    s->vstream = FF(av_find_best_stream)(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (s->vstream < 0 || !codec) {
        char list[256] = "";
        size_t n = 0;
        for (unsigned i = 0; i < s->fmt->nb_streams && n + 40 < sizeof list; i++) {
            const AVCodecParameters *cp = s->fmt->streams[i]->codecpar;
            const char *type = cp->codec_type == AVMEDIA_TYPE_AUDIO      ? "audio"
                               : cp->codec_type == AVMEDIA_TYPE_VIDEO    ? "video"
                               : cp->codec_type == AVMEDIA_TYPE_SUBTITLE ? "subtitle"
                               : cp->codec_type == AVMEDIA_TYPE_DATA     ? "data"
                                                                         : "other";
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s (%s)", i ? ", " : "", type,
                                  FF(avcodec_get_name)(cp->codec_id));
        }
        if (s->vstream >= 0)
            st = hy__error(HY_ERR_UNSUPPORTED, "%s: no decoder for its video stream (%s)", s->source,
                           FF(avcodec_get_name)(s->fmt->streams[s->vstream]->codecpar->codec_id));
        else
            st = hy__error(HY_ERR_FORMAT, "%s: no video stream (it has %u: %s)", s->source,
                           s->fmt->nb_streams, s->fmt->nb_streams ? list : "none");
        goto fail;
    }
    if (!on_list(codec->name, DECODERS)) {
        st = hy__error(HY_ERR_UNSUPPORTED, "%s: video codec '%s' is not on hotyolo's list of decoders",
                       s->source, codec->name);
        goto fail;
    }
    AVStream *vs = s->fmt->streams[s->vstream];
    int w = vs->codecpar->width, h = vs->codecpar->height;
    if (w <= 0 || h <= 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: video stream without a frame size", s->source);
        goto fail;
    }
    if (w > s->p.max_width || h > s->p.max_height) {
        st = hy__error(HY_ERR_UNSUPPORTED, "%s: frame size %dx%d exceeds the limit %dx%d", s->source, w, h,
                       s->p.max_width, s->p.max_height);
        goto fail;
    }
    s->dec = FF(avcodec_alloc_context3)(codec);
    if (!s->dec) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", s->source);
        goto fail;
    }
    if ((ret = FF(avcodec_parameters_to_context)(s->dec, vs->codecpar)) < 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: bad video stream parameters (%s)", s->source, HY_FF_ERR(ret));
        goto fail;
    }
    s->dec->pkt_timebase = vs->time_base;
    char mp[32];
    snprintf(mp, sizeof mp, "%lld", (long long)s->p.max_width * s->p.max_height);
    FF(av_dict_set)(&dopts, "threads", "1", 0); /* the cores are for inference */
    FF(av_dict_set)(&dopts, "max_pixels", mp, 0);
    FF(av_dict_set)(&dopts, "codec_whitelist", DECODERS, 0);
    ret = FF(avcodec_open2)(s->dec, codec, &dopts);
    FF(av_dict_free)(&dopts);
    if (ret < 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: cannot open the %s decoder (%s)", s->source, codec->name,
                       HY_FF_ERR(ret));
        goto fail;
    }
    s->width = w;
    s->height = h;
    s->tb = vs->time_base;
    s->start_pts = vs->start_time != AV_NOPTS_VALUE ? vs->start_time : 0;
    snprintf(s->codec, sizeof s->codec, "%s", codec->name);
    snprintf(s->format, sizeof s->format, "%s", s->fmt->iformat->name);
    AVRational fr =
        vs->avg_frame_rate.num > 0 && vs->avg_frame_rate.den > 0 ? vs->avg_frame_rate : vs->r_frame_rate;
    s->fps = fr.num > 0 && fr.den > 0 ? (double)fr.num / fr.den : 0;
    s->duration_s = -1;
    if (vs->duration != AV_NOPTS_VALUE && vs->duration > 0)
        s->duration_s = vs->duration * av_q2d(vs->time_base);
    else if (s->fmt->duration != AV_NOPTS_VALUE && s->fmt->duration > 0)
        s->duration_s = (double)s->fmt->duration / AV_TIME_BASE;
    s->n_frames = -1;
    if (vs->nb_frames > 0)
        s->n_frames = vs->nb_frames;
    else if (s->duration_s > 0 && s->fps > 0)
        s->n_frames = (int64_t)(s->duration_s * s->fps + 0.5);
    if (s->kind != HY_STREAM_FILE) s->duration_s = -1, s->n_frames = -1;
    return HY_OK;
fail:
    close_input(s);
    return st;
}

/* Decoder warm-up before the stream is handed out (local mp4 / mkv files, whose sample index
 * makes a seek back to the start exact): the first packets are decoded up to the first frame
 * (the decoder's lazy set-up, its frame pools, the reorder delay of B-frames) and converted once
 * (swscale's buffers), then the input is put back at its start and the decoder flushed (its
 * pools stay): frame 0 then costs what frame 100 does. Anything else starts cold. A seek that
 * fails reopens the input (correct, just not warm). */
static hy_status warm_decoder(hy_stream *s) {
    if (s->kind != HY_STREAM_FILE || !s->fmt->pb || !(s->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL) ||
        !(on_list_any(s->fmt->iformat->name, "mov,matroska")))
        return HY_OK;
    int got = 0;
    for (int n = 0; n < 64 && !got; n++) { /* bounded: the reorder delay is a few packets */
        arm_deadline(s);
        if (FF(av_read_frame)(s->fmt, s->pkt) < 0) break;
        if (s->pkt->stream_index == s->vstream && FF(avcodec_send_packet)(s->dec, s->pkt) >= 0)
            got = FF(avcodec_receive_frame)(s->dec, s->frame) >= 0;
        FF(av_packet_unref)(s->pkt);
    }
    if (got && s->sws && s->frame->width == s->width && s->frame->height == s->height &&
        s->frame->format == s->sws_fmt) {
        uint8_t *dst[4] = {s->slots[0].img->data, NULL, NULL, NULL};
        int dst_stride[4] = {3 * s->width, 0, 0, 0};
        FF(sws_scale)(s->sws, (const uint8_t *const *)s->frame->data, s->frame->linesize, 0, s->height, dst,
                      dst_stride);
    }
    FF(av_frame_unref)(s->frame);
    if (FF(av_seek_frame)(s->fmt, s->vstream, s->start_pts, AVSEEK_FLAG_BACKWARD) >= 0) {
        FF(avcodec_flush_buffers)(s->dec);
        return HY_OK;
    }
    close_input(s);
    return open_input(s);
}

/* ---- decoding thread ------------------------------------------------------------------------- */

static int sleep_interruptible(hy_stream *s, double ms) {
    double end = hy__now_ms() + ms;
    while (!atomic_load(&s->stop)) {
        double left = end - hy__now_ms();
        if (left <= 0) return 0;
        struct timespec ts = {0, (long)(HY_MIN(left, 20.0) * 1e6)};
        nanosleep(&ts, NULL);
    }
    return 1;
}

static void cond_wait_poll(hy_stream *s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += POLL_NS;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* The end of the decoding thread: HY_END or an error (the first one stands). */
static void finish(hy_stream *s, hy_status st, const char *msg) {
    pthread_mutex_lock(&s->mu);
    if (s->done) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->done = 1;
    s->end_status = st;
    size_t n = msg ? HY_MIN(strlen(msg), sizeof s->end_error - 1) : 0;
    if (n) memcpy(s->end_error, msg, n);
    s->end_error[n] = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* A free slot for the producer (-1: stopping). Live: the oldest waiting frame
 * is dropped. */
static int take_slot(hy_stream *s) {
    int id = -1;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (atomic_load(&s->stop)) break;
        if (s->fifo_count < s->n_slots - 1) { /* at most queue waiting */
            for (int i = 0; i < s->n_slots && id < 0; i++) {
                int used = i == s->held;
                for (int k = 0; k < s->fifo_count && !used; k++)
                    used = s->fifo[(s->fifo_head + k) % s->n_slots] == i;
                if (!used) id = i;
            }
            if (id >= 0) break;
        }
        if (s->live && s->fifo_count > 0) {
            id = s->fifo[s->fifo_head];
            s->fifo_head = (s->fifo_head + 1) % s->n_slots;
            s->fifo_count--;
            s->st.dropped++;
            break;
        }
        cond_wait_poll(s);
    }
    s->st.queued = s->fifo_count;
    pthread_mutex_unlock(&s->mu);
    return id;
}

/* CPU time of the calling (decoding) thread, ms. A frame's decode_ms is the
 * decoding thread's CPU time for it (demux + decode + conversion), so a frame
 * decoded while the engine warms up on the same cores is not charged for the
 * time it was preempted; waiting for a free slot costs no CPU. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Converts s->frame (index idx) into a ring slot and queues it. 0, or -1 with a
 * fatal error set. */
static int deliver(hy_stream *s, int64_t idx, double t0) {
    AVFrame *f = s->frame;
    char msg[256];
    if (f->width <= 0 || f->height <= 0 || f->width > s->p.max_width || f->height > s->p.max_height) {
        snprintf(msg, sizeof msg, "%s: frame %lld: size %dx%d exceeds the limit %dx%d", s->source,
                 (long long)idx, f->width, f->height, s->p.max_width, s->p.max_height);
        finish(s, HY_ERR_UNSUPPORTED, msg);
        return -1;
    }
    if (!s->sws || f->width != s->sws_w || f->height != s->sws_h || f->format != s->sws_fmt) {
        if (s->sws && (f->width != s->sws_w || f->height != s->sws_h))
            hy__log(HY_LOG_WARN, "%s: frame %lld: frame size changed from %dx%d to %dx%d", s->source,
                    (long long)idx, s->sws_w, s->sws_h, f->width, f->height);
        FF(sws_freeContext)(s->sws);
        s->sws = FF(sws_getContext)(f->width, f->height, f->format, f->width, f->height, AV_PIX_FMT_RGB24,
                                    HY_SWS_FLAGS, NULL, NULL, NULL);
        s->sws_w = f->width, s->sws_h = f->height, s->sws_fmt = f->format;
        if (!s->sws) {
            const char *pf = FF(av_get_pix_fmt_name)(f->format);
            snprintf(msg, sizeof msg, "%s: cannot convert %s frames to RGB", s->source, pf ? pf : "unknown");
            finish(s, HY_ERR_UNSUPPORTED, msg);
            return -1;
        }
    }
    double t_wait = cpu_ms();
    int id = take_slot(s);
    if (id < 0) return 0;
    double t1 = cpu_ms();
    slot *sl = &s->slots[id];
    if (sl->img->width != f->width || sl->img->height != f->height) { /* size changed: rebuild this slot */
        hy_image *img;
        if (hy__image_create(f->width, f->height, &img) != HY_OK) {
            snprintf(msg, sizeof msg, "%s: frame %lld: %s", s->source, (long long)idx, hy_last_error());
            finish(s, HY_ERR_NOMEM, msg);
            return -1;
        }
        hy_image_free(sl->img);
        sl->img = img;
    }
    uint8_t *dst[4] = {sl->img->data, NULL, NULL, NULL};
    int dst_stride[4] = {3 * f->width, 0, 0, 0};
    FF(sws_scale)
    (s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    double t2 = cpu_ms();
    int64_t pts = f->best_effort_timestamp;
    sl->index = idx;
    sl->pts = pts != AV_NOPTS_VALUE ? (pts - s->start_pts) * av_q2d(s->tb) : (s->fps > 0 ? idx / s->fps : 0);
    sl->decode_ms = (t_wait - t0) + (t2 - t1);
    sl->t_out = hy__now_ms();
    pthread_mutex_lock(&s->mu);
    s->fifo[(s->fifo_head + s->fifo_count) % s->n_slots] = id;
    s->fifo_count++;
    s->st.queued = s->fifo_count;
    s->decode_sum += sl->decode_ms;
    s->n_converted++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Takes every frame the decoder has ready. t0: when work on them began
 * (decode_ms). */
static int drain(hy_stream *s, double *t0) {
    for (;;) {
        int ret = FF(avcodec_receive_frame)(s->dec, s->frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0) {
            hy__log(HY_LOG_WARN, "%s: frame %lld: corrupt (%s), skipped", s->source, (long long)s->decoded,
                    HY_FF_ERR(ret));
            pthread_mutex_lock(&s->mu);
            s->st.corrupt++;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        int64_t idx = s->decoded++;
        pthread_mutex_lock(&s->mu);
        s->st.decoded = s->decoded;
        pthread_mutex_unlock(&s->mu);
        if ((s->frame->flags & AV_FRAME_FLAG_CORRUPT) || s->frame->decode_error_flags) {
            hy__log(HY_LOG_WARN, "%s: frame %lld: corrupt (decoder flagged errors), skipped", s->source,
                    (long long)idx);
            pthread_mutex_lock(&s->mu);
            s->st.corrupt++;
            pthread_mutex_unlock(&s->mu);
            FF(av_frame_unref)(s->frame);
            continue;
        }
        int r = 0;
        if (idx % s->p.vid_stride) {
            pthread_mutex_lock(&s->mu);
            s->st.skipped++;
            pthread_mutex_unlock(&s->mu);
        } else {
            r = deliver(s, idx, *t0);
        }
        FF(av_frame_unref)(s->frame);
        *t0 = cpu_ms();
        if (r < 0 || atomic_load(&s->stop)) return -1;
    }
}

/* Reads to the end (or an error) of the open input: 0 at end of data, else the
 * error. */
static int pump(hy_stream *s) {
    double t0 = cpu_ms();
    for (;;) {
        if (atomic_load(&s->stop)) return AVERROR_EXIT;
        arm_deadline(s);
        int ret = FF(av_read_frame)(s->fmt, s->pkt);
        if (ret == AVERROR(EAGAIN)) {
            sleep_interruptible(s, 5);
            continue;
        }
        if (ret < 0) {
            FF(avcodec_send_packet)(s->dec, NULL); /* flush: the last frames */
            if (drain(s, &t0) < 0) return AVERROR_EXIT;
            FF(avcodec_flush_buffers)(s->dec);
            return ret == AVERROR_EOF ? 0 : ret;
        }
        if (s->pkt->stream_index == s->vstream) {
            int sr = FF(avcodec_send_packet)(s->dec, s->pkt);
            if (sr < 0 && sr != AVERROR(EAGAIN) && sr != AVERROR_EOF) {
                hy__log(HY_LOG_WARN, "%s: frame %lld: corrupt packet (%s), skipped", s->source,
                        (long long)s->decoded, HY_FF_ERR(sr));
                pthread_mutex_lock(&s->mu);
                s->st.corrupt++;
                pthread_mutex_unlock(&s->mu);
            }
            if (drain(s, &t0) < 0) {
                FF(av_packet_unref)(s->pkt);
                return AVERROR_EXIT;
            }
        }
        FF(av_packet_unref)(s->pkt);
    }
}

static void *decode_main(void *arg) {
    hy_stream *s = arg;
    char msg[600];
    for (;;) {
        int ret = pump(s);
        pthread_mutex_lock(&s->mu);
        int failed = s->done; /* a fatal frame error (deliver) */
        pthread_mutex_unlock(&s->mu);
        if (failed) return NULL;
        if (atomic_load(&s->stop)) {
            finish(s, HY_END, NULL);
            return NULL;
        }
        if (s->kind != HY_STREAM_NETWORK) {
            if (ret == 0 || s->kind == HY_STREAM_FILE) {
                /* a damaged file ends where FFmpeg can read no more */
                if (ret != 0)
                    hy__log(HY_LOG_WARN, "%s: read error after %lld frames (%s); ending", s->source,
                            (long long)s->decoded, HY_FF_ERR(ret));
                finish(s, HY_END, NULL);
            } else {
                snprintf(msg, sizeof msg, "%s: camera read error after %lld frames: %s", s->source,
                         (long long)s->decoded, HY_FF_ERR(ret));
                finish(s, HY_ERR_IO, msg);
            }
            return NULL;
        }
        const char *why = ret == 0                                    ? "end of stream"
                          : ret == AVERROR_EXIT && s->deadline_ms > 0 ? "no data within the timeout"
                                                                      : HY_FF_ERR(ret);
        if (!s->p.reconnect) {
            if (ret == 0) {
                hy__log(HY_LOG_WARN, "%s: stream ended after %lld frames", s->source, (long long)s->decoded);
                finish(s, HY_END, NULL);
            } else {
                snprintf(msg, sizeof msg, "%s: stream broke after %lld frames: %s", s->source,
                         (long long)s->decoded, why);
                finish(s, HY_ERR_IO, msg);
            }
            return NULL;
        }
        double delay = 0.5, lost = hy__now_ms();
        hy__log(HY_LOG_WARN, "%s: stream lost (%s) after %lld frames; reconnecting in %.1f s", s->source, why,
                (long long)s->decoded, delay);
        close_input(s);
        for (int attempt = 1;; attempt++) {
            if (sleep_interruptible(s, delay * 1e3)) {
                finish(s, HY_END, NULL);
                return NULL;
            }
            if (open_input(s) == HY_OK) {
                hy__log(HY_LOG_WARN, "%s: reconnected (attempt %d)", s->source, attempt);
                pthread_mutex_lock(&s->mu);
                s->st.reconnects++;
                pthread_mutex_unlock(&s->mu);
                break;
            }
            if (atomic_load(&s->stop)) {
                finish(s, HY_END, NULL);
                return NULL;
            }
            double gone = (hy__now_ms() - lost) / 1e3;
            if (s->p.reconnect_timeout_s > 0 && gone >= s->p.reconnect_timeout_s) {
                snprintf(msg, sizeof msg, "%s: gave up reconnecting after %.1f s (%s)", s->source, gone,
                         hy_last_error());
                finish(s, HY_ERR_IO, msg);
                return NULL;
            }
            delay = HY_MIN(delay * 2, 8.0);
            hy__log(HY_LOG_WARN, "%s: reconnect attempt %d failed (%s); next in %.1f s", s->source, attempt,
                    hy_last_error(), delay);
        }
    }
}

/* ---- public API ------------------------------------------------------------------------------ */

static hy_status stream_open(const char *source, const void *mem, size_t mem_len, const hy_stream_params *pp,
                             hy_stream **out) {
    if (!out) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_open: out is NULL");
    *out = NULL;
    if (!source || !*source) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_open: no source");
    hy_stream_params p = pp ? *pp : hy_stream_default_params();
    if (p.vid_stride < 1 || p.vid_stride > 1000000)
        return hy__error(HY_ERR_INVALID_ARG, "%s: vid_stride %d out of range (1..1000000)", source,
                         p.vid_stride);
    if (p.live < -1 || p.live > 1)
        return hy__error(HY_ERR_INVALID_ARG, "%s: live must be -1, 0 or 1", source);
    if (p.queue < 0 || p.queue > 64)
        return hy__error(HY_ERR_INVALID_ARG, "%s: queue %d out of range (1..64)", source, p.queue);
    if (p.max_width < 1 || p.max_height < 1 || p.max_width > HY_IMAGE_MAX_SIDE ||
        p.max_height > HY_IMAGE_MAX_SIDE ||
        (uint64_t)p.max_width * (uint64_t)p.max_height > HY_IMAGE_MAX_PIXELS)
        return hy__error(HY_ERR_INVALID_ARG, "%s: max frame size %dx%d out of range", source, p.max_width,
                         p.max_height);
    if (!(p.timeout_s > 0) || !(p.reconnect_timeout_s >= 0) || p.max_frames < 0)
        return hy__error(HY_ERR_INVALID_ARG, "%s: bad timeout_s, reconnect_timeout_s or max_frames", source);
    hy_stream_kind kind = mem ? HY_STREAM_FILE : hy_stream_kind_of(source);
    hy_status st = kind == HY_STREAM_CAMERA ? hy__ff_load_devices() : hy__ff_load();
    if (st) return hy__error_prefix(st, "%s", source);

    hy_stream *s = hy__calloc(1, sizeof *s);
    if (!s) return hy__error(HY_ERR_NOMEM, "%s: out of memory", source);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stop, 0);
    s->held = -1;
    s->kind = kind;
    s->p = p;
    s->mem = mem;
    s->mem_len = mem_len;
    s->live = p.live >= 0 ? p.live : kind != HY_STREAM_FILE;
    int queue = p.queue ? p.queue : s->live ? 1 : 8;
    s->source = hy__strdup(source);
    if (!s->source) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", source);
        goto fail;
    }
    if (mem) {
        snprintf(s->protocols, sizeof s->protocols, "none");
        s->demuxers = DEMUXERS_FILE;
    } else if (kind == HY_STREAM_NETWORK) {
        snprintf(s->protocols, sizeof s->protocols, "%s", NET_PROTOCOLS[scheme_index(source)]);
        s->demuxers = DEMUXERS_NET;
    } else {
        snprintf(s->protocols, sizeof s->protocols, "file");
        s->demuxers = kind == HY_STREAM_CAMERA ? DEMUXERS_CAMERA : DEMUXERS_FILE;
    }
    if ((st = open_input(s)) != HY_OK) goto fail;

    /* The ring is at most RING_BUDGET (but 2 frames: one waiting, one held), so
     * that a source declaring huge frames cannot make queue x frame size cost
     * gigabytes. */
    size_t frame_bytes = (size_t)s->width * (size_t)s->height * 3;
    int fit = (int)HY_MIN((size_t)65, HY_MAX((size_t)2, RING_BUDGET / frame_bytes));
    if (queue + 1 > fit) {
        hy__log(HY_LOG_INFO, "%s: queue %d -> %d frames (%dx%d frames; ring limited to %d MiB)", source,
                queue, fit - 1, s->width, s->height, (int)(RING_BUDGET >> 20));
        queue = fit - 1;
    }
    s->n_slots = queue + 1;
    s->slots = hy__calloc((size_t)s->n_slots, sizeof *s->slots);
    s->fifo = hy__calloc((size_t)s->n_slots, sizeof *s->fifo);
    s->pkt = FF(av_packet_alloc)();
    s->frame = FF(av_frame_alloc)();
    if (!s->slots || !s->fifo || !s->pkt || !s->frame) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", source);
        goto fail;
    }
    for (int i = 0; i < s->n_slots; i++)
        if ((st = hy__image_create(s->width, s->height, &s->slots[i].img)) != HY_OK) {
            st = hy__error_prefix(st, "%s", source);
            goto fail;
        }
    if (s->dec->pix_fmt != AV_PIX_FMT_NONE) {
        s->sws = FF(sws_getContext)(s->width, s->height, s->dec->pix_fmt, s->width, s->height,
                                    AV_PIX_FMT_RGB24, HY_SWS_FLAGS, NULL, NULL, NULL);
        s->sws_w = s->width, s->sws_h = s->height, s->sws_fmt = s->dec->pix_fmt;
    }
    if ((st = warm_decoder(s)) != HY_OK) goto fail;
    if (pthread_create(&s->thread, NULL, decode_main, s) != 0) {
        st = hy__error(HY_ERR_NOMEM, "%s: cannot start the decoding thread", source);
        goto fail;
    }
    s->thread_started = 1;
    *out = s;
    return HY_OK;
fail:
    hy_stream_close(s);
    return st;
}

hy_status hy_stream_open(const char *source, const hy_stream_params *p, hy_stream **out) {
    return stream_open(source, NULL, 0, p, out);
}

hy_status hy__stream_open_memory(const void *buf, size_t len, const hy_stream_params *p, hy_stream **out) {
    if (!buf || !len) {
        if (out) *out = NULL;
        return hy__error(HY_ERR_INVALID_ARG, "<memory>: empty buffer");
    }
    return stream_open("<memory>", buf, len, p, out);
}

hy_status hy_stream_get_info(const hy_stream *s, hy_stream_info *out) {
    if (!s || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_get_info: NULL argument");
    out->kind = s->kind;
    out->live = s->live;
    out->width = s->width;
    out->height = s->height;
    out->fps = s->fps;
    out->n_frames = s->n_frames;
    out->duration_s = s->duration_s;
    out->codec = s->codec;
    out->format = s->format;
    out->source = s->source;
    return HY_OK;
}

hy_status hy_stream_read(hy_stream *s, hy_frame *out) {
    if (!s || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_read: NULL argument");
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    s->held = -1; /* the previous frame goes back to the decoder */
    pthread_cond_broadcast(&s->cv);
    if (s->p.max_frames > 0 && s->st.delivered >= s->p.max_frames) atomic_store(&s->stop, 1);
    while (!s->fifo_count && !s->done && !atomic_load(&s->stop)) cond_wait_poll(s);
    if (atomic_load(&s->stop)) {
        pthread_mutex_unlock(&s->mu);
        return HY_END;
    }
    if (!s->fifo_count) {
        hy_status st = s->end_status;
        char msg[sizeof s->end_error];
        memcpy(msg, s->end_error, sizeof msg);
        pthread_mutex_unlock(&s->mu);
        return st == HY_END ? HY_END : hy__error(st, "%s", msg);
    }
    int id = s->fifo[s->fifo_head];
    s->fifo_head = (s->fifo_head + 1) % s->n_slots;
    s->fifo_count--;
    s->held = id;
    s->st.delivered++;
    s->st.queued = s->fifo_count;
    pthread_cond_broadcast(&s->cv);
    const slot *sl = &s->slots[id];
    out->image = sl->img;
    out->index = sl->index;
    out->pts = sl->pts;
    out->decode_ms = sl->decode_ms;
    out->latency_ms = 0;
    pthread_mutex_unlock(&s->mu);
    return HY_OK;
}

hy_status hy_stream_prepare(hy_stream *s, hy_context *c, int imgsz) {
    if (!s || !c) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_prepare: NULL argument");
    hy_shape shape;
    hy_status st = hy_model_input_shape(hy_context_model(c), s->width, s->height, imgsz, &shape);
    if (st) return hy__error_prefix(st, "%s", s->source);
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = &shape;
    pp.n_shapes = 1;
    pp.warmup_runs = 3;
    st = hy_model_prepare(c, &pp);
    return st ? hy__error_prefix(st, "%s", s->source) : HY_OK;
}

hy_status hy_stream_detect(hy_stream *s, hy_context *c, const hy_detect_params *p, hy_frame *frame,
                           hy_result **out) {
    if (!s || !c || !frame || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_detect: NULL argument");
    *out = NULL;
    hy_status st = hy_stream_read(s, frame);
    if (st != HY_OK) return st;
    hy_detect_params dp = p ? *p : hy_model_detect_params(hy_context_model(c));
    st = hy_detect(c, frame->image, &dp, out);
    if (st) return hy__error_prefix(st, "%s: frame %lld", s->source, (long long)frame->index);
    pthread_mutex_lock(&s->mu);
    frame->latency_ms = hy__now_ms() - s->slots[s->held].t_out;
    s->st.last_latency_ms = frame->latency_ms;
    s->latency_sum += frame->latency_ms;
    s->st.max_latency_ms = HY_MAX(s->st.max_latency_ms, frame->latency_ms);
    s->n_latency++;
    s->st.mean_latency_ms = s->latency_sum / (double)s->n_latency;
    pthread_mutex_unlock(&s->mu);
    return HY_OK;
}

hy_status hy_stream_get_stats(const hy_stream *cs, hy_stream_stats *out) {
    if (!cs || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_stream_get_stats: NULL argument");
    hy_stream *s = (hy_stream *)cs; /* the mutex only */
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->decode_ms_mean = s->n_converted > 0 ? s->decode_sum / (double)s->n_converted : 0;
    pthread_mutex_unlock(&s->mu);
    return HY_OK;
}

void hy_stream_interrupt(hy_stream *s) {
    if (s) atomic_store(&s->stop, 1); /* waiters poll it every 20 ms; FFmpeg's callback reads it */
}

void hy_stream_close(hy_stream *s) {
    if (!s) return;
    atomic_store(&s->stop, 1);
    if (s->thread_started) pthread_join(s->thread, NULL);
    close_input(s);
    if (s->pkt) FF(av_packet_free)(&s->pkt);
    if (s->frame) FF(av_frame_free)(&s->frame);
    if (s->sws) FF(sws_freeContext)(s->sws);
    if (s->slots)
        for (int i = 0; i < s->n_slots; i++) hy_image_free(s->slots[i].img);
    hy__free(s->slots);
    hy__free(s->fifo);
    hy__free(s->source);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    hy__free(s);
}
