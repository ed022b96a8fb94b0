"""Checked Python wrappers of the C kernels (``seofp_lab._seofp``, built from ``kernels/``).

Every wrapper validates dtype, shape and finiteness before C sees a pointer, lets C write into
numpy buffers it allocated (C never allocates), raises :class:`KernelError` on a negative status and
returns the number of activations clamped by intadd's overflow guard (docs/engine.md#guards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from seofp_lab._seofp import ffi, lib
from seofp_lab.errors import SeofpError

Kernel = Literal["intadd", "decode", "fp32"]
Variant = Literal["auto", "portable", "avx2"]
IntaddLayout = Literal["auto", "codes", "addends", "nibbles", "ianet"]
INTADD_LAYOUTS: tuple[IntaddLayout, ...] = ("auto", "codes", "addends", "nibbles", "ianet")
IANET_E_MIN = -63  # IA-NET stores w * 2^-63, which must stay a normal float
NIBBLE_SPAN = 6  # nibbles hold codes 1..7: layers with e_max - e_min <= 6 (s1e3 and narrower)
Activation = Literal["none", "relu", "leaky_relu", "tanh", "sigmoid"]
KERNELS: tuple[Kernel, ...] = ("intadd", "decode", "fp32")
_ACT = {"none": lib.SEOFP_ACT_NONE, "relu": lib.SEOFP_ACT_RELU,
        "leaky_relu": lib.SEOFP_ACT_LEAKY, "tanh": lib.SEOFP_ACT_TANH,
        "sigmoid": lib.SEOFP_ACT_SIGMOID}
_VARIANT = {"auto": lib.SEOFP_VARIANT_AUTO, "portable": lib.SEOFP_VARIANT_PORTABLE,
            "avx2": lib.SEOFP_VARIANT_AVX2}
F16_LOW, F16_HIGH = -16, 15  # exponents one fp16 top byte holds (two of them subnormal)


class KernelError(SeofpError):
    """A kernel refused its arguments (bad shape, dtype, non-finite input, or a C error status)."""


class NonFiniteInput(KernelError):
    """A kernel's pre-pass found NaN or inf in its activations, bias or state (SEOFP_ENONFINITE)."""


def variant() -> str:
    """"avx2" or "portable": the code path the C kernels use now."""
    return ffi.string(lib.seofp_variant()).decode()


def set_variant(name: Variant) -> None:
    """Select the C code path process-wide ("auto" picks AVX2 when the CPU has it)."""
    if name not in _VARIANT or lib.seofp_set_variant(_VARIANT[name]) < 0:
        raise KernelError(f"Expected a variant this CPU supports (auto, portable"
                          f"{', avx2' if lib.seofp_avx2_supported() else ''}) but got {name!r}")


@contextmanager
def _temporarily(get: Any, put: Any, value: Any) -> Iterator[None]:
    """``put(value)`` for the block, then the setting ``get()`` had before."""
    before = get()
    put(value)
    try:
        yield
    finally:
        put(before)


def use_variant(name: Variant) -> Any:
    """Temporarily select a code path (tests compare both); a context manager."""
    return _temporarily(variant, set_variant, name)


def set_threads(n: int) -> None:
    """1 (default) or 2 threads for batch-1 products (GEMV, LSTM steps) of >= 64K weights.

    Process-wide. The second thread spins about a millisecond after each job, then sleeps;
    results are bit-identical to one thread (rows are only distributed).
    """
    if not isinstance(n, int) or lib.seofp_set_threads(n) < 0:
        raise KernelError(f"Expected 1 or 2 threads but got {n!r}")


def threads() -> int:
    """The number of threads batch-1 products use now."""
    return int(lib.seofp_threads())


def use_threads(n: int) -> Any:
    """Temporarily use ``n`` threads (tests and benchmarks compare 1 and 2); a context manager."""
    return _temporarily(threads, set_threads, n)


