/* ZIP reader (src/io/zip.c) over the input buffer: central directory, every entry's lookup by
 * name, and every entry read (inflate + CRC). Every caller states what an entry may inflate to
 * (the .pt loader: 64 MiB + 16x the file); this target passes the same kind of bound, so a
 * deflate bomb past it must be refused, and one that slips through shows as an OOM. */
#include "io/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hy__zip *z = NULL;
    if (hy__zip_open(data, size, "fuzz.zip", &z) != HY_OK) return 0;
    size_t n = hy__zip_count(z);
    for (size_t i = 0; i < n; i++) {
        const hy__zip_entry *e = hy__zip_entry_at(z, i);
        if (!e) __builtin_trap();
        if (!hy__zip_find(z, e->name)) __builtin_trap(); /* every listed name can be found */
        hy__zip_data d = {0};
        if (hy__zip_read(z, e, ((size_t)64 << 20) + 16 * size, &d) == HY_OK) {
            if (d.size != e->size) __builtin_trap();
            volatile uint8_t sink = 0;
            if (d.size) sink ^= d.data[0] ^ d.data[d.size - 1]; /* ASan checks the span */
            (void)sink;
            hy__zip_data_free(&d);
        }
    }
    if (hy__zip_entry_at(z, n) != NULL) __builtin_trap();
    hy__zip_close(z);
    return 0;
}
