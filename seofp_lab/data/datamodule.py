"""On-the-fly training mixtures and a fixed validation set, as a LightningDataModule
(docs/data.md#training-and-validation-mixtures).

Training: each item is drawn by its own generator, seeded by (seed, epoch, index). The index is
global, so the same mixtures come out whatever ``num_workers`` is; the epoch reaches the items
through the sampler, whose ``set_epoch`` Lightning calls before every epoch. An item picks an
utterance, a crop of ``segment_seconds`` (utterances shorter than that are zero-padded at the end:
the clean target is then silent where the noise goes on), a noise type, clip and offset, and an
SNR, all uniformly. Paired corpora crop a random (clean, noisy) pair instead.

Speed: speech is level-normalised once per utterance and noise clips are made periodic once
(:func:`~seofp_lab.data.mix.loop_unit`), so a mixture costs a few slices and dot products. The
SNR of a crop uses its own active power, estimated from precomputed 10 ms frame powers with the
utterance's P.56 threshold (running P.56 on every crop would cost more than the mixing).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from seofp_lab.data.audio import FS
from seofp_lab.data.corpus import AUDIO_CACHE, Corpus, Utterance
from seofp_lab.data.level import MARGIN_DB, active_level_db
from seofp_lab.data.mix import loop_unit, noise_gain, protection_gain, segment

TARGET_DB = -26.0
FRAME = 160  # 10 ms frames for the crop's active power
EAGER_LIMIT = 2000  # utterances prepared in setup(); a bigger corpus is prepared lazily


class _Speech:
    """One utterance at -26 dBov with its 10 ms frame powers and activity threshold."""

    __slots__ = ("x", "frame_power", "threshold", "power")

    def __init__(self, utt: Utterance) -> None:
        x = utt.load()
        level = active_level_db(x)
        self.x = (x * np.float32(10 ** ((TARGET_DB - level) / 20))).astype(np.float32)
        n = self.x.size // FRAME * FRAME
        self.frame_power = np.square(self.x[:n].astype(np.float64)).reshape(-1, FRAME).mean(1)
        self.power = 10 ** (TARGET_DB / 10)
        self.threshold = self.power * 10 ** (-MARGIN_DB / 10)

    def crop_power(self, start: int, length: int) -> float:
        """Active power of ``x[start:start+length]``: the mean power of its active frames."""
        fp = self.frame_power[start // FRAME : (start + length) // FRAME]
        active = fp[fp >= self.threshold]
        return float(active.mean()) if active.size else self.power


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, index) keys in order; Lightning's ``set_epoch`` moves to the next epoch."""

    def __init__(self, length: int) -> None:
        self.length, self.epoch = length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in range(self.length))


class MixtureDataset(Dataset):
    """Training mixtures made on demand; ``ds[(epoch, index)]`` -> (noisy, clean) (segment,)."""

    def __init__(self, dm: MixtureDataModule) -> None:
        self.dm = dm

    def __len__(self) -> int:
        return self.dm.mixtures_per_epoch

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.dm.seed, zlib.crc32(b"train"), epoch, index])
        noisy, clean = self.dm.draw(rng, "train")
        return torch.from_numpy(noisy), torch.from_numpy(clean)


