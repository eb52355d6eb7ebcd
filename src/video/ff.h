/* FFmpeg (libavformat, libavcodec, libavutil, libswscale, libavdevice), opened at run time by
 * hy__ff_load: Debian's libavcodec alone pulls in ~60 shared libraries (x264, dav1d, vpx...)
 * whose loading and relocation would cost every process, one-shot image detection included,
 * several milliseconds. Only video sources and writers pay for it.
 *
 * Code calls FFmpeg as FF(avcodec_open2)(...): a pointer of the function's own type, filled
 * by hy__ff_load from the sonames below (the major versions these headers describe). */
#ifndef HY_VIDEO_FF_H
#define HY_VIDEO_FF_H

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "core/core.h"

/* X(library, function): every function any src/video file calls. */
#define HY_FF_SYMBOLS(X)                                                                          \
    X(avutil, av_frame_alloc)                                                                     \
    X(avutil, av_frame_free)                                                                      \
    X(avutil, av_frame_unref)                                                                     \
    X(avutil, av_frame_get_buffer)                                                                \
    X(avutil, av_frame_make_writable)                                                             \
    X(avutil, av_dict_set)                                                                        \
    X(avutil, av_dict_get)                                                                        \
    X(avutil, av_dict_free)                                                                       \
    X(avutil, av_strerror)                                                                        \
    X(avutil, av_log_set_callback)                                                                \
    X(avutil, av_log_set_level)                                                                   \
    X(avutil, av_log_format_line2)                                                                \
    X(avutil, av_rescale_q)                                                                       \
    X(avutil, av_d2q)                                                                             \
    X(avutil, av_opt_set)                                                                         \
    X(avutil, av_opt_set_int)                                                                     \
    X(avutil, av_get_pix_fmt_name)                                                                \
    X(avutil, av_malloc)                                                                          \
    X(avutil, av_free)                                                                            \
    X(avutil, av_freep)                                                                           \
    X(avutil, av_image_check_size)                                                                \
    X(avcodec, avcodec_find_decoder)                                                              \
    X(avcodec, avcodec_find_encoder_by_name)                                                      \
    X(avcodec, avcodec_alloc_context3)                                                            \
    X(avcodec, avcodec_free_context)                                                              \
    X(avcodec, avcodec_parameters_to_context)                                                     \
    X(avcodec, avcodec_parameters_from_context)                                                   \
    X(avcodec, avcodec_open2)                                                                     \
    X(avcodec, avcodec_send_packet)                                                               \
    X(avcodec, avcodec_receive_frame)                                                             \
    X(avcodec, avcodec_send_frame)                                                                \
    X(avcodec, avcodec_receive_packet)                                                            \
    X(avcodec, avcodec_flush_buffers)                                                             \
    X(avcodec, avcodec_get_name)                                                                  \
    X(avcodec, av_packet_alloc)                                                                   \
    X(avcodec, av_packet_free)                                                                    \
    X(avcodec, av_packet_unref)                                                                   \
    X(avcodec, av_packet_rescale_ts)                                                              \
    X(avformat, avformat_network_init)                                                            \
    X(avformat, avformat_alloc_context)                                                           \
    X(avformat, avformat_open_input)                                                              \
    X(avformat, avformat_find_stream_info)                                                        \
    X(avformat, avformat_close_input)                                                             \
    X(avformat, av_find_best_stream)                                                              \
    X(avformat, av_find_input_format)                                                             \
    X(avformat, av_probe_input_format)                                                            \
    X(avformat, av_read_frame)                                                                    \
    X(avformat, av_seek_frame)                                                                    \
    X(avformat, av_guess_frame_rate)                                                              \
    X(avformat, avio_alloc_context)                                                               \
    X(avformat, avio_context_free)                                                                \
    X(avformat, avio_open2)                                                                       \
    X(avformat, avio_closep)                                                                      \
    X(avformat, avformat_alloc_output_context2)                                                   \
    X(avformat, avformat_new_stream)                                                              \
    X(avformat, avformat_write_header)                                                            \
    X(avformat, av_interleaved_write_frame)                                                       \
    X(avformat, av_write_trailer)                                                                 \
    X(avformat, avformat_free_context)                                                            \
    X(swscale, sws_getContext)                                                                    \
    X(swscale, sws_freeContext)                                                                   \
    X(swscale, sws_scale)

/* Optional: cameras only (V4L2 input). Missing -> cameras fail with a clear error. */
#define HY_FF_DEVICE_SYMBOLS(X) X(avdevice, avdevice_register_all)

typedef struct hy__ff_api {
#define HY_FF_FIELD(lib, name) __typeof__(&name) name;
    HY_FF_SYMBOLS(HY_FF_FIELD)
    HY_FF_DEVICE_SYMBOLS(HY_FF_FIELD)
#undef HY_FF_FIELD
} hy__ff_api;

extern hy__ff_api hy__ff;

#define FF(name) (*hy__ff.name)

/* Loads the libraries once per process (thread-safe); HY_ERR_UNSUPPORTED naming the missing
 * library / package otherwise. Routes FFmpeg's own log lines to hy__log (HY_LOG_DEBUG, or
 * HY_LOG_WARN for its errors) instead of stderr. */
hy_status hy__ff_load(void);
/* As hy__ff_load, plus libavdevice (cameras) registered. */
hy_status hy__ff_load_devices(void);

/* FFmpeg error code -> text ("Invalid data found when processing input"). Thread-safe: buf. */
const char *hy__ff_err(int errnum, char *buf, size_t n);
#define HY_FF_ERR(e) hy__ff_err((e), (char[128]){0}, 128)

#endif
