"""`seofp report` on a small real MLflow store: table numbers, CSV, embedded PNG/WAV, dashes for
missing metrics, run selection, the listening section, errors and the CLI."""

from __future__ import annotations

import base64
import csv
import io
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from seofp_lab import cli, tracking
from seofp_lab.errors import StudyError, TrackingError
from seofp_lab.report import ReportError, build_report
from seofp_lab.report.table import COLUMNS

EXP = "paper"
SNRS = (0.0, 5.0, 10.0)
PNG = b"\x89PNG\r\n\x1a\n"
BASELINE = {
    "pesq_wb": 2.0,
    "pesq_nb": 2.5,
    "stoi": 0.90,
    "estoi": 0.80,
    "si_sdr": 10.0,
    "size_bytes": 3_000_000.0,
    "compression_pct": 0.0,
}
S1E5 = {
    "pesq_wb": 2.1,
    "pesq_nb": 2.6,
    "stoi": 0.91,
    "estoi": 0.82,
    "si_sdr": 10.5,
    "size_bytes": 600_123.0,
    "compression_pct": 80.0,
    "bits_per_weight": 6.0,
    "sparsity": 0.0,
    "latency_ms_p50": 12.5,
    "latency_ms_p90": 13.0,
    "rtf": 0.003,
    "speedup_vs_fp32": 1.5,
}
PRUNED = {
    "pesq_wb": 1.9,
    "pesq_nb": 2.4,
    "stoi": 0.88,
    "si_sdr": 9.0,  # no estoi, no speed
    "size_bytes": 400_000.0,
    "compression_pct": 87.0,
    "bits_per_weight": 6.0,
    "sparsity": 0.5,
}
NOISY = {"pesq_wb": 1.5, "pesq_nb": 2.0, "stoi": 0.85, "estoi": 0.70, "si_sdr": 5.0}


def _per_snr(m: dict[str, float]) -> dict[str, float]:
    out = {}
    for name in ("pesq_wb", "stoi"):
        for i, snr in enumerate(SNRS):
            out[tracking.metric_key(name, snr=snr)] = m[name] - 0.1 + 0.1 * i
            out[tracking.metric_key(name, snr=snr, noisy=True)] = NOISY[name] - 0.1 + 0.1 * i
    return out


def _examples(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "id": f"val{i:02d}",
            "snr": 5,
            **{k: 0.1 * rng.standard_normal(8000) for k in ("noisy", "enhanced", "clean")},
        }
        for i in range(3)
    ]


def _run(
    name: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    audio: int | None = None,
    experiment: str = EXP,
) -> str:
    with tracking.start_run(experiment, name, tags, {"compression.mode": "paper"}) as run_id:
        tracking.log_metrics(metrics)
        if audio is not None:
            tracking.log_audio_examples(_examples(audio))
    time.sleep(0.01)  # distinct start times: "newest" must be well defined
    return run_id


def _tags(
    role: str, fmt: str, baseline: str | None = None, kernel: str | None = None
) -> dict[str, str]:
    tags = {
        tracking.TAG_ROLE: role,
        tracking.TAG_FORMAT: fmt,
        tracking.TAG_MODEL: "blstm",
        tracking.TAG_CORPUS: "embedded",
    }
    if baseline:
        tags[tracking.TAG_BASELINE] = baseline
    if kernel:
        tags[tracking.TAG_KERNEL] = kernel
    return tags


def _bench() -> dict[str, float]:
    """What infer/bench.py logs for every contender: ``bench_<contender>_<metric>``."""
    out = {}
    for i, c in enumerate(("torch_fp32", "torch_int8", "c_fp32", "c_intadd", "c_decode")):
        out.update(
            {
                f"bench_{c}_latency_ms_p50": 10.0 + i,
                f"bench_{c}_latency_ms_p90": 11.0 + i,
                f"bench_{c}_rtf": 0.002 + i / 1000,
                f"bench_{c}_speedup_vs_fp32": 1.0,
            }
        )
    return out


