"""``seofp evaluate RUN --corpus``: a tiny trained run scored on its own test set and on three
test-only corpora (VoiceBank-DEMAND test part, a test/clean + test/noisy folder, a DNS synthetic
folder), in a real MLflow store; then ``seofp compare --corpus`` and the report's runs x corpora
table (docs/corpora.md)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _data_trees import dns_pairs, folder_test_only, vb_test_only
from mlflow.tracking import MlflowClient

from seofp_lab import tracking
from seofp_lab.cli import main
from seofp_lab.config import CONFIGS_DIR, load_config, load_corpus_config
from seofp_lab.errors import PairingError, SeofpError

TINY = [
    "model=blstm_small", "model.hidden=8", "model.layers=1", "train.max_epochs=1",
    "train.batch_size=4", "train.threads=1", "corpus.mixtures_per_epoch=8",
    "corpus.valid_mixtures=4", "corpus.segment_seconds=1.0", "corpus.test_utterances=3",
    "corpus.test_mixtures_per_utterance=1",
    "evaluation.audio_examples=0", "tracking.experiment=corpora",
]
QUALITY = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")
SHIFT = 0.125  # run B = run A's per-utterance scores + SHIFT on every quality metric


@dataclass
class Store:
    root: Path
    data: Path
    run_a: str
    run_b: str


def _fake_b(run_a: str) -> str:
    """Run B: run A's evaluations (own and voicebank_demand) shifted by SHIFT, logged as
    evaluate() logs them, with A as its baseline."""
    from seofp_lab.evaluate.paired_runs import run_scores

    a = tracking.get_run(run_a)
    tags = {k: a.data.tags[k] for k in (tracking.TAG_CORPUS, tracking.TAG_MODEL)}
    tags |= {tracking.TAG_ROLE: "seofp", tracking.TAG_FORMAT: "s1e5",
             tracking.TAG_BASELINE: run_a}
    labels = json.loads(a.data.tags[tracking.TAG_EVAL_CORPORA])
    tags[tracking.TAG_EVAL_CORPORA] = json.dumps(
        {k: labels[k] for k in ("embedded", "voicebank_demand")})
    with tracking.start_run("corpora", "b_shifted", tags) as run_b:
        for corpus, prefix in ((None, ""), ("voicebank_demand", "voicebank_demand/")):
            df = run_scores(run_a, corpus=corpus)
            for m in QUALITY:
                df[f"enhanced_{m}"] += SHIFT
            folder = "evaluation" if corpus is None else f"evaluation/{corpus}"
            tracking.log_table(df.to_dict("records"), f"{folder}/per_utterance.csv")
            tracking.log_metrics({prefix + m: float(df[f"enhanced_{m}"].mean()) for m in QUALITY})
            tracking.log_metrics({prefix + "test_utterances": float(len(df))})
    return run_b


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from seofp_lab.evaluate.run import evaluate
    from seofp_lab.train.run import train

    base = tmp_path_factory.mktemp("corpora")
    data = base / "data"
    vb_test_only(data / "vb", seconds=1.0)
    folder_test_only(data / "folder", seconds=1.0)
    dns_pairs(data / "synthetic" / "no_reverb", seconds=1.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(base / "workspace"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = load_config(CONFIGS_DIR / "experiment" / "demo_baseline.yaml", TINY)
        run_a = train(cfg, progress=False).run_id
        evaluate(run_a, workers=1)  # its own test set: today's names
        # the command, through the CLI
        assert main(["evaluate", run_a[:8], "--corpus",
                     str(CONFIGS_DIR / "corpus" / "voicebank_demand.yaml"),
                     f"corpus.root={data / 'vb'}", "--workers", "1"]) == 0
        evaluate(run_a, workers=1, corpus_name="folder_test",
                 corpus=load_corpus_config("folder", [f"corpus.root={data / 'folder'}"]))
        evaluate(run_a, workers=1, corpus=load_corpus_config(
            "dns", [f"corpus.root={data / 'synthetic' / 'no_reverb'}"]))
        run_b = _fake_b(run_a)
    return Store(base / "workspace", data, run_a, run_b)


@pytest.fixture
def env(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SEOFP_WORKSPACE", str(store.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store


@pytest.mark.slow
def test_each_corpus_logs_readable_metric_names_and_its_own_artifacts(env: Store) -> None:
    client = MlflowClient(tracking.tracking_uri())
    run = client.get_run(env.run_a)
    m = run.data.metrics
    for name in QUALITY:  # the own test set keeps today's names
        assert name in m and f"noisy_{name}" in m
    assert m["test_utterances"] == 3
    # the store accepted (and gives back) every per-corpus key
    for label, n, snrs in (("voicebank_demand", 3, (2.5, 7.5)), ("folder_test", 4, ()),
                           ("dns", 2, (5, 15))):
        assert m[f"{label}/test_utterances"] == n
        for name in QUALITY:
            assert f"{label}/{name}" in m and f"{label}/noisy_{name}" in m
            for snr in snrs:
                assert tracking.metric_key(name, snr=snr, corpus=label) in m
        files = {Path(a.path).name for a in client.list_artifacts(env.run_a,
                                                                 f"evaluation/{label}")}
        assert files == {"per_utterance.csv"} | ({"per_snr.png"} if snrs else set())
    assert "voicebank_demand/pesq_wb_snr2.5" in m and "dns/noisy_stoi_snr15" in m
    history = client.get_metric_history(env.run_a, "pesq_wb")
    assert len(history) == 1  # the other corpora never overwrote the own score
    vb = tracking.download_artifact(env.run_a, "evaluation/voicebank_demand/per_utterance.csv")
    rows = list(csv.DictReader(vb.open()))
    assert [(r["id"], r["speaker"], r["noise"]) for r in rows] == [
        ("p232_001", "p232", "living"), ("p232_002", "p232", "bus"), ("p232_003", "p232", "cafe")]
    assert np.mean([float(r["enhanced_pesq_wb"]) for r in rows]) == pytest.approx(
        m["voicebank_demand/pesq_wb"])


@pytest.mark.slow
def test_the_run_records_its_corpora_and_keeps_audio_and_caches_apart(env: Store) -> None:
    tags = tracking.get_run(env.run_a).data.tags
    labels = json.loads(tags[tracking.TAG_EVAL_CORPORA])
    assert sorted(labels) == ["dns", "embedded", "folder_test", "voicebank_demand"]
    assert len(set(labels.values())) == 4
    details = json.loads(tracking.download_artifact(env.run_a, tracking.CORPORA_ARTIFACT)
                         .read_text())
    assert details["embedded"]["own"] and details["embedded"]["metric_prefix"] == ""
    assert details["voicebank_demand"] | {"engines": None} == {
        "own": False, "testset": labels["voicebank_demand"], "name": "voicebank_demand",
        "kind": "voicebank_demand", "root": str(env.data / "vb"), "items": 3, "engines": None,
        "metric_prefix": "voicebank_demand/", "artifacts": "evaluation/voicebank_demand"}
    for label, digest in labels.items():
        assert (env.root / "testsets" / digest / "noisy_scores.json").is_file()
        folder = env.run_a if label == "embedded" else f"{env.run_a}@{label}"
        manifest = env.root / "enhanced" / folder / "manifest.csv"
        assert len(list(csv.DictReader(manifest.open()))) == details[label]["items"]


@pytest.mark.slow
def test_labels_that_would_mix_test_sets_are_refused(env: Store, tmp_path: Path) -> None:
    from seofp_lab.config import ExperimentConfig
    from seofp_lab.evaluate.corpora import resolve_target
    from seofp_lab.evaluate.run import evaluate

    own = ExperimentConfig.model_validate(tracking.run_config_dict(env.run_a))
    assert resolve_target(env.run_a, own, own.corpus, "ignored").own  # same test set: own names
    other_vb = load_corpus_config("voicebank_demand",
                                  [f"corpus.root={vb_test_only(tmp_path / 'vb2')}"])
    with pytest.raises(SeofpError, match=r"label 'voicebank_demand' .* already names test set "
                       r".*pass --corpus-name"):
        evaluate(env.run_a, corpus=other_vb)
    assert resolve_target(env.run_a, own, other_vb, "vb2").label == "vb2"
    bigger = own.corpus.model_copy(update={"test_utterances": 4})
    with pytest.raises(SeofpError, match=r"other than 'embedded', the name of run .* own corpus"):
        evaluate(env.run_a, corpus=bigger)
    with pytest.raises(SeofpError, match=r"Expected a corpus label .* set --corpus-name"):
        evaluate(env.run_a, corpus=other_vb, corpus_name="v b")


@pytest.mark.slow
def test_compare_pairs_on_a_named_corpus(env: Store, capsys: pytest.CaptureFixture) -> None:
    from seofp_lab.evaluate.paired_runs import after_evaluation, compare_runs, run_scores

    cmp = compare_runs(env.run_a, env.run_b, corpus="voicebank_demand", n_resamples=200)
    assert cmp.n_items == 3
    assert [m.mean_diff for m in cmp.metrics] == pytest.approx([SHIFT] * 5)
    own = compare_runs(env.run_a, env.run_b, corpus="embedded", n_resamples=200)
    assert own.n_items == 3 and own.metrics[0].mean_diff == pytest.approx(SHIFT)
    with pytest.raises(PairingError, match=r"run .* to be evaluated on corpus 'dns' but its "
                       r"evaluated corpora are \['embedded', 'voicebank_demand'\]"):
        compare_runs(env.run_a, env.run_b, corpus="dns")
    # the evaluation hook on another corpus: B's rows against A's scores on that corpus
    rows = run_scores(env.run_b, corpus="voicebank_demand").to_dict("records")
    assert after_evaluation(env.run_b, rows, corpus="voicebank_demand") is not None
    m = tracking.get_run(env.run_b).data.metrics
    assert m["voicebank_demand/paired_pesq_wb_delta"] == pytest.approx(SHIFT)
    assert "paired_pesq_wb_delta" not in m  # the own-corpus comparison is not touched
    assert main(["compare", env.run_a[:8], env.run_b[:8], "--corpus", "voicebank_demand",
                 "--resamples", "200", "--no-log"]) == 0
    out = capsys.readouterr().out
    assert "Runs x corpora" in out and "folder_test" in out and "dns" in out


@pytest.mark.slow
def test_report_shows_runs_by_corpora(env: Store, tmp_path: Path) -> None:
    from seofp_lab.report.build import build_report

    res = build_report(run_ids=[env.run_a, env.run_b], out=tmp_path / "r.html", audio_items=0)
    page = res.html.read_text()
    assert "Across corpora" in page and "folder_test" in page
    assert res.corpora_csv is not None
    rows = list(csv.DictReader(res.corpora_csv.open()))
    got = {(r["row"], r["run_id"][:8], r["corpus"]): r for r in rows}
    a, b = env.run_a[:8], env.run_b[:8]
    assert set(got) == {
        *(("noisy", "", c) for c in ("embedded", "voicebank_demand", "folder_test", "dns")),
        *(("run", a, c) for c in ("embedded", "voicebank_demand", "folder_test", "dns")),
        ("run", b, "embedded"), ("run", b, "voicebank_demand")}
    m = tracking.get_run(env.run_a).data.metrics
    assert float(got[("run", a, "dns")]["pesq_wb"]) == m["dns/pesq_wb"]
    assert float(got[("run", a, "dns")]["n"]) == 2
    assert got[("run", a, "embedded")]["own_corpus"] == "true"
    assert float(got[("run", b, "voicebank_demand")]["stoi"]) == pytest.approx(
        m["voicebank_demand/stoi"] + SHIFT)
