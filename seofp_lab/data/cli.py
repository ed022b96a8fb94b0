"""``seofp data``: build the embedded/lab corpora, prepare a test set, inspect a corpus.

    seofp data build embedded|lab [--out DIR] [--work DIR] [--per-speaker N]
    seofp data testset CONFIG     # experiment or corpus YAML: write (once) and summarise
    seofp data info CONFIG        # speakers, utterances, noises and durations per split
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.table import Table

from seofp_lab.config import CorpusConfig, load_corpus_config
from seofp_lab.console import console as make_console


def corpus_config(path: str | Path, overrides: list[str] | None = None) -> CorpusConfig:
    """The corpus of an experiment YAML, or of a corpus-only YAML (``configs/corpus/*.yaml``).

    Overrides of a corpus-only YAML name its keys with or without ``corpus.`` (``seed=1``).
    """
    return load_corpus_config(path, overrides)


def _build(args: argparse.Namespace) -> int:
    from seofp_lab.workspace import workspace_dir  # noqa: PLC0415

    if args.which == "embedded":
        from seofp_lab.data.build_embedded import build_embedded  # noqa: PLC0415
        from seofp_lab.data.loaders.embedded import EMBEDDED_DIR  # noqa: PLC0415

        out = Path(args.out) if args.out else EMBEDDED_DIR
    else:
        from seofp_lab.data.build_lab import build_lab  # noqa: PLC0415

        out = Path(args.out) if args.out else workspace_dir() / "corpora" / "lab"
    with tempfile.TemporaryDirectory(prefix="seofp-build-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        if args.which == "embedded":
            build_embedded(out, work)
        else:
            build_lab(out, work, per_speaker=args.per_speaker)
    make_console().print(f"[green]{args.which} corpus written to {out}[/green]")
    return 0


def _testset(args: argparse.Namespace) -> int:
    from seofp_lab.data.testset import prepare_test_set  # noqa: PLC0415

    cfg = corpus_config(args.config, args.overrides)
    ts = prepare_test_set(cfg)
    table = Table(title="mixtures per noise and SNR")
    noises = sorted({n for n, _ in ts.counts()})
    snrs = sorted({s for _, s in ts.counts()}, key=lambda s: (s != s, s))
    table.add_column("noise \\ SNR (dB)")
    for s in snrs:
        table.add_column(f"{s:g}", justify="right")
    table.add_column("total", justify="right")
    counts = ts.counts()
    for n in noises:
        row = [counts.get((n, s), 0) for s in snrs]
        table.add_row(n, *map(str, row), str(sum(row)))
    console = make_console()
    console.print(f"Test set of corpus {cfg.name!r}: {len(ts.items)} mixtures", soft_wrap=True)
    console.print(f"in {ts.root} (manifest {ts.manifest_path.name})", soft_wrap=True)
    console.print(table)
    return 0


def _info(args: argparse.Namespace) -> int:
    from seofp_lab.data.audio import audio_info  # noqa: PLC0415
    from seofp_lab.data.loaders import load_corpus  # noqa: PLC0415

    cfg = corpus_config(args.config, args.overrides)
    corpus = load_corpus(cfg)
    console = make_console()
    extra = (", paired" if corpus.paired else "") + (", test only" if corpus.test_only else "")
    table = Table(title=f"Corpus {cfg.name!r} ({cfg.kind}{extra})")
    for col in ("split", "speakers", "utterances", "hours", "pairs", "noise types"):
        table.add_column(col, justify="right" if col in ("speakers", "utterances", "hours",
                                                         "pairs") else "left")
    for split in ("train", "valid", "test"):
        utts = corpus.utterances(split)
        seconds = 0.0
        for u in utts:
            i = audio_info(u.path)
            seconds += i.frames / i.samplerate
        table.add_row(split, str(len(corpus.speakers(split))), str(len(utts)),
                      f"{seconds / 3600:.3f}", str(len(corpus.pairs(split))),
                      ", ".join(corpus.noise_types(split)))
    console.print(table)
    noise = Table(title="Noise clips on disk (synthetic types are generated from the seed)")
    for col in ("split", "type", "clips", "seconds"):
        noise.add_column(col)
    for split in ("train", "test"):
        for t, refs in sorted(corpus.noise_refs(split).items()):
            secs = 0.0
            for r in refs:
                i = audio_info(r.path)
                secs += i.frames / i.samplerate * ((r.stop or 1.0) - r.start)
            noise.add_row(split, t, str(len(refs)), f"{secs:.1f}")
    console.print(noise)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="build corpora and test sets, inspect a corpus")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build the embedded (maintainers) or the lab corpus")
    b.add_argument("which", choices=["embedded", "lab"])
    b.add_argument("--out", help="output folder (default: seofp_lab/data/embedded or "
                                 "workspace/corpora/lab)")
    b.add_argument("--work", help="folder for downloaded .debs (default: a temporary one)")
    b.add_argument("--per-speaker", type=int, default=40, help="lab: utterances per talker")
    b.set_defaults(func=_build)
    for name, func, text in (("testset", _testset, "write the test set once and summarise it"),
                             ("info", _info, "speakers, utterances, noises per split")):
        s = sub.add_parser(name, help=text)
        s.add_argument("config", help="experiment YAML or corpus YAML (configs/corpus/*.yaml)")
        s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. corpus.seed=1")
        s.set_defaults(func=func)
