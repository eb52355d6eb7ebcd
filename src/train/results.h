/* A training run's record as files, as Ultralytics 8.0.172 writes them: results.csv (one row per
 * epoch) and results.png (the losses and metrics per epoch). Both are rewritten whole after every
 * epoch through a temporary file in the same folder and a rename, so a reader sees the previous
 * or the new file, never half of one.
 *
 * results.csv (BaseTrainer.save_metrics): a header of 14 keys, each printed '%23s', and one row
 * per epoch, each value '%23.5g', fields separated by ',' (no trailing comma), '\n' line ends:
 *   epoch                 0-based (8.0.172 writes self.epoch; 8.1+ writes epoch + 1)
 *   train/box_loss, train/cls_loss, train/dfl_loss           mean over the epoch's batches
 *   metrics/precision(B), metrics/recall(B), metrics/mAP50(B), metrics/mAP50-95(B)
 *   val/box_loss, val/cls_loss, val/dfl_loss
 *   lr/pg0, lr/pg1, lr/pg2                                   at the epoch's last iteration
 * Losses and metrics are first rounded to 5 decimals (Python's round(x, 5), as the trainer and
 * validator do), lr values are not. A row that was not validated (val=False before the last
 * epoch) has 0 for the four metrics and the three val losses, as Ultralytics writes then (its
 * metrics dict starts as zeros); a validated row without val losses has 0 for those three. NaN
 * and infinities are written "nan", "inf", "-inf" (Python's spelling).
 *
 * results.png (plot_results): 2400 x 1200 (figsize 12 x 6 at 200 dpi), 2 x 5 panels titled by
 * the CSV keys: train box, cls, dfl loss, precision, recall / val box, cls, dfl loss, mAP50,
 * mAP50-95; x = the CSV's epoch. Each panel draws the values (line with dot markers, matplotlib
 * C0) and the gaussian_filter1d(sigma 3) smoothing of them (dotted, C1); the second panel holds
 * the legend. Unlike Ultralytics, which plots the zeros of rows that were not validated, a
 * panel only draws rows that have the value (and finite ones); a panel with none says so. */
#ifndef HY_TRAIN_RESULTS_H
#define HY_TRAIN_RESULTS_H

#include "core/core.h"
#include "hotyolo/train.h"

/* Writes results.csv from rows[0..n) (n >= 0; n = 0 writes the header only). HY_ERR_IO naming
 * path when the folder is not writable or the write fails (path is then left as it was). */
hy_status hy__train_results_csv(const char *path, const hy_train_epoch *rows, int n);

/* Writes results.png from rows[0..n). HY_ERR_IO naming path as above, HY_ERR_NOMEM. */
hy_status hy__train_results_png(const char *path, const hy_train_epoch *rows, int n);

/* scipy.ndimage.gaussian_filter1d(y, sigma) with its defaults (mode 'reflect', truncate 4.0), as
 * plot_results calls it, in double: the kernel exp(-x^2 / (2 sigma^2)) over x = -r..r,
 * r = (int)(4 sigma + 0.5) (at most 64), divided by its sum; samples past the ends mirror the
 * series about its end (d c b a | a b c d | d c b a, repeated for short series). y and out: n
 * values each (out != y). sigma > 0. */
void hy__train_smooth(const double *y, int n, double sigma, double *out);

/* One curve of hy__train_plot_compare: y[i] at x[i] (i < n), named label in the legend. */
typedef struct hy__train_curve {
    const char *label;
    const double *x, *y;
    int n;
} hy__train_curve;

/* One panel (1600 x 1000) with the curves in matplotlib's C0, C1, ... colours (line with dot
 * markers; non-finite values left out), a legend (lower right), the title above and xlabel
 * below: for comparing runs (bench/finetune.sh). Errors as hy__train_results_png. */
hy_status hy__train_plot_compare(const char *path, const char *title, const char *xlabel,
                                 const hy__train_curve *curves, int n_curves);

#endif
