"""MixtureDataModule: seeded on-the-fly training mixtures, fixed validation, and its speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from _data_trees import make_embedded_tree

from seofp_lab.config import CorpusConfig
from seofp_lab.data.datamodule import MixtureDataModule
from seofp_lab.data.loaders import load_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SEOFP_WORKSPACE", str(tmp_path_factory.mktemp("ws")))
    yield load_corpus(CorpusConfig(root=make_embedded_tree(tmp_path_factory.mktemp("emb"))))
    mp.undo()


def _dm(corpus, **kw) -> MixtureDataModule:
    args = dict(train_snrs=[0.0, 5.0], segment_seconds=1.0, mixtures_per_epoch=12,
                valid_mixtures=5, batch_size=4, seed=3, train_noises=["machine", "white", "ssn"])
    args.update(kw)
    dm = MixtureDataModule(corpus, **args)
    dm.setup("fit")
    return dm


def test_batches_have_the_promised_shape(corpus) -> None:
    dm = _dm(corpus)
    noisy, clean = next(iter(dm.train_dataloader()))
    assert noisy.shape == clean.shape == (4, 16000) and noisy.dtype == torch.float32
    assert torch.isfinite(noisy).all() and (noisy - clean).abs().sum() > 0
    assert noisy.abs().max() <= 10 ** (-1 / 20)
    vn, vc = next(iter(dm.val_dataloader()))
    assert vn.shape == (4, 16000) and len(dm.val_dataloader().dataset) == 5


def test_seeded_by_epoch_and_index(corpus) -> None:
    a, b = _dm(corpus), _dm(corpus)
    first = torch.cat([x for x, _ in a.train_dataloader()])
    assert torch.equal(first, torch.cat([x for x, _ in b.train_dataloader()]))
    a.sampler.set_epoch(1)
    assert not torch.equal(first, torch.cat([x for x, _ in a.train_dataloader()]))
    assert torch.equal(a.val_dataloader().dataset.tensors[0], b.val_dataloader().dataset.tensors[0])


def test_short_utterances_are_zero_padded_at_the_end(corpus) -> None:
    dm = _dm(corpus, segment_seconds=4.0)  # every generated clip is shorter than 4 s
    _, clean = dm.draw(np.random.default_rng(0), "train")
    assert clean.shape == (64000,) and np.all(clean[-8000:] == 0) and np.any(clean[:8000] != 0)


def test_crop_snr_is_close_to_the_target(corpus) -> None:
    from seofp_lab.data.mix import measured_snr_db

    dm = _dm(corpus, train_snrs=[5.0], segment_seconds=1.0)
    errors = []
    for seed in range(20):
        noisy, clean = dm.draw(np.random.default_rng(seed), "train")
        errors.append(measured_snr_db(clean, noisy - clean) - 5.0)
    assert abs(np.median(errors)) < 1.0


def test_mixing_is_fast(corpus) -> None:
    dm = _dm(corpus, segment_seconds=2.0, train_noises=None)
    ds = dm.train_dataloader().dataset
    for i in range(20):
        ds[(0, i)]
    t = time.perf_counter()
    for i in range(200):
        ds[(0, i)]
    per_item_ms = (time.perf_counter() - t) / 200 * 1e3
    assert per_item_ms < 2.0, f"{per_item_ms:.2f} ms per 2-s mixture"
