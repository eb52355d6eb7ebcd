/*
 * hotyolo/stream.h — video files, network streams and cameras: decoded on their own thread
 * (FFmpeg's libavformat / libavcodec / libswscale, opened at run time), detected frame by
 * frame on a context that was prepared and warmed for the stream's frame size before the
 * first frame; annotated H.264 MP4 output (docs/video.md).
 *
 * Example: a line camera in twenty lines
 *   hy_context *c;
 *   hy_stream *s;
 *   if (hy_context_load("yolov8n.pt", NULL, NULL, &c) != HY_OK) return 1;
 *   if (hy_stream_open("rtsp://10.0.0.7/line1", NULL, &s) != HY_OK) return 1;
 *   hy_stream_prepare(s, c, 0);                  // plan + warm for the camera's size
 *   hy_detect_params dp = hy_model_detect_params(hy_context_model(c));
 *   hy_frame f;
 *   hy_result *r;
 *   hy_status st;
 *   while ((st = hy_stream_detect(s, c, &dp, &f, &r)) == HY_OK) {
 *       printf("frame %lld at %.3f s: %zu objects\n", (long long)f.index, f.pts, hy_result_count(r));
 *       hy_result_free(r);
 *   }
 *   if (st != HY_END) fprintf(stderr, "%s\n", hy_last_error());
 *   hy_stream_close(s);
 *   hy_context_free(c);
 *
 * Thread safety: one thread uses a hy_stream at a time (its decoder runs on a thread of its
 * own); hy_stream_interrupt may be called from any thread or a signal handler.
 */
#ifndef HOTYOLO_STREAM_H
#define HOTYOLO_STREAM_H

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hy_stream hy_stream;

typedef enum hy_stream_kind {
    HY_STREAM_FILE = 0,    /* a local file: every frame, in order, never dropped */
    HY_STREAM_NETWORK = 1, /* rtsp:// rtmp:// rtmps:// http(s):// udp:// tcp:// rtp:// srt:// */
    HY_STREAM_CAMERA = 2,  /* /dev/videoN, or a bare index N (V4L2) */
} hy_stream_kind;

/* What the source is (hy_stream_kind) from its name alone: a URL scheme on the allow-list,
 * /dev/video*, a bare index, else a file. Does not open anything. */
HY_API hy_stream_kind hy_stream_kind_of(const char *source);
/* 1 if a file name has a video extension Ultralytics takes (asf avi gif m4v mkv mov mp4 mpeg
 * mpg ts wmv webm, any case), else 0. */
HY_API int hy_stream_is_video_path(const char *path);

typedef struct hy_stream_params {
    int vid_stride;      /* hand out every Nth decoded frame (1 = all); default 1 */
    int live;            /* -1 (default): live for network and camera sources, not for files;
                            1: real-time policy: when detection is slower than the source the
                            oldest waiting frames are dropped (counted), so latency stays bounded;
                            0: every frame is handed out; decoding waits for the consumer */
    int queue;           /* decoded frames waiting for the consumer, 1..64; default 1 (live:
                            the consumer always gets the newest frame), 8 (files). Frames
                            are allocated once, at open */
    int reconnect;       /* network sources: when the stream breaks or ends, reopen it with
                            back-off (0.5 s doubling to 8 s), logged; default 0 */
    double reconnect_timeout_s; /* give up when no connection succeeded for this long;
                            default 60; 0 = never give up */
    double timeout_s;    /* network: open and read I/O timeout; default 10 */
    int max_width, max_height; /* refuse larger frames (before allocating); default 4096 each:
                            4K UHD and 12 MP machine-vision cameras fit; raise it for more */
    int64_t max_frames;  /* stop (HY_END) after this many frames handed out; 0 = no limit */
} hy_stream_params;
HY_API hy_stream_params hy_stream_default_params(void);

/* Opens a source: probes the container (bounded: 5 MB / 5 s of probing, 16 streams, an
 * allow-list of protocols, demuxers and video decoders), picks the best video stream, opens
 * its decoder and starts the decoding thread. The frame size and rate are known when it
 * returns. Errors name the source: no such file, not a video, no video stream, unreachable. */
HY_API hy_status hy_stream_open(const char *source, const hy_stream_params *p, hy_stream **out);

typedef struct hy_stream_info {
    hy_stream_kind kind;
    int live;             /* the policy in force (params.live resolved) */
    int width, height;    /* frame size (pixels) */
    double fps;           /* frame rate of the source (its average, else its nominal rate); 0 if unknown */
    int64_t n_frames;     /* frames in a file (container's count, else duration * fps); -1 if unknown */
    double duration_s;    /* -1 if unknown (live) */
    const char *codec;    /* decoder name ("h264", ...) */
    const char *format;   /* demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "mpegts", ...) */
    const char *source;   /* as given to hy_stream_open */
} hy_stream_info;
/* Pointers stay valid while the stream is open. */
HY_API hy_status hy_stream_get_info(const hy_stream *s, hy_stream_info *out);

