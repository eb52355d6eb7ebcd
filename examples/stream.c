/* A line camera in twenty lines: open a video file, network stream or camera, prepare the
 * engine for its frame size before the first frame, detect on every frame as it arrives.
 *
 *   example_stream MODEL.pt SOURCE     (a video file, rtsp://..., tcp://..., /dev/video0, 0)
 *
 * Prints one line per frame: index, presentation time, latency and the objects found. Ctrl-C
 * ends it cleanly. Out of tree: cc stream.c $(pkg-config --cflags --libs hotyolo) -o stream
 */
#include <signal.h>
#include <stdio.h>

#include "hotyolo.h"
#include "hotyolo/stream.h"

static hy_stream *volatile current;

static void on_sigint(int sig) {
    (void)sig;
    if (current) hy_stream_interrupt(current); /* async-signal-safe: the loop below ends */
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.pt SOURCE\n", argv[0]);
        return 2;
    }
    hy_context *ctx = NULL;
    hy_stream *s = NULL;
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 0; /* prepared below, for the stream's own frame size */
    if (hy_context_load(argv[1], NULL, &cp, &ctx) != HY_OK) goto fail;
    hy_stream_params sp = hy_stream_default_params(); /* live sources drop frames, never lag */
    sp.reconnect = 1;                                 /* a network stream that breaks is reopened */
    if (hy_stream_open(argv[2], &sp, &s) != HY_OK) goto fail;
    if (hy_stream_prepare(s, ctx, 0) != HY_OK) goto fail; /* plan + warm up: frame 1 is not late */
    current = s;
    signal(SIGINT, on_sigint);

    const hy_model *m = hy_context_model(ctx);
    hy_frame f;
    hy_result *r;
    hy_status st;
    while ((st = hy_stream_detect(s, ctx, NULL, &f, &r)) == HY_OK) {
        printf("frame %lld  %.3f s  %.1f ms:", (long long)f.index, f.pts, f.latency_ms);
        for (size_t i = 0; i < hy_result_count(r); i++) {
            const hy_detection *d = hy_result_get(r, i);
            printf(" %s %.2f", hy_model_class_name(m, d->class_id), d->confidence);
        }
        printf("\n");
        hy_result_free(r);
    }
    if (st != HY_END) goto fail;
    hy_stream_stats stats;
    hy_stream_get_stats(s, &stats);
    fprintf(stderr, "%lld frames, %lld dropped, %lld corrupt, %lld reconnects\n", (long long)stats.delivered,
            (long long)stats.dropped, (long long)stats.corrupt, (long long)stats.reconnects);
    current = NULL;
    hy_stream_close(s);
    hy_context_free(ctx);
    return 0;
fail:
    fprintf(stderr, "error: %s\n", hy_last_error());
    current = NULL;
    hy_stream_close(s);
    hy_context_free(ctx);
    return 1;
}
