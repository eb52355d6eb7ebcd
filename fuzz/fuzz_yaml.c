/* Dataset data.yaml (src/val/dataset.c hy__val_dataset_load: libyaml, then the keys path /
 * train / val / names / nc, folders, .txt lists, label files). The loader takes a path, so
 * each input is written as data.yaml into a per-process folder that also holds a tiny real
 * dataset (images/val/a.jpg, labels/val/a.txt, val.txt), which keeps the image/label stage
 * reachable. The yaml may name any path: that is the input's right (the loader decides). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"
#include "data/dataset.h"

static char g_yaml[512], g_dir[256];

static void cleanup(void) { /* the per-process folder (left behind after a crash) */
    static const char *const files[] = {"/images/val/a.jpg", "/labels/val/a.txt", "/val.txt",
                                        "/data.yaml", "/images/val", "/labels/val", "/images",
                                        "/labels", ""};
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s%s", g_dir, files[i]);
        remove(p);
    }
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char *dir = g_dir, p[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof g_dir, "%s/hy-fuzz-yaml-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    const char *sub[] = {"", "/images", "/images/val", "/labels", "/labels/val"};
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        snprintf(p, sizeof p, "%s%s", dir, sub[i]);
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            perror(p);
            abort();
        }
    }
    hy_image *img = NULL;
    uint8_t *jpg = NULL;
    size_t len = 0;
    if (hy__image_create(8, 6, &img) != HY_OK) abort();
    memset(img->data, 90, 8 * 6 * 3);
    if (hy__image_encode_jpeg(img, 90, &jpg, &len) != HY_OK) abort();
    hy_image_free(img);
    snprintf(p, sizeof p, "%s/images/val/a.jpg", dir);
    write_file(p, jpg, len);
    free(jpg);
    static const char lab[] = "0 0.5 0.5 0.25 0.25\n1 0.1 0.2 0.05 0.05\n";
    snprintf(p, sizeof p, "%s/labels/val/a.txt", dir);
    write_file(p, lab, sizeof lab - 1);
    static const char list[] = "./images/val/a.jpg\n";
    snprintf(p, sizeof p, "%s/val.txt", dir);
    write_file(p, list, sizeof list - 1);
    snprintf(g_yaml, sizeof g_yaml, "%s/data.yaml", dir);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    write_file(g_yaml, data, size);
    hy__val_dataset *d = NULL;
    if (hy__val_dataset_load(g_yaml, "val", &d) == HY_OK) {
        if (d->nc < 1 || !d->names || d->n == 0) __builtin_trap();
        for (size_t i = 0; i < d->n; i++)
            for (int j = 0; j < d->items[i].n_labels; j++)
                if (d->items[i].labels[j].cls < 0 || d->items[i].labels[j].cls >= d->nc)
                    __builtin_trap();
        hy__val_dataset_free(d);
    }
    return 0;
}