class MixtureDataModule(L.LightningDataModule):
    """Training mixtures on the fly, validation mixtures fixed by the seed.

    Batches are ``(noisy, clean)`` float32 tensors of shape (batch, segment samples).
    """

    def __init__(self, corpus: Corpus, *, train_snrs: list[float], segment_seconds: float,
                 mixtures_per_epoch: int, valid_mixtures: int, batch_size: int,
                 num_workers: int = 0, seed: int = 0, train_noises: list[str] | None = None
                 ) -> None:
        super().__init__()
        if not train_snrs:
            raise ValueError("Expected at least one training SNR but got []")
        corpus.require_training()  # a test-only corpus (evaluation only) names what is missing
        self.corpus, self.train_snrs = corpus, [float(s) for s in train_snrs]
        self.segment = int(round(segment_seconds * FS))
        self.mixtures_per_epoch, self.valid_mixtures = mixtures_per_epoch, valid_mixtures
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.paired = corpus.paired and bool(corpus.pairs("train"))
        self.noise_types = (list(train_noises) if train_noises is not None
                            else corpus.noise_types("train"))
        if train_noises is not None and not self.paired:
            corpus.check_noise_types("train", self.noise_types)
        self._ready = False
        self._speech: dict[str, list] = {}
        self._units: dict[tuple[str, str | None], list[np.ndarray]] = {}
        self._val: TensorDataset | None = None
        self.sampler = EpochSampler(mixtures_per_epoch)

    # ---------------------------------------------------------------------------- material
    def setup(self, stage: str | None = None) -> None:
        """Prepare speech and noise once (idempotent: Lightning calls it again)."""
        if self._ready:
            return
        if self.paired:
            self._speech = {s: self.corpus.pairs(s) for s in ("train", "valid")}
        else:
            for split in ("train", "valid"):
                utts = self.corpus.utterances(split)
                if not utts:
                    raise ValueError(f"Expected {split} utterances in corpus "
                                     f"{self.corpus.name!r} but got none")
                eager = len(utts) <= EAGER_LIMIT
                self._speech[split] = [_Speech(u) if eager else u for u in utts]
            speakers = sorted({u.speaker for s in ("train", "valid")
                               for u in self.corpus.utterances(s)})
            for t in self.noise_types:
                for spk in speakers if t == "babble" else [None]:
                    clips = self.corpus.noises("train", [t], exclude_speaker=spk)[t]
                    self._units[(t, spk)] = [loop_unit(c) for c in clips]
        self._ready = True
        self._val = self._make_valid()

    def _speech_item(self, split: str, i: int) -> _Speech:
        s = self._speech[split][i]
        if isinstance(s, Utterance):  # lazily prepared (big corpora)
            s = self._speech[split][i] = _Speech(s)
        return s

    def draw(self, rng: np.random.Generator, split: str) -> tuple[np.ndarray, np.ndarray]:
        """One (noisy, clean) pair of (segment,) float32 arrays drawn with ``rng``."""
        n = self.segment
        if self.paired:
            pairs = self._speech[split]
            _, clean_p, noisy_p = pairs[int(rng.integers(len(pairs)))]
            clean_x = AUDIO_CACHE.get(clean_p, None, 0.0, None)
            noisy_x = AUDIO_CACHE.get(noisy_p, None, 0.0, None)
            start = int(rng.integers(max(1, clean_x.size - n + 1)))
            clean, noisy = np.zeros(n, np.float32), np.zeros(n, np.float32)
            m = min(n, clean_x.size - start)
            clean[:m], noisy[:m] = clean_x[start : start + m], noisy_x[start : start + m]
            return noisy, clean
        utts = self._speech[split]
        idx = int(rng.integers(len(utts)))
        sp = self._speech_item(split, idx)
        start = int(rng.integers(max(1, sp.x.size - n + 1)))
        m = min(n, sp.x.size - start)
        clean = np.zeros(n, np.float32)
        clean[:m] = sp.x[start : start + m]
        t = self.noise_types[int(rng.integers(len(self.noise_types)))]
        spk = self.corpus.utterances(split)[idx].speaker if t == "babble" else None
        units = self._units[(t, spk)]
        unit = units[int(rng.integers(len(units)))]
        seg = segment(unit, n, int(rng.integers(unit.size)))
        snr = self.train_snrs[int(rng.integers(len(self.train_snrs)))]
        noisy = clean + seg * np.float32(noise_gain(sp.crop_power(start, m), seg, snr))
        g = protection_gain(noisy)
        if g != 1.0:
            noisy *= np.float32(g)
            clean *= np.float32(g)
        return noisy.astype(np.float32, copy=False), clean

    def _make_valid(self) -> TensorDataset:
        rng = np.random.default_rng([self.seed, zlib.crc32(b"valid-mixtures")])
        pairs = [self.draw(rng, "valid") for _ in range(self.valid_mixtures)]
        noisy = torch.from_numpy(np.stack([p[0] for p in pairs]))
        clean = torch.from_numpy(np.stack([p[1] for p in pairs]))
        return TensorDataset(noisy, clean)

    # ------------------------------------------------------------------------- dataloaders
    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return DataLoader(MixtureDataset(self), batch_size=self.batch_size, sampler=self.sampler,
                          num_workers=self.num_workers, drop_last=False,
                          persistent_workers=False)

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        return DataLoader(self._val, batch_size=self.batch_size, shuffle=False,
                          num_workers=0)