typedef struct hy_frame {
    const hy_image *image; /* RGB; owned by the stream, valid until the next read or close */
    int64_t index;         /* 0-based index of the frame among all frames decoded from the
                              source (with vid_stride 3: 0, 3, 6, ...; counts across reconnects) */
    double pts;            /* presentation time (seconds from the stream's start; for a live
                              source, restarts after a reconnect) */
    double latency_ms;     /* hy_stream_detect: from the frame leaving the decoder to its result */
    double decode_ms;      /* demux + decode + conversion to RGB of this frame: CPU time of the
                              decoding thread (not the time it waited or was preempted) */
} hy_frame;

/* The next frame (blocks until one is decoded). HY_END at the end of the source (or after
 * max_frames, or after hy_stream_interrupt); HY_ERR_IO when a network source broke and could
 * not be reopened. A corrupt frame is skipped with a HY_LOG_WARN message, never returned. */
HY_API hy_status hy_stream_read(hy_stream *s, hy_frame *out);

/* Plans and warms c for this stream's frame size (hy_model_input_shape of width x height at
 * imgsz, 0 = the model's), so the first frame runs at the steady speed. */
HY_API hy_status hy_stream_prepare(hy_stream *s, hy_context *c, int imgsz);

/* hy_stream_read + hy_detect; *out gets the result (hy_result_free), frame->latency_ms set.
 * p NULL: hy_model_detect_params of c's model. */
HY_API hy_status hy_stream_detect(hy_stream *s, hy_context *c, const hy_detect_params *p, hy_frame *frame,
                                  hy_result **out);

typedef struct hy_stream_stats {
    int64_t decoded;      /* frames out of the decoder */
    int64_t delivered;    /* frames handed out by hy_stream_read */
    int64_t skipped;      /* frames left out by vid_stride */
    int64_t dropped;      /* frames dropped by the real-time policy (live) */
    int64_t corrupt;      /* packets / frames the decoder rejected (skipped with a warning) */
    int64_t reconnects;   /* successful reopenings */
    int queued;           /* frames decoded and waiting now */
    double last_latency_ms, mean_latency_ms, max_latency_ms; /* hy_stream_detect's frames */
    double decode_ms_mean;
} hy_stream_stats;
HY_API hy_status hy_stream_get_stats(const hy_stream *s, hy_stream_stats *out);

/* Makes the pending and every later hy_stream_read return HY_END soon (a blocked network
 * read is interrupted). Async-signal-safe: sets a flag. */
HY_API void hy_stream_interrupt(hy_stream *s);
/* Stops the decoding thread and frees everything. NULL is a no-op. */
HY_API void hy_stream_close(hy_stream *s);

/* ---- annotated video output ----------------------------------------------------------- */
typedef struct hy_video_writer hy_video_writer;

typedef struct hy_video_writer_params {
    double fps;          /* frame rate written (the source's); required, 0 < fps <= 1000 */
    int crf;             /* H.264 quality (libx264 -crf), 0..51; default 23 */
    double segment_s;    /* > 0: roll to a new file every this many seconds of video
                            (PATH_000.mp4, PATH_001.mp4, ...); 0 (default): one file */
    int overwrite;       /* 0 (default): refuse to replace an existing file */
} hy_video_writer_params;
HY_API hy_video_writer_params hy_video_writer_default_params(void);

/* An H.264 (libx264, yuv420p) MP4 of width x height at params->fps. path ends in ".mp4". */
HY_API hy_status hy_video_writer_open(const char *path, int width, int height, const hy_video_writer_params *p,
                                      hy_video_writer **out);
/* Appends one frame (same size as opened), 1/fps after the previous one (0, 1/fps, 2/fps, ...). */
HY_API hy_status hy_video_writer_write(hy_video_writer *w, const hy_image *img);
/* Appends one frame at time t seconds (e.g. hy_frame.pts), counted from the first frame's t and
 * rounded to 1/fps; a t not after the previous frame gets the previous frame's time + 1/fps.
 * Frames left out (dropped by a live stream, vid_stride) then leave gaps instead of making the
 * video play fast: the file keeps the source's timing (a variable frame rate). */
HY_API hy_status hy_video_writer_write_at(hy_video_writer *w, const hy_image *img, double t);
/* Flushes the encoder and writes the trailer (a playable file); frees w. HY_OK or the first
 * error of the flush. NULL is a no-op. */
HY_API hy_status hy_video_writer_close(hy_video_writer *w);
/* Path of the file being written now (the current segment). */
HY_API const char *hy_video_writer_path(const hy_video_writer *w);
HY_API int64_t hy_video_writer_frames(const hy_video_writer *w); /* frames written, all segments */

#ifdef __cplusplus
}
#endif
#endif