def _listening(baseline: str, compressed: str, study: str = "sim") -> tuple[str, dict]:
    """A real analysis of simulated answers, logged the way `seofp study analyze` logs it
    (listening/report.py: ``listening_*`` metrics, claim, text, plots)."""
    from seofp_lab.listening.analysis import analyze
    from seofp_lab.listening.plots import plot_all
    from seofp_lab.listening.protocol import StudyDefinition
    from seofp_lab.listening.report import log_analysis

    definition = StudyDefinition(name=study, baseline_dir=Path("b"), compressed_dir=Path("c"))
    rng = np.random.default_rng(1)
    rows = []
    for lst in range(8):
        for i, kind in enumerate(["main"] * 20 + ["catch"] * 4 + ["null"] * 4):
            x = "AB"[rng.integers(2)]
            correct = rng.random() < {"main": 0.5, "catch": 1.0, "null": 0.5}[kind]
            rows.append(
                {
                    "listener": lst,
                    "trial_index": i,
                    "block": 1 + (i >= 16),
                    "trial_type": kind,
                    "item": f"it{(i + lst) % 20}",
                    "snr": SNRS[i % 3],
                    "noise": "babble",
                    "x_is": x,
                    "response": x if correct else "AB".replace(x, ""),
                    "correct": int(correct),
                    "rt_ms": 4000.0,
                    "answered_without_x": False,
                    "blur_events": 0,
                    "gain_db": None,
                }
            )
    parts = pd.DataFrame({"listener": range(8), "status": "done", "screen_exclusion": None})
    result = analyze(pd.DataFrame(rows), parts, definition, boot=20)
    plots = plot_all(result, Path(tracking.workspace_dir()) / "plots", 0.575)
    tags = {
        tracking.TAG_STUDY: study,
        tracking.TAG_BASELINE: baseline,
        tracking.TAG_COMPRESSED: compressed,
        tracking.TAG_ROLE: "listening",
    }
    with tracking.start_run(
        "seofp-listening", f"study-{study}", tags, {"alpha": "0.05", "margin": "0.575"}
    ) as run_id:
        log_analysis(result, plots)
    return run_id, {**result.metrics, "claim": result.decision}


@dataclass
class Store:
    root: Path
    baseline: str
    old_s1e5: str
    s1e5: str
    pruned: str
    listening: str
    listening_metrics: dict


