/* hy_stream_*: videos made here with the ffmpeg CLI from coco128 images; frames
 * compared with the ffmpeg CLI's own RGB decode; bad sources; corrupt data;
 * live policy; interrupt. */

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hotyolo/stream.h"
#include "hy_test.h"
#include "video/video.h"

#define NF 12 /* frames of the test video, 640x480 at 10 fps */

static char dir[64];
static int fixtures_state; /* 0 not made, 1 ok, -1 no ffmpeg, -2 failed */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void cleanup(void) {
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
}

static const char *path_in(const char *name) {
    static char bufs[8][256];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    if (r) fprintf(stderr, "  command failed (%d): %s\n", r, cmd);
    return r;
}

/* v.mp4: NF coco128 images letterboxed to 640x480, 10 fps, libx264 yuv420p;
 * f0001.png...: the ffmpeg CLI's RGB decode of it; v.ts: the same in MPEG-TS;
 * long.ts: it looped 6 times. */
static int make_fixtures(const char *images) {
    if (fixtures_state) return fixtures_state;
    fixtures_state = -2;
    if (system("command -v ffmpeg >/dev/null 2>&1")) return fixtures_state = -1;
    snprintf(dir, sizeof dir, "/tmp/hy_stream_XXXXXX");
    if (!mkdtemp(dir)) return fixtures_state;
    atexit(cleanup);
    if (sh("ffmpeg -nostdin -v error -y -framerate 10 -pattern_type glob -i "
           "'%s/*.jpg' -frames:v %d "
           "-vf "
           "'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-"
           "iw)/2:(oh-ih)/2:color=gray' "
           "-c:v libx264 -pix_fmt yuv420p %s",
           images, NF, path_in("v.mp4")) ||
        sh("ffmpeg -nostdin -v error -y -i %s -pix_fmt rgb24 %s", path_in("v.mp4"), path_in("f%04d.png")) ||
        sh("ffmpeg -nostdin -v error -y -i %s -c copy -f mpegts %s", path_in("v.mp4"), path_in("v.ts")) ||
        sh("ffmpeg -nostdin -v error -y -stream_loop 5 -i %s -c copy -f mpegts "
           "%s",
           path_in("v.mp4"), path_in("long.ts")) ||
        sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=d=1 -c:a aac %s", path_in("audio.mp4")) ||
        sh("cp '%s/000000000009.jpg' %s", images, path_in("image.mp4")) ||
        sh("head -c $(( $(stat -c %%s %s) / 2 )) %s > %s", path_in("v.mp4"), path_in("v.mp4"),
           path_in("half.mp4")))
        return fixtures_state;
    return fixtures_state = 1;
}

#define NEED_FIXTURES()                                                                                      \
    do {                                                                                                     \
        const char *img_dir_ = hy_test_asset("datasets/coco128/images/train2017");                           \
        int fx_ = make_fixtures(img_dir_);                                                                   \
        if (fx_ == -1) HY_SKIP("ffmpeg is not on PATH");                                                     \
        if (fx_ != 1) HY_FAIL_("could not make the test videos with the ffmpeg CLI");                        \
    } while (0)

/* Log capture (HY_LOG_WARN and above). */
static atomic_int n_warn, n_corrupt_warn;
static void log_fn(hy_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (lvl < HY_LOG_WARN) return;
    atomic_fetch_add(&n_warn, 1);
    if (strstr(msg, "corrupt")) atomic_fetch_add(&n_corrupt_warn, 1);
}

static int same_as_png(const hy_image *img, int64_t index) {
    char name[32];
    snprintf(name, sizeof name, "f%04lld.png", (long long)index + 1);
    hy_image *ref = NULL;
    if (hy_image_load(path_in(name), &ref) != HY_OK) return 0;
    int ok = ref->width == img->width && ref->height == img->height &&
             !memcmp(ref->data, img->data, (size_t)img->width * img->height * 3);
    if (!ok) {
        size_t n = (size_t)img->width * img->height * 3, diff = 0;
        int maxd = 0;
        for (size_t i = 0; ref->width == img->width && ref->height == img->height && i < n; i++) {
            int d = abs(ref->data[i] - img->data[i]);
            diff += d != 0;
            if (d > maxd) maxd = d;
        }
        fprintf(stderr, "  frame %lld: %zu bytes differ from ffmpeg's PNG (max %d)\n", (long long)index, diff,
                maxd);
    }
    hy_image_free(ref);
    return ok;
}

