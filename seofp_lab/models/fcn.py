"""FCN waveform mapping (Fu et al., TASLP 2018; docs/method.md#models): utterance in, utterance out.

``layers`` hidden Conv1d layers of ``channels`` filters with "same" zero padding, each followed by
BatchNorm1d and LeakyReLU, then one output Conv1d with a single filter and tanh. The default is the
papers' FCN-10: 450,301 stored values (BatchNorm counted with its running statistics). BatchNorm is
kept separate from the convolutions: folding it would destroy the power-of-two weights.
"""

from __future__ import annotations

from torch import Tensor, nn


class FCNEnhancer(nn.Module):
    """Noisy waveform ``(batch, time)`` -> enhanced waveform ``(batch, time)``."""

    def __init__(
        self, layers: int = 10, channels: int = 30, kernel: int = 55, norm: str = "batch"
    ) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"Expected an odd kernel for 'same' padding but got {kernel}")
        blocks: list[nn.Module] = []
        width = 1
        for _ in range(layers):
            blocks.append(nn.Conv1d(width, channels, kernel, padding=kernel // 2))
            if norm == "batch":
                blocks.append(nn.BatchNorm1d(channels))
            blocks.append(nn.LeakyReLU(0.2))
            width = channels
        blocks.append(nn.Conv1d(width, 1, kernel, padding=kernel // 2))
        blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, noisy: Tensor) -> Tensor:
        return self.net(noisy.unsqueeze(1)).squeeze(1)

    def training_pair(self, noisy: Tensor, clean: Tensor) -> tuple[Tensor, Tensor]:
        """(prediction, target): waveform mapping, MSE on the waveform."""
        return self(noisy), clean
