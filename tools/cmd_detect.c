/* hotyolo detect MODEL SOURCE... : object detection on image files, directories and quoted
 * globs (expanded here, as Ultralytics' LoadImagesAndVideos does), video files, network
 * streams and cameras (include/hotyolo/stream.h).
 *
 * Output: a readable table per image or frame (stdout; stderr when --json - takes stdout),
 * JSON Lines with --json (the shape of shared/assets/reference/yolov8n_predict_*.jsonl plus
 * "timings_ms"; frames add "frame", "pts", "latency_ms"), annotated JPEGs / H.264 MP4s with
 * --save-dir. Images run first, then each video or stream in turn. Exit 0 ok, 1 runtime
 * error (model load, an image or source that fails, a write error), 2 usage error, 130 after
 * SIGINT ended a stream cleanly. */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "hotyolo/stream.h"
#include "model/result_json.h"

#define CMD "detect"
#define MAX_CLASS_ID 65535  /* bound for --classes before the model is known */
#define MAX_THREADS 1024
#define MAX_IMGSZ 8192
#define MAX_MAX_DET 100000
#define MAX_NC 65536
#define JPEG_QUALITY 95     /* as cv2.imwrite's default */
#define MAX_IMAGES 100000   /* images one run takes from all its SOURCE arguments */
#define MAX_VIDEOS 10000    /* video / stream sources one run takes */
#define MAX_VID_STRIDE 100000
#define MAX_SECONDS 1e7f    /* bound of the time options (s) */

/* A video file, network stream or camera: processed after the images, one at a time. */
typedef struct video_src {
    char *name;          /* malloc'd; as given (or DIR/name from a directory) */
    int pos;             /* index among the SOURCE arguments (stream<pos>.mp4) */
    hy_stream_kind kind;
} video_src;

typedef struct detect_opts {
    float conf, iou;
    int imgsz, max_det, threads;
    int *classes; /* malloc'd, n_classes ids; NULL = all */
    int n_classes;
    const char *json_path; /* NULL: none; "-": stdout */
    const char *save_dir;
    const char *device; /* NULL: the library's default ("cpu") */
    int no_fallback;    /* --no-fallback: a GPU that cannot be used is an error */
    int quiet, verbose, strict_images;
    int transfer, nc, verify; /* load: HY_LOAD_TRANSFER, class count (0 = file's), re-hash */
    hy_cli_maps maps;         /* --map OLD=NEW prefix renames */
    const char *model;
    const char *registry; /* --registry DIR: where registry:REF is resolved */
    char *model_path;     /* model, resolved (hy_free) */
    char **sources; /* points into argv: files, directories, globs */
    int n_sources;
    char **images;  /* malloc'd paths, sources expanded */
    int n_images, cap_images;
    video_src *videos; /* malloc'd, in order */
    int n_videos, cap_videos;
    /* videos and streams */
    int vid_stride, realtime; /* realtime -1: the source kind's default */
    int reconnect, max_frames, progress;
    float reconnect_timeout, segment_time, stats_interval; /* seconds */
} detect_opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void help(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("Usage: hotyolo detect MODEL SOURCE... [options]\n"
           "\n"
           "Detects objects in each image (JPEG or PNG) with the YOLOv8 checkpoint MODEL\n"
           "(an Ultralytics .pt file, a hotyolo .safetensors file or a YOLOv8 .onnx export)\n"
           "and prints one table per image: class name, confidence and box (x1, y1, x2, y2)\n"
           "in original image pixels. A SOURCE is an image file; a directory (its files\n"
           "named *.%s, not recursive, in byte order, as Ultralytics' source=DIR);\n"
           "or a quoted glob such as 'images/*.jpg' (expanded here, sorted, image\n"
           "extensions only). At most %d images in all. Of the image formats Ultralytics\n"
           "lists, only JPEG and PNG decode: other files fail (named) and the rest go on.\n"
           "A JPEG cut short decodes as OpenCV does, with a warning (missing end marker:\n"
           "same pixels; missing data: the rest grey), unless --strict-images.\n"
           "\n"
           "A SOURCE may also be a video file (*.{asf,avi,gif,m4v,mkv,mov,mp4,mpeg,mpg,ts,\n"
           "wmv,webm}, also taken from directories and globs, after their images), a network\n"
           "stream (rtsp:// rtmp:// rtmps:// http(s):// udp:// tcp:// rtp:// srt://) or a\n"
           "camera (/dev/videoN, or a bare index N). Images run first, then each video or\n"
           "stream in turn: decoded on a thread of its own (FFmpeg, loaded at run time), the\n"
           "model prepared and warmed for its frame size before the first frame, one table\n"
           "per frame titled 'SOURCE frame N (pts X.XXX s)'. A corrupt frame is skipped with\n"
           "a warning. On stderr: a progress line for files (a terminal, or --progress), a\n"
           "periodic line for streams and cameras (fps, latency, dropped, corrupt, queued)\n"
           "and a summary per source. Ctrl-C (SIGINT) ends the current stream cleanly (its\n"
           "annotated MP4 finished and playable), skips the rest and exits 130; a second\n"
           "Ctrl-C kills at once.\n"
           "\n"
           "Options (a value may also be given as --option=VALUE):\n"
           "  --conf F        confidence threshold in [0, 1] (default 0.25)\n"
           "  --iou F         NMS IoU threshold in [0, 1] (default 0.7; YOLOv5 0.45, as its detect.py)\n"
           "  --imgsz N       inference size (long side), a multiple of 32 in [32, %d]\n"
           "                  (default 640)\n"
           "  --max-det N     most detections kept per image, in [1, %d] (default 300;\n"
           "                  YOLOv5 1000)\n"
           "  --classes LIST  keep only these class ids, comma-separated, e.g. 0,2,5\n"
           "                  (default: all classes)\n"
           "  --threads N     worker threads, in [0, %d]; 0 = one per online core\n"
           "                  (default: one per online core, %ld here)\n"
           "  --device NAME   what runs the network: cpu (optimised kernels), ref (plain-C\n"
           "                  reference kernels, the specification; much slower), cuda or\n"
           "                  cuda:N or N (GPU N), auto (cuda:0 when usable, else cpu).\n"
           "                  A GPU that cannot be used falls back to cpu with a warning\n"
           "                  (default: cpu)\n"
           "  --no-fallback   make that fallback an error (exit 1)\n"
           "  --json FILE     write JSON Lines, one object per image:\n"
           "                  {\"image\", \"width\", \"height\", \"detections\": [{\"class_id\",\n"
           "                  \"class_name\", \"confidence\", \"box\": [x1, y1, x2, y2]}],\n"
           "                  \"timings_ms\": {\"decode\", \"preprocess\", \"inference\",\n"
           "                  \"postprocess\"}}; FILE is overwritten; '-' = stdout (the tables\n"
           "                  then go to stderr) (default: none). A video frame's record\n"
           "                  (\"image\" = the SOURCE) adds \"frame\" (0-based index among\n"
           "                  the decoded frames), \"pts\" (presentation time, s) and\n"
           "                  \"latency_ms\" (frame out of the decoder -> result)\n"
           "  --save-dir DIR  write an annotated JPEG per image to DIR/<image name>.jpg and\n"
           "                  an annotated H.264 MP4 per video to DIR/<video name>.mp4\n"
           "                  (streams, cameras: DIR/stream<i>.mp4, i = the SOURCE's\n"
           "                  position from 0), at the source's frame rate and size; an\n"
           "                  existing video is never replaced (an error); DIR is created if\n"
           "                  needed (default: none)\n"
           "  --vid-stride N  videos and streams: detect every Nth decoded frame, in\n"
           "                  [1, 100000] (default 1)\n"
           "  --realtime, --no-realtime\n"
           "                  force the real-time policy on / off: when detection is slower\n"
           "                  than the source, drop the oldest waiting frames (counted and\n"
           "                  reported) so latency stays bounded (default: on for streams\n"
           "                  and cameras, off for files: every frame detected)\n"
           "  --reconnect     reopen a network stream that broke or ended, with back-off\n"
           "                  (0.5 s doubling to 8 s), logged (default: off)\n"
           "  --reconnect-timeout S\n"
           "                  give up reconnecting after S seconds without a connection;\n"
           "                  0 = never (default 60)\n"
           "  --max-frames N  stop each video or stream after N detected frames; 0 = all\n"
           "                  (default 0)\n"
           "  --segment-time S\n"
           "                  --save-dir for streams and cameras: start a new file every S\n"
           "                  seconds of video (DIR/stream<i>_000.mp4, _001, ...); files are\n"
           "                  written as one MP4 (default 300)\n"
           "  --stats-interval S\n"
           "                  streams and cameras: a line on stderr every S seconds (fps,\n"
           "                  latency, dropped, corrupt, queued); 0 = off (default 5)\n"
           "  --progress      video files: print the progress line (frame i/n, fps, ETA) even\n"
           "                  when stderr is not a terminal (then about one line a second)\n"
           "                  (default: on a terminal only)\n"
           "  --transfer      load in transfer mode: copy the tensors whose name and shape\n"
           "                  match, initialise the others as Ultralytics does, ignore the\n"
           "                  file's extra tensors; the report (transferred X/Y, each tensor\n"
           "                  initialised or ignored, with the reason) goes to stderr\n"
           "                  (default: strict, every tensor must match)\n"
           "  --nc N          build the network with N classes, in [1, %d] (default: the\n"
           "                  file's); with a different count than the file's, use --transfer\n"
           "  --map OLD=NEW   rename checkpoint tensors starting with OLD to start with NEW\n"
           "                  before matching; repeatable (default: none; 'module.' and\n"
           "                  '_orig_mod.' prefixes are always stripped)\n"
           "  --verify        .safetensors: check the data against its recorded sha256 first\n"
           "  --no-cache      read .pt/.onnx weights directly, not through the packed-weights\n"
           "                  cache (hotyolo cache --help)\n"
           "                  (default: off)\n"
           "  --strict-images a JPEG cut short is an error, not a warning (default: off)\n"
           "  --registry DIR  the model registry in which MODEL = registry:REF (NAME@3,\n"
           "                  NAME@production, PROJECT) is looked up (default:\n"
           "                  $HOTYOLO_REGISTRY)\n"
           "  -q, --quiet     print no tables or summary, only errors and warnings\n"
           "  -v, --verbose   also print the library's log messages to stderr (videos:\n"
           "                  FFmpeg's own messages too)\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0 ok (every stream ended normally), 1 runtime error (model load\n"
           "failure, an image or source that cannot be read or decoded, a stream that gave\n"
           "up reconnecting, a write error; other images and sources are still processed),\n"
           "2 usage error, 130 interrupted (SIGINT; outputs finished cleanly).\n"
           "\n"
           "Example:\n"
           "  hotyolo detect yolov8n.pt bus.jpg zidane.jpg --conf 0.4 --json out.jsonl\n"
           "  hotyolo detect yolov8n.pt photos/ 'more/*.png' --save-dir runs/detect\n"
           "  hotyolo detect yolov8n.pt clip.mp4 --vid-stride 3 --json clip.jsonl\n"
           "  hotyolo detect yolov8n.pt rtsp://10.0.0.7/line1 --reconnect --save-dir runs/line1\n"
           "  hotyolo detect yolov8n.pt 0 --max-frames 300   # the first camera\n",
           "{bmp,dng,jpeg,jpg,mpo,png,tif,tiff,webp,pfm,heic}", MAX_IMAGES, MAX_IMGSZ, MAX_MAX_DET, MAX_THREADS, cores > 0 ? cores : 1L, MAX_NC);
}