HY_TEST(frames_match_ffmpeg_cli) {
    NEED_FIXTURES();
    hy_stream *s;
    ASSERT_OK(hy_stream_open(path_in("v.mp4"), NULL, &s));
    hy_stream_info info;
    ASSERT_OK(hy_stream_get_info(s, &info)); /* before the first frame */
    ASSERT_EQ(info.kind, HY_STREAM_FILE);
    ASSERT_EQ(info.live, 0);
    ASSERT_EQ(info.width, 640);
    ASSERT_EQ(info.height, 480);
    ASSERT_NEAR(info.fps, 10.0, 1e-9);
    ASSERT_EQ(info.n_frames, NF);
    ASSERT_NEAR(info.duration_s, NF / 10.0, 0.01);
    ASSERT_STREQ(info.codec, "h264");
    hy_frame f;
    int n = 0;
    hy_status st;
    while ((st = hy_stream_read(s, &f)) == HY_OK) {
        ASSERT_EQ(f.index, n);
        ASSERT_NEAR(f.pts, n / 10.0, 1e-6);
        ASSERT_TRUE(f.decode_ms >= 0);
        ASSERT_TRUE(same_as_png(f.image, f.index));
        n++;
    }
    ASSERT_EQ(st, HY_END);
    ASSERT_EQ(n, NF);
    ASSERT_EQ(hy_stream_read(s, &f), HY_END); /* stays at the end */
    hy_stream_stats ss;
    ASSERT_OK(hy_stream_get_stats(s, &ss));
    ASSERT_EQ(ss.decoded, NF);
    ASSERT_EQ(ss.delivered, NF);
    ASSERT_EQ(ss.dropped, 0);
    ASSERT_EQ(ss.corrupt, 0);
    hy_stream_close(s);
}

HY_TEST(vid_stride_and_max_frames) {
    NEED_FIXTURES();
    hy_stream_params p = hy_stream_default_params();
    p.vid_stride = 3;
    hy_stream *s;
    ASSERT_OK(hy_stream_open(path_in("v.mp4"), &p, &s));
    hy_frame f;
    int n = 0;
    while (hy_stream_read(s, &f) == HY_OK) {
        ASSERT_EQ(f.index, 3 * n);
        ASSERT_NEAR(f.pts, 3 * n / 10.0, 1e-6);
        ASSERT_TRUE(same_as_png(f.image, f.index));
        n++;
    }
    ASSERT_EQ(n, NF / 3);
    hy_stream_stats ss;
    ASSERT_OK(hy_stream_get_stats(s, &ss));
    ASSERT_EQ(ss.skipped, NF - NF / 3);
    hy_stream_close(s);

    p = hy_stream_default_params();
    p.max_frames = 5;
    ASSERT_OK(hy_stream_open(path_in("v.ts"), &p, &s));
    n = 0;
    while (hy_stream_read(s, &f) == HY_OK) {
        ASSERT_EQ(f.index, n);
        ASSERT_NEAR(f.pts, n / 10.0, 1e-6); /* from the stream's start, not MPEG-TS's 1.4 s */
        n++;
    }
    ASSERT_EQ(n, 5);
    hy_stream_close(s);
}

/* A TCP server on 127.0.0.1 (serve() below). */
typedef struct server {
    int lfd, port;
    const char *file;
    int hang_up; /* close each connection once sent (a sender that dies), else
                    stay silent */
    int n_conn;  /* connections to serve; then the listener is closed (refusing
                    more) */
} server;
static int listen_local(server *sv);

static void expect_open_error(const char *src, hy_status code, const char *text) {
    hy_stream *s = (hy_stream *)1;
    hy_status st = hy_stream_open(src, NULL, &s);
    if (st != code) {
        fprintf(stderr, "  %s: %s (%s), expected %s\n", src, hy_status_name(st), hy_last_error(),
                hy_status_name(code));
        hy_test_failed_flag = 1;
    }
    if (!strstr(hy_last_error(), src) || !strstr(hy_last_error(), text)) {
        fprintf(stderr, "  %s: error '%s' should name it and say '%s'\n", src, hy_last_error(), text);
        hy_test_failed_flag = 1;
    }
    if (s) {
        fprintf(stderr, "  %s: *out not NULL after an error\n", src);
        hy_test_failed_flag = 1;
    }
    printf("  %s -> %s\n", src, hy_last_error());
}

