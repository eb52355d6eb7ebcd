/* hy_video_writer_* (include/hotyolo/stream.h): the MP4s are checked by FFmpeg's own CLI
 * (ffprobe for codec, size, rate and frame count; ffmpeg decoding without errors and back to
 * RGB for the pixels). Skips without ffprobe / ffmpeg. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hotyolo.h"
#include "hotyolo/stream.h"
#include "hy_test.h"

static void require_ffmpeg(void) {
    if (system("command -v ffprobe >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1") != 0)
        HY_SKIP("ffprobe / ffmpeg not installed");
}

/* A fresh, empty scratch directory. */
static const char *fresh_dir(const char *name) {
    const char *d = hy_test_tmp(name);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) return NULL;
    mkdir(d, 0700);
    return d;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

typedef struct probe {
    char codec[32], rate[32], avg_rate[32];
    int width, height;
    long frames;
} probe;

/* ffprobe's view of the first video stream, frames counted by decoding. */
static int ffprobe(const char *path, probe *pr) {
    memset(pr, 0, sizeof *pr);
    pr->frames = -1;
    char cmd[4400];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
             "stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_read_frames -of default=nw=1 '%s'",
             path);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "codec_name")) snprintf(pr->codec, sizeof pr->codec, "%s", v);
        if (!strcmp(line, "r_frame_rate")) snprintf(pr->rate, sizeof pr->rate, "%s", v);
        if (!strcmp(line, "avg_frame_rate")) snprintf(pr->avg_rate, sizeof pr->avg_rate, "%s", v);
        if (!strcmp(line, "width")) pr->width = atoi(v);
        if (!strcmp(line, "height")) pr->height = atoi(v);
        if (!strcmp(line, "nb_read_frames")) pr->frames = atol(v);
    }
    int rc = pclose(f);
    printf("  ffprobe %s: %s %dx%d r=%s avg=%s frames=%ld\n", strrchr(path, '/') + 1, pr->codec, pr->width,
           pr->height, pr->rate, pr->avg_rate, pr->frames);
    return rc;
}

/* ffmpeg decodes the whole file; returns 1 when it says nothing and exits 0. */
static int decodes_clean(const char *path) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f null - 2>&1", path);
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    int rc = pclose(f);
    if (n || rc) fprintf(stderr, "ffmpeg decoding %s (rc %d): %s\n", path, rc, buf);
    return n == 0 && rc == 0;
}

/* Decodes up to max frames of w x h to RGB24 with ffmpeg; returns the frame count (malloc'd *out). */
static int decode_rgb(const char *path, int w, int h, int max, unsigned char **out) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f rawvideo -pix_fmt rgb24 -", path);
    FILE *f = popen(cmd, "r");
    size_t fs = (size_t)w * h * 3;
    *out = malloc(fs * (size_t)max);
    if (!f || !*out) return -1;
    int n = 0;
    while (n < max && fread(*out + fs * (size_t)n, 1, fs, f) == fs) n++;
    pclose(f);
    return n;
}

static hy_image *image_new(int w, int h) {
    hy_image *img = NULL;
    unsigned char *z = calloc((size_t)w * h, 3);
    if (z && hy_image_from_rgb(z, w, h, (size_t)w * 3, &img) != HY_OK) img = NULL;
    free(z);
    return img;
}

static void fill(hy_image *img, int r, int g, int b) {
    for (size_t i = 0; i < (size_t)img->width * img->height; i++) {
        img->data[3 * i] = (uint8_t)r;
        img->data[3 * i + 1] = (uint8_t)g;
        img->data[3 * i + 2] = (uint8_t)b;
    }
}

