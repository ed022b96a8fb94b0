"""The C inference engine: a ``.seofp`` file in, numpy waveforms in and out, no torch.

``load(path, kernel)`` validates the file and repacks every weight matrix for one kernel:
``intadd`` (the paper's integer adder, default), ``decode`` (bit-identical, faster with FMA) or
``fp32`` (the control). intadd keeps each matrix as 16-bit addends when they fit in
``kernels.ADDENDS_MAX_BYTES`` (L2-resident: the fastest layout), else as 1-byte codes (half the
bytes to stream per frame); an LSTM's W_hh up to ``kernels.RECURRENT_ADDENDS_MAX_BYTES``.
"nibbles" keeps s1e3
layers (windows of <= 7 exponents) at 4 bits, half the memory of codes at about 0.9x their speed on
AVX2 (table lookups and unpacks bound it, not memory); all layouts are bit-identical.
Every header field is honoured (``header.py``), a mask model's gain included:
``mask_floor + (1 - mask_floor) * sigmoid(y)``, applied here after the C output layer, so the
offline and the streaming paths both use it. A tensor the header does not account for is refused.
``Engine.enhance`` runs a whole utterance (BLSTM, LSTM, FCN);
``Engine.stream`` runs the unidirectional LSTM hop by hop with its state (see ``streaming.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from seofp_lab.errors import ModelFileError
from seofp_lab.infer import kernels as K
from seofp_lab.infer import modelfile, stft
from seofp_lab.infer.header import FCNHeader, LSTMHeader
from seofp_lab.infer.kernels import IntaddLayout, Kernel
from seofp_lab.infer.streaming import Stream

MAX_WORK_BYTES = 2 << 30  # memory one ``enhance`` call may need (docs/MODEL_FILE.md#limits)
# Calls of a unidirectional model with at most this many frames (streaming steps) run the stack
# packed as 1-byte codes: on the causal LSTM 2 x 256, one hop interleaved with other work,
# benchmarks/bench_streaming.py measures 0.229-0.263 ms per hop against 0.254-0.286 ms with
# 16-bit addends (two runs, same-run control "c_intadd_addends"), whose advantage needs the
# weights warm in L2.
STEP_FRAMES = 4


class NonFiniteOutput(K.KernelError):
    """A layer produced NaN or inf: the model overflows float32 on this input; nothing is output."""


class WorkTooLarge(K.KernelError):
    """An input whose enhancement would need more memory than :data:`MAX_WORK_BYTES`."""


class Engine:
    """An exported model ready to run on one kernel; build it with :func:`load`."""

    def __init__(self, model: modelfile.ModelFile, kernel: Kernel = "intadd",
                 where: str = "<model>", intadd_layout: IntaddLayout = "auto") -> None:
        if kernel not in K.KERNELS:
            raise K.KernelError(f"Expected a kernel in {K.KERNELS} but got {kernel!r}")
        if intadd_layout not in K.INTADD_LAYOUTS:
            raise K.KernelError(f"Expected an intadd layout in {K.INTADD_LAYOUTS} but got "
                                f"{intadd_layout!r}")
        self.kernel, self.where, self.file = kernel, where, model
        # "auto" is resolved per matrix by pack_layer (16-bit addends while a matrix fits in
        # K.ADDENDS_MAX_BYTES, else 1-byte codes); intadd_layout then names what was used
        self.intadd_layout: str = intadd_layout
        self._kinds: set[int] = set()
        spec = model.spec  # checked by modelfile.read: every field is honoured
        self.name = spec.model
        self.clamps = 0  # activations clamped by intadd's overflow guard, summed over calls
        self._used: set[str] = set()
        if isinstance(spec, LSTMHeader):
            self._init_lstm(spec)
        else:
            self._init_fcn(spec)
        if intadd_layout == "auto" and kernel == "intadd":
            names = {K.lib.SEOFP_INTADD16: "addends", K.lib.SEOFP_INTADD: "codes"}
            self.intadd_layout = "+".join(sorted(names[k] for k in self._kinds))
        unused = [n for n in model.tensors if n not in self._used]
        if unused:  # a layer the header does not describe would be silently skipped
            raise ModelFileError(f"{where}: tensor {unused[0]!r} is not part of the {self.name} "
                                 f"model the header describes ({len(unused)} unused tensors)")

    # ----------------------------------------------------------------------------- loading
    def _tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        t = self.file.tensors.get(name)
        if t is None or t.values.shape != shape:
            got = "nothing" if t is None else str(t.values.shape)
            raise ModelFileError(f"{self.where}: expected tensor {name!r} of shape {shape} but "
                                 f"got {got}")
        self._used.add(name)
        return np.ascontiguousarray(t.values, np.float32)

    def _matrix(self, name: str, shape: tuple[int, int], recurrent: bool = False) -> K.PackedLayer:
        return self._pack(name, self._tensor(name, shape), recurrent)

    def _init_lstm(self, p: LSTMHeader) -> None:
        self.hidden = h = p.hidden
        self.layers, fc, self.n_fft, self.hop = p.layers, p.fc, p.n_fft, p.hop
        self.target, self.lps_eps = p.target, p.lps_eps
        # the mask's gain is floor + (1 - floor) * sigmoid(y), in float32 as torch computes it
        self.mask_floor = np.float32(p.mask_floor)
        self.mask_scale = np.float32(1.0 - p.mask_floor)
        self.bins = bins = self.n_fft // 2 + 1
        self.dirs = 2 if self.name == "blstm" else 1
        self.mean, self.std = self._tensor("feat_mean", (bins,)), self._tensor("feat_std", (bins,))
        self.cells: list[list[tuple[K.PackedLayer, K.PackedLayer, np.ndarray]]] = []
        width = bins
        for layer in range(self.layers):
            dirs = []
            for d in range(self.dirs):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                dirs.append((self._matrix(f"lstm.weight_ih_{sfx}", (4 * h, width)),
                             self._matrix(f"lstm.weight_hh_{sfx}", (4 * h, h), recurrent=True),
                             self._tensor(f"lstm.bias_ih_{sfx}", (4 * h,))))
            self.cells.append(dirs)
            width = h * self.dirs
        # unidirectional: the whole stack in one C call (a streaming step crosses into C once)
        self.stack = K.LSTMStack([d[0] for d in self.cells]) if self.dirs == 1 else None
        self.fc = None
        if fc:
            self.fc = (self._matrix("fc.weight", (fc, width)), self._tensor("fc.bias", (fc,)))
            width = fc
        self.out = (self._matrix("out.weight", (bins, width)), self._tensor("out.bias", (bins,)))
        # the streaming-step stack and fast path, built on the first short call (_stepping)
        self._steps: tuple[K.LSTMStack, K.StackStep | None] | None = None

    def _init_fcn(self, p: FCNHeader) -> None:
        layers, ch, k = p.layers, p.channels, p.kernel
        self.ksize = k
        self.slope, self.eps = p.slope, p.eps
        norm = p.norm == "batch"
        step = 3 if norm else 2  # Sequential: conv, [bn], act
        self.convs: list[tuple[K.PackedLayer, np.ndarray, tuple[np.ndarray, ...] | None]] = []
        width = 1
        for i in range(layers + 1):
            last = i == layers
            out_ch, idx = (1 if last else ch), i * step
            w3 = self._tensor(f"net.{idx}.weight", (out_ch, width, k))
            conv = self._pack(f"net.{idx}.weight", w3.reshape(out_ch, width * k))
            bias = self._tensor(f"net.{idx}.bias", (out_ch,))
            bn = None
            if norm and not last:
                bn = tuple(self._tensor(f"net.{idx + 1}.{n}", (out_ch,))
                           for n in ("running_mean", "running_var", "weight", "bias"))
            self.convs.append((conv, bias, bn))
            width = out_ch

    def _stepping(self) -> tuple[K.LSTMStack, K.StackStep | None]:
        """(the stack for calls of at most STEP_FRAMES frames, the fast path of a mask model's
        step or None), built on first use, so offline use never pays for them. A step reads
        every matrix once per call, mostly from L3 (other work runs between hops): with "auto",
        intadd steps on 1-byte codes (the fewest bytes; the same bits as the offline layouts).
        A mask model without FC layer steps through K.StackStep: two C calls, no per-layer
        Python."""
        if self._steps is None:
            assert self.stack is not None
            stack = self.stack
            if self.kernel == "intadd" and self.intadd_layout == "auto":
                h = self.hidden
                stack = K.LSTMStack([
                    (self._codes(f"lstm.weight_ih_l{i}", (4 * h, self.bins if i == 0 else h)),
                     self._codes(f"lstm.weight_hh_l{i}", (4 * h, h)), cell[0][2])
                    for i, cell in enumerate(self.cells)])
            fast = (K.StackStep(stack, self.out[0], self.out[1], "sigmoid", STEP_FRAMES)
                    if self.fc is None and self.target == "mask" else None)
            self._steps = (stack, fast)
        return self._steps

    def _codes(self, name: str, shape: tuple[int, int]) -> K.PackedLayer:
        """A matrix of the model as intadd 1-byte codes (the streaming step's layout; at most
        STEP_FRAMES columns per product, too few for the zero-skipping index)."""
        try:
            return K.pack_layer(self._tensor(name, shape), "intadd", "codes", skip_zeros=False)
        except K.KernelError as exc:
            raise K.KernelError(f"{self.where}: tensor {name!r}: {exc}") from None

    def _pack(self, name: str, w: np.ndarray, recurrent: bool = False) -> K.PackedLayer:
        try:
            layout = self.intadd_layout  # "nibbles": where the layer's window allows
            if (self.kernel == "intadd" and layout == "nibbles"
                    and K.exponent_span(w) > K.NIBBLE_SPAN):
                layout = "codes"
            # "auto" for W_hh: addends up to K.RECURRENT_ADDENDS_MAX_BYTES (its step product
            # is bound by operations, fewer on addends), other matrices by K.ADDENDS_MAX_BYTES
            if (self.kernel == "intadd" and layout == "auto" and recurrent
                    and 2 * w.size <= K.RECURRENT_ADDENDS_MAX_BYTES):
                layout = "addends"
            # W_hh's products are batch 1 (one step at a time): no zero-skipping index
            packed = K.pack_layer(np.ascontiguousarray(w), self.kernel, layout,  # type: ignore[arg-type]
                                  skip_zeros=False if recurrent else None)
            self._kinds.add(packed.c_kind)
            return packed
        except K.KernelError as exc:
            raise K.KernelError(f"{self.where}: tensor {name!r}: {exc}") from None

    # --------------------------------------------------------------------------- inference
    def work_bytes(self, length: int) -> int:
        """About the most memory ``enhance`` holds at once for ``length`` samples (an upper
        estimate: the input, the spectrum, plus the largest of the STFT, network and inverse
        stages with their C scratch); checked before anything is allocated."""
        # each packed layer keeps its own C scratch buffer (reused by later calls): they add up
        if self.name == "fcn":
            scratch = sum(K.conv1d_scratch_floats(c, self.ksize, length) for c, _, _ in self.convs)
            return 12 * length + scratch * 4 + 3 * self.convs[0][0].rows * length * 4
        frames, n_fft, bins = stft.frame_count(length, self.hop), self.n_fft, self.bins
        total = n_fft + self.hop * (frames - 1)
        width = max([self.hidden * self.dirs, bins] + ([self.fc[0].rows] if self.fc else []))
        scratch = sum([K.lstm_scratch_floats(wih, whh, frames) for d in self.cells
                       for wih, whh, _ in d]
                      + [K.gemm_scratch_floats(layer, frames)
                         for layer in [self.out[0]] + ([self.fc[0]] if self.fc else [])])
        stages = (
            (length + n_fft) * 8 + length * 8 + frames * (n_fft * 8 + bins * 16),  # stft
            frames * (bins * 4 * 6 + width * 4 * 3),  # features, layers
            frames * bins * 56,  # mask or lps inverse, phase
            frames * (bins * 16 + n_fft * 24) + total * 24 + length * 12,  # istft, envelope
        )
        return length * 4 + frames * bins * 8 + scratch * 4 + max(stages)

    def enhance(self, wave: np.ndarray, max_bytes: int = MAX_WORK_BYTES) -> np.ndarray:
        """Enhance one utterance: ``(time,)`` float32 -> ``(time,)`` float32.

        Raises:
            WorkTooLarge: the input would need more than ``max_bytes`` (:meth:`work_bytes`).
            NonFiniteOutput: a layer produced NaN or inf; the message names the layer.
        """
        x = np.asarray(wave)
        if x.dtype != np.float32 or x.ndim != 1 or not np.isfinite(x).all():
            raise K.KernelError(f"Expected a finite float32 (time,) waveform but got {x.dtype} "
                                f"{x.shape}")
        need = self.work_bytes(x.size) if x.size < 1 << 31 else 1 << 62  # C takes int lengths
        if need > max_bytes:
            setting = ("params.channels, params.kernel" if self.name == "fcn"
                       else f"params.n_fft={self.n_fft}, params.hop={self.hop}")
            raise WorkTooLarge(
                f"{self.where}: enhancing {x.size:,} samples ({x.size / 16000:.1f} s at 16 kHz) "
                f"with {setting} needs about {need / 2**30:.2f} GiB, over the engine's limit of "
                f"{max_bytes / 2**30:.2f} GiB (engine.MAX_WORK_BYTES); split the input")
        if self.name == "fcn":
            return self._fcn(x)
        spec = stft.stft(x, self.n_fft, self.hop)
        y = stft.istft(self.spectral(spec), x.size, self.n_fft, self.hop)
        self._finite(y, "the inverse STFT")
        return y

    @contextmanager
    def _layer(self, layer: str) -> Iterator[None]:
        """Its inputs were checked finite, so a kernel's non-finite status arose inside
        ``layer`` (an overflowing gate pre-activation): say so, naming the layer."""
        try:
            yield
        except K.NonFiniteInput:
            raise NonFiniteOutput(f"{self.where}: {layer} produced NaN or inf on this input (the "
                                  f"model's values overflow float32); no output is given"
                                  ) from None

    def _finite(self, a: np.ndarray, layer: str) -> None:
        """Refuse NaN or inf from ``layer``, naming it (docs/engine.md#guards: the kernels refuse
        them only on input, so an overflowing model would otherwise pass NaN along to the
        output)."""
        if not np.isfinite(a).all():
            what = "NaN" if np.isnan(a).any() else "inf"
            raise NonFiniteOutput(f"{self.where}: {layer} produced {what} on this input (the "
                                  f"model's values overflow float32); no output is given")

    def spectral(self, spec: np.ndarray,
                 state: np.ndarray | list[np.ndarray] | None = None) -> np.ndarray:
        """The LSTM family's mapping on STFT frames ``(frames, bins)`` complex -> same.

        ``state`` (unidirectional only), updated in place so consecutive calls continue one
        utterance (streaming): a ``(2 * layers, hidden)`` float32 array (h then c per layer,
        ``self.stack.new_state()``) or a list of those rows as separate arrays.
        """
        with np.errstate(all="ignore"):  # overflow is reported by _finite, naming the layer
            feats = stft.lps(spec, self.lps_eps)
            np.subtract(feats, self.mean, out=feats)
            np.divide(feats, self.std, out=feats)
        frames = feats.shape[0]
        fast = self._stepping()[1] if self.stack is not None and frames <= STEP_FRAMES else None
        if (fast is not None and isinstance(state, np.ndarray) and state.dtype == np.float32
                and state.shape == (2 * self.layers, self.hidden)
                and state.flags.c_contiguous and state.flags.writeable):
            # a streaming step: the kernels refuse non-finite features themselves, and any
            # refusal runs the checked path below on the unchanged state
            done = fast(feats, state)
            if done is not None:
                y, n = done
                self.clamps += n
                gain = self.mask_floor + self.mask_scale * y  # in [mask_floor, 1]
                mag = np.abs(spec)
                return stft.with_phase(gain * mag, spec, mag)
        self._finite(feats, "the input features (feat_mean, feat_std)")
        x = np.ascontiguousarray(feats, np.float32)
        if self.stack is not None:
            x = self._stack(x, state)
        for li, dirs in enumerate(self.cells if self.stack is None else []):
            if self.dirs == 2 and state is None:  # both directions in one C call, interleaved
                with self._layer(f"layer {li} ({self.name})"):
                    x, n = K.blstm_layer(dirs[0], dirs[1], x)
                self.clamps += n
                self._finite(x, f"layer {li} ({self.name})")
                continue
            out = np.empty((frames, self.hidden * self.dirs), np.float32)
            for d, (wih, whh, b) in enumerate(dirs):
                if state is None:
                    h = np.zeros(self.hidden, np.float32)
                    c = np.zeros(self.hidden, np.float32)
                else:
                    h, c = state[2 * li], state[2 * li + 1]
                with self._layer(f"layer {li} ({self.name})"):
                    self.clamps += K.lstm_direction(wih, whh, b, x, h, c, out,
                                                    col=d * self.hidden, reverse=d == 1)
            x = out
            self._finite(x, f"layer {li} ({self.name})")
        layer = self.layers
        if self.fc is not None:
            with self._layer(f"layer {layer} (fc)"):
                x, n = K.linear(self.fc[0], self.fc[1], x, "relu")
            self.clamps += n
            self._finite(x, f"layer {layer} (fc)")
            layer += 1
        act = "sigmoid" if self.target == "mask" else "none"
        with self._layer(f"layer {layer} (out)"):
            y, n = K.linear(self.out[0], self.out[1], x, act)
        self.clamps += n
        self._finite(y, f"layer {layer} (out)")
        if self.target == "mask":
            gain = self.mask_floor + self.mask_scale * y  # in [mask_floor, 1]
            mag = np.abs(spec)  # once, for the mask and for the phase
            return stft.with_phase(gain * mag, spec, mag)
        with np.errstate(all="ignore"):
            mag = stft.lps_to_magnitude(y * self.std + self.mean, self.lps_eps)
        self._finite(mag, f"the LPS inverse of layer {layer} (out)")
        return stft.with_phase(mag, spec)

    def _stack(self, x: np.ndarray, state: np.ndarray | list[np.ndarray] | None) -> np.ndarray:
        """The unidirectional stack in one C call: ``(frames, bins)`` -> ``(frames, hidden)``."""
        assert self.stack is not None
        stack = self._stepping()[0] if x.shape[0] <= STEP_FRAMES else self.stack
        packed = state if isinstance(state, np.ndarray) else self.stack.new_state()
        if isinstance(state, list):
            packed[:] = np.stack(state)
        before = packed.copy()  # a few KB: lets a non-finite output be traced to its layer
        try:
            y, n = stack.run(x, packed)
        except K.NonFiniteInput:  # inside the stack: a layer's gates overflowed
            y, n = np.full((1, 1), np.nan, np.float32), 0
        self.clamps += n
        if not np.isfinite(y).all():
            self._finite(y, f"layer {self._first_nonfinite(x, before)} (lstm)")
        if isinstance(state, list):
            for row, v in zip(packed, state, strict=True):
                v[...] = row
        return y

    def _first_nonfinite(self, x: np.ndarray, state: np.ndarray) -> int:
        """The first layer of the unidirectional stack whose output is not finite, found by
        running the layers one by one (bit-identical to the stack) from the saved state."""
        for li, ((wih, whh, b),) in enumerate(self.cells):
            h, c = state[2 * li].copy(), state[2 * li + 1].copy()
            out = np.empty((x.shape[0], self.hidden), np.float32)
            try:
                K.lstm_direction(wih, whh, b, x, h, c, out)
            except K.NonFiniteInput:
                return li
            if not np.isfinite(out).all():
                return li
            x = out
        return self.layers - 1

    def _fcn(self, x: np.ndarray) -> np.ndarray:
        h = x[None, :]
        for i, (conv, bias, bn) in enumerate(self.convs):
            with self._layer(f"layer {i} (conv)"):
                h, n = K.conv1d(conv, bias, h, self.ksize)
            self.clamps += n
            self._finite(h, f"layer {i} (conv)")
            last = i == len(self.convs) - 1
            with np.errstate(all="ignore"):
                K.channel_norm_act_(h, bn, self.eps, "tanh" if last else "leaky_relu",
                                    self.slope)
            self._finite(h, f"layer {i} ({'batch norm + ' if bn else ''}"
                            f"{'tanh' if last else 'leaky relu'})")
        return h[0]

    def stream(self) -> Stream:
        """A streaming session (unidirectional LSTM): ``push(chunk)`` / ``flush()``."""
        return Stream(self)


def load(path: str | Path, kernel: Kernel = "intadd",
         intadd_layout: IntaddLayout = "auto") -> Engine:
    """Read and validate a ``.seofp`` file and build an :class:`Engine` on ``kernel``.

    ``intadd_layout``: "auto" (per matrix by its size), "addends" (16-bit), "codes" (1 byte per
    weight) or "nibbles" (4 bits where a layer's window holds <= 7 exponents, else 1 byte).
    """
    return Engine(modelfile.load(path), kernel, str(path), intadd_layout)