HY_TEST(bad_sources_say_what_is_wrong) {
    NEED_FIXTURES();
    expect_open_error(path_in("missing.mp4"), HY_ERR_NOT_FOUND, "no such file");
    expect_open_error(path_in("image.mp4"), HY_ERR_FORMAT, "not a video");
    expect_open_error(path_in("half.mp4"), HY_ERR_FORMAT, "not a video");
    expect_open_error(path_in("audio.mp4"), HY_ERR_FORMAT, "no video stream (it has 1: audio (aac))");
    /* a closed port: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    expect_open_error(url, HY_ERR_IO, "unreachable");
    hy_stream_params p = hy_stream_default_params();
    p.max_width = 320; /* frames above the limit: refused at open, before the ring exists */
    hy_stream *s = (hy_stream *)1;
    ASSERT_ERR(hy_stream_open(path_in("v.mp4"), &p, &s), HY_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(hy_last_error(), "frame size 640x480 exceeds the limit 320x4096");
    ASSERT_TRUE(s == NULL);
    /* a listener that never sends: the open gives up after timeout_s */
    server quiet;
    ASSERT_EQ(listen_local(&quiet), 0);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", quiet.port);
    p = hy_stream_default_params();
    p.timeout_s = 1;
    double t0 = now_ms();
    ASSERT_ERR(hy_stream_open(url, &p, &s), HY_ERR_IO);
    double waited = now_ms() - t0;
    close(quiet.lfd);
    printf("  %s (silent) -> %s after %.0f ms\n", url, hy_last_error(), waited);
    ASSERT_CONTAINS(hy_last_error(), url);
    ASSERT_CONTAINS(hy_last_error(), "unreachable");
    ASSERT_TRUE(waited < 3000);
    if (access("/dev/video97", F_OK)) expect_open_error("/dev/video97", HY_ERR_NOT_FOUND, "camera missing");
}

HY_TEST(corrupt_mpegts_is_skipped_not_fatal) {
    NEED_FIXTURES();
    /* 16 KiB of garbage over the middle of the file */
    ASSERT_EQ(sh("cp %s %s && python3 -c \"import "
                 "os;f=open('%s','r+b');n=os.path.getsize('%s');f.seek(n//2);"
                 "f.write(bytes((i*151+7)%%256 for i in range(16384)))\"",
                 path_in("v.ts"), path_in("bad.ts"), path_in("bad.ts"), path_in("bad.ts")),
              0);
    atomic_store(&n_warn, 0);
    atomic_store(&n_corrupt_warn, 0);
    hy_log_set(log_fn, NULL);
    hy_stream *s;
    ASSERT_OK(hy_stream_open(path_in("bad.ts"), NULL, &s));
    hy_frame f;
    int n = 0;
    hy_status st;
    while ((st = hy_stream_read(s, &f)) == HY_OK) n++;
    hy_log_set(NULL, NULL);
    hy_stream_stats ss;
    ASSERT_OK(hy_stream_get_stats(s, &ss));
    printf("  bad.ts: %d frames, corrupt %lld, %d warnings (%d 'corrupt')\n", n, (long long)ss.corrupt,
           atomic_load(&n_warn), atomic_load(&n_corrupt_warn));
    ASSERT_EQ(st, HY_END);
    ASSERT_TRUE(n >= NF / 2);
    ASSERT_TRUE(ss.corrupt > 0 || atomic_load(&n_warn) > 0);
    hy_stream_close(s);
}

HY_TEST(live_policy_drops_oldest_never_grows) {
    NEED_FIXTURES();
    hy_stream_params p = hy_stream_default_params();
    p.live = 1;
    hy_stream *s;
    ASSERT_OK(hy_stream_open(path_in("v.ts"), &p, &s));
    hy_stream_info info;
    ASSERT_OK(hy_stream_get_info(s, &info));
    ASSERT_EQ(info.live, 1);
    hy_frame f;
    hy_stream_stats ss;
    int n = 0, max_queued = 0;
    int64_t last = -1;
    while (hy_stream_read(s, &f) == HY_OK) {
        ASSERT_TRUE(f.index > last); /* in order, newest kept */
        last = f.index;
        ASSERT_OK(hy_stream_get_stats(s, &ss));
        if (ss.queued > max_queued) max_queued = ss.queued;
        n++;
        nanosleep(&(struct timespec){0, 100000000L}, NULL); /* a slow consumer */
    }
    ASSERT_OK(hy_stream_get_stats(s, &ss));
    printf("  live: %d delivered, %lld dropped, max queued %d (queue 1: only the newest waits)\n", n,
           (long long)ss.dropped, max_queued);
    ASSERT_TRUE(ss.dropped > 0);
    ASSERT_TRUE(max_queued <= 1);
    ASSERT_EQ(n + ss.dropped, NF);
    ASSERT_EQ(last, NF - 1); /* the newest frame is never the one dropped */
    hy_stream_close(s);
}

/* Sends a file on each connection, then hangs up or stays silent until the
 * client goes away. */

static void *serve(void *arg) {
    server *sv = arg;
    for (int i = 0; i < (sv->n_conn ? sv->n_conn : 1); i++) {
        int c = accept(sv->lfd, NULL, NULL);
        if (c < 0) break;
        FILE *f = fopen(sv->file, "rb");
        char buf[65536];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof buf, f)) > 0)
            if (send(c, buf, k, MSG_NOSIGNAL) < 0) break;
        if (f) fclose(f);
        while (!sv->hang_up && recv(c, buf, sizeof buf, 0) > 0) {
        }
        close(c);
    }
    if (sv->hang_up) close(sv->lfd);
    return NULL;
}