/* ---- option values ----------------------------------------------------------------- */


static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    return hy_cli_parse_int(CMD, opt, s, lo, hi, out);
}

/* "0,2,5" -> malloc'd ids. */
static int parse_classes(const char *s, int **ids_out, int *n_out) {
    size_t n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int *ids = malloc(n * sizeof *ids);
    if (!ids) {
        hy_cli_error(CMD, "out of memory");
        return -1;
    }
    const char *p = s;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item) {
            hy_cli_error(CMD, "--classes: '%s' is not a comma-separated list of class ids", s);
            free(ids);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_int("--classes", item, 0, MAX_CLASS_ID, &ids[i]) != 0) {
            free(ids);
            return -1;
        }
        p += len + 1;
    }
    *ids_out = ids;
    *n_out = (int)n;
    return 0;
}

/* Parses argv into o; returns 0, 1 for --help (printed), or -1 on a usage error (printed). */
static int parse_args(int argc, char **argv, detect_opts *o) {
    enum { O_CONF, O_IOU, O_IMGSZ, O_MAXDET, O_CLASSES, O_THREADS, O_JSON, O_SAVEDIR, O_QUIET,
           O_VERBOSE, O_HELP, O_TRANSFER, O_NC, O_MAP, O_VERIFY, O_STRICT, O_DEVICE, O_REGISTRY,
           O_VID_STRIDE, O_REALTIME, O_NO_REALTIME, O_RECONNECT, O_RECONNECT_TIMEOUT,
           O_MAX_FRAMES, O_SEGMENT_TIME, O_STATS_INTERVAL, O_PROGRESS, O_NO_FALLBACK };
    static const hy_cli_opt table[] = {
        {"--conf", NULL, O_CONF, 1},       {"--iou", NULL, O_IOU, 1},
        {"--imgsz", NULL, O_IMGSZ, 1},     {"--max-det", NULL, O_MAXDET, 1},
        {"--classes", NULL, O_CLASSES, 1}, {"--threads", NULL, O_THREADS, 1},
        {"--json", NULL, O_JSON, 1},       {"--save-dir", NULL, O_SAVEDIR, 1},
        {"--quiet", "-q", O_QUIET, 0},     {"--verbose", "-v", O_VERBOSE, 0},
        {"--help", "-h", O_HELP, 0},       {"--transfer", NULL, O_TRANSFER, 0},
        {"--nc", NULL, O_NC, 1},           {"--map", NULL, O_MAP, 1},
        {"--verify", NULL, O_VERIFY, 0},   {"--strict-images", NULL, O_STRICT, 0},
        {"--device", NULL, O_DEVICE, 1},   {"--registry", NULL, O_REGISTRY, 1},
        {"--vid-stride", NULL, O_VID_STRIDE, 1},
        {"--realtime", NULL, O_REALTIME, 0},
        {"--no-realtime", NULL, O_NO_REALTIME, 0},
        {"--reconnect", NULL, O_RECONNECT, 0},
        {"--reconnect-timeout", NULL, O_RECONNECT_TIMEOUT, 1},
        {"--max-frames", NULL, O_MAX_FRAMES, 1},
        {"--segment-time", NULL, O_SEGMENT_TIME, 1},
        {"--stats-interval", NULL, O_STATS_INTERVAL, 1},
        {"--progress", NULL, O_PROGRESS, 0},
        {"--no-fallback", NULL, O_NO_FALLBACK, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue; /* "--" */
        if (k == -2) {
            if (!o->model)
                o->model = argv[i];
            else
                o->sources[o->n_sources++] = argv[i];
            continue;
        }
        const char *opt = table[k].name;
        switch (table[k].id) {
        case O_CONF:
            if (hy_cli_parse_float(CMD, opt, val, 0.0f, 1.0f, &o->conf)) return -1;
            break;
        case O_IOU:
            if (hy_cli_parse_float(CMD, opt, val, 0.0f, 1.0f, &o->iou)) return -1;
            break;
        case O_IMGSZ:
            if (parse_int(opt, val, 32, MAX_IMGSZ, &o->imgsz)) return -1;
            if (o->imgsz % 32) {
                hy_cli_error(CMD, "%s: %d is not a multiple of 32 (the model's largest stride)", opt,
                             o->imgsz);
                return -1;
            }
            break;
        case O_MAXDET:
            if (parse_int(opt, val, 1, MAX_MAX_DET, &o->max_det)) return -1;
            break;
        case O_CLASSES:
            free(o->classes);
            o->classes = NULL;
            if (parse_classes(val, &o->classes, &o->n_classes)) return -1;
            break;
        case O_THREADS:
            if (parse_int(opt, val, 0, MAX_THREADS, &o->threads)) return -1;
            break;
        case O_JSON:
        case O_SAVEDIR:
            if (!*val) {
                hy_cli_error(CMD, "%s: empty path", opt);
                return -1;
            }
            if (table[k].id == O_JSON)
                o->json_path = val;
            else
                o->save_dir = val;
            break;
        case O_QUIET: o->quiet = 1; break;
        case O_VERBOSE: o->verbose = 1; break;
        case O_HELP: help(); return 1;
        case O_TRANSFER: o->transfer = 1; break;
        case O_NC:
            if (parse_int(opt, val, 1, MAX_NC, &o->nc)) return -1;
            break;
        case O_MAP:
            if (hy_cli_maps_add(CMD, &o->maps, val)) return -1;
            break;
        case O_VERIFY: o->verify = 1; break;
        case O_STRICT: o->strict_images = 1; break;
        case O_DEVICE:
            if (hy_cli_parse_device(CMD, opt, val, &o->device)) return -1;
            break;
        case O_NO_FALLBACK: o->no_fallback = 1; break;
        case O_REGISTRY: o->registry = val; break;
        case O_VID_STRIDE:
            if (parse_int(opt, val, 1, MAX_VID_STRIDE, &o->vid_stride)) return -1;
            break;
        case O_REALTIME: o->realtime = 1; break;
        case O_NO_REALTIME: o->realtime = 0; break;
        case O_RECONNECT: o->reconnect = 1; break;
        case O_RECONNECT_TIMEOUT:
            if (hy_cli_parse_float(CMD, opt, val, 0.0f, MAX_SECONDS, &o->reconnect_timeout)) return -1;
            break;
        case O_MAX_FRAMES:
            if (parse_int(opt, val, 0, INT_MAX, &o->max_frames)) return -1;
            break;
        case O_SEGMENT_TIME:
            if (hy_cli_parse_float(CMD, opt, val, 1.0f, MAX_SECONDS, &o->segment_time)) return -1;
            break;
        case O_STATS_INTERVAL:
            if (hy_cli_parse_float(CMD, opt, val, 0.0f, MAX_SECONDS, &o->stats_interval)) return -1;
            break;
        case O_PROGRESS: o->progress = 1; break;
        }
    }
    if (!o->model) {
        hy_cli_error(CMD, "missing MODEL and IMAGE arguments (see 'hotyolo detect --help')");
        return -1;
    }
    if (o->n_sources == 0) {
        hy_cli_error(CMD, "missing IMAGE argument (or another SOURCE: directory, glob, video, "
                     "stream, camera; see 'hotyolo detect --help')");
        return -1;
    }
    return 0;
}

/* ---- sources: files, directories, globs --------------------------------------------- */

/* Ultralytics' IMG_FORMATS (matched case-insensitively on the text after the last '.'); only
 * JPEG and PNG decode, the others fail per file with the decoder's message. */
static const char *const IMG_EXTS[] = {"bmp", "dng", "jpeg", "jpg", "mpo", "png",
                                       "tif", "tiff", "webp", "pfm", "heic"};
static int ext_in(const char *path, const char *const *exts, size_t n) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(dot + 1, exts[i])) return 1;
    return 0;
}
#define IS_IMAGE(p) ext_in(p, IMG_EXTS, sizeof IMG_EXTS / sizeof IMG_EXTS[0])
#define IS_VIDEO(p) hy_stream_is_video_path(p) /* Ultralytics' VID_FORMATS */

