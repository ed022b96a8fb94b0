"""``seofp enhance MODEL INPUT...``: enhance your own recordings with the C engine.

MODEL is a ``.seofp`` file or a tracked run id (its export in the workspace, written on first use).
Inputs are audio files or folders of them (any rate and channel count soundfile reads: resampled to
16 kHz and averaged to mono for the model, the output resampled back to the input's rate). With
``--stream`` a causal LSTM model runs hop by hop as it would on a live signal and the per-chunk
compute time is reported against the chunk's duration (the real-time deadline); the samples are the
same as offline. With ``--score`` each input and its output are rated by DNSMOS P.835 (no clean
reference needed): a table per file with the means, and ``dnsmos.csv`` beside the outputs.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seofp_lab.data.audio import FS, audio_info, read_audio, resample_audio, write_audio
from seofp_lab.errors import AudioError, SeofpError
from seofp_lab.fsutil import atomic_path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".sph", ".aiff", ".aif")


@dataclass(frozen=True)
class Enhanced:
    """One enhanced file and how long its computation took."""

    source: Path
    out: Path
    seconds: float  # audio duration
    compute_s: float  # engine time for the whole file (offline) or summed over chunks (stream)
    chunk_ms_p50: float | None = None  # --stream: compute time per chunk
    chunk_ms_p99: float | None = None
    late_chunks: int = 0  # chunks whose compute took longer than their duration


def model_path(source: str) -> Path:
    """A ``.seofp`` path as given, or a run id's export (exported on first use, and again when the
    cached export has an older format version)."""
    path = Path(source)
    if path.suffix == ".seofp" or path.exists():
        if not path.is_file():
            raise SeofpError(f"Expected a .seofp model file at {path} but it does not exist")
        return path
    from seofp_lab import tracking  # noqa: PLC0415
    from seofp_lab.infer import modelfile  # noqa: PLC0415
    from seofp_lab.infer.export import export_run  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    run_id = tracking.resolve_run_id(source)  # a full id or a unique prefix
    cached = workspace_path("exports", f"{run_id}.seofp")
    current = modelfile.file_version(cached) == modelfile.FORMAT_VERSION
    return cached if current else export_run(run_id)


def input_files(inputs: list[Path]) -> list[Path]:
    """Files as given and the audio files inside folders (sorted), each once."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise AudioError(f"Expected audio files ({', '.join(AUDIO_SUFFIXES)}) in folder "
                                 f"{p} but found none")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise AudioError(f"Expected an audio file or folder at {p} but it does not exist")
    return list(dict.fromkeys(f.resolve() for f in files))


def _stream(engine: object, x: np.ndarray, chunk: int) -> tuple[np.ndarray, list[float]]:
    """Hop-by-hop enhancement; returns the samples and each push's compute time (s)."""
    stream = engine.stream()  # type: ignore[attr-defined]
    pieces, times = [], []
    for start in range(0, x.size, chunk):
        t0 = time.perf_counter()
        pieces.append(stream.push(x[start:start + chunk]))
        times.append(time.perf_counter() - t0)
    pieces.append(stream.flush())
    return np.concatenate(pieces), times