/* Mean absolute difference per channel value between two RGB buffers of w x h (stride 3w). */
static double mean_abs_diff(const unsigned char *a, const unsigned char *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

/* 25 coco128 images, the 320x240 top-left crop of each, at 10 fps. */
HY_TEST(writes_h264_mp4_ffmpeg_reads_back) {
    require_ffmpeg();
    const char *dir = hy_test_asset("datasets/coco128/images/train2017");
    const char *d = fresh_dir("vw_basic");
    char path[4200];
    snprintf(path, sizeof path, "%s/out.mp4", d);
    DIR *dd = opendir(dir);
    ASSERT_TRUE(dd != NULL);
    enum { W = 320, H = 240, N = 25 };
    unsigned char *src = malloc((size_t)W * H * 3 * N);
    int n = 0;
    struct dirent *e;
    char names[N][256];
    while (n < N && (e = readdir(dd)))
        if (strstr(e->d_name, ".jpg")) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(dd);
    ASSERT_EQ(n, N);
    qsort(names, N, 256, (int (*)(const void *, const void *))strcmp);
    hy_video_writer_params p = hy_video_writer_default_params();
    ASSERT_EQ(p.crf, 23);
    ASSERT_EQ(p.overwrite, 0);
    p.fps = 10;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, W, H, &p, &w));
    ASSERT_STREQ(hy_video_writer_path(w), path);
    hy_image *crop = image_new(W, H);
    ASSERT_TRUE(crop != NULL);
    for (int i = 0; i < N; i++) {
        char f[8192];
        snprintf(f, sizeof f, "%s/%s", dir, names[i]);
        hy_image *img = NULL;
        ASSERT_OK(hy_image_load(f, &img));
        fill(crop, 114, 114, 114);
        for (int y = 0; y < H && y < img->height; y++)
            memcpy(crop->data + (size_t)y * W * 3, img->data + (size_t)y * img->width * 3,
                   (size_t)(img->width < W ? img->width : W) * 3);
        hy_image_free(img);
        memcpy(src + (size_t)i * W * H * 3, crop->data, (size_t)W * H * 3);
        ASSERT_OK(hy_video_writer_write(w, crop));
    }
    ASSERT_EQ(hy_video_writer_frames(w), N);
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(crop);

    probe pr;
    ASSERT_EQ(ffprobe(path, &pr), 0);
    ASSERT_STREQ(pr.codec, "h264");
    ASSERT_EQ(pr.width, W);
    ASSERT_EQ(pr.height, H);
    ASSERT_STREQ(pr.rate, "10/1");
    ASSERT_STREQ(pr.avg_rate, "10/1");
    ASSERT_EQ(pr.frames, N);
    ASSERT_TRUE(decodes_clean(path));
    /* the pixels: lossy, but close to the input in every frame (a channel swap, flip or a
     * shifted frame would be far off) */
    unsigned char *dec = NULL;
    ASSERT_EQ(decode_rgb(path, W, H, N, &dec), N);
    double worst = 0, bias[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        const unsigned char *a = src + (size_t)i * W * H * 3, *b = dec + (size_t)i * W * H * 3;
        double m = mean_abs_diff(a, b, (size_t)W * H * 3);
        if (m > worst) worst = m;
        for (size_t k = 0; k < (size_t)W * H * 3; k++) bias[k % 3] += (double)b[k] - (double)a[k];
    }
    for (int c = 0; c < 3; c++) bias[c] /= (double)N * W * H;
    /* crf 23 on busy 320x240 photos: ~8 mean error (2.5 at crf 0, all of it 4:2:0 chroma);
     * a wrong YUV range or matrix shows as a bias of several levels */
    printf("  worst frame mean |decoded - written| = %.2f (of 255); mean bias R %+.2f G %+.2f B %+.2f\n", worst,
           bias[0], bias[1], bias[2]);
    ASSERT_TRUE(worst < 12.0);
    for (int c = 0; c < 3; c++) ASSERT_TRUE(fabs(bias[c]) < 2.5);
    free(dec);
    free(src);
    ASSERT_EQ(count_entries(d), 1); /* no temporary files left */
}

/* Solid red, green, blue frames keep their colour through RGB -> YUV -> H.264 -> RGB. */
HY_TEST(solid_colours_stay_right) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_colour");
    char path[4200];
    snprintf(path, sizeof path, "%s/rgb.mp4", d);
    enum { W = 64, H = 48 };
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 25;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, W, H, &p, &w));
    hy_image *img = image_new(W, H);
    const int col[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    for (int c = 0; c < 3; c++) {
        fill(img, col[c][0], col[c][1], col[c][2]);
        for (int k = 0; k < 4; k++) ASSERT_OK(hy_video_writer_write(w, img));
    }
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    ASSERT_TRUE(decodes_clean(path));
    unsigned char *dec = NULL;
    ASSERT_EQ(decode_rgb(path, W, H, 12, &dec), 12);
    for (int i = 0; i < 12; i++) {
        double m[3] = {0, 0, 0};
        for (int px = 0; px < W * H; px++)
            for (int ch = 0; ch < 3; ch++) m[ch] += dec[(size_t)i * W * H * 3 + 3 * px + ch];
        for (int ch = 0; ch < 3; ch++) m[ch] /= W * H;
        const int *want = col[i / 4];
        if (i % 4 == 0) printf("  frame %d: mean RGB %.0f %.0f %.0f\n", i, m[0], m[1], m[2]);
        /* tight: a YUV range mix-up would give ~235 / ~16 */
        for (int ch = 0; ch < 3; ch++) ASSERT_TRUE(want[ch] ? m[ch] >= 245 : m[ch] <= 10);
    }
    free(dec);
}

