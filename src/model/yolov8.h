/* YOLOv8 detection (Ultralytics yolov8.yaml): the network composed from blocks.h and its
 * row of the architecture table. Everything else reaches it through hy__arch_yolov8. */
#ifndef HY_YOLOV8_H
#define HY_YOLOV8_H

#include "model/arch.h"

extern const hy__arch hy__arch_yolov8;

#endif