def enhance_files(model: Path, files: list[Path], out_dir: Path, kernel: str = "intadd",
                  stream: bool = False, chunk_ms: float = 16.0,
                  subtype: str = "FLOAT") -> list[Enhanced]:
    """Enhance every file into ``out_dir`` (same stem, ``.wav``); returns what was done.

    Raises:
        AudioError: an unreadable input, or an output that would overwrite an input.
        ModelFileError, KernelError: a bad model, or ``stream`` on a model that needs the whole
            utterance (BLSTM, FCN).
    """
    from rich.progress import Progress  # noqa: PLC0415

    from seofp_lab.infer import engine as engine_mod  # noqa: PLC0415

    eng = engine_mod.load(model, kernel)
    if stream:
        eng.stream()  # refuses a non-causal model before any file is read
    targets = {f: out_dir / f"{f.stem}.wav" for f in files}
    clash = [f for f, o in targets.items() if o.resolve() in targets]
    outs = list(targets.values())
    if clash or len(set(outs)) != len(outs):
        raise AudioError(f"Expected outputs in {out_dir} that overwrite no input and no other "
                         f"output but got a clash (inputs with one stem, or --out an input "
                         f"folder): {sorted(str(f) for f in clash) or 'same stems'}")
    done = []
    chunk = max(1, round(chunk_ms * FS / 1000))
    with Progress(transient=True) as bar:
        task = bar.add_task("enhancing", total=len(files))
        for f, out in targets.items():
            rate = int(audio_info(f).samplerate)
            x = read_audio(f)  # 16 kHz mono float32
            try:
                if stream:
                    y, times = _stream(eng, x, chunk)
                    ms = 1e3 * np.asarray(times)
                    info = {"compute_s": float(ms.sum() / 1e3),
                            "chunk_ms_p50": float(np.percentile(ms, 50)),
                            "chunk_ms_p99": float(np.percentile(ms, 99)),
                            "late_chunks": int((ms > chunk_ms).sum())}
                else:
                    t0 = time.perf_counter()
                    y = eng.enhance(x)
                    info = {"compute_s": time.perf_counter() - t0}
            except (SeofpError, ValueError) as exc:  # e.g. shorter than one STFT frame
                raise AudioError(f"{f}: {exc} (files before it are written)") from None
            y = resample_audio(y, FS, rate)  # back to the input's rate
            write_audio(out, np.clip(y, -1.0, 1.0) if subtype == "PCM_16" else y, rate, subtype)
            done.append(Enhanced(f, out, x.size / FS, **info))
            bar.advance(task)
    return done


def score_files(done: list[Enhanced]) -> list[dict[str, Any]]:
    """DNSMOS SIG/BAK/OVRL of each input (as the model heard it: 16 kHz mono) and of its output
    as written; a file DNSMOS cannot rate gets NaN and an ``error`` entry."""
    from rich.progress import Progress  # noqa: PLC0415

    from seofp_lab.evaluate.dnsmos import NAMES, dnsmos  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task("DNSMOS", total=2 * len(done))
        for d in done:
            row: dict[str, Any] = {"input": str(d.source), "output": str(d.out),
                                      "seconds": round(d.seconds, 3)}
            errors = []
            for kind, path in (("input", d.source), ("enhanced", d.out)):
                try:
                    scores = dnsmos(read_audio(path))
                except ValueError as exc:
                    scores = dict.fromkeys(NAMES, math.nan)
                    errors.append(f"{kind}: {exc}")
                row.update({f"{kind}_{k}": v for k, v in scores.items()})
                bar.advance(task)
            row["error"] = "; ".join(errors)
            rows.append(row)
    return rows