/* NTSC rate 30000/1001 comes out as that rational, not 2997/100 or 30/1. */
HY_TEST(ntsc_rate_is_exact) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_ntsc");
    char path[4200];
    snprintf(path, sizeof path, "%s/ntsc.mp4", d);
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 30000.0 / 1001.0;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, 96, 64, &p, &w));
    hy_image *img = image_new(96, 64);
    for (int i = 0; i < 30; i++) {
        fill(img, i * 8, 255 - i * 8, 128);
        ASSERT_OK(hy_video_writer_write(w, img));
    }
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    probe pr;
    ASSERT_EQ(ffprobe(path, &pr), 0);
    ASSERT_STREQ(pr.rate, "30000/1001");
    ASSERT_STREQ(pr.avg_rate, "30000/1001");
    ASSERT_EQ(pr.frames, 30);
    ASSERT_TRUE(decodes_clean(path));
}

/* write_at: frames left out (a live stream's drops, vid_stride) leave gaps in time instead of
 * making the video play fast; times count from the first frame; a time that does not advance
 * gets the next tick. Checked with ffprobe's own frame timestamps. */
HY_TEST(write_at_keeps_source_timing) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_at");
    char path[4200], cmd[8600];
    snprintf(path, sizeof path, "%s/at.mp4", d);
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 10;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, 64, 48, &p, &w));
    hy_image *img = image_new(64, 48);
    /* source times 7.0 (the first: time 0), 7.1, 7.5, 7.6, 7.6 (no advance -> 7.7), 8.2 */
    const double t[] = {7.0, 7.1, 7.5, 7.6, 7.6, 8.2};
    for (int i = 0; i < 6; i++) {
        fill(img, 40 * i, 0, 0);
        ASSERT_OK(hy_video_writer_write_at(w, img, t[i]));
    }
    ASSERT_ERR(hy_video_writer_write_at(w, img, NAN), HY_ERR_INVALID_ARG);
    ASSERT_EQ(hy_video_writer_frames(w), 6);
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 '%s'", path);
    FILE *f = popen(cmd, "r");
    ASSERT_TRUE(f != NULL);
    double got[16];
    int n = 0;
    char line[256];
    while (n < 16 && fgets(line, sizeof line, f)) /* "0.000000," then an empty line: side data */
        if (sscanf(line, "%lf", &got[n]) == 1) n++;
    pclose(f);
    const double want[] = {0.0, 0.1, 0.5, 0.6, 0.7, 1.2};
    ASSERT_EQ(n, 6);
    for (int i = 0; i < 6; i++) ASSERT_NEAR(got[i], want[i], 1e-3);
    ASSERT_TRUE(decodes_clean(path));
}

/* segment_s 1 at 10 fps, 25 frames: out_000 (10), out_001 (10), out_002 (5), each playable;
 * out.mp4 itself is never made. */
HY_TEST(segments_roll_by_duration) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_seg");
    char path[4200], seg[4300];
    snprintf(path, sizeof path, "%s/out.mp4", d);
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 10;
    p.segment_s = 1.0;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, 128, 96, &p, &w));
    hy_image *img = image_new(128, 96);
    for (int i = 0; i < 25; i++) {
        fill(img, (i * 10) % 256, 60, 200);
        ASSERT_OK(hy_video_writer_write(w, img));
        snprintf(seg, sizeof seg, "%s/out_%03d.mp4", d, i / 10);
        ASSERT_STREQ(hy_video_writer_path(w), seg);
    }
    ASSERT_EQ(hy_video_writer_frames(w), 25);
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    const long want[3] = {10, 10, 5};
    for (int k = 0; k < 3; k++) {
        snprintf(seg, sizeof seg, "%s/out_%03d.mp4", d, k);
        probe pr;
        ASSERT_EQ(ffprobe(seg, &pr), 0);
        ASSERT_STREQ(pr.codec, "h264");
        ASSERT_STREQ(pr.rate, "10/1");
        ASSERT_EQ(pr.frames, want[k]);
        ASSERT_TRUE(decodes_clean(seg));
    }
    ASSERT_EQ(access(path, F_OK), -1);
    ASSERT_EQ(count_entries(d), 3);
}