@pytest.fixture(scope="module")
def blank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow database: copying it saves each store seconds of migrations."""
    ws = tmp_path_factory.mktemp("blank")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(ws))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        tracking.client().search_experiments()
    return ws / "mlflow.db"


def _workspace(path: Path, blank_db: Path, mp: pytest.MonkeyPatch) -> Path:
    path.mkdir(parents=True)
    shutil.copy(blank_db, path / "mlflow.db")
    mp.setenv("SEOFP_WORKSPACE", str(path))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


@pytest.fixture
def fresh(tmp_path: Path, blank_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace of this test's own."""
    return _workspace(tmp_path / "workspace", blank_db, monkeypatch)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, blank_db: Path) -> Iterator[Store]:
    """Four model runs (one an older repeat) and one listening analysis, logged for real."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        _workspace(root / "workspace", blank_db, mp)
        base = _run(
            "base",
            _tags("baseline", "fp32"),
            {**BASELINE, **{f"noisy_{k}": v for k, v in NOISY.items()}, **_per_snr(BASELINE)},
            audio=0,
        )
        old = _run("s1e5", _tags("seofp", "s1e5", base, "intadd"), {**S1E5, "pesq_wb": 1.0})
        new = _run(
            "s1e5",
            _tags("seofp", "s1e5", base, "intadd"),
            {**S1E5, **_per_snr(S1E5), **_bench()},
            audio=1,
        )
        pruned = _run("pruned50", _tags("seofp+pruned", "s1e5", base), PRUNED, audio=2)
        listening, lm = _listening(base, new)
        yield Store(root, base, old, new, pruned, listening, lm)


@pytest.fixture
def env(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(store.root / "workspace"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store


class Page(HTMLParser):
    """Table rows as cell texts, plus every img/audio src and every external reference."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []  # tables -> rows -> cell texts
        self.srcs: dict[str, list[str]] = {"img": [], "audio": []}
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if tag in self.srcs:
            self.srcs[tag].append(a["src"] or "")
        self.refs += [v for k, v in attrs if k in ("src", "href") and v and "://" in v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _row(page: Page, first_cell_start: str) -> list[str]:
    """The results table's (the first table's) row whose first cell starts so."""
    hits = [r for r in page.tables[0] if r and r[0].startswith(first_cell_start)]
    assert len(hits) == 1, [r[:2] for r in page.tables[0]]
    return hits[0]


def _col(name: str) -> int:
    return 2 + COLUMNS.index(name)  # run, role/format/model, then the metric columns


def test_table_numbers_deltas_dashes_and_csv(env: Store, tmp_path: Path) -> None:
    res = build_report(experiment=EXP, out=tmp_path / "r.html")
    page = Page(res.html.read_text())
    noisy = _row(page, "noisy input (embedded)")
    assert noisy[_col("pesq_wb")] == "1.500" and noisy[_col("si_sdr")] == "5.00"
    base = _row(page, "base ")
    assert base[_col("pesq_wb")] == "2.000" and base[_col("size_bytes")] == "2.9 MiB 3,000,000 B"
    s1e5 = _row(page, "s1e5 ")
    assert s1e5[_col("pesq_wb")] == "2.100 +0.100"  # the newest s1e5 run, delta vs its baseline
    assert s1e5[_col("stoi")] == "0.910 +0.010" and s1e5[_col("speedup_vs_fp32")] == "1.50×"
    assert s1e5[_col("latency_ms_p50")] == "12.50" and s1e5[_col("sparsity")] == "0.0 %"
    pruned = _row(page, "pruned50 ")
    assert pruned[_col("estoi")] == "— 1" and pruned[_col("latency_ms_p50")] == "— 1"
    assert pruned[_col("pesq_wb")] == "1.900 −0.100" and pruned[_col("sparsity")] == "50.0 %"
    text = res.html.read_text()
    assert f"pruned50 ({env.pruned[:8]}): no ESTOI, p50 ms, p90 ms, RTF, × torch fp32." in text

    with res.csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["noisy input", "base", "s1e5", "pruned50"]
    by_id = {r["run_id"]: r for r in rows}
    for run_id, logged in ((env.baseline, BASELINE), (env.s1e5, S1E5), (env.pruned, PRUNED)):
        for col in COLUMNS:
            cell = by_id[run_id][col]
            assert (float(cell) if cell else None) == logged.get(col), (run_id, col)
    assert float(by_id[env.s1e5]["delta_pesq_wb"]) == pytest.approx(0.1)
    assert by_id[env.pruned]["delta_estoi"] == "" and by_id[env.baseline]["delta_pesq_wb"] == ""
    assert float(rows[0]["stoi"]) == NOISY["stoi"] and rows[0]["size_bytes"] == ""


def test_images_and_audio_are_valid_and_nothing_is_external(env: Store, tmp_path: Path) -> None:
    res = build_report(experiment=EXP, out=tmp_path / "r.html", audio_items=2)
    page = Page(res.html.read_text())
    assert not page.refs and not page.tags & {"script", "link", "iframe"}
    imgs = page.srcs["img"]
    assert len(imgs) >= 4  # per-SNR, Pareto, speed, and the listening plots
    for src in imgs:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data, validate=True).startswith(PNG)
    clips = page.srcs["audio"]
    assert len(clips) == 2 * (2 + 3)  # 2 items x (noisy, clean, 3 runs' enhanced)
    for src in clips:
        head, data = src.split(",", 1)
        raw = base64.b64decode(data, validate=True)
        assert head == "data:audio/wav;base64" and raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
        wave, fs = sf.read(io.BytesIO(raw))
        assert fs == 16000 and len(wave) == 8000
    small = build_report(
        experiment=EXP, out=tmp_path / "s.html", audio_items=1, audio_max_bytes=4044
    )  # 2000 samples of 16-bit PCM + header
    clips = Page(small.html.read_text()).srcs["audio"]
    assert len(clips) == 5
    wave, _ = sf.read(io.BytesIO(base64.b64decode(clips[0].split(",", 1)[1])))
    assert len(wave) == 2000 and "first 0.125 s of 0.5 s" in small.html.read_text()


def test_newest_run_per_variant_unless_all_runs(env: Store, tmp_path: Path) -> None:
    res = build_report(experiment=EXP, out=tmp_path / "r.html")
    assert res.runs == (env.baseline, env.s1e5, env.pruned)
    assert f"{env.old_s1e5[:8]} (s1e5): an older run of the same variant" in res.html.read_text()
    every = build_report(experiment=EXP, out=tmp_path / "all.html", all_runs=True)
    assert set(every.runs) == {env.baseline, env.old_s1e5, env.s1e5, env.pruned}
    picked = build_report(run_ids=[env.pruned[:8], env.old_s1e5], out=tmp_path / "new")
    assert picked.runs == (env.pruned, env.old_s1e5)  # in the order given; "new" is a folder
    assert picked.html == tmp_path / "new" / f"runs-{env.pruned[:8]}-{env.old_s1e5[:8]}.html"
    assert "deltas are against its baseline run" in picked.html.read_text()


