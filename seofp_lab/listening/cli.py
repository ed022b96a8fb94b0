"""``seofp study plan|prepare|serve|admin|add-user|analyze|export STUDY_DIR``: arguments mapped
onto the API."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from seofp_lab.errors import StudyError

APP = Path(__file__).resolve().parents[2] / "app" / "asgi.py"  # study_app.py + the audio route
ADMIN_APP = APP.with_name("admin_app.py")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="listening studies: plan, prepare, serve, analyze")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("plan", "power and sample size of the pre-registered design"),
                            ("prepare", "draw, loudness-match and freeze the stimuli"),
                            ("serve", "start the listening app (Streamlit)"),
                            ("admin", "start the experimenter app (its own process and port)"),
                            ("add-user", "create an experimenter account or set its password"),
                            ("analyze", "print the analysis and log it to MLflow"),
                            ("export", "write trials.csv, participants.csv, export.json")):
        a = sub.add_parser(name, help=help_text)
        a.add_argument("study_dir", type=Path, help="a folder with study.yaml (studies/NAME)")
        a.add_argument("--db", help="store URL (default: SQLite in the workspace)")
        if name == "prepare":
            a.add_argument("--baseline-dir", type=Path, help="enhanced folder instead of a run")
            a.add_argument("--compressed-dir", type=Path, help="enhanced folder instead of a run")
        if name in ("serve", "admin"):
            a.add_argument("--port", type=int, default=8501 if name == "serve" else 8502)
            a.add_argument("--address", default="127.0.0.1")
        if name == "add-user":
            a.add_argument("username", help="1-64 letters, digits, _ . @ or -")
            a.add_argument("--password-stdin", action="store_true",
                           help="read the password from standard input (default: prompt)")
        if name == "plan":
            a.add_argument("--reps", type=int, default=200,
                           help="simulated studies per listener-level power value (0: skip)")
        if name == "analyze":
            a.add_argument("--no-mlflow", action="store_true", help="print only")
            a.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
        if name == "export":
            a.add_argument("--out", type=Path, help="folder (default: workspace/studies/NAME)")
        a.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return {"plan": _plan, "prepare": _prepare, "serve": _serve, "admin": _serve,
            "add-user": _add_user, "analyze": _analyze, "export": _export}[args.action](args)


def _plan(args: argparse.Namespace) -> int:
    from seofp_lab.listening.power import (  # noqa: PLC0415
        detection_power,
        plan_table,
        simulate_equivalence,
    )
    from seofp_lab.listening.protocol import load_study  # noqa: PLC0415

    study, _ = load_study(args.study_dir)
    plan, t = study.analysis, study.tests_per_listener
    print(plan_table(plan.margin, plan.alpha))
    n = plan.listeners * t
    print(f"This design: {plan.listeners} listeners x {t} test trials = {n} pooled trials")
    for rho in (0.0, 0.05, 0.1):
        n_eff = n / (1 + (t - 1) * rho)
        pcs = [p / 100 for p in range(50, 101)]
        mde = next((p for p in pcs if detection_power(int(n_eff), p, plan.alpha) >= 0.8), 1.0)
        print(f"  rho {rho:.2f}: effective N {n_eff:.0f}, minimum detectable Pc {mde:.2f}")
    if args.reps:
        print(f"Listener-level equivalence power at margin {plan.margin} (GEE bound, "
              f"{args.reps} simulated studies each, listeners spread 0.1):")
        for pc in (0.50, 0.52, 0.55):
            sim = simulate_equivalence(plan.listeners, t, pc, plan.margin, args.reps,
                                       alpha=plan.alpha, seed=study.seed)
            print(f"  true P̄c {pc:.2f}: {sim.claims:.2f} ± {sim.se:.2f}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from seofp_lab.listening.stimuli import prepare_study  # noqa: PLC0415

    m = prepare_study(args.study_dir, baseline_dir=args.baseline_dir,
                      compressed_dir=args.compressed_dir)
    diffs = [abs(i["loudness_diff_db"]) for i in m.data["items"]]
    print(f"Prepared {len(m.items)} items ({len(m.data['ladder'])} ladder pairs) in {m.root}")
    print(f"Pre-match loudness difference |y_b - y_c|: max {max(diffs):.2f} dB")
    print(f"Manifest SHA-256 {m.digest}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """``serve``: the participant app; ``admin``: the experimenter app, on its own port."""
    from seofp_lab.listening.auth import has_users  # noqa: PLC0415
    from seofp_lab.listening.listener import StudyService  # noqa: PLC0415

    study_dir = args.study_dir.resolve()
    service = StudyService(study_dir, args.db)  # fail here, with a clear message, not in a page
    env = dict(os.environ, SEOFP_STUDY_DIR=str(study_dir))
    if args.db:
        env["SEOFP_STUDY_DB"] = args.db
    url = f"http://{args.address}:{args.port}/"
    if args.action == "admin":
        if not has_users(service.store):
            print(f"No experimenter account yet: seofp study add-user {args.study_dir} NAME")
        print(f"Experimenter page: {url}")
    else:
        print(f"Listeners: {url}   experimenter page: seofp study admin {args.study_dir}")
    app = ADMIN_APP if args.action == "admin" else APP
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.address", args.address, "--server.headless", "true",
           "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "minimal",  # listeners see no developer menu or Deploy button
           "--client.showErrorDetails", "none",  # behind the page boundary: no tracebacks
           "--runner.postScriptGC", "false"]  # a full gc after every rerun cost ~55 % of the CPU
    return subprocess.call(cmd, env=env)


def _add_user(args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415

    from seofp_lab.listening.auth import add_user  # noqa: PLC0415

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if getpass.getpass("Again: ") != password:
            raise StudyError("Expected the same password twice but the two differ")
    service = _service(args)
    add_user(service.store, args.username, password)
    print(f"Experimenter {args.username} can log in to: seofp study admin {args.study_dir}")
    return 0


def _service(args: argparse.Namespace):  # noqa: ANN202 - StudyService
    from seofp_lab.listening.listener import StudyService  # noqa: PLC0415

    return StudyService(args.study_dir, args.db)


def _analyze(args: argparse.Namespace) -> int:
    from seofp_lab.listening.report import analyze_study, log_to_mlflow  # noqa: PLC0415

    service = _service(args)
    result, plots = analyze_study(service, boot=args.boot)
    print(result.text)
    if "pc" not in result.metrics:
        raise StudyError(f"Expected answered main trials in study {service.study.name!r} but "
                         "there are none to analyse yet")
    if not args.no_mlflow:
        run_id = log_to_mlflow(service, result, plots)
        print(f"Logged to MLflow run {run_id}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from seofp_lab.listening.data import export  # noqa: PLC0415
    from seofp_lab.workspace import workspace_path  # noqa: PLC0415

    service = _service(args)
    out = args.out or workspace_path("studies", service.study.name, "export", "x").parent
    for path in export(service.store, service.study.name, out,
                       {"sha256": service.manifest.digest, "config_hash": service.config_hash}):
        print(path)
    return 0