/* Appends a copy of path; -1 (printed) past MAX_IMAGES or out of memory. */
static int images_add(detect_opts *o, const char *src, const char *path) {
    if (o->n_images >= MAX_IMAGES) {
        hy_cli_error(CMD, "'%s': more than %d images in all (the most one run takes); pass fewer "
                     "or narrower sources", src, MAX_IMAGES);
        return -1;
    }
    if (o->n_images == o->cap_images) {
        int cap = o->cap_images ? 2 * o->cap_images : 64;
        char **nv = realloc(o->images, (size_t)cap * sizeof *nv);
        if (!nv) goto nomem;
        o->images = nv;
        o->cap_images = cap;
    }
    if (!(o->images[o->n_images] = strdup(path))) goto nomem;
    o->n_images++;
    return 0;
nomem:
    hy_cli_error(CMD, "out of memory listing '%s'", src);
    return -1;
}

/* Appends a copy of name as a video / stream source; -1 (printed) past MAX_VIDEOS. */
static int videos_add(detect_opts *o, const char *src, const char *name, int pos, hy_stream_kind kind) {
    if (o->n_videos >= MAX_VIDEOS) {
        hy_cli_error(CMD, "'%s': more than %d videos and streams in all (the most one run takes)",
                     src, MAX_VIDEOS);
        return -1;
    }
    if (o->n_videos == o->cap_videos) {
        int cap = o->cap_videos ? 2 * o->cap_videos : 16;
        video_src *nv = realloc(o->videos, (size_t)cap * sizeof *nv);
        if (!nv) goto nomem;
        o->videos = nv;
        o->cap_videos = cap;
    }
    video_src *v = &o->videos[o->n_videos];
    if (!(v->name = strdup(name))) goto nomem;
    v->pos = pos;
    v->kind = kind;
    o->n_videos++;
    return 0;
nomem:
    hy_cli_error(CMD, "out of memory listing '%s'", src);
    return -1;
}

static int cmp_video(const void *a, const void *b) {
    return strcmp(((const video_src *)a)->name, ((const video_src *)b)->name);
}

static int cmp_path(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytes: Python's sorted() on str */
}

