"""YOLO: a model (weights, loaded once) and a context running it (Ultralytics' interface)."""
import ctypes
import glob
import json
import os
import warnings
import weakref

import numpy as np

from . import _lib
from .errors import check
from .results import Results

IMG_EXTS = (".jpg", ".jpeg", ".png")  # what hotyolo decodes
HY_END = 1  # hy_status: end of a stream


class _Model:
    """Owns a hy_model; contexts and results keep a reference, so it is freed last."""

    def __init__(self, path, device, threads, imgsz, cache, no_fallback=False):
        lib = _lib.lib
        mp = lib.hy_model_default_params()
        mp.cache = int(bool(cache))
        dev = _device_string(device)
        mp.device = dev.encode()
        mp.no_fallback = int(bool(no_fallback))
        mp.n_threads = int(threads)
        if imgsz:
            mp.imgsz = int(imgsz)
        m = ctypes.c_void_p()
        check(lib.hy_model_load(os.fsencode(path), ctypes.byref(mp), ctypes.byref(m)))
        self._m = m
        self._fin = weakref.finalize(self, lib.hy_model_free, m)
        why = _lib.text(lib.hy_model_device_fallback(m))
        req = _lib.text(lib.hy_model_device_requested(m))
        if why and req != "auto":  # a GPU asked for by name ran on another device: say so
            warnings.warn("hotyolo: device %s: %s; running on %s" % (req, why, _lib.text(lib.hy_model_device(m))),
                          RuntimeWarning, stacklevel=3)
        n = lib.hy_model_num_classes(m)
        self.names = {i: _lib.text(lib.hy_model_class_name(m, i)) for i in range(n)}


def _device_string(device):
    """device= as Ultralytics takes it: None or "" (cpu), "auto", "cpu", "ref", "cuda", "cuda:N", an
    int N or "N" (GPU N); checked by the library (a misspelling raises InvalidArgumentError)."""
    if device is None or device == "":
        device = "cpu"  # the library's default; "auto" probes the NVIDIA driver
    elif isinstance(device, bool) or not isinstance(device, (int, str)):
        raise TypeError("device must be a str or an int, got %r" % (device,))
    dev = str(device).strip()
    check(_lib.lib.hy_device_check(dev.encode(), None))
    return dev


def _sources(source):
    """Flattens a source into [(path or None, array or None)]."""
    if isinstance(source, (list, tuple)):
        out = []
        for s in source:
            out.extend(_sources(s))
        return out
    if isinstance(source, np.ndarray):
        return [(None, source)]
    if hasattr(source, "mode") and hasattr(source, "convert") and hasattr(source, "size"):
        return [("pil", source)]  # a PIL image (RGB)
    if isinstance(source, int):
        source = str(source)  # a camera index, as Ultralytics takes it
    path = os.fspath(source)
    if _is_stream(path) and not os.path.isdir(path):
        return [(path, "stream")]
    if os.path.isdir(path):
        names = sorted(os.path.join(path, f) for f in os.listdir(path))
    elif any(ch in path for ch in "*?[") and not os.path.exists(path):
        names = sorted(glob.glob(path))
    else:
        return [(path, None)]
    files = [f for f in names if os.path.isfile(f)]
    # images, then videos (as the CLI and Ultralytics' LoadImagesAndVideos)
    return ([(f, None) for f in files if f.lower().endswith(IMG_EXTS)] +
            [(f, "stream") for f in files if _is_stream(f)])


def _is_stream(path):
    """A video file (by extension), a network URL or a camera (/dev/videoN, a bare index)."""
    b = os.fsencode(path)
    return _lib.lib.hy_stream_kind_of(b) != 0 or _lib.lib.hy_stream_is_video_path(b) == 1


