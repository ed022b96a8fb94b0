"""The ``seofp`` console script: maps arguments onto the library's typed functions.

Each subcommand lives in the module that owns it, as ``add_parser(subparsers)``; the module is only
imported when the command line names it, so ``seofp --help`` stays fast. Expected errors (bad
config, bad corpus, bad model file, bad study) print one clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module that defines add_parser, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("seofp_lab.demo", "train, compress, evaluate and compare on the embedded corpus"),
    "data": ("seofp_lab.data.cli", "build corpora and test sets, inspect a corpus"),
    "train": ("seofp_lab.train.cli", "train one experiment config (tracked in MLflow)"),
    "evaluate": ("seofp_lab.evaluate.cli", "enhance the test set with a run's model and score it"),
    "export": ("seofp_lab.infer.cli", "write a run's model as one .seofp file"),
    "enhance": ("seofp_lab.infer.enhance_cli", "enhance your own audio files with the C engine"),
    "bench": ("seofp_lab.infer.bench_cli", "latency and real-time factor, side by side"),
    "sweep": ("seofp_lab.train.sweep_run", "run a grid of experiments from configs/sweep/"),
    "study": ("seofp_lab.listening.cli", "listening studies: plan, prepare, serve, analyze"),
    "compare": (
        "seofp_lab.evaluate.compare_cli",
        "paired per-utterance comparison of two evaluated runs",
    ),
    "report": ("seofp_lab.report.cli", "one self-contained HTML report (+ CSV) from MLflow runs"),
    "ui": ("seofp_lab.tracking_cli", "open the MLflow UI on the workspace store"),
    "fuzz": ("seofp_lab.fuzz.cli", "fuzz the model file, config loader and audio reader"),
    "register": ("seofp_lab.registry", "register a run's model (pyfunc) in the MLflow registry"),
}


def _expected_errors() -> tuple[type[BaseException], ...]:
    from seofp_lab.config import ConfigError  # noqa: PLC0415
    from seofp_lab.errors import SeofpError  # noqa: PLC0415

    return (SeofpError, ConfigError, FileNotFoundError)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seofp", description="seofp-lab: sign-exponent-only networks for speech enhancement"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from seofp_lab.signals import Interrupted, interrupts_raised  # noqa: PLC0415

    try:
        with interrupts_raised():  # SIGINT/SIGTERM -> Interrupted (docs/runs.md#signals)
            result = args.func(args)
    except _expected_errors() as exc:
        print(f"seofp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        name, code = ((exc.name, exc.exit_code) if isinstance(exc, Interrupted)
                      else ("SIGINT", 130))
        print(f"seofp {args.command}: interrupted by {name}; a run this command started is "
              "marked KILLED, everything saved so far is kept", file=sys.stderr)
        return code
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
