"""Exceptions carrying hotyolo's status and hy_last_error() text."""
from . import _lib


class HotyoloError(Exception):
    """A failed hotyolo call. .status is the C name ("HY_ERR_FORMAT"), .code its value, and
    the message is hy_last_error() (it names the file or field)."""

    def __init__(self, message, status="HY_ERR_INVALID_ARG", code=-5):
        super().__init__(message)
        self.status = status
        self.code = code


class NotFoundError(HotyoloError, FileNotFoundError):
    pass


class HotyoloIOError(HotyoloError, OSError):
    pass


class FormatError(HotyoloError, ValueError):
    """The file is not a valid image / weights file."""


class UnsafeContentError(HotyoloError):
    """A weights file asked for code to run (a pickle global outside the allow-list)."""


class UnsupportedError(HotyoloError):
    pass


class InvalidArgumentError(HotyoloError, ValueError):
    pass


class OutOfMemoryError(HotyoloError, MemoryError):
    pass


_BY_CODE = {-1: OutOfMemoryError, -2: HotyoloIOError, -3: FormatError, -4: UnsupportedError,
            -5: InvalidArgumentError, -7: NotFoundError, -9: UnsafeContentError}


def check(st):
    """Raises for a non-zero hy_status (call right after the failing call, on its thread:
    hy_last_error is thread-local)."""
    if st == 0:
        return
    msg = _lib.text(_lib.lib.hy_last_error()) or _lib.text(_lib.lib.hy_status_str(st))
    cls = _BY_CODE.get(st, HotyoloError)
    raise cls(msg, _lib.text(_lib.lib.hy_status_name(st)), st)
