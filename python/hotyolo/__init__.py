"""hotyolo: YOLOv8 detection on hotyolo's C library, with Ultralytics' interface.

    from hotyolo import YOLO
    model = YOLO("yolov8n.pt")
    results = model("bus.jpg", conf=0.25)
    results[0].boxes.xyxy, results[0].boxes.conf, results[0].boxes.cls   # numpy
"""
import ctypes as _ctypes
import os as _os

import numpy as _np

from . import _lib
from .errors import (FormatError, HotyoloError, HotyoloIOError, InvalidArgumentError, NotFoundError,
                     OutOfMemoryError, UnsafeContentError, UnsupportedError, check)
from .model import YOLO, ValResults
from .results import Boxes, Results

__version__ = _lib.text(_lib.lib.hy_version())
library_path = _lib.path       # the libhotyolo.so in use
library_source = _lib.source   # "HOTYOLO_LIBRARY", "bundled" or "system"


def imread(path):
    """Decodes a JPEG/PNG file as hotyolo (and OpenCV's imread) does: (h, w, 3) uint8 BGR."""
    lib = _lib.lib
    img = _ctypes.POINTER(_lib.hy_image)()
    check(lib.hy_image_load(_os.fsencode(path), _ctypes.byref(img)))
    try:
        h, w = img.contents.height, img.contents.width
        rgb = _np.ctypeslib.as_array(img.contents.data, (h, w, 3))
        return _np.ascontiguousarray(rgb[..., ::-1])
    finally:
        lib.hy_image_free(img)


__all__ = ["YOLO", "Results", "Boxes", "ValResults", "imread", "HotyoloError", "HotyoloIOError", "NotFoundError",
           "FormatError", "UnsafeContentError", "UnsupportedError", "InvalidArgumentError",
           "OutOfMemoryError", "__version__"]
