/* Video demux + decode from memory (src/video/source.c through FFmpeg, opened at run time):
 * hy__stream_open_memory with the same allow-lists (demuxers, decoders) and limits as a file,
 * frames capped at 512x512 and 16 handed out per input. Properties: every frame handed out has
 * the size the stream announced at open, indices increase, and the stream ends (HY_END) or
 * fails cleanly (a named error), never crashes or leaks. */
#include <stdlib.h>

#include "hotyolo.h"
#include "hotyolo/stream.h"
#include "video/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hy_stream_params p = hy_stream_default_params();
    p.max_width = 512;
    p.max_height = 512;
    p.max_frames = 16;
    p.queue = 2;
    hy_stream *s = NULL;
    if (hy__stream_open_memory(data, size, &p, &s) != HY_OK) return 0;
    hy_stream_info info;
    if (hy_stream_get_info(s, &info) != HY_OK || info.width <= 0 || info.height <= 0 || info.width > 512 ||
        info.height > 512)
        __builtin_trap();
    hy_frame f;
    int64_t last = -1;
    int n = 0;
    hy_status st;
    while ((st = hy_stream_read(s, &f)) == HY_OK) {
        if (!f.image || f.index <= last || f.image->width <= 0 || f.image->height <= 0 ||
            f.image->width > 512 || f.image->height > 512)
            __builtin_trap();
        volatile uint8_t sink =
            f.image->data[0] ^ f.image->data[(size_t)f.image->width * (size_t)f.image->height * 3 - 1];
        (void)sink;
        last = f.index;
        if (++n > 16) __builtin_trap(); /* max_frames not honoured */
    }
    hy_stream_close(s);
    return 0;
}
