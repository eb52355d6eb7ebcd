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


def devices():
    """What can run a network here (include/hotyolo/device.h): a list of dicts with name
    ("cpu", "cuda:0"; "cuda" for a CUDA row that lists no GPU), kind ("cpu"/"cuda"), model,
    detail, memory_bytes (0: unknown), usable (bool) and why (when not usable); the CPU first."""
    lib = _lib.lib
    n = lib.hy_device_list(None, 0)
    rows = (_lib.hy_device_info * max(n, 1))()
    n = min(n, lib.hy_device_list(rows, n))
    return [{"name": _lib.text(r.name), "kind": _lib.text(r.kind), "model": _lib.text(r.model),
             "detail": _lib.text(r.detail), "memory_bytes": int(r.memory_bytes),
             "usable": bool(r.usable), "why": _lib.text(r.why)} for r in rows[:n]]


def cuda_built():
    """Whether this libhotyolo.so has the CUDA backend (whether a GPU can be used: devices())."""
    return bool(_lib.lib.hy_cuda_built())


__all__ = ["devices", "cuda_built", "YOLO", "Results", "Boxes", "ValResults", "imread", "HotyoloError", "HotyoloIOError", "NotFoundError",
           "FormatError", "UnsafeContentError", "UnsupportedError", "InvalidArgumentError",
           "OutOfMemoryError", "__version__"]