def test_listening_section(env: Store, tmp_path: Path) -> None:
    import html

    res = build_report(experiment=EXP, out=tmp_path / "r.html")  # found via compressed_run tag
    assert res.listening == (env.listening,)
    text = res.html.read_text()
    m = env.listening_metrics
    claim = m["claim"]  # decided once, by the analysis; the report shows what was stored
    assert f"{m['pc']:.3f} ({int(m['k'])}/{int(m['n'])})" in text
    assert (f"{claim.estimate:.3f}, 90% CI [{claim.lower:.3f}, {claim.upper:.3f}] (gee"
            in text)
    assert claim.lower < 0.5 and claim.upper > 0.575  # 160 trials: too few to decide
    assert '<span class="verdict inconclusive">inconclusive</span>' in text
    assert html.escape(claim.text, quote=False) in text
    assert f"{m['dprime_differencing']:.2f}" in text and "8 / 8" in text
    explicit = build_report(run_ids=[env.baseline], study="sim", out=tmp_path / "s.html")
    assert explicit.listening == (env.listening,)
    none = build_report(run_ids=[env.pruned], out=tmp_path / "n.html")
    assert none.listening == () and "No listening-study analysis" in none.html.read_text()
    with pytest.raises(StudyError, match=r"seofp.study='nope'.*with an analysis there: sim"):
        build_report(experiment=EXP, study="nope", out=tmp_path / "x.html")