static int listen_local(server *sv) {
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(sv->lfd, (struct sockaddr *)&a, sizeof a) || listen(sv->lfd, 4) ||
        getsockname(sv->lfd, (struct sockaddr *)&a, &al))
        return -1;
    sv->port = ntohs(a.sin_port);
    return 0;
}

static atomic_int n_lost, n_reconnected, n_ended;
static void net_log_fn(hy_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (lvl < HY_LOG_WARN) return;
    if (strstr(msg, "stream lost (end of stream) after")) atomic_fetch_add(&n_lost, 1);
    if (strstr(msg, "reconnected (attempt 1)")) atomic_fetch_add(&n_reconnected, 1);
    if (strstr(msg, "stream ended after 72 frames")) atomic_fetch_add(&n_ended, 1);
}

HY_TEST(network_end_and_reconnect) {
    NEED_FIXTURES();
    atomic_store(&n_lost, 0);
    atomic_store(&n_reconnected, 0);
    atomic_store(&n_ended, 0);
    hy_log_set(net_log_fn, NULL);
    /* without reconnect: the sender hangs up -> every frame (decoder flushed),
     * then HY_END */
    server sv = {.file = path_in("long.ts"), .hang_up = 1, .n_conn = 1};
    ASSERT_EQ(listen_local(&sv), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, serve, &sv), 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", sv.port);
    hy_stream_params p = hy_stream_default_params();
    p.live = 0;
    hy_stream *s;
    ASSERT_OK(hy_stream_open(url, &p, &s));
    hy_frame f;
    int n = 0;
    hy_status st;
    while ((st = hy_stream_read(s, &f)) == HY_OK) n++;
    ASSERT_EQ(st, HY_END);
    ASSERT_EQ(n, 6 * NF);
    hy_stream_close(s);
    pthread_join(th, NULL);
    ASSERT_EQ(atomic_load(&n_ended), 1);

    /* with reconnect: served twice, then refused -> gives up after
     * reconnect_timeout_s */
    server sv2 = {.file = path_in("long.ts"), .hang_up = 1, .n_conn = 2};
    ASSERT_EQ(listen_local(&sv2), 0);
    ASSERT_EQ(pthread_create(&th, NULL, serve, &sv2), 0);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", sv2.port);
    p.reconnect = 1;
    p.reconnect_timeout_s = 1;
    ASSERT_OK(hy_stream_open(url, &p, &s));
    n = 0;
    int64_t last = -1;
    double last_pts = 0;
    int pts_restarted = 0;
    while ((st = hy_stream_read(s, &f)) == HY_OK) {
        if (f.index != last + 1)
            fprintf(stderr, "  index %lld after %lld\n", (long long)f.index, (long long)last);
        ASSERT_EQ(f.index, last + 1); /* counts across the reconnect */
        if (f.pts < last_pts) pts_restarted = 1;
        last = f.index;
        last_pts = f.pts;
        n++;
    }
    hy_log_set(NULL, NULL);
    hy_stream_stats ss;
    ASSERT_OK(hy_stream_get_stats(s, &ss));
    printf("  reconnect: %d frames, %lld reconnects, ended with %s: %s\n", n, (long long)ss.reconnects,
           hy_status_name(st), hy_last_error());
    ASSERT_EQ(st, HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), "gave up reconnecting after");
    ASSERT_CONTAINS(hy_last_error(), url);
    ASSERT_EQ(ss.reconnects, 1);
    ASSERT_EQ(n, 2 * 6 * NF);
    ASSERT_TRUE(pts_restarted);
    ASSERT_EQ(atomic_load(&n_lost), 2);
    ASSERT_EQ(atomic_load(&n_reconnected), 1);
    hy_stream_close(s);
    pthread_join(th, NULL);
}

