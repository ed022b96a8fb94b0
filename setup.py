"""Only the cffi kernel build lives here; all metadata is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["kernels/build.py:ffibuilder"])
