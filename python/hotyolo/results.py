"""Results of one image, shaped like Ultralytics' (boxes.xyxy / conf / cls, names, orig_shape,
plot(), save())."""
import ctypes
import os
import weakref

import numpy as np

from . import _lib
from .errors import check

_DET = np.dtype({"names": ["x1", "y1", "x2", "y2", "conf", "cls"],
                 "formats": ["<f4", "<f4", "<f4", "<f4", "<f4", "<i4"], "itemsize": 24})


def _detections(r):
    """(n, 6) float32 rows x1 y1 x2 y2 conf cls of a hy_result."""
    lib = _lib.lib
    n = lib.hy_result_count(r)
    if n == 0:
        return np.zeros((0, 6), np.float32)
    first = lib.hy_result_get(r, 0)
    last = lib.hy_result_get(r, n - 1)
    base = ctypes.addressof(first.contents)
    if ctypes.addressof(last.contents) == base + (n - 1) * _DET.itemsize:
        # one contiguous array (as the library stores it): a single copy
        raw = (ctypes.c_uint8 * (n * _DET.itemsize)).from_address(base)
        rec = np.frombuffer(raw, dtype=_DET, count=n).copy()
    else:
        rec = np.zeros(n, _DET)
        for i in range(n):
            d = lib.hy_result_get(r, i).contents
            rec[i] = (d.x1, d.y1, d.x2, d.y2, d.confidence, d.class_id)
    out = np.empty((n, 6), np.float32)
    for j, k in enumerate(_DET.names):
        out[:, j] = rec[k]
    return out


class Boxes:
    """Detections of one image; every attribute a numpy array (Ultralytics' names)."""

    def __init__(self, data, orig_shape):
        self.data = data                  # (n, 6): x1 y1 x2 y2 conf cls
        self.orig_shape = orig_shape      # (h, w)

    def __len__(self):
        return len(self.data)

    @property
    def xyxy(self):
        return self.data[:, :4]

    @property
    def conf(self):
        return self.data[:, 4]

    @property
    def cls(self):
        return self.data[:, 5]

    @property
    def xywh(self):
        b = self.xyxy
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                         b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1).astype(np.float32)

    @property
    def xyxyn(self):
        h, w = self.orig_shape
        return self.xyxy / np.array([w, h, w, h], np.float32)

    @property
    def xywhn(self):
        h, w = self.orig_shape
        return self.xywh / np.array([w, h, w, h], np.float32)

    def __repr__(self):
        return "Boxes(n=%d)" % len(self)


class Results:
    """One image's detections. orig_img is the image as BGR (h, w, 3) uint8 (a view of the
    RGB pixels the detector saw); speed is in milliseconds."""

    def __init__(self, model, handle, rgb, path):
        self._model = model        # keeps the hy_model alive for plot()
        self._r = handle
        self._fin = weakref.finalize(self, _lib.lib.hy_result_free, handle)
        self._rgb = rgb
        self.path = path
        self.names = model.names
        self.orig_shape = (rgb.shape[0], rgb.shape[1])
        self.boxes = Boxes(_detections(handle), self.orig_shape)
        t = _lib.lib.hy_result_timings(handle)
        self.speed = {"preprocess": t.decode_ms + t.preprocess_ms, "inference": t.inference_ms,
                      "postprocess": t.postprocess_ms}

    @property
    def orig_img(self):
        return self._rgb[..., ::-1]

    def __len__(self):
        return len(self.boxes)

    def plot(self, rgb=False):
        """The image with boxes and "name score" labels drawn: (h, w, 3) uint8, BGR (as
        Ultralytics returns it), or RGB with rgb=True."""
        lib = _lib.lib
        h, w = self.orig_shape
        img = ctypes.POINTER(_lib.hy_image)()
        check(lib.hy_image_from_rgb(self._rgb.ctypes.data, w, h, 0, ctypes.byref(img)))
        try:
            check(lib.hy_image_draw_detections(img, self._r, self._model._m))
            out = np.ctypeslib.as_array(img.contents.data, (h, w, 3)).copy()
        finally:
            lib.hy_image_free(img)
        return out if rgb else np.ascontiguousarray(out[..., ::-1])

    def save(self, filename=None, quality=95):
        """Writes plot() as JPEG; default name results_<image name>.jpg. Returns the path."""
        if filename is None:
            stem = os.path.splitext(os.path.basename(self.path))[0]
            filename = "results_%s.jpg" % stem
        filename = os.fspath(filename)
        if os.path.splitext(filename)[1].lower() not in (".jpg", ".jpeg"):
            raise ValueError("%s: hotyolo writes JPEG only (.jpg / .jpeg)" % filename)
        lib = _lib.lib
        rgb = self.plot(rgb=True)
        h, w = self.orig_shape
        img = ctypes.POINTER(_lib.hy_image)()
        check(lib.hy_image_from_rgb(rgb.ctypes.data, w, h, 0, ctypes.byref(img)))
        try:
            check(lib.hy_image_save_jpeg(img, filename.encode(), int(quality)))
        finally:
            lib.hy_image_free(img)
        return filename

    def tolist(self):
        """[{class_id, class_name, confidence, box: [x1, y1, x2, y2]}] (the CLI's --json)."""
        return [{"class_id": int(c), "class_name": self.names.get(int(c), ""),
                 "confidence": float(s), "box": [float(v) for v in b]}
                for b, s, c in zip(self.boxes.xyxy, self.boxes.conf, self.boxes.cls)]

    def __repr__(self):
        return "Results(path=%r, orig_shape=%r, boxes=%d)" % (self.path, self.orig_shape, len(self))
