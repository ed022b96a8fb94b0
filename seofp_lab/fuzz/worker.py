"""The fuzz worker: runs one case at a time under a memory cap and reports how it ended.

Started by :mod:`seofp_lab.fuzz.runner` as ``python -m seofp_lab.fuzz.worker --mem-mb N``. After its
imports it caps its address space at its size then plus N MiB (``RLIMIT_AS``), says ``ready``,
then reads one JSON job per line on stdin and answers one JSON line per job on its own copy of
stdout (the libraries' prints go to stderr). A crash or a hang ends the process; the runner sees
that, counts it and starts another worker.

Outcomes: ``refused`` (one of the project's expected errors, the CLI's one-line message),
``ok`` (finite output), ``nan`` (an output with NaN or inf returned as if valid: a silent wrong
result), ``traceback`` (any other exception), ``memory`` (MemoryError: over the cap), and, seen by
the runner, ``crash`` (the process died) and ``hang`` (no answer within the timeout).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("ok", "refused", "nan", "traceback", "memory", "crash", "hang")
BAD = ("nan", "traceback", "memory", "crash", "hang")
FS = 16000
INPUT = (np.random.default_rng(0).standard_normal(FS // 2) * 0.1).astype(np.float32)


def _expected() -> tuple[type[BaseException], ...]:
    from seofp_lab.config import ConfigError  # noqa: PLC0415
    from seofp_lab.errors import SeofpError  # noqa: PLC0415

    return (SeofpError, ConfigError)


def _finite(y: np.ndarray) -> str:
    return "ok" if np.isfinite(y).all() else "nan"


def run_model(path: str, kernel: str) -> str:
    from seofp_lab.infer import engine  # noqa: PLC0415

    eng = engine.load(path, kernel)  # type: ignore[arg-type]
    out = _finite(eng.enhance(INPUT))
    if out == "ok" and eng.name == "lstm":  # the streaming path too
        stream = eng.stream()
        parts = [stream.push(INPUT[i:i + 1000]) for i in range(0, INPUT.size, 1000)]
        out = _finite(np.concatenate([*parts, stream.flush()]))
    return out


def run_config(path: str, kernel: str) -> str:
    from seofp_lab.config import load_config  # noqa: PLC0415

    load_config(path)
    return "ok"


def run_audio(path: str, kernel: str) -> str:
    from seofp_lab.data.audio import read_audio  # noqa: PLC0415

    return _finite(read_audio(path))


def run_enhance(path: str, kernel: str) -> str:
    """``path``: JSON ``{"argv": [...], "env": {...}}`` for ``seofp enhance``; refused means exit
    2 and only ``seofp enhance: ...`` lines on stderr, never a traceback."""
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415

    from seofp_lab import cli  # noqa: PLC0415

    job = json.loads(Path(path).read_text())
    err = io.StringIO()
    saved = {k: os.environ.get(k) for k in job.get("env", {})}
    os.environ.update(job.get("env", {}))
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(["enhance", *job["argv"]])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = err.getvalue()
    if "Traceback" in text or any(not line.startswith("seofp enhance: ")
                                  for line in text.splitlines()):
        raise RuntimeError(f"unexpected stderr: {text[:300]}")
    return "ok" if rc == 0 else "refused"


def run_selftest(path: str, kernel: str) -> str:
    """Each outcome on demand (the harness's own test): the file names the mode."""
    mode = Path(path).read_text().strip()
    if mode == "crash":
        os.abort()
    if mode == "hang":
        import time  # noqa: PLC0415

        time.sleep(3600)
    if mode == "memory":
        np.ones(1 << 40, np.uint8)  # 1 TiB: over any cap
    if mode == "traceback":
        raise KeyError("selftest")
    if mode == "refused":
        from seofp_lab.errors import SeofpError  # noqa: PLC0415

        raise SeofpError("selftest")
    return _finite(np.array([np.nan if mode == "nan" else 0.0]))


TARGETS = {"model": run_model, "config": run_config, "audio": run_audio,
           "enhance": run_enhance, "selftest": run_selftest}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One case: its outcome and, for anything but ``ok``, one line of detail."""
    try:
        return {"outcome": TARGETS[job["target"]](job["path"], job.get("kernel", "intadd"))}
    except MemoryError:
        return {"outcome": "memory", "detail": "MemoryError"}
    except _expected() as exc:
        text = str(exc)
        return {"outcome": "refused", "detail": text.splitlines()[0][:300] if text else ""}
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer is looking for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return {"outcome": "traceback", "detail": f"{type(exc).__name__}: {str(exc)[:200]} "
                                                  f"({Path(frame.filename).name}:{frame.lineno})"}


def _cap_memory(mem_mb: int) -> None:
    """Address space: what the imports took plus ``mem_mb`` MiB."""
    vm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text()
              .splitlines() if line.startswith("VmSize:"))
    limit = vm + (mem_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    p = argparse.ArgumentParser(description="seofp fuzz worker (started by the runner)")
    p.add_argument("--mem-mb", type=int, default=2048)
    p.add_argument("--user", type=int, default=None,
                   help="after the imports, run as this uid/gid (as root: permissions apply)")
    p.add_argument("--no-preload", action="store_true",
                   help="skip importing the targets before the cap (the harness's self-test)")
    args = p.parse_args()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints must not mix with the answers
    import warnings  # noqa: PLC0415

    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    preload = ("seofp_lab.infer.engine", "seofp_lab.infer.enhance_cli", "seofp_lab.cli",
               "seofp_lab.config", "seofp_lab.data.audio", "rich.progress", "rich.table")
    for module in () if args.no_preload else preload:
        importlib.import_module(module)  # before the cap: imports are not what is measured

    _cap_memory(args.mem_mb)
    if args.user is not None:  # the interpreter itself may be unreadable to that user
        os.setgroups([])
        os.setgid(args.user)
        os.setuid(args.user)
    proto.write("ready\n")
    for line in sys.stdin:
        proto.write(json.dumps(run_job(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
