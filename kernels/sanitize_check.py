"""Every C kernel entry point on tight buffers, for a sanitizer build (docs/engine.md#sanitizers).

    SEOFP_SANITIZE=1 python kernels/build.py
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
        ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 python kernels/sanitize_check.py

Every buffer C sees (weights, activations, outputs, state, scratch) is its own allocation of
exactly the size the call may touch (x of n rows at stride ldx ends at (n - 1) * ldx + cols), so
AddressSanitizer reports a read or write one byte past it. Each call runs with the scratch and
outputs filled with three bit patterns (all ones = NaN, zeros, random bits; the last two starting
4 and 12 bytes into their allocation), on the portable and the AVX2 path, on one and two
threads; every run must give the same bits in what it writes and leave what it must not write
untouched (NaNs compare equal whatever their payload; after an error status only the status
must agree): a result that depends on the fill read memory nobody wrote. Numpy only (no torch);
prints the number of kernel calls and exits 1 on a mismatch. On a normal build the fill
comparisons still run (tests/test_kernel_buffers.py); --uninit leaves scratch and outputs
uninitialised for valgrind; --quick keeps to small shapes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cffi import FFI  # noqa: E402

from seofp_lab.infer import kernels as K  # noqa: E402

ffi, lib = K.ffi, K.lib
FILLS = ["ones", "zero", "rand"]
_KEEP: list = []  # the current call's malloc'd buffers
CALLS = 0
FAILS: list[str] = []


_CFFI = FFI()
_CFFI.cdef("void *malloc(size_t); void free(void *);")
_LIBC = _CFFI.dlopen(None)


def _fill(n: int, how: str, rng: np.random.Generator) -> np.ndarray:
    """A fresh float32 array of exactly n elements (its own malloc) holding a bit pattern;
    "none": left uninitialised, straight from malloc (numpy's cache of small blocks would hand
    back memory written before), for valgrind (--uninit)."""
    if how == "none":
        p = _CFFI.gc(_CFFI.cast("float *", _LIBC.malloc(max(n, 1) * 4)), _LIBC.free)
        a = np.frombuffer(_CFFI.buffer(p, max(n, 0) * 4), np.float32)
        _KEEP.append(p)
        return a
    # the zero and random fills start 1 and 3 floats into their allocation (which still ends
    # at the last element): the kernels align their scratch areas themselves
    off = {"ones": 0, "zero": 1, "rand": 3}[how]
    a = np.empty(max(n, 0) + off, np.float32)[off:]
    u = a.view(np.uint32)
    if how == "ones":
        u[:] = 0xFFFFFFFF
    elif how == "zero":
        u[:] = 0
    else:
        u[:] = rng.integers(0, 2**32, size=u.size, dtype=np.uint64).astype(np.uint32)
    return a


def _bits(a: np.ndarray) -> np.ndarray:
    """The bits of a float32 array, every NaN as one quiet NaN (paths may differ in payload)."""
    u = a.view(np.uint32).copy()
    u[np.isnan(a)] = 0x7FC00000
    return u


def _exact(a: np.ndarray) -> np.ndarray:
    """A copy in its own allocation of exactly a.nbytes."""
    b = np.empty(a.shape, a.dtype)
    b[...] = a
    return b


class Layer:
    """A packed layer whose data sits in an allocation of exactly its bytes."""

    def __init__(self, w: np.ndarray, kernel: str, layout: str = "auto",
                 skip: bool | None = None) -> None:
        # skip: the zero-skipping index of pruned intadd layers (None: the packer's rule)
        self.p = K.pack_layer(w, kernel, layout,  # type: ignore[arg-type]
                              skip_zeros=skip if kernel == "intadd" else None)
        self.data = _exact(self.p.data).reshape(-1)
        self.p.struct.data = ffi.from_buffer(self.data)
        if self.p._sparse is not None:  # the zero-skipping index of the copied data, exactly
            self.p.struct.sparse = ffi.NULL  # allocated too (it names the data it indexes)
            nbytes = int(lib.seofp_sparse_bytes(self.p.struct))
            self.sparse = np.empty(nbytes // 8 + (nbytes % 8 > 0), np.uint64)
            assert lib.seofp_sparse_build(self.p.struct, ffi.from_buffer(self.sparse),
                                          self.sparse.nbytes) == 0
            self.p.struct.sparse = ffi.from_buffer(self.sparse)
        self.s = self.p.struct
        self.rows, self.cols = w.shape
        self.name = f"{kernel}/{layout}/{self.s.kind}"


def _ptr(a: np.ndarray | None):
    return ffi.NULL if a is None else ffi.from_buffer("float[]", a)


def run_all(label: str, call: Callable[[str, np.random.Generator], tuple]) -> None:
    """call(fill, rng) -> (rc, [(buffer, written mask or None)]); every variant, thread count
    and fill must give the same rc and written bits, and leave unwritten elements as filled."""
    global CALLS
    ref = None
    variants = ["portable"] + (["avx2"] if lib.seofp_avx2_supported() else [])
    for variant in variants:
        for threads in (1, 2):
            for fill in FILLS:
                rng = np.random.default_rng(7)
                with K.use_variant(variant), K.use_threads(threads):  # type: ignore[arg-type]
                    rc, outs, fills = call(fill, rng)
                CALLS += 1
                got = [rc] + ([_bits(b[m]) if m is not None else _bits(b) for b, m in outs]
                              if rc >= 0 else [])
                for (b, m), f in zip(outs, fills, strict=True):
                    if m is not None and fill != "none" and not np.array_equal(
                            b.view(np.uint32)[~m], f.view(np.uint32)[~m]):
                        FAILS.append(f"{label}: {variant} t{threads} {fill}: wrote outside")
                _KEEP.clear()
                if ref is None:
                    ref = got
                    continue
                # after an error (rc < 0) only the status must agree: an LSTM stops at the step
                # whose state is not finite, the outputs of later frames stay unwritten
                same = rc == ref[0] and (rc < 0 or all(
                    np.array_equal(a, b) for a, b in zip(got[1:], ref[1:], strict=True)))
                if not same:
                    FAILS.append(f"{label}: {variant} t{threads} {fill}: bits differ "
                                 f"(rc {rc} vs {ref[0]})")


def acts(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    x = rng.standard_normal(n).astype(np.float32)
    if kind == "masked" and n:
        k = rng.integers(0, n, size=max(1, n // 5))
        x[k[::4]] = 0.0
        x[k[1::4]] = np.float32(1e-40)  # subnormal
        x[k[2::4]] = np.float32(3e38)  # clamped by the overflow guard
        x[k[3::4]] = np.float32(-1e-38)  # products underflow: masked
    return x


def weights(rng: np.random.Generator, rows: int, cols: int, span: int, zeros: float):
    e = rng.integers(-span // 2 - 2, span - span // 2 - 2 + 1, size=(rows, cols))
    w = np.ldexp(rng.choice([-1.0, 1.0], size=(rows, cols)), e).astype(np.float32)
    if zeros:
        w[rng.random((rows, cols)) < zeros] = 0.0
    return w


PACKS = [("intadd", "codes"), ("intadd", "addends"), ("intadd", "nibbles"), ("intadd", "ianet"),
         ("decode", "auto"), ("fp32", "auto")]


def layers_for(rng, rows, cols, zeros=True):
    out = []
    for kernel, layout in PACKS:
        span = 6 if layout == "nibbles" else 20
        out.append(Layer(weights(rng, rows, cols, span, 0.0), kernel, layout))
        if zeros and kernel == "intadd":
            out.append(Layer(weights(rng, rows, cols, span, 0.15), kernel, layout))
            # pruned: the zero-skipping index (kernels/sparse.c)
            out.append(Layer(weights(rng, rows, cols, span, 0.5), kernel, layout, skip=True))
    # decode by bit construction (a window wider than an fp16 top byte)
    out.append(Layer(weights(rng, rows, cols, 40, 0.1), "decode"))
    return out


def check_gemm(L: Layer, n: int, xkind: str, ldx_extra: int, trans: bool) -> None:
    rows, cols = L.rows, L.cols
    ldx = cols + ldx_extra
    xsrc = acts(np.random.default_rng(n * 31 + cols), max((n - 1) * ldx + cols, 0), xkind)
    if trans:  # y (rows, n): ys_n = 1, ys_r = n + 1 (a gap column)
        ys_n, ys_r, ysize = 1, n + 1, (rows - 1) * (n + 1) + n
    else:
        ys_n, ys_r, ysize = rows + 2, 1, (n - 1) * (rows + 2) + rows
    mask = np.zeros(max(ysize, 0), bool)
    for i in range(n):
        for r in range(rows):
            mask[i * ys_n + r * ys_r] = True

    def call(fill, rng):
        x = _exact(xsrc)
        y = _fill(ysize, fill, rng)
        y0 = y.copy()
        s = _fill(lib.seofp_gemm_scratch_floats(L.s, n), fill, rng)
        rc = lib.seofp_gemm(L.s, _ptr(x), n, ldx, _ptr(y), ys_n, ys_r, _ptr(s))
        assert np.array_equal(x.view(np.uint32), xsrc.view(np.uint32)), "x written"
        return rc, [(y, mask)], [y0]

    run_all(f"gemm {L.name} {rows}x{cols} n={n} {xkind} ldx+{ldx_extra} trans={trans}", call)


def check_gemv_linear(L: Layer, xkind: str) -> None:
    rows, cols = L.rows, L.cols
    xsrc = acts(np.random.default_rng(cols), cols, xkind)

    def gemv(fill, rng):
        x = _exact(xsrc)
        y = _fill(rows, fill, rng)
        s = _fill(lib.seofp_gemm_scratch_floats(L.s, 1), fill, rng)
        return lib.seofp_gemv(L.s, _ptr(x), _ptr(y), _ptr(s)), [(y, None)], [y.copy()]

    run_all(f"gemv {L.name} {rows}x{cols} {xkind}", gemv)
    bsrc = acts(np.random.default_rng(rows), rows, "plain")
    for n in (1, 3):
        xs = acts(np.random.default_rng(n + cols), n * cols, xkind)

        def linear(fill, rng, n=n, xs=xs):
            x, b = _exact(xs), _exact(bsrc)
            y = _fill(n * rows, fill, rng)
            s = _fill(lib.seofp_gemm_scratch_floats(L.s, n), fill, rng)
            rc = lib.seofp_linear(L.s, _ptr(b), n, _ptr(x), _ptr(y), lib.SEOFP_ACT_LEAKY,
                                  0.1, _ptr(s))
            return rc, [(y, None)], [y.copy()]

        run_all(f"linear {L.name} {rows}x{cols} n={n} {xkind}", linear)


def lstm_pair(rng, H, nin, pack, zeros=0.1):
    kernel, layout = pack
    span = 6 if layout == "nibbles" else 40 if layout == "bits" else 12
    layout = "auto" if layout == "bits" else layout  # decode by bit construction: wide span
    wih = Layer(weights(rng, 4 * H, nin, span, zeros) * np.float32(0.25), kernel, layout,
                skip=zeros >= 0.5 or None)
    whh = Layer(weights(rng, 4 * H, H, span, 0.1) * np.float32(0.25), kernel, layout)
    return wih, whh, (rng.standard_normal(4 * H) * 0.1).astype(np.float32)


def check_lstm(rng, H, nin, T, pack, xkind, reverse, zeros=0.1):
    wih, whh, bias = lstm_pair(rng, H, nin, pack, zeros)
    ldx, ldo = nin + 1, H + 2
    xsrc = acts(rng, max((T - 1) * ldx + nin, 0), xkind)
    osize = max((T - 1) * ldo + H, 0)
    mask = np.zeros(osize, bool)
    for t in range(T):
        mask[t * ldo:t * ldo + H] = True
    h0, c0 = acts(rng, H, "plain") * 0.5, acts(rng, H, "plain") * 0.5

    def call(fill, rng):
        x, b, h, c = _exact(xsrc), _exact(bias), _exact(h0), _exact(c0)
        out = _fill(osize, fill, rng)
        o0 = out.copy()
        s = _fill(lib.seofp_lstm_scratch_floats(wih.s, whh.s, T), fill, rng)
        rc = lib.seofp_lstm(wih.s, whh.s, _ptr(b), T, _ptr(x), ldx, _ptr(out), ldo, _ptr(h),
                            _ptr(c), reverse, _ptr(s))
        return rc, [(out, mask), (h, None), (c, None)], [o0, h0, c0]

    run_all(f"lstm {wih.name} H={H} in={nin} T={T} {xkind} rev={reverse}", call)


def check_blstm(rng, H, nin, T, pack, xkind):
    d = [lstm_pair(rng, H, nin, pack) for _ in range(2)]
    ldx, ldo = nin, 2 * H + 1
    xsrc = acts(rng, T * ldx, xkind)
    osize = max((T - 1) * ldo + 2 * H, 0)
    mask = np.zeros(osize, bool)
    for t in range(T):
        mask[t * ldo:t * ldo + 2 * H] = True
    st0 = acts(rng, 4 * H, "plain") * 0.5
    wih = ffi.new("seofp_layer *[]", [d[0][0].s, d[1][0].s])
    whh = ffi.new("seofp_layer *[]", [d[0][1].s, d[1][1].s])

    def call(fill, rng):
        x, st = _exact(xsrc), _exact(st0)
        bs = [_exact(d[0][2]), _exact(d[1][2])]
        bp = ffi.new("float *[]", [_ptr(b) for b in bs])
        out = _fill(osize, fill, rng)
        o0 = out.copy()
        s = _fill(lib.seofp_blstm_scratch_floats(wih, whh, T), fill, rng)
        rc = lib.seofp_blstm(wih, whh, bp, T, _ptr(x), ldx, _ptr(out), ldo, _ptr(st), _ptr(s))
        return rc, [(out, mask), (st, None)], [o0, st0]

    run_all(f"blstm {d[0][0].name} H={H} in={nin} T={T} {xkind}", call)


def check_stack(rng, H, nin, T, layers, pack, xkind):
    cells = [lstm_pair(rng, H, nin if i == 0 else H, pack) for i in range(layers)]
    wih = ffi.new("seofp_layer *[]", [c[0].s for c in cells])
    whh = ffi.new("seofp_layer *[]", [c[1].s for c in cells])
    ldx = nin + 3
    xsrc = acts(rng, max((T - 1) * ldx + nin, 0), xkind)
    st0 = acts(rng, 2 * layers * H, "plain") * 0.5

    def call(fill, rng):
        x, st = _exact(xsrc), _exact(st0)
        bs = [_exact(c[2]) for c in cells]
        bp = ffi.new("float *[]", [_ptr(b) for b in bs])
        out = _fill(T * H, fill, rng)
        s = _fill(lib.seofp_lstm_stack_scratch_floats(wih, whh, layers, T), fill, rng)
        rc = lib.seofp_lstm_stack(wih, whh, bp, layers, T, _ptr(x), ldx, _ptr(out), _ptr(st),
                                  _ptr(s))
        return rc, [(out, None), (st, None)], [out.copy(), st0]

    run_all(f"lstm_stack {cells[0][0].name} H={H} in={nin} T={T} L={layers} {xkind}", call)


def check_conv(rng, cin, cout, T, ksize, pack, xkind, zeros=0.1):
    kernel, layout = pack
    span = 6 if layout == "nibbles" else 12
    L = Layer(weights(rng, cout, cin * ksize, span, zeros), kernel, layout,
              skip=zeros >= 0.5 or None)
    xsrc = acts(rng, cin * T, xkind)
    bsrc = acts(rng, cout, "plain")

    def call(fill, rng):
        x, b = _exact(xsrc), _exact(bsrc)
        y = _fill(cout * T, fill, rng)
        s = _fill(lib.seofp_conv1d_scratch_floats(L.s, ksize, T), fill, rng)
        rc = lib.seofp_conv1d(L.s, _ptr(b), cin, T, ksize, _ptr(x), _ptr(y), _ptr(s))
        return rc, [(y, None)], [y.copy()]

    run_all(f"conv1d {L.name} cin={cin} cout={cout} T={T} k={ksize} {xkind}", call)


def check_norm(rng, C, T):
    xsrc = acts(rng, C * T, "plain")
    ps = [_exact(np.abs(acts(rng, C, "plain"))) for _ in range(4)]

    def call(fill, rng):
        x = _exact(xsrc)
        rc = lib.seofp_channel_norm_act(C, T, _ptr(x), *[_ptr(p) for p in ps], 1e-5,
                                        lib.SEOFP_ACT_RELU, 0.0)
        return rc, [(x, None)], [xsrc]

    run_all(f"channel_norm C={C} T={T}", call)


def check_nonfinite(rng) -> None:
    """A NaN activation: SEOFP_ENONFINITE and no output written, on every path."""
    L = Layer(weights(rng, 13, 40, 10, 0.1), "intadd", "codes")
    for n in (1, 4):
        xsrc = acts(rng, n * 40, "plain")
        xsrc[-1] = np.nan

        def call(fill, rng, n=n, xsrc=xsrc):
            x = _exact(xsrc)
            y = _fill(n * 13, fill, rng)
            y0 = y.copy()
            s = _fill(lib.seofp_gemm_scratch_floats(L.s, n), fill, rng)
            rc = lib.seofp_gemm(L.s, _ptr(x), n, 40, _ptr(y), 13, 1, _ptr(s))
            return rc, [(y, np.zeros(y.size, bool))], [y0]

        run_all(f"gemm nonfinite n={n}", call)


def main(argv: list[str] | None = None) -> int:
    """Every check (--quick: small shapes only); 0 when nothing differs."""
    global CALLS
    CALLS = 0
    FAILS.clear()
    rng = np.random.default_rng(2026)
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    # --uninit: scratch and outputs straight from malloc, one run per path (valgrind reports
    # any result that depends on memory nobody wrote)
    FILLS[:] = ["none"] if "--uninit" in args else ["ones", "zero", "rand"]
    shapes = [(1, 1), (3, 17), (5, 33), (7, 15), (13, 100), (6, 257)]
    if not quick:
        # 2 threads (>= 64K weights), the multi-block panels and the k-sliced state area
        # (one panel in L1, > 24 chunks: 608 columns; 400 with zero masks), narrow last blocks
        shapes += [(257, 257), (9, 600), (6, 410), (130, 520)]
    for rows, cols in shapes:
        for L in layers_for(rng, rows, cols):
            big = rows * cols > 50000
            ns = (1, 2, 3, 5) if big else (1, 2, 3, 5, 26, 126)
            for n in ns:
                for xkind in ("plain", "masked"):
                    check_gemm(L, n, xkind, ldx_extra=n % 2 * 3, trans=n == 3)
            if cols >= 600:
                check_gemm(L, 70, "masked", 0, False)  # two column groups of 66 at cp = 608
            check_gemv_linear(L, "masked")
        print(f"  {rows}x{cols}: {CALLS} calls", flush=True)
    lstm_packs = [*PACKS, ("decode", "bits")]
    for pack in lstm_packs:
        for H, nin, T in ((1, 1, 1), (3, 5, 1), (13, 7, 2), (5, 20, 5), (67, 33, 3),
                          (8, 16, 1), (9, 17, 2)):
            for xkind in ("plain", "masked"):
                check_lstm(rng, H, nin, T, pack, xkind, reverse=T % 2)
        check_lstm(rng, 4, 4, 0, pack, "plain", 0)
        check_lstm(rng, 13, 40, 70, pack, "masked", 1, zeros=0.5)  # pruned W_ih, 2 groups
        check_blstm(rng, 3, 5, 1, pack, "masked")
        check_blstm(rng, 13, 9, 3, pack, "plain")
        check_stack(rng, 3, 5, 1, 2, pack, "masked")
        check_stack(rng, 11, 7, 3, 3, pack, "plain")
        if not quick:
            check_lstm(rng, 131, 40, 2, pack, "masked", 1)  # 2 threads, odd block split
            check_blstm(rng, 190, 16, 2, pack, "plain")  # W_hh > 256 KiB: one after the other
        print(f"  lstm {pack}: {CALLS} calls", flush=True)
    for pack in PACKS:
        for cin, cout, T, k in ((1, 1, 1, 1), (3, 5, 2, 3), (4, 7, 50, 5), (5, 3, 49, 3),
                                (2, 9, 4, 7)):
            check_conv(rng, cin, cout, T, k, pack, "masked" if T % 2 else "plain")
        check_conv(rng, 4, 7, 50, 5, pack, "masked", zeros=0.5)  # pruned: groups of 48 and 2
        check_conv(rng, 4, 7, 20, 3, pack, "masked", zeros=0.5)  # pruned, < 24 columns: dense
        if not quick:  # 450 columns with zero weights: intadd's k-sliced state area, y (cout, T)
            check_conv(rng, 90, 6, 50, 5, pack, "masked")
    check_norm(rng, 3, 7)
    check_nonfinite(rng)
    print(f"{CALLS} kernel calls, {len(FAILS)} mismatches")
    for f in FAILS[:50]:
        print("  " + f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
