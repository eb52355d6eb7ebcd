/* Image decode from memory (src/image/decode.c: libjpeg-turbo, libspng, EXIF orientation):
 * hy_image_probe, then hy_image_decode. Property: when both succeed they agree on the size
 * (probe promises "the size of the image hy_image_decode would return"). */
#include "hotyolo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int pw = -1, ph = -1;
    hy_status pst = hy_image_probe(data, size, &pw, &ph);
    hy_image *img = NULL;
    if (hy_image_decode(data, size, &img) != HY_OK) return 0;
    if (img->width <= 0 || img->height <= 0) __builtin_trap();
    if (pst == HY_OK && (pw != img->width || ph != img->height)) __builtin_trap();
    volatile uint8_t sink = img->data[0] ^ img->data[(size_t)img->height * (size_t)img->width * 3 - 1];
    (void)sink;
    hy_image_free(img);
    return 0;
}
