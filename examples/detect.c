/* Minimal use of the hotyolo API: load a model and an image, detect, print, free.
 *
 *   example_detect MODEL.pt IMAGE.jpg
 *
 * Out of tree, against an installed hotyolo (README.md, "Library"):
 *   cc detect.c $(pkg-config --cflags --libs hotyolo) -o detect
 *   cmake -S examples -B build-examples -DCMAKE_PREFIX_PATH=PREFIX   (find_package(hotyolo))
 */
#include <stdio.h>

#include "hotyolo.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.pt IMAGE\n", argv[0]);
        return 2;
    }
    hy_context *ctx = NULL;
    hy_image *image = NULL;
    hy_result *result = NULL;
    int rc = 1;

    /* the model and a context to run it, prepared and warmed up: all cores, imgsz 640 */
    if (hy_context_load(argv[1], NULL, NULL, &ctx) != HY_OK) goto fail;
    if (hy_image_load(argv[2], &image) != HY_OK) goto fail;

    hy_detect_params dp = hy_detect_default_params(); /* conf 0.25, iou 0.7, max_det 300 */
    if (hy_detect(ctx, image, &dp, &result) != HY_OK) goto fail;

    const hy_model *model = hy_context_model(ctx); /* class names */
    printf("%s: %dx%d, %zu objects\n", argv[2], image->width, image->height,
           hy_result_count(result));
    for (size_t i = 0; i < hy_result_count(result); i++) {
        const hy_detection *d = hy_result_get(result, i);
        printf("  %-12s %.3f  [%6.1f, %6.1f, %6.1f, %6.1f]\n", /* as `hotyolo detect` */
               hy_model_class_name(model, d->class_id), d->confidence, d->x1, d->y1, d->x2, d->y2);
    }
    rc = 0;

fail:
    if (rc) fprintf(stderr, "error: %s\n", hy_last_error());
    hy_result_free(result);
    hy_image_free(image);
    hy_context_free(ctx); /* frees the model too */
    return rc;
}
