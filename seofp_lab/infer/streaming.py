"""Streaming enhancement for the unidirectional LSTM: hop-sized chunks in, samples out.

A frame is computed as soon as its last input sample has arrived, with the LSTM state carried
from frame to frame; an output sample is emitted once no later frame overlaps it. The
concatenated output equals ``Engine.enhance`` on the whole signal (same frames, same state, same
overlap-add order, and the same ``Engine.spectral``: the file's mask floor and features included).
Latency: ``n_fft`` samples (32 ms at 16 kHz with the 512-point STFT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from seofp_lab.infer import stft
from seofp_lab.infer.kernels import KernelError

if TYPE_CHECKING:
    from seofp_lab.infer.engine import Engine


class Stream:
    """One streaming session: ``push(chunk)`` any number of times, then ``flush()`` once."""

    def __init__(self, engine: Engine) -> None:
        if engine.name != "lstm":
            raise KernelError(f"Expected a unidirectional 'lstm' model for streaming but got "
                              f"{engine.name!r} (it needs the whole utterance)")
        self.engine, self.n_fft, self.hop = engine, engine.n_fft, engine.hop
        self.pad = engine.n_fft // 2
        self.state = engine.stack.new_state()  # h, c per layer, carried by C in place
        self.raw: list[np.ndarray] = []  # samples before the left reflect pad can be made
        self.received = 0
        self.padded: np.ndarray | None = None  # padded signal from padded index `base`
        self.base = 0
        self.next_frame = 0
        self.acc = np.zeros(0)  # overlap-add sums and window envelope from padded index `emit`
        self.env = np.zeros(0)
        self.emit = 0
        self.done = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples ``(n,)`` float32; returns the enhanced samples that are final now."""
        if self.done:
            raise KernelError("Expected push() before flush() but the stream is flushed")
        x = np.asarray(chunk)
        if x.dtype != np.float32 or x.ndim != 1 or not np.isfinite(x).all():
            raise KernelError(f"Expected a finite float32 (n,) chunk but got {x.dtype} {x.shape}")
        self.received += x.size
        if self.padded is None:
            self.raw.append(x)
            if self.received <= self.pad:
                return np.zeros(0, np.float32)
            head = np.concatenate(self.raw)
            self.padded = np.concatenate([head[1:self.pad + 1][::-1], head])
            self.raw = []
        else:
            self.padded = np.concatenate([self.padded, x])
        ready = (self.pad + self.received - self.n_fft) // self.hop + 1
        return self._run(max(ready, self.next_frame))

    def flush(self) -> np.ndarray:
        """End of input: the right reflect pad, the last frames and every remaining sample."""
        if self.done:
            raise KernelError("Expected one flush() but the stream is already flushed")
        self.done = True
        if self.padded is None or self.received <= self.pad:
            raise KernelError(f"Expected more than {self.pad} samples but got {self.received}")
        last = self.pad + self.received - 1 - self.base  # x[L-1] in the kept buffer
        self.padded = np.concatenate([self.padded, self.padded[last - 1 - np.arange(self.pad)]])
        out = self._run(stft.frame_count(self.received, self.hop))
        lo = max(self.pad - self.emit, 0)  # istft keeps padded [pad, pad + length)
        rest = np.zeros(self.pad + self.received - self.emit - lo)
        seg, env = self.acc[lo:lo + rest.size], self.env[lo:lo + rest.size]
        rest[: seg.size] = seg / np.where(env > 1e-11, env, 1.0)
        return np.concatenate([out, rest.astype(np.float32)])

    def _run(self, upto: int) -> np.ndarray:
        """Compute frames [next_frame, upto), overlap-add them, emit the final samples."""
        n_new = upto - self.next_frame
        if n_new > 0:
            start = self.next_frame * self.hop - self.base
            seg = self.padded[start:start + (n_new - 1) * self.hop + self.n_fft]
            spec = stft.frames_to_spec(seg, n_new, self.n_fft, self.hop)
            sig = stft.frame_signals(self.engine.spectral(spec, self.state), self.n_fft)
            end = upto * self.hop - self.hop + self.n_fft - self.emit
            if end > self.acc.size:
                self.acc = np.concatenate([self.acc, np.zeros(end - self.acc.size)])
                self.env = np.concatenate([self.env, np.zeros(end - self.env.size)])
            win2 = stft.hann_squared(self.n_fft)
            for i in range(n_new):  # frame order, as the offline istft
                at = (self.next_frame + i) * self.hop - self.emit
                self.acc[at:at + self.n_fft] += sig[i]
                self.env[at:at + self.n_fft] += win2
            self.next_frame = upto
            # drop consumed input, keeping n_fft samples for the right reflect pad of flush()
            keep = max(self.next_frame * self.hop - self.n_fft - self.base, 0)
            self.padded, self.base = self.padded[keep:], self.base + keep
        if self.done:
            return np.zeros(0, np.float32)
        final = self.next_frame * self.hop  # no later frame reaches below this padded index
        n = final - self.emit
        if n <= 0:
            return np.zeros(0, np.float32)
        acc, env = self.acc[:n], self.env[:n]
        y = acc / np.where(env > 1e-11, env, 1.0)
        skip = max(self.pad - self.emit, 0)  # the left pad is not output
        self.acc, self.env, self.emit = self.acc[n:], self.env[n:], final
        return y[skip:].astype(np.float32)
