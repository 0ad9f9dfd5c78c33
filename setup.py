"""Builds the optional C kernels with cffi (API mode, out of line); all metadata is in pyproject.toml."""
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cffi_kernels"))


def _extensions():
    """The cffi extension, marked optional so a machine without a C compiler still installs veil."""
    try:
        from build_kernels import ffibuilder
    except ImportError:
        return []
    ext = ffibuilder.distutils_extension()
    ext.optional = True
    return [ext]


setup(ext_modules=_extensions())