@dataclass
class PackedLayer:
    """A weight matrix ``(rows, cols)`` repacked for one kernel (layout in ``kernels/seofp.h``)."""

    kernel: Kernel
    rows: int
    cols: int
    data: np.ndarray  # repacked elements: uint8 codes or float32
    c_kind: int
    e_min: int = 0
    e_max: int = 0
    scale_exp: int = 0
    zeros: bool = False  # intadd: some real weight is zero (the kernel masks zero weights)
    ianet: bool = False  # 16-bit addends in IA-NET's form: bits(w * 2^-63) >> 16
    skip_zeros: bool = False  # intadd: build the zero-skipping index (pruned layers)
    struct: Any = field(init=False, repr=False)
    _scratch: np.ndarray = field(init=False, repr=False)
    _sparse: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.struct = ffi.new("seofp_layer *")
        s = self.struct
        s.kind, s.rows, s.cols = self.c_kind, self.rows, self.cols
        s.rows_pad, s.cols_pad = _ceil(self.rows, 4), _ceil(self.cols, 16)
        s.e_min, s.e_max, s.scale_exp = self.e_min, self.e_max, self.scale_exp
        s.zeros, s.ianet = int(self.zeros), int(self.ianet)
        s.data = ffi.from_buffer(self.data)  # self.data keeps the buffer alive
        s.sparse = ffi.NULL
        if self.skip_zeros:
            nbytes = int(lib.seofp_sparse_bytes(s))
            self._sparse = np.empty((nbytes + 7) // 8, np.uint64)  # 8-byte aligned
            rc = lib.seofp_sparse_build(s, ffi.from_buffer(self._sparse), self._sparse.nbytes)
            if nbytes == 0 or rc < 0:
                raise KernelError(f"Could not build the zero-skipping index of a {self.rows} x "
                                  f"{self.cols} {self.kernel} layer (status {rc})")
            s.sparse = ffi.from_buffer(self._sparse)
        self._scratch = np.empty(0, np.float32)

    def scratch(self, floats: int) -> Any:
        """A reused scratch buffer of at least ``floats`` floats, filled by C before use."""
        if self._scratch.size < floats:
            self._scratch = np.empty(max(floats, 1), np.float32)
        return ffi.from_buffer("float[]", self._scratch)


def _ceil(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _repack(elems: np.ndarray) -> np.ndarray:
    """(rows, cols) -> zero-padded 4-row x 16-column interleaved stream (seofp.h)."""
    rows, cols = elems.shape
    rp, cp = _ceil(rows, 4), _ceil(cols, 16)
    padded = np.zeros((rp, cp), elems.dtype)
    padded[:rows, :cols] = elems
    return np.ascontiguousarray(padded.reshape(rp // 4, 4, cp // 16, 16).transpose(0, 2, 1, 3))


def _sign_exponent(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-zero mask, sign bits, unbiased exponents) of SEOFP values; refuses anything else."""
    u = w.view(np.uint32)
    nz = (u & 0x7FFF_FFFF) != 0
    e = ((u >> 23) & 0xFF).astype(np.int32) - 127
    if ((u[nz] & 0x007F_FFFF) != 0).any() or (e[nz] == -127).any():
        raise KernelError("Expected SEOFP weights (±2^e normal, or 0) but got other values; "
                          "round them first or use the fp32 kernel")
    return nz, (u >> 31).astype(np.uint8), e


# intadd "auto", per matrix: 16-bit addends (5 operations per 16 products at batch 1, the fastest
# layout while the matrix stays in L2) up to this many bytes, else 1-byte codes (half the bytes to
# stream from L3 or DRAM). 256 KiB: half of Zen 3's 512 KiB L2 per core. A streaming step reads
# every matrix once per hop (batch 1); the causal LSTM 2 x 256 (four 1024 x 256 matrices, 2 MiB
# of addends, 1 MiB of codes) ran its step 1.5x faster on 1-byte weights than on addends
# (benchmarks/bench_streaming.py, decode vs intadd16); bench_gemv.py measures every layout.
ADDENDS_MAX_BYTES = 256 << 10
# The engine's "auto" for an LSTM's recurrent matrix W_hh: 16-bit addends up to this many bytes.
# Its per-step product runs on the recurrent path (kernels/recurrent.c, docs/recurrent_step.md),
# bound by operations, not bytes: 5 per 16 products on addends, 7 on codes. Measured one thread,
# 2 s utterance (benchmarks/bench_recurrence.py): the 2 x 256 causal LSTM's and the paper's
# 2 x 257 BLSTM's steps (W_hh 512-559 KiB as addends) about 15 % faster on addends than on codes,
# and the causal LSTM's streaming network step too (56 vs 90 us); a lone 2048 x 512 product
# (2 MiB) still 41 vs 48 us.
RECURRENT_ADDENDS_MAX_BYTES = 1 << 20
# intadd layers with at least this share of zero weights (pruned layers) and at least this many
# rows get the zero-skipping index: their batch > 1 products (input projections, FC and output
# layers) skip zero weights instead of masking them (kernels/sparse.c, docs/engine_sparse.md).
# Measured one thread, benchmarks/bench_gemm_tiles.py --zeros: at 50 % zeros skipping is 1.6-1.8x
# the masked tiles on 257-1028 rows, 1.4x at 64 rows, even at 30 rows over 126 columns and 0.8x
# at 30 rows over 48 (the FCN's convolutions: the transposed activations are not amortised over
# enough rows); at 10 % zeros the two are even.
SKIP_ZEROS_MIN_SHARE = 0.25
SKIP_ZEROS_MIN_ROWS = 64
SKIP_ZEROS_MAX_COLS = 65536  # the index addresses columns in 16 bits
# INTADD stores each chunk's rows in pairs of 32 bytes, row 2p+rr's lane l at byte
# rr*8 + (l//8)*4 + ((l//4)%2)*16 + l%4 (two in-lane unpacks then give k in order;
# kernels/seofp_internal.h W8_POS)
_W8_SRC = np.empty(32, np.intp)
for _rr in range(2):
    for _l in range(16):
        _W8_SRC[_rr * 8 + (_l // 8) * 4 + ((_l // 4) % 2) * 16 + _l % 4] = _rr * 16 + _l
# INTADD4 packs a chunk (4 rows x 16 lanes) into 32 bytes: row r's lane l is the low (r < 2) or
# high nibble of byte ((l%8)//4)*16 + (r%2)*8 + (l//8)*4 + l%4 (kernels/seofp_internal.h W4_BYTE)
_W4_LO, _W4_HI = np.empty(32, np.intp), np.empty(32, np.intp)
for _r in range(4):
    for _l in range(16):
        (_W4_LO if _r < 2 else _W4_HI)[((_l % 8) // 4) * 16 + (_r % 2) * 8 + (_l // 8) * 4
                                       + _l % 4] = _r * 16 + _l
# INTADD16 stores each 16-run as k 0-3, 8-11, 4-7, 12-15 (seofp.h); an involution
_W16_PERM = np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15])


def exponent_span(weight: np.ndarray) -> int:
    """e_max - e_min over the non-zero values of SEOFP weights (0 when all are zero)."""
    nz, _, e = _sign_exponent(np.ascontiguousarray(weight, np.float32))
    return int(e[nz].max() - e[nz].min()) if nz.any() else 0


def pack_layer(weight: np.ndarray, kernel: Kernel,
               layout: IntaddLayout = "auto", skip_zeros: bool | None = None) -> PackedLayer:
    """Repack a weight matrix for ``kernel``; intadd and decode need SEOFP values (±2^e or 0).

    Args:
        weight: (rows, cols) float32, finite.
        kernel: "intadd" (integer adder), "decode" (fp16 top byte or bit construction), "fp32".
        layout: intadd only: "codes" (1 byte per weight), "addends" (16-bit, fewer operations
            per product), "nibbles" (4 bits; windows of <= 7 exponents), "ianet" (16-bit addends
            holding IA-NET's stored weights bits(w * 2^-63), activations taken to its 2^-64
            domain by the pre-pass: the paper's constant-free form) or "auto" (addends up to
            ``ADDENDS_MAX_BYTES``, else codes); all bit-identical.
        skip_zeros: intadd only: build the zero-skipping index for batch > 1 products (same
            bits); None: when at least ``SKIP_ZEROS_MIN_SHARE`` of the weights are zero and the
            layer has at least ``SKIP_ZEROS_MIN_ROWS`` rows.
    """
    w = np.ascontiguousarray(weight)
    if w.dtype != np.float32 or w.ndim != 2 or 0 in w.shape or not np.isfinite(w).all():
        raise KernelError(f"Expected a finite non-empty float32 (rows, cols) weight but got "
                          f"{w.dtype} {w.shape}")
    rows, cols = w.shape
    if kernel == "fp32":
        return PackedLayer("fp32", rows, cols, _repack(w), lib.SEOFP_FP32)
    if kernel not in KERNELS:
        raise KernelError(f"Expected a kernel in {KERNELS} but got {kernel!r}")
    nz, sign, e = _sign_exponent(w)
    e_min, e_max = (int(e[nz].min()), int(e[nz].max())) if nz.any() else (0, 0)
    if e_max - e_min > 126:
        raise KernelError(f"Expected an exponent span <= 126 but got [{e_min}, {e_max}]")
    code = np.where(nz, (sign << 7) | (e - e_min + 1), 0).astype(np.uint8)
    if kernel == "intadd":
        skip = bool(skip_zeros if skip_zeros is not None
                    else ((~nz).mean() >= SKIP_ZEROS_MIN_SHARE and rows >= SKIP_ZEROS_MIN_ROWS
                          and cols <= SKIP_ZEROS_MAX_COLS))
        if layout not in INTADD_LAYOUTS:
            raise KernelError(f"Expected an intadd layout in {INTADD_LAYOUTS} but got {layout!r}")
        if layout == "nibbles":
            if e_max - e_min > NIBBLE_SPAN:
                raise KernelError(f"Expected an exponent span <= {NIBBLE_SPAN} for 4-bit intadd "
                                  f"codes but got [{e_min}, {e_max}]; use layout 'codes'")
            nib = np.where(nz, (sign << 3) | (e - e_min + 1), 0).astype(np.uint8)
            flat = _repack(nib).reshape(-1, 64)  # one row per chunk: 4 rows x 16 lanes
            packed = flat[:, _W4_LO] | (flat[:, _W4_HI] << 4)
            return PackedLayer("intadd", rows, cols, np.ascontiguousarray(packed),
                               lib.SEOFP_INTADD4, e_min, e_max, zeros=bool((~nz).any()),
                               skip_zeros=skip)
        if layout == "codes" or (layout == "auto" and 2 * rows * cols > ADDENDS_MAX_BYTES):
            blocks = _repack(code)  # (row blocks, chunks, 4 rows, 16 lanes)
            pairs = blocks.reshape(*blocks.shape[:2], 2, 32)[..., _W8_SRC]
            return PackedLayer("intadd", rows, cols, np.ascontiguousarray(pairs), lib.SEOFP_INTADD,
                               e_min, e_max, zeros=bool((~nz).any()), skip_zeros=skip)
        ianet = layout == "ianet"
        if ianet and e_min < IANET_E_MIN:
            raise KernelError(f"Expected weights >= 2^{IANET_E_MIN} for IA-NET's 2^-63 split but "
                              f"got e_min = {e_min}; use layout 'addends'")
        # IA-NET: the top half of bits(w * 2^-63), biased exponent e + 64; else the code
        # e - e_min + 1 with the bias folded into the activation pre-pass
        # (kernels/seofp_internal.h intadd_fold)
        field = e + 64 if ianet else e - e_min + 1
        addend = np.where(nz, (sign.astype(np.uint16) << 15)
                          | (field.astype(np.uint16) << 7), 0).astype(np.uint16)
        return PackedLayer("intadd", rows, cols,
                           np.ascontiguousarray(_repack(addend)[..., _W16_PERM]),
                           lib.SEOFP_INTADD16, e_min, e_max, zeros=bool((~nz).any()),
                           ianet=ianet, skip_zeros=skip)
    if e_max - e_min > F16_HIGH - F16_LOW:  # wider than 32 exponents: bit construction
        return PackedLayer("decode", rows, cols, _repack(code), lib.SEOFP_DECODE_BITS, e_min,
                           e_max)
    scale = 0 if (e_min >= F16_LOW and e_max <= F16_HIGH) else e_max - F16_HIGH
    m = e - scale  # fp16 exponent after the power-of-two output scale 2^scale
    top = np.where(m >= -14, (m + 15) << 2, np.where(m == -15, 2, 1))  # 2^-15, 2^-16: subnormal
    f16 = np.where(nz, (sign.astype(np.int32) << 7) | top, 0).astype(np.uint8)
    return PackedLayer("decode", rows, cols, _repack(f16), lib.SEOFP_DECODE_F16, e_min, e_max,
                       scale)


def gemm_scratch_floats(layer: PackedLayer, n: int) -> int:
    """Floats of C scratch :func:`gemm` and :func:`linear` use for ``n`` rows."""
    return int(lib.seofp_gemm_scratch_floats(layer.struct, n))


def lstm_scratch_floats(wih: PackedLayer, whh: PackedLayer, frames: int) -> int:
    """Floats of C scratch :func:`lstm_direction` uses for ``frames`` steps."""
    return int(lib.seofp_lstm_scratch_floats(wih.struct, whh.struct, frames))


def conv1d_scratch_floats(layer: PackedLayer, ksize: int, length: int) -> int:
    """Floats of C scratch :func:`conv1d` uses for ``length`` time steps."""
    return int(lib.seofp_conv1d_scratch_floats(layer.struct, ksize, length))


def _check(x: np.ndarray, shape: tuple[int, ...], what: str, finite: bool = True) -> np.ndarray:
    """Dtype, shape and (unless C's pre-pass checks it, ``finite=False``) finiteness."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.shape != shape:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise KernelError(f"Expected {what} as float32 {shape} but got {got}")
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    if finite and not np.isfinite(x).all():
        raise KernelError(f"Expected finite {what} but got NaN or inf")
    return x


def _status(rc: int, name: str) -> int:
    if rc == lib.SEOFP_ENONFINITE:  # C's pre-pass found it before computing anything
        raise NonFiniteInput(f"Expected finite inputs to {name} but got NaN or inf")
    if rc < 0:
        raise KernelError(f"{name} failed with status {rc}")
    return rc


def _f(a: np.ndarray) -> Any:
    return ffi.from_buffer("float[]", a)


def gemm(layer: PackedLayer, x: np.ndarray) -> tuple[np.ndarray, int]:
    """(x @ W.T, clamps): x ``(n, cols)`` -> ``(n, rows)``."""
    x = _check(x, (x.shape[0] if getattr(x, "ndim", 0) == 2 else -1, layer.cols), "activations",
               finite=False)
    n = x.shape[0]
    y = np.empty((n, layer.rows), np.float32)
    s = layer.scratch(lib.seofp_gemm_scratch_floats(layer.struct, n))
    rc = lib.seofp_gemm(layer.struct, _f(x), n, layer.cols, _f(y), layer.rows, 1, s)
    return y, _status(rc, "seofp_gemm")


def gemv(layer: PackedLayer, x: np.ndarray) -> tuple[np.ndarray, int]:
    """(W x, clamps): x ``(cols,)`` -> ``(rows,)``."""
    x = _check(x, (layer.cols,), "activations", finite=False)
    y = np.empty(layer.rows, np.float32)
    s = layer.scratch(lib.seofp_gemm_scratch_floats(layer.struct, 1))
    return y, _status(lib.seofp_gemv(layer.struct, _f(x), _f(y), s), "seofp_gemv")


def linear(layer: PackedLayer, bias: np.ndarray | None, x: np.ndarray,
           act: Activation = "none", slope: float = 0.01) -> tuple[np.ndarray, int]:
    """(act(x @ W.T + bias), clamps): x ``(n, cols)`` -> ``(n, rows)``."""
    x = _check(x, (x.shape[0] if getattr(x, "ndim", 0) == 2 else -1, layer.cols), "activations")
    b = ffi.NULL if bias is None else _f(_check(bias, (layer.rows,), "bias"))
    n = x.shape[0]
    y = np.empty((n, layer.rows), np.float32)
    s = layer.scratch(lib.seofp_gemm_scratch_floats(layer.struct, n))
    rc = lib.seofp_linear(layer.struct, b, n, _f(x), _f(y), _ACT[act], slope, s)
    return y, _status(rc, "seofp_linear")


def lstm_direction(wih: PackedLayer, whh: PackedLayer, bias: np.ndarray, x: np.ndarray,
                   h: np.ndarray, c: np.ndarray, out: np.ndarray, col: int = 0,
                   reverse: bool = False) -> int:
    """One LSTM direction over ``x (T, in)``; writes h_t into ``out[:, col:col+H]``.

    ``h`` and ``c`` ``(H,)`` are the state, updated in place (streaming passes them back in).
    Returns the clamp count.
    """
    hidden = whh.cols
    if wih.rows != 4 * hidden or whh.rows != 4 * hidden or wih.kernel != whh.kernel:
        raise KernelError(f"Expected W_ih (4H, in) and W_hh (4H, H) of one kernel but got "
                          f"({wih.rows}, {wih.cols}) and ({whh.rows}, {whh.cols})")
    # finiteness of x, bias and state is checked by C's pre-pass (cheap in a streaming loop)
    x = _check(x, (x.shape[0] if getattr(x, "ndim", 0) == 2 else -1, wih.cols), "LSTM input",
               finite=False)
    t = x.shape[0]
    bias = _check(bias, (4 * hidden,), "LSTM bias", finite=False)
    for name, v in (("h", h), ("c", c)):
        if not (isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (hidden,)
                and v.flags.c_contiguous and v.flags.writeable):
            raise KernelError(f"Expected state {name} as writable float32 ({hidden},)")
    if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 2
            and out.shape[0] == t and out.flags.c_contiguous and out.flags.writeable
            and 0 <= col and col + hidden <= out.shape[1]):
        raise KernelError(f"Expected out as writable float32 ({t}, >= {col + hidden}) but got "
                          f"{getattr(out, 'dtype', type(out).__name__)} "
                          f"{getattr(out, 'shape', '')}")
    s = wih.scratch(lib.seofp_lstm_scratch_floats(wih.struct, whh.struct, t))
    rc = lib.seofp_lstm(wih.struct, whh.struct, _f(bias), t, _f(x), wih.cols, _f(out) + col,
                        out.shape[1], _f(h), _f(c), int(reverse), s)
    return _status(rc, "seofp_lstm")


def blstm_layer(fwd: tuple[PackedLayer, PackedLayer, np.ndarray],
                bwd: tuple[PackedLayer, PackedLayer, np.ndarray],
                x: np.ndarray) -> tuple[np.ndarray, int]:
    """(out ``(T, 2H)``, clamps): both directions of a bidirectional layer in one C call.

    ``fwd`` and ``bwd`` are (W_ih (4H, in), W_hh (4H, H), bias (4H,)) of one kernel; the state
    starts at zero. The recurrent steps of the two directions run interleaved
    (``seofp_blstm``); bit-identical to :func:`lstm_direction` forward into ``out[:, :H]`` and
    reversed into ``out[:, H:]``.
    """
    hidden = fwd[1].cols
    for name, (wih, whh, _) in (("forward", fwd), ("backward", bwd)):
        if (wih.rows, whh.rows, whh.cols, wih.cols) != (4 * hidden, 4 * hidden, hidden,
                                                        fwd[0].cols) \
                or wih.kernel != fwd[0].kernel or whh.kernel != wih.kernel:
            raise KernelError(f"Expected the {name} W_ih (4H, {fwd[0].cols}) and W_hh (4H, H) "
                              f"of one kernel, H={hidden}, but got ({wih.rows}, {wih.cols}) and "
                              f"({whh.rows}, {whh.cols})")
    x = _check(x, (x.shape[0] if getattr(x, "ndim", 0) == 2 else -1, fwd[0].cols), "LSTM input",
               finite=False)  # C's pre-pass checks finiteness of x, bias and state
    biases = [_check(d[2], (4 * hidden,), "LSTM bias", finite=False) for d in (fwd, bwd)]
    t = x.shape[0]
    out = np.empty((t, 2 * hidden), np.float32)
    state = np.zeros((4, hidden), np.float32)
    wih = ffi.new("seofp_layer *[]", [fwd[0].struct, bwd[0].struct])
    whh = ffi.new("seofp_layer *[]", [fwd[1].struct, bwd[1].struct])
    bp = ffi.new("float *[]", [_f(b) for b in biases])
    s = fwd[0].scratch(lib.seofp_blstm_scratch_floats(wih, whh, t))
    rc = lib.seofp_blstm(wih, whh, bp, t, _f(x), fwd[0].cols, _f(out), 2 * hidden, _f(state), s)
    return out, _status(rc, "seofp_blstm")


class LSTMStack:
    """A unidirectional LSTM stack run by one C call per chunk (``seofp_lstm_stack``).

    Shapes are checked once here; pointer arrays and scratch are kept, so a streaming step costs
    one crossing into C instead of one per layer. Bit-identical to :func:`lstm_direction` per
    layer. ``cells``: per layer (W_ih (4H, in), W_hh (4H, H), bias (4H,)), one kernel.
    """

    def __init__(self, cells: list[tuple[PackedLayer, PackedLayer, np.ndarray]]) -> None:
        if not cells:
            raise KernelError("Expected at least one LSTM layer but got 0")
        self.hidden = h = cells[0][1].cols
        self.layers, self.cols = len(cells), cells[0][0].cols
        for li, (wih, whh, _) in enumerate(cells):
            width = self.cols if li == 0 else h
            if ((wih.rows, wih.cols, whh.rows, whh.cols) != (4 * h, width, 4 * h, h)
                    or wih.kernel != cells[0][0].kernel or whh.kernel != wih.kernel):
                raise KernelError(f"Expected layer {li} W_ih (4H, {width}) and W_hh (4H, H) of "
                                  f"one kernel, H={h}, but got ({wih.rows}, {wih.cols}) and "
                                  f"({whh.rows}, {whh.cols})")
        self._bias = [_check(b, (4 * h,), f"layer {li} LSTM bias", finite=False)
                      for li, (_, _, b) in enumerate(cells)]
        self._keep = cells  # the structs' buffers must outlive the pointer arrays
        self._wih = ffi.new("seofp_layer *[]", [c[0].struct for c in cells])
        self._whh = ffi.new("seofp_layer *[]", [c[1].struct for c in cells])
        self._bp = ffi.new("float *[]", [_f(b) for b in self._bias])
        self._scratch = np.empty(0, np.float32)

    def new_state(self) -> np.ndarray:
        """A zero state ``(2 * layers, H)``: h then c of each layer."""
        return np.zeros((2 * self.layers, self.hidden), np.float32)

    def run(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, int]:
        """(last layer's h_t ``(T, H)``, clamps) for x ``(T, in)``; ``state`` updated in place."""
        x = _check(x, (x.shape[0] if getattr(x, "ndim", 0) == 2 else -1, self.cols),
                   "LSTM input", finite=False)  # C's pre-pass checks finiteness
        if not (isinstance(state, np.ndarray) and state.dtype == np.float32
                and state.shape == (2 * self.layers, self.hidden) and state.flags.c_contiguous
                and state.flags.writeable):
            raise KernelError(f"Expected state as writable float32 "
                              f"({2 * self.layers}, {self.hidden}) but got "
                              f"{getattr(state, 'dtype', type(state).__name__)} "
                              f"{getattr(state, 'shape', '')}")
        t = x.shape[0]
        out = np.empty((t, self.hidden), np.float32)
        need = lib.seofp_lstm_stack_scratch_floats(self._wih, self._whh, self.layers, t)
        if self._scratch.size < need:
            self._scratch = np.empty(max(need, 1), np.float32)
        return out, _status(self._call(x, out, state, _f(self._scratch)), "seofp_lstm_stack")

    def _call(self, x: np.ndarray, out: np.ndarray, state: np.ndarray, scratch: Any) -> int:
        """seofp_lstm_stack on checked arrays (x (T, in), out (T, H)): its status."""
        return lib.seofp_lstm_stack(self._wih, self._whh, self._bp, self.layers, x.shape[0],
                                    _f(x), self.cols, _f(out), _f(state), scratch)


class StackStep:
    """A unidirectional stack and its output layer for a few frames at a time (the streaming
    step), with the buffers and pointers bound once: the checks of :meth:`LSTMStack.run` and
    :func:`linear` are the caller's (float32 contiguous features and state of the right shapes),
    the per-call cost is two C calls. Bit-identical to ``LSTMStack.run`` then ``linear``."""

    def __init__(self, stack: LSTMStack, out: PackedLayer, bias: np.ndarray, act: Activation,
                 max_frames: int) -> None:
        if out.cols != stack.hidden:
            raise KernelError(f"Expected an output layer of {stack.hidden} inputs but got "
                              f"{out.cols}")
        self.stack, self.out, self.act, self.max_frames = stack, out, _ACT[act], max_frames
        self._bias = _check(bias, (out.rows,), "output bias")
        self._b = _f(self._bias)
        s = lib.seofp_lstm_stack_scratch_floats(stack._wih, stack._whh, stack.layers, max_frames)
        self._s = np.empty(max(int(s), 1), np.float32)
        self._o = np.empty(max(int(lib.seofp_gemm_scratch_floats(out.struct, max_frames)), 1),
                           np.float32)
        self._sp, self._op = _f(self._s), _f(self._o)

    def __call__(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, int] | None:
        """(output layer's y ``(T, rows)``, clamps) for x ``(T, in)``, T <= max_frames, state
        updated in place; None, with the state as it was, where a kernel refused non-finite
        values or an output is not finite (the caller then runs the checked path, which
        names the layer)."""
        t = x.shape[0]
        before = state.copy()
        h = np.empty((t, self.stack.hidden), np.float32)
        rc = self.stack._call(x, h, state, self._sp)
        if rc < 0:
            state[...] = before
            return None
        y = np.empty((t, self.out.rows), np.float32)
        rc2 = lib.seofp_linear(self.out.struct, self._b, t, _f(h), _f(y), self.act, 0.01,
                               self._op)
        if rc2 < 0 or not np.isfinite(y).all():
            state[...] = before
            return None
        return y, rc + rc2


def conv1d(layer: PackedLayer, bias: np.ndarray | None, x: np.ndarray,
           ksize: int) -> tuple[np.ndarray, int]:
    """("same" zero-padded convolution, clamps): x ``(cin, T)`` -> ``(cout, T)``.

    ``layer`` holds torch's weight ``(cout, cin, ksize)`` reshaped to ``(cout, cin * ksize)``.
    """
    cin = layer.cols // ksize if ksize > 0 else 0
    if ksize < 1 or ksize % 2 == 0 or cin * ksize != layer.cols:
        raise KernelError(f"Expected an odd kernel size dividing {layer.cols} but got {ksize}")
    x = _check(x, (cin, x.shape[-1] if getattr(x, "ndim", 0) == 2 else -1), "conv input")
    t = x.shape[1]
    if t < 1:
        raise KernelError("Expected at least one time step but got 0")
    b = ffi.NULL if bias is None else _f(_check(bias, (layer.rows,), "conv bias"))
    y = np.empty((layer.rows, t), np.float32)
    s = layer.scratch(lib.seofp_conv1d_scratch_floats(layer.struct, ksize, t))
    rc = lib.seofp_conv1d(layer.struct, b, cin, t, ksize, _f(x), _f(y), s)
    return y, _status(rc, "seofp_conv1d")


def channel_norm_act_(x: np.ndarray, norm: tuple[np.ndarray, ...] | None, eps: float,
                      act: Activation, slope: float = 0.01) -> np.ndarray:
    """In place on ``x (C, T)``: inference batch norm (mean, var, gamma, beta) then ``act``."""
    if not (x.dtype == np.float32 and x.ndim == 2 and x.flags.c_contiguous):
        raise KernelError(f"Expected contiguous float32 (C, T) but got {x.dtype} {x.shape}")
    ch = x.shape[0]
    ptrs = [ffi.NULL] * 4
    if norm is not None:
        ptrs = [_f(_check(v, (ch,), "batch-norm statistics")) for v in norm]
    rc = lib.seofp_channel_norm_act(ch, x.shape[1], _f(x), *ptrs, eps, _ACT[act], slope)
    _status(rc, "seofp_channel_norm_act")
    return x