static int is_regular(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static off_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* A video file found in a directory or glob: taken (after the images), except an empty one
 * (0 bytes: a placeholder, no video in it), counted in *n_empty and named in a warning. */
static int take_video(detect_opts *o, const char *src, const char *path, int pos, int *n_empty) {
    if (!is_regular(path)) return 0;
    if (file_size(path) == 0) {
        ++*n_empty;
        return 0;
    }
    return videos_add(o, src, path, pos, HY_STREAM_FILE);
}

static void warn_empty_videos(const char *src, int n_empty) {
    if (n_empty)
        fprintf(stderr, "hotyolo %s: warning: '%s': skipping %d video file%s of 0 bytes\n", CMD,
                src, n_empty, n_empty == 1 ? "" : "s");
}

/* DIR: its regular files named *.<image extension>, not hidden, not recursive (Ultralytics:
 * sorted(glob(os.path.join(DIR, "*.*"))) then IMG_FORMATS). */
static int add_dir(detect_opts *o, const char *dir, int pos) {
    DIR *d = opendir(dir);
    if (!d) {
        hy_cli_error(CMD, "cannot read directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    const int first = o->n_images, first_video = o->n_videos;
    const size_t dlen = strlen(dir);
    const char *sep = dlen && dir[dlen - 1] == '/' ? "" : "/";
    int n_empty = 0, rc = 0;
    char path[4096];
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* glob's '*' skips hidden names */
        const int image = IS_IMAGE(e->d_name);
        if (!image && !IS_VIDEO(e->d_name)) continue;
        if (snprintf(path, sizeof path, "%s%s%s", dir, sep, e->d_name) >= (int)sizeof path) {
            hy_cli_error(CMD, "'%s': path of '%s' too long", dir, e->d_name);
            rc = -1;
            break;
        }
        if (!image) {
            if ((rc = take_video(o, dir, path, pos, &n_empty))) break;
            errno = 0;
            continue;
        }
        if (!is_regular(path)) continue; /* a folder named x.jpg */
        if ((rc = images_add(o, dir, path))) break;
        errno = 0;
    }
    if (!rc && errno) {
        hy_cli_error(CMD, "cannot read directory '%s': %s", dir, strerror(errno));
        rc = -1;
    }
    closedir(d);
    if (rc) return rc;
    if (o->n_images > first)
        qsort(o->images + first, (size_t)(o->n_images - first), sizeof *o->images, cmp_path);
    if (o->n_videos > first_video)
        qsort(o->videos + first_video, (size_t)(o->n_videos - first_video), sizeof *o->videos, cmp_video);
    warn_empty_videos(dir, n_empty);
    if (o->n_images == first && o->n_videos == first_video && !n_empty) {
        hy_cli_error(CMD, "no images in directory '%s' (looked for *.{bmp,dng,jpeg,jpg,mpo,png,"
                     "tif,tiff,webp,pfm,heic} and videos, not in subdirectories)", dir);
        return -1;
    }
    return 0;
}

/* A quoted glob, expanded as Ultralytics does with sorted(glob(...)) (no '**' recursion in
 * glob(3): '**' acts as '*'), keeping image extensions. */
static int add_glob(detect_opts *o, const char *pat, int pos) {
    glob_t g;
    memset(&g, 0, sizeof g);
    int gr = glob(pat, GLOB_NOSORT, NULL, &g);
    if (gr == GLOB_NOSPACE) {
        hy_cli_error(CMD, "out of memory expanding '%s'", pat);
        globfree(&g);
        return -1;
    }
    if (gr == GLOB_ABORTED) {
        hy_cli_error(CMD, "cannot expand '%s': a directory could not be read", pat);
        globfree(&g);
        return -1;
    }
    const int first = o->n_images, first_video = o->n_videos;
    int n_empty = 0, rc = 0;
    for (size_t i = 0; gr == 0 && i < g.gl_pathc && !rc; i++) {
        const char *p = g.gl_pathv[i];
        if (!IS_IMAGE(p)) {
            if (IS_VIDEO(p)) rc = take_video(o, pat, p, pos, &n_empty);
            continue;
        }
        if (is_regular(p)) rc = images_add(o, pat, p);
    }
    const size_t n_matched = gr == 0 ? g.gl_pathc : 0;
    globfree(&g);
    if (rc) return rc;
    if (o->n_images > first)
        qsort(o->images + first, (size_t)(o->n_images - first), sizeof *o->images, cmp_path);
    if (o->n_videos > first_video)
        qsort(o->videos + first_video, (size_t)(o->n_videos - first_video), sizeof *o->videos, cmp_video);
    warn_empty_videos(pat, n_empty);
    if (o->n_images == first && o->n_videos == first_video && !n_empty) {
        if (n_matched)
            hy_cli_error(CMD, "no images match '%s' (%zu path%s match, none an image file named "
                         "*.{bmp,dng,jpeg,jpg,mpo,png,tif,tiff,webp,pfm,heic})", pat, n_matched,
                         n_matched == 1 ? "" : "s");
        else
            hy_cli_error(CMD, "no images match '%s'", pat);
        return -1;
    }
    return 0;
}

/* Expands o->sources into o->images and o->videos: a URL on the stream allow-list, /dev/videoN
 * or a bare index is a stream / camera (hy_stream_kind_of); an existing directory is read; a
 * path that does not exist and holds a glob character is a glob; a file named *.<video
 * extension> is a video; anything else is an image, taken as is (even with another extension:
 * its errors are reported when read). 0, or -1 with the error printed. */
static int expand_sources(detect_opts *o) {
    for (int i = 0; i < o->n_sources; i++) {
        const char *s = o->sources[i];
        struct stat sb;
        int rc;
        hy_stream_kind kind = strcmp(s, "-") != 0 ? hy_stream_kind_of(s) : HY_STREAM_FILE;
        if (kind != HY_STREAM_FILE)
            rc = videos_add(o, s, s, i, kind);
        else if (strcmp(s, "-") != 0 && stat(s, &sb) == 0 && S_ISDIR(sb.st_mode))
            rc = add_dir(o, s, i);
        else if (strpbrk(s, "*?[") && lstat(s, &sb) != 0)
            rc = add_glob(o, s, i);
        else if (IS_VIDEO(s))
            rc = videos_add(o, s, s, i, HY_STREAM_FILE);
        else
            rc = images_add(o, s, s);
        if (rc) return rc;
    }
    return 0;
}

/* ---- output files ------------------------------------------------------------------ */

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* mkdir -p; fails when the path (or a parent) exists and is not a directory. */

/* Output names already written this run (two inputs with the same base name): an
 * open-addressing hash set (a directory of 100k images stays linear). */
typedef struct name_set {
    char **slots; /* (cap) NULL = empty */
    size_t n, cap; /* cap: a power of two, kept over 2n */
} name_set;

static size_t name_hash(const char *s) {
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int name_set_has(const name_set *s, const char *name) {
    if (!s->cap) return 0;
    for (size_t i = name_hash(name) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->slots[i], name)) return 1;
    return 0;
}

static void name_set_put(char **slots, size_t cap, char *name) {
    size_t i = name_hash(name) & (cap - 1);
    while (slots[i]) i = (i + 1) & (cap - 1);
    slots[i] = name;
}

static int name_set_add(name_set *s, const char *name) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **ns = calloc(cap, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i]) name_set_put(ns, cap, s->slots[i]);
        free(s->slots);
        s->slots = ns;
        s->cap = cap;
    }
    char *c = strdup(name);
    if (!c) return -1;
    name_set_put(s->slots, s->cap, c);
    s->n++;
    return 0;
}

static void name_set_free(name_set *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
    free(s->slots);
}