/* hy__stream_open_memory (the fuzz target's entry): same frames as the file. */
HY_TEST(memory_source) {
    NEED_FIXTURES();
    FILE *fp = fopen(path_in("v.mp4"), "rb");
    ASSERT_TRUE(fp != NULL);
    static unsigned char buf[1 << 22];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    ASSERT_TRUE(len > 0 && len < sizeof buf);
    hy_stream *s;
    ASSERT_OK(hy__stream_open_memory(buf, len, NULL, &s));
    hy_frame f;
    int n = 0;
    while (hy_stream_read(s, &f) == HY_OK) {
        ASSERT_TRUE(same_as_png(f.image, f.index));
        n++;
    }
    ASSERT_EQ(n, NF);
    hy_stream_close(s);
    /* the half file and garbage: errors, no crash */
    ASSERT_TRUE(hy__stream_open_memory(buf, len / 2, NULL, &s) != HY_OK);
    memset(buf, 0x47, 4096);
    ASSERT_TRUE(hy__stream_open_memory(buf, 4096, NULL, &s) != HY_OK);
}

typedef struct interrupter {
    hy_stream *s;
    double delay_ms, t_interrupt;
} interrupter;

static void *interrupt_later(void *arg) {
    interrupter *it = arg;
    nanosleep(&(struct timespec){(time_t)(it->delay_ms / 1e3), (long)(fmod(it->delay_ms, 1e3) * 1e6)}, NULL);
    it->t_interrupt = now_ms();
    hy_stream_interrupt(it->s);
    return NULL;
}