static int file_is(const char *path, const char *text) {
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(text) && !memcmp(buf, text, n);
}

/* An existing file (or segment) is refused and left as it was; overwrite replaces it. */
HY_TEST(existing_file_refused_unless_overwrite) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_exist");
    char path[4200], seg0[4300];
    snprintf(path, sizeof path, "%s/keep.mp4", d);
    snprintf(seg0, sizeof seg0, "%s/keep_000.mp4", d);
    FILE *f = fopen(path, "wb");
    fputs("precious", f);
    fclose(f);
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 10;
    hy_video_writer *w = (hy_video_writer *)1;
    ASSERT_ERR(hy_video_writer_open(path, 64, 64, &p, &w), HY_ERR_IO);
    ASSERT_TRUE(w == NULL);
    ASSERT_CONTAINS(hy_last_error(), path);
    ASSERT_CONTAINS(hy_last_error(), "exists");
    ASSERT_TRUE(file_is(path, "precious"));
    /* a segment too */
    f = fopen(seg0, "wb");
    fputs("precious too", f);
    fclose(f);
    p.segment_s = 2;
    ASSERT_ERR(hy_video_writer_open(path, 64, 64, &p, &w), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), seg0);
    ASSERT_TRUE(file_is(seg0, "precious too"));
    ASSERT_EQ(count_entries(d), 2);
    /* overwrite: replaced by a playable video, nothing else left */
    p.segment_s = 0;
    p.overwrite = 1;
    ASSERT_OK(hy_video_writer_open(path, 64, 64, &p, &w));
    hy_image *img = image_new(64, 64);
    fill(img, 10, 200, 30);
    for (int i = 0; i < 3; i++) ASSERT_OK(hy_video_writer_write(w, img));
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    probe pr;
    ASSERT_EQ(ffprobe(path, &pr), 0);
    ASSERT_EQ(pr.frames, 3);
    ASSERT_EQ(count_entries(d), 2);
    /* overwrite onto something that cannot be replaced (a directory): error, the temporary
     * file removed, the directory untouched */
    char dirpath[4300];
    snprintf(dirpath, sizeof dirpath, "%s/adir.mp4", d);
    mkdir(dirpath, 0700);
    ASSERT_ERR(hy_video_writer_open(dirpath, 64, 64, &p, &w), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), dirpath);
    printf("  %s\n", hy_last_error());
    struct stat sb;
    ASSERT_TRUE(stat(dirpath, &sb) == 0 && S_ISDIR(sb.st_mode));
    ASSERT_EQ(count_entries(d), 3);
    ASSERT_EQ(count_entries(dirpath), 0);
}

