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

#endif
