"""cffi API-mode build of the SEOFP kernels: `pip install` compiles kernels/*.c into
seofp_lab._seofp.

`python kernels/build.py` rebuilds in place (objects in a temporary directory, never in the tree).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
IN_PLACE = __name__ == "__main__"
# setuptools wants paths relative to setup.py; the in-place build compiles in a temporary folder
SRC = HERE if IN_PLACE else Path("kernels")

# SEOFP_SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer instead of -O3, for checking
# the kernels only (docs/engine.md#sanitizers); run python with libasan preloaded
SANITIZE = os.environ.get("SEOFP_SANITIZE", "") == "1"
_SAN = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-omit-frame-pointer", "-O1", "-g"]

ffibuilder = FFI()
_header = (HERE / "seofp.h").read_text()
ffibuilder.cdef(_header.split("/* cffi-cdef-begin */")[1].split("/* cffi-cdef-end */")[0])
ffibuilder.set_source(
    "seofp_lab._seofp",
    '#include "seofp.h"',
    # dispatch, intadd, decode, fp32, layers, threading (map in seofp_internal.h)
    sources=[str(SRC / p.name) for p in sorted(HERE.glob("*.c"))],
    depends=[str(SRC / "seofp.h"), str(SRC / "seofp_internal.h")],
    include_dirs=[str(SRC)],
    # no -march=native, no -ffast-math: runtime dispatch, IEEE sums (docs/engine.md#dispatch)
    extra_compile_args=(_SAN if SANITIZE else ["-O3"])
    + ["-std=c11", "-fno-strict-aliasing", "-Wall", "-Wextra", "-pthread"],
    extra_link_args=(_SAN[:1] if SANITIZE else []) + ["-pthread"],
    libraries=["m"],
)

if IN_PLACE:
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(ffibuilder.compile(tmpdir=tmp, verbose="-v" in sys.argv))
        package = HERE.parent / "seofp_lab"
        for old in package.glob("_seofp*.so"):
            old.unlink()  # a stale build with another suffix would shadow the new one
        # cffi builds against the limited API, so pip's name for it is valid
        shutil.copy2(built, package / "_seofp.abi3.so")