/* DIR/<base name without extension>[_k]<ext>, unique within this run. */
static int annotated_path(const char *dir, const char *image, const char *ext, name_set *used,
                          char *out, size_t cap) {
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    const char *dot = strrchr(base, '.');
    int stem_len = (int)(dot && dot != base ? (size_t)(dot - base) : strlen(base));
    if (stem_len == 0) {
        base = "image";
        stem_len = 5;
    }
    const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
    for (int k = 1;; k++) {
        int n = k == 1 ? snprintf(out, cap, "%s%s%.*s%s", dir, sep, stem_len, base, ext)
                       : snprintf(out, cap, "%s%s%.*s_%d%s", dir, sep, stem_len, base, k, ext);
        if (n < 0 || (size_t)n >= cap) return -1;
        if (!name_set_has(used, out)) return name_set_add(used, out);
    }
}

/* ---- JSON -------------------------------------------------------------------------- */

static const char *class_name(const hy_model *m, int id, char *buf, size_t cap) {
    const char *n = hy_model_class_name(m, id);
    if (n) return n;
    snprintf(buf, cap, "class_%d", id);
    return buf;
}

/* One JSON Lines record (the library's writer, shared with the server); 0 or -1 (out of
 * memory). t: this run's timings (decode includes the file read). fr: a video frame's record
 * ("frame", "pts" in s to 6 decimals, "latency_ms"), NULL for an image. */
static int write_json(FILE *f, const char *image, const hy_result *r, const hy_model *m,
                      const hy_timings *t, const hy_frame *fr) {
    static const char *const head_keys[] = {"image"};
    const char *head_vals[] = {image};
    hy__result_json_opts jo = {.head_keys = head_keys, .head_vals = head_vals, .n_head = 1, .timings = t};
    json_object *o = hy__result_json(r, m, &jo);
    if (!o) return -1;
    if (fr) {
        json_object *v[3] = {json_object_new_int64(fr->index), hy__json_rounded(fr->pts, 6),
                             hy__json_rounded(fr->latency_ms, 3)};
        static const char *const keys[3] = {"frame", "pts", "latency_ms"};
        for (int i = 0; i < 3; i++)
            if (!v[i] || json_object_object_add(o, keys[i], v[i]) != 0) {
                for (int j = i; j < 3; j++) json_object_put(v[j]);
                json_object_put(o);
                return -1;
            }
    }
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s) {
        json_object_put(o);
        return -1;
    }
    fputs(s, f);
    fputc('\n', f);
    fflush(f);
    json_object_put(o);
    return 0;
}

/* ---- table ------------------------------------------------------------------------- */

/* The title (printf-style): "image 3/5 PATH" or "SOURCE frame 12 (pts 0.400 s)". */
static void print_table(FILE *f, const hy_result *r, const hy_model *m, const hy_timings *t,
                        double total_ms, const char *title_fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void print_table(FILE *f, const hy_result *r, const hy_model *m, const hy_timings *t,
                        double total_ms, const char *title_fmt, ...) {
    size_t count = hy_result_count(r);
    va_list ap;
    va_start(ap, title_fmt);
    vfprintf(f, title_fmt, ap);
    va_end(ap);
    fprintf(f,
            ": %dx%d, %zu detection%s, %.1f ms (decode %.1f, preprocess %.1f, "
            "inference %.1f, postprocess %.1f)\n",
            hy_result_image_width(r), hy_result_image_height(r), count,
            count == 1 ? "" : "s", total_ms, t->decode_ms, t->preprocess_ms, t->inference_ms,
            t->postprocess_ms);
    int w = 12;
    char nb[32];
    for (size_t i = 0; i < count; i++) {
        int len = (int)strlen(class_name(m, hy_result_get(r, i)->class_id, nb, sizeof nb));
        if (len > w) w = len;
    }
    for (size_t i = 0; i < count; i++) {
        const hy_detection *d = hy_result_get(r, i);
        fprintf(f, "  %-*s %.3f  [%6.1f, %6.1f, %6.1f, %6.1f]\n", w,
                class_name(m, d->class_id, nb, sizeof nb), d->confidence, d->x1, d->y1, d->x2,
                d->y2);
    }
}

static void log_to_stderr(hy_log_level level, const char *msg, void *user_data) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "hotyolo: %s: %s\n", level >= HY_LOG_DEBUG && level <= HY_LOG_ERROR ? names[level] : "log",
            msg);
}

/* ---- first image: decoded while the model loads ------------------------------------- */
/* A one-shot run (one image, cold process) would otherwise pay decode, then load, then
 * planning + arena, then the forward pass one after another. The first image's bytes are
 * read and its size probed from the headers (microseconds), its decode runs on a thread
 * while the main thread loads the model and prepares exactly that input shape. */
typedef struct prefetch {
    const char *path;
    uint8_t *buf;
    size_t len;
    int width, height; /* from the headers; 0 when the probe failed (detect reports it) */
    hy_image *img;
    double read_ms, decode_ms; /* file read; read + decode */
    char err[1024];
    pthread_t th;
    int started;
} prefetch;

static void *prefetch_main(void *arg) {
    prefetch *p = arg;
    double t0 = now_ms();
    /* as OpenCV's imread: a JPEG cut short decodes (flagged; --strict-images refuses it) */
    if (hy_image_decode_ex(p->buf, p->len, HY_IMAGE_REPAIR_TRUNCATED, &p->img) != HY_OK) {
        snprintf(p->err, sizeof p->err, "%s", hy_last_error());
        p->img = NULL;
    }
    p->decode_ms = p->read_ms + (now_ms() - t0);
    return NULL;
}

/* Reads and probes path, starts its decode. On any failure nothing is started and the
 * image goes through the ordinary path (which reports the error). */
static void prefetch_start(prefetch *p, const char *path) {
    memset(p, 0, sizeof *p);
    p->path = path;
    double t0 = now_ms();
    if (hy_cli_read_file(path, &p->buf, &p->len) != 0) return;
    p->read_ms = now_ms() - t0;
    if (hy_image_probe(p->buf, p->len, &p->width, &p->height) != HY_OK) p->width = p->height = 0;
    if (!p->width || pthread_create(&p->th, NULL, prefetch_main, p) != 0) {
        free(p->buf);
        p->buf = NULL;
        p->width = p->height = 0;
        return;
    }
    p->started = 1;
}

/* Waits for the decode; the image (owned by the caller) or NULL with p->err set. */
static hy_image *prefetch_take(prefetch *p) {
    if (!p->started) return NULL;
    pthread_join(p->th, NULL);
    p->started = 0;
    free(p->buf);
    p->buf = NULL;
    hy_image *img = p->img;
    p->img = NULL;
    return img;
}

static void prefetch_end(prefetch *p) {
    hy_image_free(prefetch_take(p));
    free(p->buf);
    p->buf = NULL;
}

/* ---- videos and streams ------------------------------------------------------------- */

/* SIGINT while streams run: the flag plus hy_stream_interrupt on the current stream (async-
 * signal-safe). The handler may run on any thread: in_handler lets the main thread wait, after
 * clearing cur_stream, until no handler can still hold the stream it is about to close. */
static volatile sig_atomic_t sigint_seen;
static _Atomic(hy_stream *) cur_stream;
static atomic_int in_handler;

static void on_sigint(int sig) {
    (void)sig;
    sigint_seen = 1;
    atomic_fetch_add(&in_handler, 1);
    hy_stream *s = atomic_load(&cur_stream);
    if (s) hy_stream_interrupt(s);
    atomic_fetch_sub(&in_handler, 1);
}

