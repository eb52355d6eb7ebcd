/* YOLO label text (src/val/dataset.c hy__val_labels_parse): rows of "cls x y w h" or polygons,
 * as Ultralytics' verify_image_label reads them. The bytes are passed as they are (no NUL
 * terminator), so reading past len is an ASan finding. The first byte picks nc (1..256) so
 * the class-id bound is exercised too; the rest is the text. */
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int nc = 1 + data[0];
    hy__val_label *rows = NULL;
    int n = -1;
    if (hy__val_labels_parse((const char *)data + 1, size - 1, "fuzz.txt", nc, &rows, &n) ==
        HY_OK) {
        if (n < 0 || (n > 0 && !rows)) __builtin_trap();
        for (int i = 0; i < n; i++)
            if (rows[i].cls < 0 || rows[i].cls >= nc) __builtin_trap();
    }
    hy__free(rows);
    return 0;
}