def _as_rgb(arr, rgb):
    """A C-contiguous (h, w, 3) uint8 RGB copy (or the array itself when it is one already)."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise TypeError("image array must be uint8, got %s" % a.dtype)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
        rgb = True
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError("image array must be (h, w, 3) uint8 (BGR, or RGB with rgb=True); got "
                         "shape %s" % (a.shape,))
    a = a[:, :, :3]
    if not rgb:
        a = a[:, :, ::-1]
    return np.ascontiguousarray(a)


class YOLO:
    """YOLO("yolov8n.pt") loads the weights (.pt, safetensors, ONNX) and makes a context;
    model(source, conf=0.25) returns a list of Results, one per image. cache=False reads a
    .pt/ONNX source itself instead of the packed-weights cache (include/hotyolo/pcache.h).

    device: "cpu" (default), "auto" (cuda:0 when it can run the network, else cpu, silently),
    "ref", "cuda", "cuda:N", or N (an int, as Ultralytics' device=0). A GPU asked for that
    cannot be used runs on cpu with a RuntimeWarning (.device_fallback says why);
    no_fallback=True raises instead (HotyoloError, status HY_ERR_BACKEND).

    One YOLO runs one detection at a time (calls on it from several threads are serialised
    by the library); for parallel threads use one per thread, or model.new_context(), which
    shares the loaded weights."""

    def __init__(self, model="yolov8n.pt", device=None, threads=0, imgsz=None, cache=True,
                 no_fallback=False, _shared=None):
        lib = _lib.lib
        self._model = (_shared if _shared is not None else
                       _Model(model, device, threads, imgsz, cache, no_fallback))
        self.ckpt_path = os.fspath(model) if _shared is None else _shared.path
        self._model.path = self.ckpt_path
        cp = lib.hy_context_default_params()
        cp.n_threads = int(threads)
        c = ctypes.c_void_p()
        check(lib.hy_context_create(self._model._m, ctypes.byref(cp), ctypes.byref(c)))
        self._c = c
        self._fin = weakref.finalize(self, lib.hy_context_free, c)

    # ---- properties --------------------------------------------------------------------
    @property
    def names(self):
        return self._model.names

    @property
    def device(self):
        """What runs the network: "cpu", "ref", "cuda:0"."""
        return _lib.text(_lib.lib.hy_model_device(self._model._m))

    @property
    def device_requested(self):
        """The device asked for, normalised: "auto", "cpu", "cuda:0"."""
        return _lib.text(_lib.lib.hy_model_device_requested(self._model._m))

    @property
    def device_fallback(self):
        """Why the network runs on another device than requested ("" when it does not)."""
        return _lib.text(_lib.lib.hy_model_device_fallback(self._model._m))

    @property
    def imgsz(self):
        return _lib.lib.hy_model_imgsz(self._model._m)

    @property
    def info(self):
        lib, m = _lib.lib, self._model._m
        return {"arch": _lib.text(lib.hy_model_arch(m)), "variant": _lib.text(lib.hy_model_variant(m)),
                "format": _lib.text(lib.hy_model_format(m)), "device": self.device,
                "imgsz": self.imgsz, "classes": len(self.names),
                "threads": lib.hy_context_num_threads(self._c)}

    def new_context(self, threads=0):
        """Another YOLO on the same weights (no second load), for another thread."""
        return YOLO(self.ckpt_path, threads=threads, _shared=self._model)

    def close(self):
        """Frees the context now (the weights go with the last YOLO and result using them)."""
        self._fin()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- predict -----------------------------------------------------------------------
    def __call__(self, source, **kw):
        return self.predict(source, **kw)

    def predict(self, source, conf=0.25, iou=None, imgsz=None, max_det=None, classes=None,
                agnostic_nms=False, rgb=False, stream=False, save=False, verbose=False,
                vid_stride=1):
        """source: a path, a directory, a glob, a numpy (h, w, 3) uint8 BGR array (as OpenCV
        gives; rgb=True for RGB), a PIL image, a video file, a network stream (rtsp://,
        tcp://, ...), a camera (0, "/dev/video0"), or a list of these. Returns [Results]
        (a generator with stream=True: use it for videos and streams, as with Ultralytics).
        Each image runs alone, at its own rect shape; a video's frames run on the engine
        prepared for its frame size (docs/video.md), every vid_stride-th frame, each Results
        with .frame (index) and .pts (seconds); save=True (or a folder) writes an annotated
        MP4 per video. iou / max_det default to the family's own tool: YOLOv8 0.7 / 300,
        YOLOv5 (detect.py) 0.45 / 1000."""
        lib = _lib.lib
        dp = lib.hy_model_detect_params(self._model._m)
        dp.conf = float(conf)
        if iou is not None:
            dp.iou = float(iou)
        if max_det is not None:
            dp.max_det = int(max_det)
        if imgsz:
            dp.imgsz = int(imgsz)
        cls_arr = None
        if classes is not None:
            ids = [int(classes)] if np.isscalar(classes) else [int(c) for c in classes]
            cls_arr = (ctypes.c_int * max(1, len(ids)))(*ids)
            dp.classes, dp.n_classes = cls_arr, len(ids)
        dp.agnostic_nms = int(bool(agnostic_nms))
        items = _sources(source)
        if not items:
            raise FileNotFoundError("%s: no images found (hotyolo reads %s)" % (source, ", ".join(IMG_EXTS)))
        gen = self._all(items, rgb, dp, save, int(vid_stride))
        return gen if stream else list(gen)

    def _all(self, items, rgb, dp, save, vid_stride):
        for i, (path, arr) in enumerate(items):
            if isinstance(arr, str) and arr == "stream":
                yield from self._stream(path, dp, save, vid_stride)
            else:
                yield self._one(path, arr, rgb, dp, save, i)

    def _stream(self, path, dp, save, vid_stride):
        """Frames of a video / stream / camera, detected one by one (hy_stream_detect)."""
        lib = _lib.lib
        sp = lib.hy_stream_default_params()
        sp.vid_stride = vid_stride
        s, w = ctypes.c_void_p(), ctypes.c_void_p()
        check(lib.hy_stream_open(os.fsencode(path), ctypes.byref(sp), ctypes.byref(s)))
        try:
            check(lib.hy_stream_prepare(s, self._c, dp.imgsz))
            if save:
                info = _lib.hy_stream_info()
                check(lib.hy_stream_get_info(s, ctypes.byref(info)))
                wp = lib.hy_video_writer_default_params()
                wp.fps = info.fps if info.fps > 0 else 30.0
                stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0] or "stream"
                out = os.path.join(save if isinstance(save, str) else ".", "results_%s.mp4" % stem)
                check(lib.hy_video_writer_open(os.fsencode(out), info.width, info.height,
                                               ctypes.byref(wp), ctypes.byref(w)))
            f = _lib.hy_frame()
            while True:
                r = ctypes.c_void_p()
                st = lib.hy_stream_detect(s, self._c, ctypes.byref(dp), ctypes.byref(f), ctypes.byref(r))
                if st == HY_END:
                    break
                check(st)
                im = f.image.contents
                pix = np.ctypeslib.as_array(im.data, (im.height, im.width, 3)).copy()
                res = Results(self._model, r, pix, path)
                res.frame, res.pts, res.latency_ms = f.index, f.pts, f.latency_ms
                res.speed["preprocess"] += f.decode_ms
                if w:  # the annotated copy (the frame itself belongs to the stream)
                    drawn = res.plot(rgb=True)
                    him = _lib.hy_image(im.width, im.height,
                                        drawn.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), 0)
                    check(lib.hy_video_writer_write_at(w, ctypes.byref(him), f.pts))
                yield res
        finally:
            if w:
                st = lib.hy_video_writer_close(w)
            lib.hy_stream_close(s)
        if w:
            check(st)

    def _one(self, path, arr, rgb, dp, save, i):
        lib = _lib.lib
        if arr is None:
            img = ctypes.POINTER(_lib.hy_image)()
            check(lib.hy_image_load(os.fsencode(path), ctypes.byref(img)))
            try:
                h, w = img.contents.height, img.contents.width
                pix = np.ctypeslib.as_array(img.contents.data, (h, w, 3)).copy()
            finally:
                lib.hy_image_free(img)
        else:
            if path == "pil":
                pix, path = _as_rgb(np.asarray(arr.convert("RGB")), True), "image%d.jpg" % i
            else:
                pix, path = _as_rgb(arr, rgb), "image%d.jpg" % i
        h, w = pix.shape[:2]
        im = _lib.hy_image(w, h, pix.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), 0)
        r = ctypes.c_void_p()
        check(lib.hy_detect(self._c, ctypes.byref(im), ctypes.byref(dp), ctypes.byref(r)))
        res = Results(self._model, r, pix, path)
        if save:
            res.save(os.path.join(save if isinstance(save, str) else ".",
                                  "results_%s.jpg" % os.path.splitext(os.path.basename(path))[0]))
        return res

    # ---- val ---------------------------------------------------------------------------
    def val(self, data, split="val", imgsz=640, batch=None, conf=0.001, iou=None, max_det=300,
            plots_dir=None):
        """Evaluates on a YOLO dataset (data.yaml) as Ultralytics' `yolo val`: returns
        ValResults (box.map, box.map50, box.mp, box.mr, results_dict, per-class rows).
        batch / iou default to the family's own tool: YOLOv8 16 / 0.7, YOLOv5 (val.py) 32 / 0.6."""
        lib = _lib.lib
        vp = lib.hy_val_model_params(self._model._m)
        vp.data = os.fsencode(data)
        vp.split = split.encode()
        vp.imgsz, vp.max_det, vp.conf = int(imgsz), int(max_det), float(conf)
        if batch is not None:
            vp.batch = int(batch)
        if iou is not None:
            vp.iou = float(iou)
        if plots_dir:
            vp.plots_dir = os.fsencode(plots_dir)
        r = ctypes.c_void_p()
        check(lib.hy_val_run(self._model._m, ctypes.byref(vp), ctypes.byref(r)))
        try:
            return ValResults(r)
        finally:
            lib.hy_val_result_free(r)

    def __repr__(self):
        return "YOLO(%r, device=%r)" % (self.ckpt_path, self.device)


class BoxMetrics:
    """Ultralytics' metrics.box: mp, mr, map50, map (mAP50-95), per class in maps."""

    def __init__(self, all_row, rows, nc):
        self.mp, self.mr = all_row["precision"], all_row["recall"]
        self.map50, self.map = all_row["map50"], all_row["map50_95"]
        self.maps = np.full(nc, self.map)  # as Ultralytics: classes without labels get the mean
        for row in rows:
            if 0 <= row["class_id"] < nc:
                self.maps[row["class_id"]] = row["map50_95"]


def _row(m):
    return {"class_id": m.class_id, "name": _lib.text(m.name), "images": m.images,
            "images_with_class": m.images_with_class, "instances": m.instances,
            "precision": m.precision, "recall": m.recall, "map50": m.map50, "map50_95": m.map50_95}


class ValResults:
    def __init__(self, r):
        lib = _lib.lib
        self.all = _row(lib.hy_val_result_all(r).contents)
        self.classes = [_row(lib.hy_val_result_class(r, i).contents)
                        for i in range(lib.hy_val_result_num_classes(r))]
        s = lib.hy_val_result_speed(r)
        self.speed = {"preprocess": s.preprocess_ms, "inference": s.inference_ms,
                      "postprocess": s.postprocess_ms}
        self.warnings = [_lib.text(lib.hy_val_result_warning(r, i))
                         for i in range(lib.hy_val_result_num_warnings(r))]
        js = ctypes.c_void_p()
        check(lib.hy_val_result_json(r, ctypes.byref(js)))
        try:
            self.json = json.loads(ctypes.string_at(js).decode("utf-8"))
        finally:
            lib.hy_free(js)
        nc = max([c["class_id"] + 1 for c in self.classes] + [0])
        self.box = BoxMetrics(self.all, self.classes, nc)

    @property
    def results_dict(self):
        return {"metrics/precision(B)": self.box.mp, "metrics/recall(B)": self.box.mr,
                "metrics/mAP50(B)": self.box.map50, "metrics/mAP50-95(B)": self.box.map,
                "fitness": 0.1 * self.box.map50 + 0.9 * self.box.map}

    def __repr__(self):
        return "ValResults(mAP50=%.4f, mAP50-95=%.4f)" % (self.box.map50, self.box.map)
