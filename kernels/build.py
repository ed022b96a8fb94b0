"""cffi API-mode build of the SEOFP kernels: `pip install` compiles seofp.c into seofp_lab._seofp."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
REL = "kernels"  # setuptools wants paths relative to setup.py

ffibuilder = FFI()
_header = (HERE / "seofp.h").read_text()
ffibuilder.cdef(_header.split("/* cffi-cdef-begin */")[1].split("/* cffi-cdef-end */")[0])
ffibuilder.set_source(
    "seofp_lab._seofp",
    '#include "seofp.h"',
    sources=[f"{REL}/seofp.c"],
    include_dirs=[REL],
    extra_compile_args=["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wextra"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
