"""Build script: bundles libhotyolo.so beside the package (pyproject.toml has the metadata).

The library is taken from $HOTYOLO_LIBRARY (a path to libhotyolo.so, as `make python` sets
it), else from ../build/ of a source checkout. Without one the package installs alone and
loads the system's libhotyolo.so at import (docs/python.md).
"""
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def find_library():
    env = os.environ.get("HOTYOLO_LIBRARY")
    if env:
        if not os.path.isfile(env):
            sys.exit("setup.py: HOTYOLO_LIBRARY=%s: no such file" % env)
        return env
    local = os.path.join(HERE, "..", "build", "libhotyolo.so")
    return local if os.path.isfile(local) else None


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = find_library()
        if lib is None:
            print("setup.py: no libhotyolo.so found (set HOTYOLO_LIBRARY); the package will "
                  "use the system's library path", file=sys.stderr)
            return
        dst = os.path.join(self.build_lib, "hotyolo", "libhotyolo.so")
        # the file itself, not the soname symlink chain
        shutil.copyfile(os.path.realpath(lib), dst)
        os.chmod(dst, 0o755)
        print("setup.py: bundled %s" % os.path.realpath(lib), file=sys.stderr)


class BinaryDistribution(Distribution):
    """A wheel holding a native library is platform-specific."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPy}, distclass=BinaryDistribution)
