/* Internal video layer (src/video): sources over memory for the fuzz target. */
#ifndef HY_VIDEO_VIDEO_H
#define HY_VIDEO_VIDEO_H

#include <stddef.h>

#include "hotyolo/stream.h"

/* A FILE-kind stream over a caller buffer (which must outlive the stream): same
 * demuxer and decoder allow-lists and limits as hy_stream_open, no protocols.
 * For fuzzing. */
hy_status hy__stream_open_memory(const void *buf, size_t len,
                                 const hy_stream_params *p, hy_stream **out);

#endif