static void stream_release(hy_stream *s) {
    atomic_store(&cur_stream, NULL);
    while (atomic_load(&in_handler)) sched_yield();
    hy_stream_close(s);
}

/* The library's warnings (a corrupt frame skipped, reconnecting...) while streams run. FFmpeg's
 * own lines ("ffmpeg: [h264 @ 0x..] ...", often dozens per damaged frame, and restated in the
 * library's message) only with --verbose. */
static void log_warnings(hy_log_level level, const char *msg, void *user_data) {
    (void)user_data;
    if (level >= HY_LOG_WARN && strncmp(msg, "ffmpeg: ", 8) != 0)
        fprintf(stderr, "hotyolo %s: %s: %s\n", CMD, level == HY_LOG_WARN ? "warning" : "error", msg);
}

/* An error about source src: "hotyolo detect: SRC: <e>" (e as is when it starts with src). */
static void source_error(const char *src, const char *what, const char *e) {
    if (!strncmp(e, src, strlen(src)))
        hy_cli_error(CMD, "%s%s", what, e);
    else
        hy_cli_error(CMD, "%s: %s%s", src, what, e);
}

typedef struct stream_run {
    const detect_opts *o;
    hy_context *ctx;
    const hy_model *m;
    const hy_detect_params *dp;
    FILE *out, *json;
    name_set *used;
} stream_run;

/* Runs one video / stream source to its end (or SIGINT): 0, or -1 with the error printed. */
static int run_stream(stream_run *R, const video_src *v) {
    const detect_opts *o = R->o;
    const char *src = v->name;
    hy_stream *s = NULL;
    hy_video_writer *w = NULL;
    hy_image *canvas = NULL; /* the frame copy annotations are drawn on */
    int rc = 0, tty = isatty(fileno(stderr)), prog_open = 0;

    hy_stream_params sp = hy_stream_default_params();
    sp.vid_stride = o->vid_stride;
    sp.live = o->realtime;
    sp.reconnect = o->reconnect;
    sp.reconnect_timeout_s = o->reconnect_timeout;
    sp.max_frames = o->max_frames;
    if (hy_stream_open(src, &sp, &s) != HY_OK) {
        source_error(src, "", hy_last_error());
        return -1;
    }
    atomic_store(&cur_stream, s);
    if (sigint_seen) hy_stream_interrupt(s); /* arrived while opening */
    hy_stream_info info;
    if (hy_stream_get_info(s, &info) != HY_OK) {
        source_error(src, "", hy_last_error());
        goto fail;
    }
    if (o->save_dir) {
        char dst[4096];
        int n = -1;
        if (v->kind == HY_STREAM_FILE)
            n = annotated_path(o->save_dir, src, ".mp4", R->used, dst, sizeof dst);
        else {
            const char *sep = o->save_dir[strlen(o->save_dir) - 1] == '/' ? "" : "/";
            int len = snprintf(dst, sizeof dst, "%s%sstream%d.mp4", o->save_dir, sep, v->pos);
            n = len < 0 || (size_t)len >= sizeof dst ? -1 : 0;
        }
        if (n != 0) {
            hy_cli_error(CMD, "%s: --save-dir: output path too long", src);
            goto fail;
        }
        hy_video_writer_params wp = hy_video_writer_default_params();
        wp.fps = info.fps > 0 && info.fps <= 1000 ? info.fps : 30;
        if (info.fps <= 0 || info.fps > 1000)
            fprintf(stderr, "hotyolo %s: warning: %s: frame rate unknown; the annotated video is "
                    "written at 30 fps\n", CMD, src);
        wp.segment_s = v->kind == HY_STREAM_FILE ? 0 : o->segment_time;
        if (hy_video_writer_open(dst, info.width, info.height, &wp, &w) != HY_OK) {
            source_error(src, "--save-dir: ", hy_last_error());
            goto fail;
        }
    }
    /* after the writer: a refused output costs no warm-up */
    if (hy_stream_prepare(s, R->ctx, o->imgsz) != HY_OK) {
        source_error(src, "cannot prepare the model for its frames: ", hy_last_error());
        goto fail;
    }

    const int live_line = v->kind != HY_STREAM_FILE && !o->quiet && o->stats_interval > 0;
    const int progress = v->kind == HY_STREAM_FILE && (o->progress || (tty && !o->quiet));
    const double t_start = now_ms();
    double t_line = t_start, t_prog = -1e9, lat_sum = 0, lat_max = 0;
    int64_t n_frames = 0, line_frames = 0;
    hy_frame f;
    hy_result *r = NULL;
    hy_status st;
    while ((st = hy_stream_detect(s, R->ctx, R->dp, &f, &r)) == HY_OK) {
        n_frames++;
        hy_timings t = hy_result_timings(r);
        t.decode_ms = f.decode_ms;
        if (!o->quiet) {
            if (prog_open && tty) { /* the table goes on a line of its own */
                fputs("\r\033[K", stderr);
                prog_open = 0;
            }
            /* the frame's own work (its wait in the queue is in latency_ms, not here) */
            const double work = t.decode_ms + t.preprocess_ms + t.inference_ms + t.postprocess_ms;
            print_table(R->out, r, R->m, &t, work, "%s frame %lld (pts %.3f s)", src,
                        (long long)f.index, f.pts);
        }
        if (R->json && write_json(R->json, src, r, R->m, &t, &f) != 0) {
            hy_cli_error(CMD, "--json: out of memory writing a record of '%s'", src);
            rc = -1;
        }
        if (w) {
            const hy_image *im = f.image;
            if (canvas && (canvas->width != im->width || canvas->height != im->height)) {
                hy_image_free(canvas);
                canvas = NULL;
            }
            if (!canvas) {
                if (hy_image_from_rgb(im->data, im->width, im->height, (size_t)im->width * 3,
                                      &canvas) != HY_OK) {
                    source_error(src, "--save-dir: ", hy_last_error());
                    goto fail_frame;
                }
            } else {
                memcpy(canvas->data, im->data, (size_t)im->width * (size_t)im->height * 3);
            }
            if (hy_image_draw_detections(canvas, r, R->m) != HY_OK ||
                hy_video_writer_write_at(w, canvas, f.pts) != HY_OK) {
                source_error(src, "--save-dir: ", hy_last_error());
                goto fail_frame;
            }
        }
        hy_result_free(r);
        r = NULL;
        const double now = now_ms();
        lat_sum += f.latency_ms;
        if (f.latency_ms > lat_max) lat_max = f.latency_ms;
        line_frames++;
        if (progress && now - t_prog >= (tty ? 100 : 1000)) {
            const double el = (now - t_start) / 1e3, fps = el > 0 ? (double)n_frames / el : 0;
            const int64_t done = f.index + 1;
            if (tty) fputs("\r\033[K", stderr);
            if (info.n_frames > 0) {
                const double pct = 100.0 * (double)done / (double)info.n_frames;
                const double dps = el > 0 ? (double)done / el : 0; /* decoded frames / s */
                const double eta = dps > 0 && info.n_frames > done ? (double)(info.n_frames - done) / dps : 0;
                fprintf(stderr, "%s: frame %lld/%lld (%.0f%%), %.1f fps, ETA %.0f s", src,
                        (long long)done, (long long)info.n_frames, pct > 100 ? 100 : pct, fps, eta);
            } else {
                fprintf(stderr, "%s: frame %lld, %.1f fps", src, (long long)done, fps);
            }
            fputs(tty ? "" : "\n", stderr);
            prog_open = tty;
            t_prog = now;
        }
        if (live_line && now - t_line >= o->stats_interval * 1e3) {
            hy_stream_stats ss;
            if (hy_stream_get_stats(s, &ss) == HY_OK) {
                if (prog_open) {
                    fputs("\r\033[K", stderr);
                    prog_open = 0;
                }
                fprintf(stderr, "%s: %.1f fps, latency %.1f ms (max %.1f ms), dropped %lld, corrupt "
                        "%lld, queued %d\n", src, (double)line_frames * 1e3 / (now - t_line),
                        lat_sum / (double)line_frames, lat_max, (long long)ss.dropped,
                        (long long)ss.corrupt, ss.queued);
            }
            t_line = now;
            line_frames = 0;
            lat_sum = lat_max = 0;
        }
    }
    if (prog_open) {
        fputs("\n", stderr);
        prog_open = 0;
    }
    if (st != HY_END) {
        source_error(src, "", hy_last_error());
        rc = -1;
    }
    const double el_s = (now_ms() - t_start) / 1e3;
    if (w) {
        const int64_t nw = hy_video_writer_frames(w);
        char path[4096];
        snprintf(path, sizeof path, "%s", hy_video_writer_path(w));
        hy_status cs = hy_video_writer_close(w);
        w = NULL;
        if (cs != HY_OK) {
            source_error(src, "--save-dir: ", hy_last_error());
            rc = -1;
        } else if (!o->quiet) {
            fprintf(stderr, "%s: annotated video saved to %s (%lld frame%s)\n", src, path,
                    (long long)nw, nw == 1 ? "" : "s");
        }
    }
    hy_stream_stats ss;
    if (hy_stream_get_stats(s, &ss) != HY_OK) memset(&ss, 0, sizeof ss);
    if (sigint_seen)
        fprintf(stderr, "hotyolo %s: %s: interrupted after %lld frame%s\n", CMD, src,
                (long long)n_frames, n_frames == 1 ? "" : "s");
    if (!o->quiet)
        fprintf(stderr, "%s: %lld frame%s in %.1f s (%.1f fps), dropped %lld, corrupt %lld, reconnects "
                "%lld\n", src, (long long)n_frames, n_frames == 1 ? "" : "s", el_s,
                el_s > 0 ? (double)n_frames / el_s : 0.0, (long long)ss.dropped, (long long)ss.corrupt,
                (long long)ss.reconnects);
    hy_image_free(canvas);
    stream_release(s);
    return rc;

fail_frame:
    hy_result_free(r);
    if (prog_open) fputs("\n", stderr);
fail:
    if (w) hy_video_writer_close(w); /* a playable file up to here */
    hy_image_free(canvas);
    stream_release(s);
    return -1;
}