/* Bad arguments: a clear error naming the file, nothing created. */
HY_TEST(bad_arguments_refused_nothing_created) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_bad");
    char ok[4200], avi[4200], noext[4200], nodir[4200], bare[4200];
    snprintf(ok, sizeof ok, "%s/x.mp4", d);
    snprintf(avi, sizeof avi, "%s/x.avi", d);
    snprintf(noext, sizeof noext, "%s/x", d);
    snprintf(bare, sizeof bare, "%s/.mp4", d);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.mp4", d);
    hy_video_writer_params p = hy_video_writer_default_params();
    hy_video_writer *w = NULL;
    /* fps is required: the default params (fps 0) are refused */
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "x.mp4");
    ASSERT_CONTAINS(hy_last_error(), "fps");
    const double bad_fps[] = {-1, 1000.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_fps / sizeof bad_fps[0]; i++) {
        p.fps = bad_fps[i];
        ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    }
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, NULL, &w), HY_ERR_INVALID_ARG);
    p.fps = 10;
    const int bad_size[][2] = {{0, 64}, {64, 0}, {-2, 64}, {64, -2}, {16386, 64}, {64, 1 << 30}};
    for (size_t i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++) {
        ASSERT_ERR(hy_video_writer_open(ok, bad_size[i][0], bad_size[i][1], &p, &w), HY_ERR_INVALID_ARG);
        ASSERT_CONTAINS(hy_last_error(), "frame size");
    }
    ASSERT_ERR(hy_video_writer_open(avi, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), ".mp4");
    ASSERT_ERR(hy_video_writer_open(noext, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_video_writer_open(bare, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_video_writer_open("", 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_video_writer_open(NULL, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, NULL), HY_ERR_INVALID_ARG);
    p.crf = 52;
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    p.crf = -1;
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    p.crf = 23;
    p.segment_s = -1;
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    p.segment_s = NAN;
    ASSERT_ERR(hy_video_writer_open(ok, 64, 64, &p, &w), HY_ERR_INVALID_ARG);
    p.segment_s = 0;
    ASSERT_ERR(hy_video_writer_open(nodir, 64, 64, &p, &w), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), nodir);
    ASSERT_CONTAINS(hy_last_error(), "No such file");
    ASSERT_TRUE(w == NULL);
    ASSERT_EQ(count_entries(d), 0);
    /* a frame of the wrong size: refused, the writer goes on */
    ASSERT_OK(hy_video_writer_open(ok, 64, 64, &p, &w));
    hy_image *small = image_new(32, 32), *right = image_new(64, 64);
    ASSERT_ERR(hy_video_writer_write(w, small), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "32x32");
    ASSERT_ERR(hy_video_writer_write(w, NULL), HY_ERR_INVALID_ARG);
    ASSERT_OK(hy_video_writer_write(w, right));
    ASSERT_EQ(hy_video_writer_frames(w), 1);
    ASSERT_OK(hy_video_writer_close(w));
    ASSERT_OK(hy_video_writer_close(NULL));
    hy_image_free(small);
    hy_image_free(right);
    ASSERT_TRUE(decodes_clean(ok));
}

/* An odd frame size is encoded one column / row larger, the edge repeated, nothing scaled. */
HY_TEST(odd_size_padded_not_scaled) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_odd");
    char path[4200];
    snprintf(path, sizeof path, "%s/odd.mp4", d);
    enum { W = 33, H = 17 };
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 5;
    p.crf = 0; /* near lossless, so the pixels can be compared tightly */
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, W, H, &p, &w));
    hy_image *img = image_new(W, H);
    /* left half dark, right half bright, a bright last column and bottom row */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int v = (x >= W / 2 || y == H - 1 || x == W - 1) ? 220 : 30;
            for (int c = 0; c < 3; c++) img->data[(y * W + x) * 3 + c] = (uint8_t)v;
        }
    for (int i = 0; i < 3; i++) ASSERT_OK(hy_video_writer_write(w, img));
    ASSERT_OK(hy_video_writer_close(w));
    probe pr;
    ASSERT_EQ(ffprobe(path, &pr), 0);
    ASSERT_EQ(pr.width, W + 1);
    ASSERT_EQ(pr.height, H + 1);
    ASSERT_EQ(pr.frames, 3);
    unsigned char *dec = NULL;
    ASSERT_EQ(decode_rgb(path, W + 1, H + 1, 3, &dec), 3);
    double err = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) err += abs((int)dec[(y * (W + 1) + x) * 3] - (int)img->data[(y * W + x) * 3]);
    err /= W * H;
    printf("  odd size: mean |decoded - written| %.2f; padding column %d, row %d\n", err, dec[(5 * (W + 1) + W) * 3],
           dec[(H * (W + 1) + 3) * 3]);
    ASSERT_TRUE(err < 4.0);
    ASSERT_TRUE(dec[(5 * (W + 1) + W) * 3] > 180); /* padding repeats the bright edge */
    ASSERT_TRUE(dec[(H * (W + 1) + 3) * 3] > 180);
    free(dec);
    hy_image_free(img);
}

/* Odd size, a red block in the bottom-right corner: the last column / row share their chroma
 * samples with the padding, which must repeat the edge (not blend in whatever is beyond it),
 * so the corner stays red. */