HY_TEST(interrupt_ends_a_blocked_network_read) {
    NEED_FIXTURES();
    server sv = {.file = path_in("long.ts")};
    sv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ASSERT_EQ(bind(sv.lfd, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(listen(sv.lfd, 1), 0);
    ASSERT_EQ(getsockname(sv.lfd, (struct sockaddr *)&a, &al), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, serve, &sv), 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    hy_stream_params p = hy_stream_default_params();
    p.live = 0;
    p.timeout_s = 30; /* the interrupt, not the I/O deadline, must end it */
    hy_stream *s;
    ASSERT_OK(hy_stream_open(url, &p, &s));
    hy_stream_info info;
    ASSERT_OK(hy_stream_get_info(s, &info));
    ASSERT_EQ(info.kind, HY_STREAM_NETWORK);
    ASSERT_EQ(info.width, 640);
    hy_frame f;
    int n = 0;
    /* half of what was sent (the rest may sit in the demuxer and decoder until
     * more data or the end comes: neither does) */
    while (n < 3 * NF && hy_stream_read(s, &f) == HY_OK) n++;
    interrupter it = {.s = s, .delay_ms = 500};
    pthread_t ti;
    ASSERT_EQ(pthread_create(&ti, NULL, interrupt_later, &it), 0);
    hy_status st;
    while ((st = hy_stream_read(s, &f)) == HY_OK) n++; /* then blocks: nothing more comes */
    double t_ret = now_ms();
    pthread_join(ti, NULL);
    double t0 = now_ms();
    hy_stream_close(s);
    double t_close = now_ms() - t0;
    pthread_join(th, NULL);
    close(sv.lfd);
    printf("  %d frames, then read returned %.0f ms after the interrupt; close "
           "took %.0f ms\n",
           n, t_ret - it.t_interrupt, t_close);
    if (st != HY_END) fprintf(stderr, "  read: %s\n", hy_last_error());
    ASSERT_EQ(st, HY_END);
    ASSERT_TRUE(n >= 3 * NF);
    ASSERT_TRUE(t_ret >= it.t_interrupt);
    ASSERT_TRUE(t_ret - it.t_interrupt < 1000);
    ASSERT_TRUE(t_close < 1000);
}

HY_TEST(prepare_and_detect_equal_hy_detect) {
    const char *weights = hy_test_asset("weights/yolov8n.pt");
    NEED_FIXTURES();
    hy_context *c;
    ASSERT_OK(hy_context_load(weights, NULL, NULL, &c));
    hy_stream *s;
    hy_stream_params p = hy_stream_default_params();
    p.max_frames = 2;
    ASSERT_OK(hy_stream_open(path_in("v.mp4"), &p, &s));
    ASSERT_OK(hy_stream_prepare(s, c, 0));
    hy_frame f;
    hy_result *r;
    int n = 0;
    while (hy_stream_detect(s, c, NULL, &f, &r) == HY_OK) {
        hy_result *r2;
        hy_detect_params dp = hy_model_detect_params(hy_context_model(c));
        ASSERT_OK(hy_detect(c, f.image, &dp, &r2));
        ASSERT_EQ(hy_result_count(r), hy_result_count(r2));
        for (size_t i = 0; i < hy_result_count(r); i++) {
            const hy_detection *a = hy_result_get(r, i), *b = hy_result_get(r2, i);
            ASSERT_EQ(a->class_id, b->class_id);
            ASSERT_TRUE(a->x1 == b->x1 && a->y1 == b->y1 && a->x2 == b->x2 && a->y2 == b->y2);
            ASSERT_TRUE(a->confidence == b->confidence);
        }
        ASSERT_TRUE(f.latency_ms > 0);
        printf("  frame %lld: %zu objects, latency %.1f ms, decode %.2f ms\n", (long long)f.index,
               hy_result_count(r), f.latency_ms, f.decode_ms);
        hy_result_free(r);
        hy_result_free(r2);
        n++;
    }
    ASSERT_EQ(n, 2);
    hy_engine_stats es;
    ASSERT_OK(hy_model_engine_stats(c, &es));
    ASSERT_EQ(es.cold_events, 0); /* prepared for the stream's shape */
    hy_stream_close(s);
    hy_context_free(c);
}

/* Opening and reading the whole damaged MPEG-TS, and 1 MiB of noise, stay
 * within the acceptance bound (256 MB extra peak RSS, 2 s). */
static int read_all(void *arg) {
    hy_stream *s;
    if (hy_stream_open(arg, NULL, &s) != HY_OK) return 0; /* an error is a fine answer too */
    hy_frame f;
    while (hy_stream_read(s, &f) == HY_OK) {
    }
    hy_stream_close(s);
    return 0;
}

HY_TEST(bad_data_is_bounded) {
    NEED_FIXTURES();
    ASSERT_EQ(sh("head -c 1048576 /dev/urandom > %s && cp %s %s && dd "
                 "if=/dev/urandom of=%s bs=4096 seek=8 count=4 "
                 "conv=notrunc status=none",
                 path_in("noise.ts"), path_in("v.ts"), path_in("bad2.ts"), path_in("bad2.ts")),
              0);
    const char *files[] = {"noise.ts", "bad2.ts", "v.mp4"};
    for (int i = 0; i < 3; i++) {
        hy_test_bound b;
        int r = hy_test_bounded(read_all, (void *)path_in(files[i]), 256, hy_test_sanitized() ? 20 : 2, &b);
        printf("  %s: peak RSS +%.1f MB, %.2f s\n", files[i], b.extra_rss_mb, b.seconds);
        ASSERT_EQ(r, 0);
    }
}

HY_TEST(kind_and_extension) {
    ASSERT_EQ(hy_stream_kind_of("rtsp://10.0.0.7/line1"), HY_STREAM_NETWORK);
    ASSERT_EQ(hy_stream_kind_of("HTTPS://x/y.m3u8"), HY_STREAM_NETWORK);
    ASSERT_EQ(hy_stream_kind_of("tcp://127.0.0.1:5000"), HY_STREAM_NETWORK);
    ASSERT_EQ(hy_stream_kind_of("file://etc/passwd"), HY_STREAM_FILE);
    ASSERT_EQ(hy_stream_kind_of("ftp://x/v.mp4"), HY_STREAM_FILE);
    ASSERT_EQ(hy_stream_kind_of("/dev/video0"), HY_STREAM_CAMERA);
    ASSERT_EQ(hy_stream_kind_of("0"), HY_STREAM_CAMERA);
    ASSERT_EQ(hy_stream_kind_of("12a"), HY_STREAM_FILE);
    ASSERT_EQ(hy_stream_kind_of("v.mp4"), HY_STREAM_FILE);
    ASSERT_EQ(hy_stream_is_video_path("a/b.MP4"), 1);
    ASSERT_EQ(hy_stream_is_video_path("x.webm"), 1);
    ASSERT_EQ(hy_stream_is_video_path("x.jpg"), 0);
    ASSERT_EQ(hy_stream_is_video_path("dir.mp4/x"), 0);
    ASSERT_EQ(hy_stream_is_video_path("ts"), 0);
}

HY_TEST_MAIN()