/* ---- command ----------------------------------------------------------------------- */

int hy_cli_detect(int argc, char **argv) {
    /* iou < 0, max_det 0: the model family's defaults (hy_model_detect_params) */
    detect_opts o = {.conf = 0.25f, .iou = -1.f, .imgsz = 640, .max_det = 0, .threads = 0,
                     .vid_stride = 1, .realtime = -1, .reconnect_timeout = 60.f,
                     .segment_time = 300.f, .stats_interval = 5.f};
    hy_context *ctx = NULL;
    const hy_model *m = NULL;
    FILE *json = NULL;
    name_set used = {0};
    int rc = HY_CLI_OK;
    prefetch pf = {0};

    o.sources = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *o.sources);
    if (!o.sources) {
        hy_cli_error(CMD, "out of memory");
        return HY_CLI_RUNTIME;
    }
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        rc = pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
        goto done;
    }
    if ((rc = hy_cli_model_path(CMD, o.model, o.registry, &o.model_path)) != HY_CLI_OK) goto done;
    o.model = o.model_path;
    if (expand_sources(&o) != 0) { /* before the (slower) model load */
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    /* --json must not clobber an input. */
    if (o.json_path && strcmp(o.json_path, "-") != 0) {
        int clash = same_file(o.json_path, o.model);
        for (int i = 0; i < o.n_images && !clash; i++) clash = same_file(o.json_path, o.images[i]);
        for (int i = 0; i < o.n_videos && !clash; i++) clash = same_file(o.json_path, o.videos[i].name);
        if (clash) {
            hy_cli_error(CMD, "--json: '%s' is one of the input files; refusing to overwrite it",
                         o.json_path);
            rc = HY_CLI_USAGE;
            goto done;
        }
    }
    if (o.save_dir && hy_cli_make_dirs(CMD, "--save-dir", o.save_dir) != 0) {
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    if (o.verbose) hy_log_set(log_to_stderr, NULL);
    if (o.n_images > 0) prefetch_start(&pf, o.images[0]);

    /* Model */
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = o.threads;
    mp.imgsz = o.imgsz;
    mp.mode = o.transfer ? HY_LOAD_TRANSFER : HY_LOAD_STRICT;
    mp.nc = o.nc;
    mp.verify = o.verify;
    mp.device = o.device;
    mp.no_fallback = o.no_fallback;
    hy_cli_maps_apply(&o.maps, &mp);
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 0; /* the first image's shape only, below */
    double t0 = now_ms();
    if (hy_context_load(o.model, &mp, &cp, &ctx) != HY_OK) {
        const char *e = hy_last_error();
        if (strstr(e, o.model))
            hy_cli_error(CMD, "cannot load model: %s", e);
        else
            hy_cli_error(CMD, "cannot load model '%s': %s", o.model, e);
        rc = HY_CLI_RUNTIME;
        goto done;
    }
    double load_ms = now_ms() - t0;
    m = hy_context_model(ctx);
    hy_cli_warn_fallback(CMD, m, o.quiet);
    /* Plan and populate the first image's input shape now (no warm-up passes: a one-shot
     * run would pay them in full); other shapes are planned when first seen. */
    hy_shape first_shape;
    if (pf.started && hy_model_input_shape(m, pf.width, pf.height, o.imgsz, &first_shape) == HY_OK) {
        hy_prepare_params pp = hy_prepare_default_params();
        pp.shapes = &first_shape;
        pp.n_shapes = 1;
        pp.warmup_runs = 0;
        if (hy_model_prepare(ctx, &pp) != HY_OK) {
            hy_cli_error(CMD, "cannot prepare the model for %dx%d input: %s", first_shape.width,
                         first_shape.height, hy_last_error());
            rc = HY_CLI_RUNTIME;
            goto done;
        }
    }
    int nc = hy_model_num_classes(m);
    for (int i = 0; i < o.n_classes; i++)
        if (o.classes[i] >= nc) {
            hy_cli_error(CMD, "--classes: class id %d is out of range (the model has %d classes, 0..%d)",
                         o.classes[i], nc, nc - 1);
            rc = HY_CLI_USAGE;
            goto done;
        }

    FILE *out = stdout; /* tables */
    if (o.json_path) {
        if (!strcmp(o.json_path, "-")) {
            json = stdout;
            out = stderr;
        } else if (!(json = fopen(o.json_path, "w"))) {
            hy_cli_error(CMD, "--json: cannot create '%s': %s", o.json_path, strerror(errno));
            rc = HY_CLI_RUNTIME;
            goto done;
        }
    }
    if (!o.quiet) {
        const char *v = hy_model_variant(m);
        char dev[96];
        fprintf(out,
                "model %s (%s): %s%s, %d classes, imgsz %d, %d thread%s, device %s, loaded in "
                "%.1f ms\n",
                o.model, hy_model_format(m), hy_model_arch_title(m), v, nc, o.imgsz, hy_context_num_threads(ctx),
                hy_context_num_threads(ctx) == 1 ? "" : "s", hy_cli_device_desc(m, dev, sizeof dev), load_ms);
        /* stderr: stdout keeps only the tables (or the JSON Lines) */
        if (o.transfer) {
            fflush(out);
            hy_cli_print_load_report(stderr, o.model, m);
        }
    }

    hy_detect_params dp = hy_model_detect_params(m);
    dp.conf = o.conf;
    if (o.iou >= 0) dp.iou = o.iou;
    if (o.max_det > 0) dp.max_det = o.max_det;
    dp.imgsz = o.imgsz;
    dp.classes = o.classes;
    dp.n_classes = o.n_classes;

    int n_failed = 0, n_saved = 0, n_damaged = 0;
    size_t n_dets = 0;
    double t_all = now_ms();
    for (int i = 0; i < o.n_images; i++) {
        const char *path = o.images[i];
        hy_image *img = NULL;
        hy_result *r = NULL;
        double ta = now_ms(), read_decode_ms = -1;
        const char *e = NULL; /* why the image could not be read, if it could not */
        if (i == 0 && pf.started) {
            if (!(img = prefetch_take(&pf))) e = pf.err;
            read_decode_ms = pf.decode_ms;
        } else if (hy_image_load_ex(path, HY_IMAGE_REPAIR_TRUNCATED, &img) != HY_OK) {
            e = hy_last_error();
        }
        if (e) {
            if (strstr(e, path))
                hy_cli_error(CMD, "image %d/%d: %s", i + 1, o.n_images, e);
            else
                hy_cli_error(CMD, "image %d/%d '%s': %s", i + 1, o.n_images, path, e);
            n_failed++;
            continue;
        }
        if (img->flags) { /* a JPEG cut short, decoded as OpenCV does */
            const char *what = img->flags & HY_IMAGE_FLAG_TRUNCATED
                                   ? "pixel data is missing, filled in with grey"
                                   : "only the end-of-image marker is missing, every pixel read";
            if (o.strict_images) {
                hy_cli_error(CMD, "image %d/%d '%s': Premature end of JPEG file: %s "
                             "(--strict-images)", i + 1, o.n_images, path, what);
                hy_image_free(img);
                n_failed++;
                continue;
            }
            fprintf(stderr, "hotyolo %s: warning: image %d/%d '%s': Premature end of JPEG file: "
                    "%s (decoded as OpenCV does; --strict-images refuses it)\n", CMD, i + 1,
                    o.n_images, path, what);
            n_damaged++;
        }
        double tb = now_ms();
        if (hy_detect(ctx, img, &dp, &r) != HY_OK) {
            hy_cli_error(CMD, "image %d/%d '%s': detection failed: %s", i + 1, o.n_images, path,
                         hy_last_error());
            hy_image_free(img);
            n_failed++;
            continue;
        }
        double total = now_ms() - ta + (read_decode_ms >= 0 ? read_decode_ms : 0);
        hy_timings t = hy_result_timings(r);
        t.decode_ms = read_decode_ms >= 0 ? read_decode_ms : tb - ta; /* file read + decode */
        n_dets += hy_result_count(r);
        if (!o.quiet) print_table(out, r, m, &t, total, "image %d/%d %s", i + 1, o.n_images, path);
        if (json && write_json(json, path, r, m, &t, NULL) != 0) {
            hy_cli_error(CMD, "--json: out of memory writing the record of '%s'", path);
            rc = HY_CLI_RUNTIME;
        }
        if (o.save_dir) {
            char dst[4096];
            if (annotated_path(o.save_dir, path, ".jpg", &used, dst, sizeof dst) != 0) {
                hy_cli_error(CMD, "--save-dir: output path for '%s' too long", path);
                n_failed++;
            } else if (same_file(dst, path)) {
                hy_cli_error(CMD, "--save-dir: '%s' is the input image itself; not overwriting it",
                             dst);
                n_failed++;
            } else if (hy_image_draw_detections(img, r, m) != HY_OK ||
                       hy_image_save_jpeg(img, dst, JPEG_QUALITY) != HY_OK) {
                hy_cli_error(CMD, "--save-dir: cannot write '%s': %s", dst, hy_last_error());
                n_failed++;
            } else {
                n_saved++;
            }
        }
        hy_result_free(r);
        hy_image_free(img);
    }
    double all_ms = now_ms() - t_all;
    if (n_failed) rc = HY_CLI_RUNTIME;

    /* Videos and streams, one at a time (each prepares the context for its frame size). */
    if (o.n_videos > 0) {
        stream_run R = {.o = &o, .ctx = ctx, .m = m, .dp = &dp, .out = out, .json = json, .used = &used};
        struct sigaction sa, old_int;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process at once */
        sigint_seen = 0;
        sigaction(SIGINT, &sa, &old_int);
        if (!o.verbose) hy_log_set(log_warnings, NULL);
        for (int i = 0; i < o.n_videos && !sigint_seen; i++)
            if (run_stream(&R, &o.videos[i]) != 0) rc = HY_CLI_RUNTIME;
        if (!o.verbose) hy_log_set(NULL, NULL);
        sigaction(SIGINT, &old_int, NULL);
        if (sigint_seen) rc = HY_CLI_INTERRUPTED;
    }

    if (json && json != stdout) {
        int bad = ferror(json);
        if (fclose(json) != 0 || bad) {
            hy_cli_error(CMD, "--json: error writing '%s': %s", o.json_path, strerror(errno));
            rc = HY_CLI_RUNTIME;
        }
        json = NULL;
    }
    if (!o.quiet) {
        if (o.n_images > 0 || o.n_videos == 0) { /* the videos' summaries are on stderr */
            fprintf(out, "%d image%s, %zu detection%s, %d failed, %.1f ms\n", o.n_images,
                    o.n_images == 1 ? "" : "s", n_dets, n_dets == 1 ? "" : "s", n_failed, all_ms);
            if (n_damaged)
                fprintf(out, "%d image%s cut short, decoded with grey fill as OpenCV does (see the "
                        "warnings)\n", n_damaged, n_damaged == 1 ? " was" : "s were");
            if (o.save_dir)
                fprintf(out, "%d annotated image%s saved to %s\n", n_saved, n_saved == 1 ? "" : "s",
                        o.save_dir);
        }
        if (o.json_path && strcmp(o.json_path, "-") != 0)
            fprintf(out, "predictions written to %s\n", o.json_path);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) rc = HY_CLI_RUNTIME;

done:
    prefetch_end(&pf);
    if (json && json != stdout) fclose(json);
    if (o.verbose) hy_log_set(NULL, NULL);
    name_set_free(&used);
    hy_context_free(ctx);
    free(o.classes);
    for (int i = 0; i < o.n_images; i++) free(o.images[i]);
    free(o.images);
    for (int i = 0; i < o.n_videos; i++) free(o.videos[i].name);
    free(o.videos);
    free(o.sources);
    hy_free(o.model_path);
    hy_cli_maps_free(&o.maps);
    return rc;
}
