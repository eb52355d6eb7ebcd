"""ctypes bindings of include/hotyolo.h, hotyolo/val.h, hotyolo/stream.h and hotyolo/device.h
(the parts the package uses).
The structs mirror the headers field for field (tests/cli/test_python.sh compares them).

The library is looked up in this order: $HOTYOLO_LIBRARY (a path to libhotyolo.so), the copy
`pip install` bundled beside this file, then the system's library path (libhotyolo.so.0,
libhotyolo.so). ctypes releases the GIL around every call into a CDLL, so detections on two
contexts run in parallel from two Python threads.
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_size_t, c_uint, c_uint8,
                    c_uint64, c_void_p)

HERE = os.path.dirname(os.path.abspath(__file__))


class hy_image(ctypes.Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("data", POINTER(c_uint8)), ("flags", c_uint)]


class hy_shape(ctypes.Structure):
    _fields_ = [("width", c_int), ("height", c_int)]


class hy_model_params(ctypes.Structure):
    _fields_ = [("device", c_char_p), ("n_threads", c_int), ("imgsz", c_int), ("mode", c_int),
                ("nc", c_int), ("map_from", POINTER(c_char_p)), ("map_to", POINTER(c_char_p)),
                ("n_map", c_int), ("verify", c_int), ("lock_memory", c_int), ("cache", c_int),
                ("no_fallback", c_int)]


class hy_device_info(ctypes.Structure):
    _fields_ = [("name", c_char * 16), ("kind", c_char * 8), ("model", c_char * 128),
                ("detail", c_char * 256), ("memory_bytes", c_uint64), ("usable", c_int),
                ("why", c_char * 256)]


class hy_prepare_params(ctypes.Structure):
    _fields_ = [("shapes", POINTER(hy_shape)), ("n_shapes", c_int), ("warmup_runs", c_int),
                ("batch", c_int)]


class hy_context_params(ctypes.Structure):
    _fields_ = [("device", c_char_p), ("n_threads", c_int), ("prepare", c_int),
                ("prep", hy_prepare_params)]


class hy_detect_params(ctypes.Structure):
    _fields_ = [("conf", c_float), ("iou", c_float), ("max_det", c_int), ("imgsz", c_int),
                ("classes", POINTER(c_int)), ("n_classes", c_int), ("agnostic_nms", c_int),
                ("shape", hy_shape)]


class hy_detection(ctypes.Structure):
    _fields_ = [("x1", c_float), ("y1", c_float), ("x2", c_float), ("y2", c_float),
                ("confidence", c_float), ("class_id", c_int)]


class hy_timings(ctypes.Structure):
    _fields_ = [("decode_ms", c_double), ("preprocess_ms", c_double), ("inference_ms", c_double),
                ("postprocess_ms", c_double)]


class hy_val_params(ctypes.Structure):
    _fields_ = [("data", c_char_p), ("split", c_char_p), ("imgsz", c_int), ("batch", c_int),
                ("conf", c_float), ("iou", c_float), ("max_det", c_int), ("plots_dir", c_char_p),
                ("progress", c_void_p), ("progress_user_data", c_void_p)]


class hy_val_metrics(ctypes.Structure):
    _fields_ = [("class_id", c_int), ("name", c_char_p), ("images", c_int),
                ("images_with_class", c_int), ("instances", c_int), ("precision", c_double),
                ("recall", c_double), ("map50", c_double), ("map50_95", c_double)]


class hy_val_speed(ctypes.Structure):
    _fields_ = [("preprocess_ms", c_double), ("inference_ms", c_double), ("postprocess_ms", c_double)]


class hy_stream_params(ctypes.Structure):
    _fields_ = [("vid_stride", c_int), ("live", c_int), ("queue", c_int), ("reconnect", c_int),
                ("reconnect_timeout_s", c_double), ("timeout_s", c_double), ("max_width", c_int),
                ("max_height", c_int), ("max_frames", ctypes.c_int64)]


class hy_stream_info(ctypes.Structure):
    _fields_ = [("kind", c_int), ("live", c_int), ("width", c_int), ("height", c_int),
                ("fps", c_double), ("n_frames", ctypes.c_int64), ("duration_s", c_double),
                ("codec", c_char_p), ("format", c_char_p), ("source", c_char_p)]


class hy_frame(ctypes.Structure):
    _fields_ = [("image", POINTER(hy_image)), ("index", ctypes.c_int64), ("pts", c_double),
                ("latency_ms", c_double), ("decode_ms", c_double)]


class hy_video_writer_params(ctypes.Structure):
    _fields_ = [("fps", c_double), ("crf", c_int), ("segment_s", c_double), ("overwrite", c_int)]


P = c_void_p  # opaque handles: hy_model *, hy_context *, hy_result *, hy_val_result *
# name: (restype, argtypes)
_PROTOS = {
    "hy_version": (c_char_p, []),
    "hy_status_name": (c_char_p, [c_int]),
    "hy_status_str": (c_char_p, [c_int]),
    "hy_last_error": (c_char_p, []),
    "hy_free": (None, [c_void_p]),
    "hy_image_load": (c_int, [c_char_p, POINTER(POINTER(hy_image))]),
    "hy_image_from_rgb": (c_int, [c_void_p, c_int, c_int, c_size_t, POINTER(POINTER(hy_image))]),
    "hy_image_free": (None, [POINTER(hy_image)]),
    "hy_image_save_jpeg": (c_int, [POINTER(hy_image), c_char_p, c_int]),
    "hy_image_draw_detections": (c_int, [POINTER(hy_image), P, P]),
    "hy_model_default_params": (hy_model_params, []),
    "hy_model_load": (c_int, [c_char_p, POINTER(hy_model_params), POINTER(P)]),
    "hy_model_free": (None, [P]),
    "hy_model_num_classes": (c_int, [P]),
    "hy_model_class_name": (c_char_p, [P, c_int]),
    "hy_model_variant": (c_char_p, [P]),
    "hy_model_format": (c_char_p, [P]),
    "hy_model_device": (c_char_p, [P]),
    "hy_model_device_requested": (c_char_p, [P]),
    "hy_model_device_fallback": (c_char_p, [P]),
    "hy_device_list": (c_int, [POINTER(hy_device_info), c_int]),
    "hy_device_check": (c_int, [c_char_p, c_char_p]),
    "hy_cuda_built": (c_int, []),
    "hy_model_arch": (c_char_p, [P]),
    "hy_model_imgsz": (c_int, [P]),
    "hy_context_default_params": (hy_context_params, []),
    "hy_context_create": (c_int, [P, POINTER(hy_context_params), POINTER(P)]),
    "hy_context_free": (None, [P]),
    "hy_context_num_threads": (c_int, [P]),
    "hy_detect_default_params": (hy_detect_params, []),
    "hy_model_detect_params": (hy_detect_params, [P]),
    "hy_detect": (c_int, [P, POINTER(hy_image), POINTER(hy_detect_params), POINTER(P)]),
    "hy_result_count": (c_size_t, [P]),
    "hy_result_get": (POINTER(hy_detection), [P, c_size_t]),
    "hy_result_timings": (hy_timings, [P]),
    "hy_result_image_width": (c_int, [P]),
    "hy_result_image_height": (c_int, [P]),
    "hy_result_free": (None, [P]),
    "hy_val_default_params": (hy_val_params, []),
    "hy_val_model_params": (hy_val_params, [P]),
    "hy_val_run": (c_int, [P, POINTER(hy_val_params), POINTER(P)]),
    "hy_val_result_all": (POINTER(hy_val_metrics), [P]),
    "hy_val_result_num_classes": (c_size_t, [P]),
    "hy_val_result_class": (POINTER(hy_val_metrics), [P, c_size_t]),
    "hy_val_result_speed": (hy_val_speed, [P]),
    "hy_val_result_num_warnings": (c_size_t, [P]),
    "hy_val_result_warning": (c_char_p, [P, c_size_t]),
    "hy_val_result_json": (c_int, [P, POINTER(c_void_p)]),
    "hy_val_result_free": (None, [P]),
    "hy_stream_kind_of": (c_int, [c_char_p]),
    "hy_stream_is_video_path": (c_int, [c_char_p]),
    "hy_stream_default_params": (hy_stream_params, []),
    "hy_stream_open": (c_int, [c_char_p, POINTER(hy_stream_params), POINTER(P)]),
    "hy_stream_get_info": (c_int, [P, POINTER(hy_stream_info)]),
    "hy_stream_prepare": (c_int, [P, P, c_int]),
    "hy_stream_detect": (c_int, [P, P, POINTER(hy_detect_params), POINTER(hy_frame), POINTER(P)]),
    "hy_stream_close": (None, [P]),
    "hy_video_writer_default_params": (hy_video_writer_params, []),
    "hy_video_writer_open": (c_int, [c_char_p, c_int, c_int, POINTER(hy_video_writer_params), POINTER(P)]),
    "hy_video_writer_write_at": (c_int, [P, POINTER(hy_image), c_double]),
    "hy_video_writer_close": (c_int, [P]),
}


def _candidates():
    env = os.environ.get("HOTYOLO_LIBRARY")
    if env:
        return [("HOTYOLO_LIBRARY", env)]  # set means exactly this file, never a fallback
    out = []
    bundled = os.path.join(HERE, "libhotyolo.so")
    if os.path.exists(bundled):
        out.append(("bundled", bundled))
    for name in ("libhotyolo.so.0", "libhotyolo.so", ctypes.util.find_library("hotyolo")):
        if name:
            out.append(("system", name))
    return out


def _load():
    tried = []
    for how, path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s %s: %s" % (how, path, e))
            continue
        missing = [n for n in _PROTOS if not hasattr(lib, n)]
        if missing:
            tried.append("%s %s: lacks %s" % (how, path, ", ".join(missing[:3])))
            continue
        for name, (res, args) in _PROTOS.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        return lib, path, how
    raise ImportError("hotyolo: cannot load libhotyolo.so (set HOTYOLO_LIBRARY to its path, or "
                      "install it with `cmake --install`); tried: " + ("; ".join(tried) or "nothing"))


lib, path, source = _load()


def text(b):
    return b.decode("utf-8", "replace") if b is not None else ""
