"""Overrides that shrink any experiment to a seconds-long training run on the embedded corpus
(a 1-layer, 8-unit LSTM on eight 1-s mixtures per epoch), shared by the end-to-end tests."""

TINY_TRAINING = (
    "model.hidden=8",
    "model.layers=1",
    "train.max_minutes=null",
    "train.batch_size=4",
    "train.threads=1",
    "corpus.mixtures_per_epoch=8",
    "corpus.valid_mixtures=4",
    "corpus.segment_seconds=1.0",
)
