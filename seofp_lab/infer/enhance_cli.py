"""``seofp enhance MODEL INPUT...``: enhance your own recordings with the C engine.

MODEL is a ``.seofp`` file or a tracked run id (its export in the workspace, written on first use).
Inputs are audio files or folders of them (any rate and channel count soundfile reads: resampled to
16 kHz and averaged to mono for the model, the output resampled back to the input's rate). With
``--stream`` a causal LSTM model runs hop by hop as it would on a live signal and the per-chunk
compute time is reported against the chunk's duration (the real-time deadline); the samples are the
same as offline.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seofp_lab.data.audio import FS, audio_info, read_audio, resample_audio, write_audio
from seofp_lab.errors import AudioError, SeofpError

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

    eng = engine_mod.load(model, kernel)  # type: ignore[arg-type]
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table  # noqa: PLC0415

    from seofp_lab.console import console as make_console  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    if args.chunk_ms <= 0:
        raise SeofpError(f"Expected --chunk-ms > 0 but got {args.chunk_ms}")
    from seofp_lab.infer import kernels  # noqa: PLC0415

    kernels.set_threads(args.threads)
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
    return 0
