/* YOLOv5 detection (ultralytics/yolov5 v6.0 - v7.0, models/yolov5{n,s,m,l,x}.yaml): the
 * network composed from blocks.h and its row of the architecture table. Everything else
 * reaches it through hy__arch_yolov5. */
#ifndef HY_YOLOV5_H
#define HY_YOLOV5_H

#include "model/arch.h"

extern const hy__arch hy__arch_yolov5;

#endif