def write_scores(rows: list[dict[str, Any]], path: Path) -> Path:
    """The per-file DNSMOS table as CSV (one row per file, no means)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:  # never half a table
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def scores_table(rows: list[dict[str, Any]], title: str):  # noqa: ANN201 - rich Table
    """Input and output DNSMOS per file, the output's gain in OVRL, and the means."""
    from rich.table import Table  # noqa: PLC0415

    from seofp_lab.evaluate.dnsmos import NAMES  # noqa: PLC0415

    table = Table(title=title)
    table.add_column("file")
    for kind in ("in", "out"):
        for n in NAMES:
            table.add_column(f"{kind} {n.split('_')[1].upper()}", justify="right")
    table.add_column("Δ OVRL", justify="right")

    def cells(values: dict[str, float]) -> list[str]:
        vals = [values[f"{k}_{n}"] for k in ("input", "enhanced") for n in NAMES]
        delta = values["enhanced_dnsmos_ovrl"] - values["input_dnsmos_ovrl"]
        return [("–" if math.isnan(v) else f"{v:.2f}") for v in vals] + [
            "–" if math.isnan(delta) else f"{delta:+.2f}"]

    keys = [f"{k}_{n}" for k in ("input", "enhanced") for n in NAMES]
    for r in rows:
        table.add_row(Path(str(r["input"])).name, *cells({k: float(r[k]) for k in keys}))
    means = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if not math.isnan(float(r[k]))]
        means[k] = sum(vals) / len(vals) if vals else math.nan
    table.add_section()
    table.add_row(f"mean of {len(rows)}", *cells(means), style="bold")
    return table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("enhance", help="enhance your own audio files with the C engine")
    p.add_argument("model", help="a .seofp file or a tracked run id")
    p.add_argument("inputs", nargs="+", type=Path, help="audio files or folders of them")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: <workspace>/enhanced_files/<model>)")
    p.add_argument("--kernel", choices=["intadd", "decode", "fp32"], default="intadd")
    p.add_argument("--stream", action="store_true",
                   help="causal LSTM only: run hop by hop and report per-chunk compute time")
    p.add_argument("--chunk-ms", type=float, default=16.0, help="chunk length with --stream")
    p.add_argument("--subtype", choices=["FLOAT", "PCM_16"], default="FLOAT",
                   help="WAV sample format of the outputs")
    p.add_argument("--threads", type=int, choices=[1, 2], default=1,
                   help="2: split batch-1 products (streaming steps) over two threads")
    p.add_argument("--score", action="store_true",
                   help="rate each input and output with DNSMOS P.835 (SIG, BAK, OVRL; no clean "
                        "reference) and write dnsmos.csv beside the outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table  # noqa: PLC0415

    from seofp_lab.console import console as make_console  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    if args.chunk_ms <= 0:
        raise SeofpError(f"Expected --chunk-ms > 0 but got {args.chunk_ms}")
    from seofp_lab.infer import kernels  # noqa: PLC0415

    kernels.set_threads(args.threads)
    if args.score:  # a missing package is reported before any file is enhanced
        from seofp_lab.evaluate.dnsmos import check_available  # noqa: PLC0415

        check_available()
    model = model_path(args.model)
    out_dir = args.out if args.out is not None else workspace_path("enhanced_files", model.stem)
    done = enhance_files(model, input_files(args.inputs), out_dir, args.kernel, args.stream,
                         args.chunk_ms, args.subtype)
    table = Table(title=f"{model.name} on the C engine ({args.kernel}), {args.threads} thread"
                        + ("s" if args.threads > 1 else ""))
    cols = ["output", "audio s", "compute s", "RTF"]
    if args.stream:
        cols += [f"chunk ms p50 ({args.chunk_ms:g} ms chunks)", "p99", "late chunks"]
    for c in cols:
        table.add_column(c, justify="left" if c == "output" else "right")
    for d in done:
        row = [str(d.out), f"{d.seconds:.2f}", f"{d.compute_s:.3f}",
               f"{d.compute_s / d.seconds:.4f}"]
        if args.stream:
            row += [f"{d.chunk_ms_p50:.3f}", f"{d.chunk_ms_p99:.3f}", str(d.late_chunks)]
        table.add_row(*row)
    make_console().print(table)
    if args.score:
        from seofp_lab.evaluate.dnsmos import provenance  # noqa: PLC0415

        rows = score_files(done)
        path = write_scores(rows, out_dir / "dnsmos.csv")
        make_console().print(scores_table(rows, f"DNSMOS P.835 of {model.name}'s inputs and "
                                                 "outputs (1..5, higher is better)"))
        print(f"{provenance()}\nwritten: {path}")
        failed = [r for r in rows if r["error"]]
        if failed:
            make_console(stderr=True).print(f"[yellow]{len(failed)} file(s) could not be rated; "
                                            f"see the error column of {path}[/yellow]")
    return 0
