"""The C inference engine: a ``.seofp`` file in, numpy waveforms in and out, no torch.

``load(path, kernel)`` validates the file and repacks every weight matrix for one kernel:
``intadd`` (the paper's integer adder, default), ``decode`` (bit-identical, faster with FMA) or
``fp32`` (the control). intadd keeps its weights as 16-bit addends (one unpack per 8
products) when the model's addends fit in ``kernels.ADDENDS_MAX_BYTES`` (cache-resident: the
fastest layout), else as 1-byte codes (half the bytes to stream per frame). "nibbles" keeps s1e3
layers (windows of <= 7 exponents) at 4 bits, half the memory of codes at about 0.9x their speed on
AVX2 (table lookups and unpacks bound it, not memory); all layouts are bit-identical.
Every header field is honoured (``header.py``), a mask model's gain included:
``mask_floor + (1 - mask_floor) * sigmoid(y)``, applied here after the C output layer, so the
offline and the streaming paths both use it. A tensor the header does not account for is refused.
``Engine.enhance`` runs a whole utterance (BLSTM, LSTM, FCN);
``Engine.stream`` runs the unidirectional LSTM hop by hop with its state (see ``streaming.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seofp_lab.errors import ModelFileError
from seofp_lab.infer import kernels as K
from seofp_lab.infer import modelfile, stft
from seofp_lab.infer.header import FCNHeader, LSTMHeader
from seofp_lab.infer.kernels import IntaddLayout, Kernel
from seofp_lab.infer.streaming import Stream


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
        if intadd_layout == "auto":  # matrices and conv kernels are the packed tensors
            weights = sum(t.values.size for t in model.tensors.values() if t.values.ndim >= 2)
            intadd_layout = "addends" if 2 * weights <= K.ADDENDS_MAX_BYTES else "codes"
        self.intadd_layout: IntaddLayout = intadd_layout
        spec = model.spec  # checked by modelfile.read: every field is honoured
        self.name = spec.model
        self.clamps = 0  # activations clamped by intadd's overflow guard, summed over calls
        self._used: set[str] = set()
        if isinstance(spec, LSTMHeader):
            self._init_lstm(spec)
        else:
            self._init_fcn(spec)
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

    def _matrix(self, name: str, shape: tuple[int, int]) -> K.PackedLayer:
        return self._pack(name, self._tensor(name, shape))

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
                             self._matrix(f"lstm.weight_hh_{sfx}", (4 * h, h)),
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

    def _pack(self, name: str, w: np.ndarray) -> K.PackedLayer:
        try:
            layout = self.intadd_layout  # "nibbles": where the layer's window allows
            if (self.kernel == "intadd" and layout == "nibbles"
                    and K.exponent_span(w) > K.NIBBLE_SPAN):
                layout = "codes"
            return K.pack_layer(np.ascontiguousarray(w), self.kernel, layout)
        except K.KernelError as exc:
            raise K.KernelError(f"{self.where}: tensor {name!r}: {exc}") from None

    # --------------------------------------------------------------------------- inference
    def enhance(self, wave: np.ndarray) -> np.ndarray:
        """Enhance one utterance: ``(time,)`` float32 -> ``(time,)`` float32."""
        x = np.asarray(wave)
        if x.dtype != np.float32 or x.ndim != 1 or not np.isfinite(x).all():
            raise K.KernelError(f"Expected a finite float32 (time,) waveform but got {x.dtype} "
                                f"{x.shape}")
        if self.name == "fcn":
            return self._fcn(x)
        spec = stft.stft(x, self.n_fft, self.hop)
        return stft.istft(self.spectral(spec), x.size, self.n_fft, self.hop)

    def spectral(self, spec: np.ndarray,
                 state: np.ndarray | list[np.ndarray] | None = None) -> np.ndarray:
        """The LSTM family's mapping on STFT frames ``(frames, bins)`` complex -> same.

        ``state`` (unidirectional only), updated in place so consecutive calls continue one
        utterance (streaming): a ``(2 * layers, hidden)`` float32 array (h then c per layer,
        ``self.stack.new_state()``) or a list of those rows as separate arrays.
        """
        feats = (stft.lps(spec, self.lps_eps) - self.mean) / self.std
        frames = feats.shape[0]
        x = np.ascontiguousarray(feats, np.float32)
        if self.stack is not None:
            x = self._stack(x, state)
        for li, dirs in enumerate(self.cells if self.stack is None else []):
            out = np.empty((frames, self.hidden * self.dirs), np.float32)
            for d, (wih, whh, b) in enumerate(dirs):
                if state is None:
                    h = np.zeros(self.hidden, np.float32)
                    c = np.zeros(self.hidden, np.float32)
                else:
                    h, c = state[2 * li], state[2 * li + 1]
                self.clamps += K.lstm_direction(wih, whh, b, x, h, c, out, col=d * self.hidden,
                                                reverse=d == 1)
            x = out
        if self.fc is not None:
            x, n = K.linear(self.fc[0], self.fc[1], x, "relu")
            self.clamps += n
        act = "sigmoid" if self.target == "mask" else "none"
        y, n = K.linear(self.out[0], self.out[1], x, act)
        self.clamps += n
        if self.target == "mask":
            gain = self.mask_floor + self.mask_scale * y  # in [mask_floor, 1]
            mag = np.abs(spec)  # once, for the mask and for the phase
            return stft.with_phase(gain * mag, spec, mag)
        return stft.with_phase(stft.lps_to_magnitude(y * self.std + self.mean, self.lps_eps), spec)

    def _stack(self, x: np.ndarray, state: np.ndarray | list[np.ndarray] | None) -> np.ndarray:
        """The unidirectional stack in one C call: ``(frames, bins)`` -> ``(frames, hidden)``."""
        assert self.stack is not None
        packed = state if isinstance(state, np.ndarray) else self.stack.new_state()
        if isinstance(state, list):
            packed[:] = np.stack(state)
        y, n = self.stack.run(x, packed)
        self.clamps += n
        if isinstance(state, list):
            for row, v in zip(packed, state, strict=True):
                v[...] = row
        return y

    def _fcn(self, x: np.ndarray) -> np.ndarray:
        h = x[None, :]
        for i, (conv, bias, bn) in enumerate(self.convs):
            h, n = K.conv1d(conv, bias, h, self.ksize)
            self.clamps += n
            last = i == len(self.convs) - 1
            K.channel_norm_act_(h, bn, self.eps, "tanh" if last else "leaky_relu", self.slope)
        return h[0]

    def stream(self) -> Stream:
        """A streaming session (unidirectional LSTM): ``push(chunk)`` / ``flush()``."""
        return Stream(self)


def load(path: str | Path, kernel: Kernel = "intadd",
         intadd_layout: IntaddLayout = "auto") -> Engine:
    """Read and validate a ``.seofp`` file and build an :class:`Engine` on ``kernel``.

    ``intadd_layout``: "auto" (by model size), "addends" (16-bit), "codes" (1 byte per weight) or
    "nibbles" (4 bits where a layer's window holds <= 7 exponents, else 1 byte).
    """
    return Engine(modelfile.load(path), kernel, str(path), intadd_layout)
