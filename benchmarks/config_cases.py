"""Hostile config values and command lines: how many end in a traceback, how many are accepted
that should be refused, and how many leave an MLflow run behind.

Every case runs ``seofp`` in this process (``seofp_lab.cli.main``) on a fresh workspace with the
tiny-training overrides of the test suite, so a wrongly accepted value costs a few seconds of
training instead of hours. A case is *handled* when the command refuses it with exit status 2
and one message without a traceback (argparse's own refusals included).

    OMP_NUM_THREADS=1 python benchmarks/config_cases.py            # ~1 min
    OMP_NUM_THREADS=1 python benchmarks/config_cases.py --verbose  # every message
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tiny import TINY_TRAINING  # noqa: E402

EXP = str(ROOT / "configs" / "experiment" / "demo_baseline.yaml")
TINY = [*TINY_TRAINING, "train.max_epochs=1", "evaluation.audio_examples=0",
        "tracking.experiment=cases"]

# values that must be refused (section.key=value), issue 14 item 5 first
BAD_VALUES = [
    "train.max_minutes=.inf", "train.max_minutes=1e300", "train.max_minutes=-1",
    "train.max_minutes=0", "train.max_minutes=.nan",
    "corpus.segment_seconds=.inf", "corpus.segment_seconds=1e12", "corpus.segment_seconds=0",
    "corpus.segment_seconds=-2", "corpus.segment_seconds=.nan",
    "train.lr=.inf", "train.lr=1e38", "train.lr=0", "train.lr=-1e-3", "train.lr=.nan",
    "train.lr=abc", "train.accelerator=gpu", "train.accelerator=tpu", "train.devices=0",
    "train.devices=-1", "train.devices=two", "train.strategy=bogus", "train.strategy=''",
    "tracking.experiment=''", "tracking.experiment='   '", "tracking.experiment=null",
    "train.max_epochs=0", "train.max_epochs=-3", "train.max_epochs=1.5", "train.max_epochs=.inf",
    "train.max_steps=0", "train.batch_size=0", "train.batch_size=-4", "train.weight_decay=-1",
    "train.weight_decay=.inf", "train.gradient_clip=0", "train.gradient_clip=.inf",
    "train.num_workers=-1", "train.threads=0", "train.loss=l1", "train.seed=x",
    "corpus.train_snrs=[]", "corpus.train_snrs=[1e9]", "corpus.test_snrs=[.nan]",
    "corpus.valid_mixtures=0", "corpus.mixtures_per_epoch=0", "corpus.kind=nope",
    "corpus.kind=folder", "corpus.test_mixtures_per_utterance=0",
    "model.hidden=0", "model.layers=0", "model.fc=-1", "model.mask_floor=1",
    "model.mask_floor=.nan", "model.stft.n_fft=8", "model.stft.hop=0", "model.stft.hop=4096",
    "model.name=transformer", "compression.format=s1e9", "compression.format=fp16",
    "compression.fraction_bits=24", "compression.pruning.sparsity=1",
    "compression.pruning.sparsity=.nan", "compression.weight_sharing.clusters=1",
    "compression.mode=fast", "compression.init_from=no-such-run",
    "evaluation.max_utterances=0", "evaluation.workers=0", "evaluation.metrics=[mos]",
    "evaluation.audio_examples=-1", "unknown.key=1", "train.unknown=1", "train=nope",
    "train.max_epochs", "=3",
]
# whole command lines that must be refused
BAD_COMMANDS = [
    ["train", "no/such/config.yaml"],
    ["evaluate", "0123456789abcdef0123456789abcdef"],
    ["evaluate", "RUN", "--max-utterances", "-1"],
    ["evaluate", "RUN", "--max-utterances", "0"],
    ["evaluate", "RUN", "--max-utterances", "many"],
    ["evaluate", "RUN", "--workers", "x"],
    ["evaluate", "RUN", "--metrics", "mos"],
    ["evaluate", "RUN", "--engine", "gpu"],
    ["evaluate", "RUN", "--corpus-name", "x"],
    ["evaluate", "RUN", "--corpus", "nosuchcorpus"],
    ["export", "0123456789abcdef"],
    ["evaluate", ""],
    ["report", "0123456789abcdef"],
    ["train", "--resume", "0123456789abcdef"],
]


def _run(argv: list[str]) -> tuple[str, str]:
    """(outcome, message): handled | traceback | accepted."""
    from seofp_lab.cli import main  # noqa: PLC0415

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    except Exception:  # noqa: BLE001 - what the user would see as a traceback
        return "traceback", traceback.format_exc(limit=-1).strip().splitlines()[-1]
    text = err.getvalue().strip()
    if code == 0:
        return "accepted", text.splitlines()[-1] if text else ""
    if "Traceback" in text:
        return "traceback", text.splitlines()[-1]
    return "handled", " ".join(text.split())[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["SEOFP_WORKSPACE"] = tempfile.mkdtemp(prefix="seofp-cases-")
    from seofp_lab import tracking  # noqa: PLC0415

    # one real run for the command-line cases that name one
    assert _run(["train", EXP, *TINY, "tracking.experiment=good", "--no-progress"])[0] == \
        "accepted"
    good = tracking.find_runs("good")[0].info.run_id
    cases = [["train", EXP, *TINY, v, "--no-progress"] for v in BAD_VALUES]
    cases += [[good if a == "RUN" else a for a in c] for c in BAD_COMMANDS]
    counts = {"handled": 0, "traceback": 0, "accepted": 0}
    for argv in cases:
        outcome, message = _run(argv)
        counts[outcome] += 1
        shown = argv[-2] if argv[-1] == "--no-progress" else " ".join(argv)
        if args.verbose or outcome != "handled":
            print(f"{outcome:9s}  {shown:45s}  {message}")
    left = [r for r in tracking.find_runs("cases")]
    print(f"\n{len(cases)} cases: {counts['handled']} refused cleanly, "
          f"{counts['traceback']} tracebacks, {counts['accepted']} wrongly accepted; "
          f"runs left behind by refused cases: {len(left)}")
    return 0 if counts["handled"] == len(cases) and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