HY_TEST(odd_size_edge_colour) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_odd_edge");
    char path[4200];
    snprintf(path, sizeof path, "%s/edge.mp4", d);
    enum { W = 21, H = 15 };
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 5;
    p.crf = 0;
    hy_video_writer *w = NULL;
    ASSERT_OK(hy_video_writer_open(path, W, H, &p, &w));
    hy_image *img = image_new(W, H);
    fill(img, 128, 128, 128);
    for (int y = H - 6; y < H; y++)
        for (int x = W - 6; x < W; x++) {
            img->data[(y * W + x) * 3] = 255;
            img->data[(y * W + x) * 3 + 1] = 0;
            img->data[(y * W + x) * 3 + 2] = 0;
        }
    for (int i = 0; i < 2; i++) ASSERT_OK(hy_video_writer_write(w, img));
    ASSERT_OK(hy_video_writer_close(w));
    hy_image_free(img);
    unsigned char *dec = NULL;
    ASSERT_EQ(decode_rgb(path, W + 1, H + 1, 2, &dec), 2);
    const unsigned char *px = dec + ((H - 1) * (W + 1) + W - 1) * 3;
    printf("  corner pixel (%d,%d) decoded RGB %d %d %d\n", W - 1, H - 1, px[0], px[1], px[2]);
    ASSERT_TRUE(px[0] >= 235 && px[1] <= 25 && px[2] <= 25);
    free(dec);
}

/* A full disk (here: RLIMIT_FSIZE, EFBIG) mid-video: an I/O error naming the file, no crash. */
HY_TEST(write_error_names_file) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_full");
    char path[4200];
    snprintf(path, sizeof path, "%s/full.mp4", d);
    fflush(stdout);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {64 << 10, 64 << 10};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        hy_video_writer_params p = hy_video_writer_default_params();
        p.fps = 30;
        hy_video_writer *w = NULL;
        if (hy_video_writer_open(path, 320, 240, &p, &w) != HY_OK) _exit(10);
        hy_image *img = image_new(320, 240);
        hy_status st = HY_OK;
        for (int i = 0; i < 300 && st == HY_OK; i++) {
            for (size_t k = 0; k < (size_t)320 * 240 * 3; k++) img->data[k] = (uint8_t)((k * 2654435761u + i) >> 13);
            st = hy_video_writer_write(w, img);
        }
        hy_status cst = hy_video_writer_close(w);
        if (st == HY_OK) st = cst;
        printf("  64 KiB file size limit: %s: %s\n", hy_status_name(st), hy_last_error());
        fflush(stdout);
        hy_image_free(img);
        _exit(st == HY_ERR_IO && strstr(hy_last_error(), path) && strstr(hy_last_error(), "too large") ? 0 : 11);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* Peak memory and time of writing 50 VGA frames (one libx264 thread). */
static int write_vga(void *arg) {
    const char *path = arg;
    hy_video_writer_params p = hy_video_writer_default_params();
    p.fps = 30;
    hy_video_writer *w = NULL;
    if (hy_video_writer_open(path, 640, 480, &p, &w) != HY_OK) return 1;
    hy_image *img = image_new(640, 480);
    if (!img) return 1;
    for (int i = 0; i < 50; i++) {
        for (size_t k = 0; k < (size_t)640 * 480 * 3; k++) img->data[k] = (uint8_t)(k * 7 + (size_t)i * 13);
        if (hy_video_writer_write(w, img) != HY_OK) return 1;
    }
    hy_image_free(img);
    return hy_video_writer_close(w) == HY_OK ? 0 : 1;
}

HY_TEST(vga_write_bounded) {
    require_ffmpeg();
    const char *d = fresh_dir("vw_vga");
    char path[4200];
    snprintf(path, sizeof path, "%s/vga.mp4", d);
    hy_test_bound b;
    int r = hy_test_bounded(write_vga, path, 256, hy_test_sanitized() ? 60 : 10, &b);
    printf("  50 frames 640x480 @30: peak RSS +%.1f MB, %.2f s\n", b.extra_rss_mb, b.seconds);
    ASSERT_EQ(r, 0);
    probe pr;
    ASSERT_EQ(ffprobe(path, &pr), 0);
    ASSERT_EQ(pr.frames, 50);
    ASSERT_STREQ(pr.rate, "30/1");
}

HY_TEST_MAIN()
