/* hy_image_draw_detections: Ultralytics-style annotation of a result, through the public result
 * and model accessors only. Kept apart from draw.c so that linking hy__draw_box alone does not
 * pull in the result/model code. */
#include <math.h>
#include <stdio.h>

#include "image/image.h"

/* int(v) with NaN/huge values (never expected, but floats from a result) kept in range. */
static int to_int(float v) {
    if (!(v > -1e6f)) return -1000000;
    if (v > 1e6f) return 1000000;
    return (int)v;
}

hy_status hy_image_draw_detections(hy_image *img, const hy_result *r, const hy_model *m) {
    if (!img || !img->data || !r)
        return hy__error(HY_ERR_INVALID_ARG, "hy_image_draw_detections: NULL argument");
    // Ultralytics: lw = max(round(sum(im.shape[:2]) / 2 * 0.003), 2), Python round (half even).
    int lw = (int)nearbyint((img->width + img->height) / 2.0 * 0.003);
    if (lw < 2) lw = 2;
    hy_status first = HY_OK;
    const size_t n = hy_result_count(r);
    for (size_t i = 0; i < n; i++) {
        const hy_detection *d = hy_result_get(r, i);
        if (!d) continue;
        uint8_t rgb[3];
        hy__palette(d->class_id, rgb);
        const char *name = m ? hy_model_class_name(m, d->class_id) : NULL;
        char label[256];
        if (name) snprintf(label, sizeof label, "%s %.2f", name, (double)d->confidence);
        else snprintf(label, sizeof label, "%d %.2f", d->class_id, (double)d->confidence);
        // int(box[k]) truncates toward zero
        hy_status st = hy__draw_box(img, to_int(d->x1), to_int(d->y1), to_int(d->x2), to_int(d->y2), lw,
                                    rgb, label);
        if (st && first == HY_OK) first = st; // boxes are still drawn; the first error is kept
    }
    return first;
}