def test_unknown_experiment_or_run_names_what_exists(env: Store, tmp_path: Path) -> None:
    with pytest.raises(
        TrackingError,
        match=r"Expected an MLflow experiment named 'nope' .* "
        r"experiments there: .*'paper'",
    ):
        build_report(experiment="nope", out=tmp_path / "r.html")
    with pytest.raises(
        TrackingError, match=r"found no run 'feedbeef'; newest runs there: " + env.listening[:8]
    ):
        build_report(run_ids=["feedbeef"], out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_exit_status_output_and_atomic_overwrite(
    env: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.COMMANDS["report"][0] == "seofp_lab.report.cli"
    out = tmp_path / "named.html"
    out.write_text("old")
    assert cli.main(["report", "--experiment", EXP, "--out", str(out), "--title", "T<1>"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(out)
    text = out.read_text()
    assert "<title>T&lt;1&gt;</title>" in text and out.with_suffix(".csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.csv", "named.html"]  # no tmp
    assert cli.main(["report", env.s1e5[:10], "--audio-items", "0"]) == 0
    default = Path(capsys.readouterr().out.splitlines()[0])
    assert default == env.root / "workspace" / "reports" / f"runs-{env.s1e5[:8]}.html"
    assert "<audio" not in default.read_text()
    assert cli.main(["report", "--experiment", "nope", "--out", str(out)]) == 2
    assert "Expected an MLflow experiment named 'nope'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = blocker / "sub" / "r.html"  # a folder that cannot be created: checked before any work
    assert cli.main(["report", "--experiment", "nope", "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Expected a writable folder" in err and "nope" not in err
    with pytest.raises(ReportError, match="ending in .html"):
        build_report(experiment=EXP, out=tmp_path / "r.txt")


def test_a_run_with_no_metrics_renders_dashes_and_escapes_names(
    fresh: Path, tmp_path: Path
) -> None:
    run_id = _run("<b>bare</b>", {tracking.TAG_ROLE: "seofp", tracking.TAG_FORMAT: "s1e5"}, {})
    res = build_report(run_ids=[run_id], out=tmp_path / "r.html")
    text = res.html.read_text()
    page = Page(text)
    row = _row(page, "<b>bare</b>")  # shown as text, not markup
    assert "<b>bare</b>" not in text and row[2:] == ["— 1"] * len(COLUMNS)
    assert not page.srcs["img"] and "None of the compared runs logged audio" in text
    rows = list(csv.DictReader(res.csv.open()))
    assert len(rows) == 1 and all(rows[0][c] == "" for c in COLUMNS)


def test_a_moved_workspace_still_finds_its_artifacts(
    tmp_path: Path, blank_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _workspace(old, blank_db, monkeypatch)
    run_id = _run("base", _tags("baseline", "fp32"), BASELINE, audio=0)
    shutil.move(old, new)  # the store keeps absolute file:// URIs into old/
    monkeypatch.setenv("SEOFP_WORKSPACE", str(new))
    res = build_report(run_ids=[run_id], out=tmp_path / "r.html")
    assert len(Page(res.html.read_text()).srcs["audio"]) == 2 * 3


def test_variant_deltas_against_control_and_baseline(workspace: Path) -> None:
    """The table shows each variant's delta to its equal-budget control first, to its baseline
    second; the CSV carries both."""
    noisy = {f"noisy_{k}": v for k, v in NOISY.items()}
    base = _run("baseline", _tags("baseline", "fp32"), {**BASELINE, **noisy})
    control_metrics = {**BASELINE, "pesq_wb": 2.05, "stoi": 0.905}
    control = _run("control", _tags("control", "fp32", baseline=base), control_metrics)
    variant_tags = {**_tags("seofp", "s1e5", baseline=base), tracking.TAG_CONTROL: control,
                    tracking.TAG_PAIRED_AGAINST: control}
    paired = {"paired_pesq_wb_delta": 0.05, "paired_pesq_wb_ci_low": 0.01,
              "paired_pesq_wb_ci_high": 0.09, "paired_pesq_wb_n_units": 41.0,
              "baseline_paired_pesq_wb_delta": 0.1, "baseline_paired_pesq_wb_ci_low": 0.07,
              "baseline_paired_pesq_wb_ci_high": 0.13, "baseline_paired_pesq_wb_n_units": 41.0}
    variant = _run("s1e5", variant_tags, {**S1E5, **paired})
    report = build_report(run_ids=(base, control, variant), out=workspace / "r")
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(report.csv.read_text()))}
    assert rows["s1e5"]["control_run"] == control
    assert float(rows["s1e5"]["delta_vs_control_pesq_wb"]) == pytest.approx(2.1 - 2.05)
    assert float(rows["s1e5"]["delta_pesq_wb"]) == pytest.approx(2.1 - 2.0)
    assert rows["control"]["delta_vs_control_pesq_wb"] == ""
    html = report.html.read_text()
    assert "ctl +0.050" in html and "base +0.100" in html
    block = html[html.index("<h2>vs control and baseline (paired)</h2>"):]
    assert f"control {control[:8]}" in block and f"baseline {base[:8]}" in block
    assert "+0.050 [+0.010, +0.090]" in block and "+0.100 [+0.070, +0.130]" in block


def test_baseline_block_without_the_control_comparison(workspace: Path) -> None:
    """A variant whose control was never evaluated still shows its comparison with the baseline,
    labelled as such and with that comparison's own unit."""
    base = _run("baseline", _tags("baseline", "fp32"), BASELINE)
    control = _run("control", _tags("control", "fp32", baseline=base), BASELINE)
    variant_tags = {**_tags("seofp", "s1e5", baseline=base), tracking.TAG_CONTROL: control,
                    tracking.TAG_BASELINE_PAIRED_AGAINST: base,
                    tracking.TAG_BASELINE_PAIRED_UNIT: "speaker"}
    paired = {"baseline_paired_pesq_wb_delta": 0.1, "baseline_paired_pesq_wb_ci_low": 0.07,
              "baseline_paired_pesq_wb_ci_high": 0.13, "baseline_paired_pesq_wb_n_units": 12.0}
    variant = _run("s1e5", variant_tags, {**S1E5, **paired})
    html = build_report(run_ids=(base, control, variant), out=workspace / "r").html.read_text()
    block = html[html.index("<h2>vs control and baseline (paired)</h2>"):]
    assert f"baseline {base[:8]}" in block and f"control {control[:8]}" not in block
    assert "+0.100 [+0.070, +0.130]" in block and "CI over talkers" in block


def test_diverged_and_killed_runs_are_visible(fresh: Path, tmp_path: Path) -> None:
    """A run the divergence guard flagged is marked in its row, the CSV and a note; a KILLED
    run is listed as not shown, with its status."""
    why = "validation SI-SDR 1.90 dB ended below the noisy input's 12.70 dB"
    _run("fine", _tags("baseline", "fp32"), BASELINE)
    _run("wild", {**_tags("seofp", "s1e5"), tracking.TAG_DIVERGED: why}, BASELINE)
    with pytest.raises(KeyboardInterrupt), tracking.start_run(EXP, "stopped",
                                                              _tags("pruned", "fp32")):
        raise KeyboardInterrupt
    res = build_report(experiment=EXP, out=tmp_path / "r.html")
    text = res.html.read_text()
    assert "wild [DIVERGED]" in text and why.replace("'", "&#39;") in text
    assert "stopped): status KILLED" in text
    labels = [r["label"] for r in csv.DictReader(res.csv.open())]
    assert "wild [DIVERGED]" in labels and "fine" in labels
