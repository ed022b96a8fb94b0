"""Latency of the served model: `mlflow models serve` of a registered seofp model, 2-s requests.

Run (a store with a registered model, e.g. after `seofp demo`):
    .venv/bin/python benchmarks/bench_serving.py models:/seofp-demo@candidate [--requests 20]

Starts the server on loopback (--env-manager local), posts the same 2-s 16 kHz WAV (base64, as a
client would) `--requests` times after two warm-up requests, and prints the median and p90 of
the full HTTP round trip next to the engine's own time for the same audio in this process.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="models:/NAME@ALIAS or models:/NAME/VERSION")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()

    from seofp_lab import tracking
    from seofp_lab.infer.bench import environment
    from seofp_lab.infer.engine import load
    from seofp_lab.infer.enhance_cli import model_path

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, subtype="FLOAT", format="WAV")
    body = json.dumps({"dataframe_records": [{"wav": base64.b64encode(buf.getvalue()).decode()}]})

    engine = load(model_path(args.model))
    engine.enhance(x)
    direct = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        engine.enhance(x)
        direct.append(time.perf_counter() - t0)

    port = _free_port()
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               MLFLOW_TRACKING_URI=tracking.tracking_uri())
    log = Path(f"/tmp/bench_serving_{port}.log")
    proc = subprocess.Popen([f"{bindir}/mlflow", "models", "serve", "-m", args.model,
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/invocations"

    def post() -> float:
        req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
        return time.perf_counter() - t0

    try:
        deadline = time.time() + 300
        while True:
            try:
                post()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"server did not answer: {log.read_text()[-2000:]}") from None
                time.sleep(1)
        post()
        served = [post() for _ in range(args.requests)]
    finally:
        proc.terminate()
        proc.wait(10)

    table = Table(title=f"{args.model}: {args.seconds:g}-s requests, {args.requests} each")
    for col in ("path", "median ms", "p90 ms", "RTF (median)"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, ts in (("HTTP round trip (base64 WAV in and out)", served),
                     ("engine.enhance in process", direct)):
        ms = 1e3 * np.asarray(ts)
        table.add_row(name, f"{np.median(ms):.1f}", f"{np.percentile(ms, 90):.1f}",
                      f"{np.median(ms) / 1e3 / args.seconds:.3f}")
    console = Console()
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in environment().items()))


if __name__ == "__main__":
    main()
