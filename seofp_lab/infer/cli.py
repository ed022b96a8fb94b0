"""``seofp export RUN_ID [--out PATH] [--onnx PATH]``: write a tracked run's model as one .seofp
file and, with ``--onnx``, its network as ONNX for ONNX Runtime (``onnx_export.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a run's model as one .seofp file")
    p.add_argument("run_id", help="MLflow run id (or a unique prefix) of a trained model")
    p.add_argument("--out", type=Path, default=None,
                   help="output path (default: <workspace>/exports/<run_id>.seofp)")
    p.add_argument("--onnx", type=Path, default=None, metavar="PATH",
                   help="also write the network as ONNX here (LSTM family: LPS in, mask or LPS "
                        "out, the STFT around it is the user's; FCN: waveform in and out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seofp_lab.infer.export import export_run  # noqa: PLC0415
    from seofp_lab.tracking import resolve_run_id  # noqa: PLC0415

    path = export_run(resolve_run_id(args.run_id), args.out)
    print(f"{path} ({path.stat().st_size} bytes)")
    if args.onnx is not None:
        from seofp_lab.infer.onnx_export import export_run_onnx  # noqa: PLC0415

        onnx_path = export_run_onnx(resolve_run_id(args.run_id), args.onnx)
        print(f"{onnx_path} ({onnx_path.stat().st_size} bytes, ONNX)")
    return 0
