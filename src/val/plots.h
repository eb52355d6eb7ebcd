/* Validation plots as PNG (libspng): the precision-recall curve and the confusion matrix, in the
 * layout of Ultralytics' plot_pr_curve / ConfusionMatrix.plot, drawn on an RGB buffer. */
#ifndef HY_VAL_PLOTS_H
#define HY_VAL_PLOTS_H

#include "val/metrics.h"

/* PR curve at IoU 0.5: a light line per class (a legend entry each when there are at most 20,
 * else grey), the class mean in bold with "all classes <mAP50> mAP@0.5". names: by class id. */
hy_status hy__val_plot_pr(const char *path, const hy__val_ap *ap, const char *const *names);

/* Confusion matrix heat map (rows predicted, columns true, + background); normalize: columns
 * divided by their sums, cells under 0.005 left blank, as Ultralytics. names: nc entries. */
hy_status hy__val_plot_confusion(const char *path, const hy__val_confusion *cm,
                                 const char *const *names, int normalize);

/* Writes an RGB image as PNG; errors name the path. */
hy_status hy__png_write(const char *path, const hy_image *img);

/* Drawing primitives of these plots (also used by the training plots, train/results.c). */
/* A (h, w, 3) RGB image filled white. */
hy_status hy__plot_canvas(int w, int h, hy_image **out);
/* Filled rectangle, inclusive corners in any order, clipped to the image. */
void hy__plot_fill(hy_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]);
/* Line of thickness t: squares of side t stamped every half pixel along it. */
void hy__plot_line(hy_image *img, double x0, double y0, double x1, double y1, int t,
                   const uint8_t rgb[3]);
/* Rectangle outline, 1 px. */
void hy__plot_rect(hy_image *img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]);
/* Text (FreeType, px pixels per em) anchored at (x, y): ax / ay = 0 left/top, 1 centre,
 * 2 right/bottom. */
hy_status hy__plot_text(hy_image *img, int x, int y, int px, const uint8_t rgb[3], const char *s,
                        int ax, int ay);

#endif
