"""(B)LSTM spectral mapping (Erdogan et al. 2015; docs/method.md#models): LPS in, LPS or a bounded
mask out.

The paper's parameter count needs one bias per gate, while ``nn.LSTM`` keeps two (b_ih and b_hh)
whose sum is not a power of two after rounding. :class:`SingleBiasLSTM` keeps ``nn.LSTM``'s fast
kernels and turns every ``bias_hh_*`` into a zero buffer, so the only gate bias is ``bias_ih_*``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seofp_lab.data import features


class SingleBiasLSTM(nn.LSTM):
    """``nn.LSTM`` (batch_first) with a single bias per gate: ``bias_hh_*`` are fixed zeros."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=True,
            batch_first=True,
            bidirectional=bidirectional,
        )
        for name in [n for n in self._flat_weights_names if n.startswith("bias_hh")]:
            zeros = torch.zeros_like(getattr(self, name))
            delattr(self, name)
            self.register_buffer(name, zeros, persistent=False)  # not a stored value
        with torch.no_grad():
            for name in self._flat_weights_names:
                if name.startswith("bias_ih"):
                    b = getattr(self, name)
                    b.zero_()
                    b[hidden_size : 2 * hidden_size] = 1.0  # forget gate open at start
        self._init_flat_weights()


class LSTMEnhancer(nn.Module):
    """Noisy waveform ``(batch, time)`` -> enhanced waveform ``(batch, time)``.

    Features: 512-point STFT -> LPS (257 bins) -> per-bin standardisation by the buffers
    ``feat_mean``/``feat_std`` (set from training data with :meth:`set_feature_stats`) -> LSTM
    layers -> optional FC + ReLU -> FC to 257. ``target="lps"`` predicts the standardised clean
    LPS (the paper); ``target="mask"`` predicts a magnitude mask in ``[mask_floor, 1]`` (sigmoid).
    The noisy phase is reused.
    """

    def __init__(
        self,
        hidden: int = 257,
        layers: int = 2,
        bidirectional: bool = True,
        fc: int = 300,
        target: Literal["lps", "mask"] = "lps",
        n_fft: int = 512,
        hop: int = 256,
        mask_floor: float = 0.0,
    ) -> None:
        super().__init__()
        if target not in ("lps", "mask"):
            raise ValueError(f"Expected target 'lps' or 'mask' but got {target!r}")
        if not 0.0 <= mask_floor < 1.0:
            raise ValueError(f"Expected mask_floor in [0, 1) but got {mask_floor}")
        self.n_fft, self.hop, self.target, self.mask_floor = n_fft, hop, target, mask_floor
        self.bidirectional = bidirectional
        bins = n_fft // 2 + 1
        self.register_buffer("feat_mean", torch.zeros(bins))
        self.register_buffer("feat_std", torch.ones(bins))
        self.lstm = SingleBiasLSTM(bins, hidden, layers, bidirectional=bidirectional)
        width = hidden * (2 if bidirectional else 1)
        self.fc = nn.Linear(width, fc) if fc > 0 else None
        self.out = nn.Linear(fc if fc > 0 else width, bins)

    @torch.no_grad()
    def set_feature_stats(self, mean: Tensor, std: Tensor) -> None:
        """Per-bin mean and standard deviation of the noisy LPS of the training data."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-3))

    def noisy_lps(self, noisy: Tensor) -> tuple[Tensor, Tensor]:
        """(complex spectrum, LPS), each ``(batch, frames, bins)``."""
        spec = features.stft(noisy, self.n_fft, self.hop)
        return spec, features.lps(spec)

    def network(self, lps_values: Tensor) -> Tensor:
        """The trainable mapping on features: ``(batch, frames, bins)`` -> same shape."""
        h, _ = self.lstm((lps_values - self.feat_mean) / self.feat_std)
        if self.fc is not None:
            h = torch.relu(self.fc(h))
        y = self.out(h)
        if self.target == "mask":
            return self.mask_floor + (1.0 - self.mask_floor) * torch.sigmoid(y)
        return y

    def forward(self, noisy: Tensor) -> Tensor:
        spec, noisy_lps = self.noisy_lps(noisy)
        y = self.network(noisy_lps)
        if self.target == "mask":
            enhanced = features.with_phase(y * spec.abs(), spec)
            return features.istft(enhanced, noisy.shape[-1], self.n_fft, self.hop)
        clean_lps = y * self.feat_std + self.feat_mean
        return features.reconstruct(clean_lps, spec, noisy.shape[-1], self.n_fft, self.hop)

    def training_pair(self, noisy: Tensor, clean: Tensor) -> tuple[Tensor, Tensor]:
        """(prediction, target) in the loss domain: standardised LPS, or compressed magnitude."""
        spec, noisy_lps = self.noisy_lps(noisy)
        clean_spec = features.stft(clean, self.n_fft, self.hop)
        y = self.network(noisy_lps)
        if self.target == "mask":  # power-law compressed magnitudes (exponent 0.3)
            return (y * spec.abs() + 1e-8) ** 0.3, (clean_spec.abs() + 1e-8) ** 0.3
        return y, (features.lps(clean_spec) - self.feat_mean) / self.feat_std
