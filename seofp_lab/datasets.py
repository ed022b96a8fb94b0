"""Training corpora and fixed test sets as MLflow dataset inputs of runs (docs/mlflow.md#datasets).

A training run logs its corpus's training part (context ``training``); every evaluation logs the
test set it scored (context ``evaluation``). Each is an ``mlflow.data`` dataset with a name
(``<corpus>-train``, ``<label>-test``), a digest, a source (the folder it was read from) and a
profile of counts, so the UI's Datasets column and each run's lineage say what a number was
measured on. Nothing is copied: the dataset is its metadata.

The test set's digest is the start of its ``manifest.csv`` sha256 (the hash ``testset.json``
records and every reuse verifies), so two runs with the same digest were scored on the same
files. The training digest hashes the corpus content (its manifest where it has one, else its
root) and the corpus config that shapes the training mixtures.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seofp_lab.config import CorpusConfig
    from seofp_lab.data.corpus import Corpus
    from seofp_lab.data.testset import TestSet

DIGEST_CHARS = 16  # MLflow stores at most 36
CONTEXT_TRAINING = "training"
CONTEXT_EVALUATION = "evaluation"
TAG_SPLIT = "seofp.split"  # on the dataset input: train or test


def _dataset(name: str, digest: str, source: str, profile: dict[str, Any]):  # noqa: ANN202
    from mlflow.data.dataset_source_registry import resolve_dataset_source  # noqa: PLC0415
    from mlflow.data.meta_dataset import MetaDataset  # noqa: PLC0415

    class CountedDataset(MetaDataset):
        """A metadata-only dataset that carries a profile (counts) for the UI."""

        @property
        def profile(self) -> dict[str, Any]:
            return profile

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(profile)}

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": two local sources
        warnings.simplefilter("ignore", UserWarning)
        src = resolve_dataset_source(source)  # a folder: MLflow's "local" source with its URI
    return CountedDataset(src, name=name, digest=digest)


def _corpus_source(cfg: CorpusConfig) -> str:
    if cfg.root is not None:
        return str(Path(cfg.root).expanduser().resolve())
    if cfg.kind in ("embedded", "lab"):
        from seofp_lab.data.loaders.embedded import default_root  # noqa: PLC0415

        return str(default_root(cfg.kind))
    return cfg.kind


def training_dataset(cfg: CorpusConfig, corpus: Corpus):  # noqa: ANN201 - mlflow Dataset
    """The training part of ``corpus`` (config ``cfg``) as an ``mlflow.data`` dataset."""
    from seofp_lab.data.testset import testset_key  # noqa: PLC0415

    shaping = cfg.model_dump(mode="json")
    blob = json.dumps({"content": testset_key(cfg)["content"], "config": shaping}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:DIGEST_CHARS]
    profile = {
        "split": "train",
        "corpus": cfg.name,
        "kind": cfg.kind,
        "utterances": len(corpus.utterances("train")),
        "talkers": len(corpus.speakers("train")),
        "validation_utterances": len(corpus.utterances("valid")),
        "pairs": len(corpus.pairs("train")) if corpus.paired else 0,
        "noise_types": corpus.noise_types("train"),
        "snrs_db": list(cfg.train_snrs),
        "mixtures_per_epoch": cfg.mixtures_per_epoch,
        "segment_seconds": cfg.segment_seconds,
    }
    return _dataset(f"{cfg.name}-train", digest, _corpus_source(cfg), profile)


def testset_dataset(test_set: TestSet, label: str):  # noqa: ANN201 - mlflow Dataset
    """The fixed test set ``test_set`` (scored under ``label``) as an ``mlflow.data`` dataset."""
    meta_path = test_set.root / "testset.json"
    try:
        meta = json.loads(meta_path.read_text())
        manifest_sha = str(meta["manifest_sha256"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"Expected {meta_path} with a manifest_sha256 field (written with the "
                         f"test set) but could not read it: {exc}") from None
    items = test_set.items
    profile = {
        "split": "test",
        "corpus": label,
        "testset": test_set.root.name,
        "manifest_sha256": manifest_sha,
        "mixtures": len(items),
        "utterances": len({i.utterance for i in items}),
        "talkers": len({i.speaker for i in items}),
        "noise_clips": len({i.noise_clip for i in items}),
        "noise_types": sorted({i.noise for i in items}),
        "snrs_db": test_set.snrs,
    }
    return _dataset(f"{label}-test", manifest_sha[:DIGEST_CHARS], str(test_set.root), profile)


def _log(dataset: Any, context: str, split: str) -> None:
    """Log ``dataset`` as an input of the active run, or of the run a ``tracking.resume_run``
    block is adding to (never a fluent call there: with no active run it would open a new one)."""
    from seofp_lab import tracking  # noqa: PLC0415

    staged = tracking._RESUMED.get()
    if staged is None:
        tracking._mlflow().log_input(dataset, context=context, tags={TAG_SPLIT: split})
        return
    from mlflow.tracking.fluent import _create_dataset_input  # noqa: PLC0415

    entry = _create_dataset_input(dataset, context, {TAG_SPLIT: split})
    tracking.client().log_inputs(run_id=staged.run_id, datasets=[entry])


def log_training_input(cfg: CorpusConfig, corpus: Corpus) -> None:
    """Log the training corpus as an input of the active run (context ``training``)."""
    _log(training_dataset(cfg, corpus), CONTEXT_TRAINING, "train")


def log_test_input(test_set: TestSet, label: str) -> None:
    """Log a scored test set as an input of the active run (context ``evaluation``)."""
    _log(testset_dataset(test_set, label), CONTEXT_EVALUATION, "test")


def run_inputs(run_id: str) -> list[dict[str, Any]]:
    """A run's dataset inputs: name, digest, source, context and profile (tests, reports)."""
    from seofp_lab import tracking  # noqa: PLC0415

    out = []
    for ds_input in tracking.get_run(run_id).inputs.dataset_inputs:
        ds = ds_input.dataset
        tags = {t.key: t.value for t in ds_input.tags}
        out.append({
            "name": ds.name,
            "digest": ds.digest,
            "source": json.loads(ds.source).get("uri", ds.source) if ds.source else "",
            "context": tags.get("mlflow.data.context"),
            "split": tags.get(TAG_SPLIT),
            "profile": json.loads(ds.profile) if ds.profile else {},
        })
    return out
