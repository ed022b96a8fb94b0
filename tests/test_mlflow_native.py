"""MLflow-native: experiment kind, run names, dataset inputs, the registry (``seofp register``,
``models:/NAME@ALIAS``), the served pyfunc model and the runs table in a real browser.

One tiny store (a 1-epoch baseline and an s1e5 variant fine-tuned from it, both evaluated on four
test mixtures) serves every test of the module."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tiny import TINY_TRAINING

from seofp_lab import tracking
from seofp_lab.config import CONFIGS_DIR, load_config
from seofp_lab.errors import TrackingError

TINY = (*TINY_TRAINING, "train.max_epochs=1", "evaluation.audio_examples=0",
        "evaluation.max_utterances=4",  # the runs' own evaluation: headline scores
        "tracking.experiment=native-test")
METRICS = ["stoi", "si_sdr"]
CHROMIUM = "/usr/bin/chromium"
BIN = os.path.dirname(sys.executable)
ROOT = Path(__file__).resolve().parents[1]
# the module's store trains and evaluates two tiny models (about a minute on an idle 2-core
# machine) inside the first test's time, and the servers take tens of seconds to start
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    from seofp_lab.evaluate.run import evaluate
    from seofp_lab.train.run import train

    ws = tmp_path_factory.mktemp("native") / "workspace"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEOFP_WORKSPACE", str(ws))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        base_cfg = load_config(CONFIGS_DIR / "experiment" / "demo_baseline.yaml", list(TINY))
        base = train(base_cfg, progress=False).run_id
        evaluate(base, metrics=METRICS, workers=1)
        var_cfg = load_config(CONFIGS_DIR / "experiment" / "demo_s1e5.yaml",
                              [*TINY, f"compression.init_from={base}",
                               f"tracking.baseline_run={base}"])
        variant = train(var_cfg, progress=False).run_id
        evaluate(variant, metrics=METRICS, workers=1)
        yield {"ws": ws, "baseline": base, "variant": variant}


@pytest.fixture
def env(store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEOFP_WORKSPACE", str(store["ws"]))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], log: Path, port: int, seconds: float = 240) -> subprocess.Popen:
    """Start a server on loopback and wait for its port; fail with its log if it never opens."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               MLFLOW_TRACKING_URI=tracking.tracking_uri(),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            cwd=log.parent)
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{cmd[:3]} exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{cmd[:3]} did not open port {port} in {seconds:.0f} s: "
                f"{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ------------------------------------------------------------------------ experiments, datasets
def test_experiment_is_a_model_training_experiment_and_names_say_what_runs_are(env) -> None:
    exp = tracking.client().get_experiment_by_name("native-test")
    assert exp.tags[tracking.TAG_EXPERIMENT_KIND] == "custom_model_development"
    base = tracking.get_run(env["baseline"]).info.run_name
    variant = tracking.get_run(env["variant"]).info.run_name
    assert base == "baseline fp32 · embedded · demo_baseline"
    assert variant == "seofp s1e5 · embedded · demo_s1e5"
    # an experiment made without the tag gets it when a run is filed there
    eid = tracking.client().create_experiment("made-by-hand")
    assert tracking.experiment_id("made-by-hand") == eid
    tags = tracking.client().get_experiment(eid).tags
    assert tags[tracking.TAG_EXPERIMENT_KIND] == tracking.EXPERIMENT_KIND


def test_training_and_evaluation_log_their_datasets(env) -> None:
    from seofp_lab.datasets import run_inputs

    for key in ("baseline", "variant"):
        inputs = {d["context"]: d for d in run_inputs(env[key])}
        assert set(inputs) == {"training", "evaluation"}, inputs
        train, test = inputs["training"], inputs["evaluation"]
        assert train["name"] == "embedded-train" and train["split"] == "train"
        assert train["profile"]["utterances"] > 0 and train["profile"]["talkers"] == 3
        assert Path(train["source"]).name == "embedded"
        assert test["name"] == "embedded-test" and test["split"] == "test"
        meta = json.loads((Path(test["source"]) / "testset.json").read_text())
        assert test["digest"] == meta["manifest_sha256"][:16]  # the verified manifest hash
        assert test["profile"]["mixtures"] == meta["items"]
        assert test["profile"]["talkers"] >= 1 and test["profile"]["snrs_db"]
    # same test set, same digest: the UI shows the two runs were scored on the same files
    digests = {d["digest"] for k in ("baseline", "variant") for d in run_inputs(env[k])
               if d["context"] == "evaluation"}
    assert len(digests) == 1


# ----------------------------------------------------------------------------------- registry
def test_register_tags_the_version_and_models_uris_resolve_everywhere(env) -> None:
    from seofp_lab.registry import register
    from seofp_lab.report.runs import resolve_run

    reg = register(env["variant"], "native-model", alias="candidate")
    assert reg.verdict.overall == "no control"  # fine-tuned without a control: no verdict
    assert reg.alias is None  # so no candidate alias
    mv = tracking.client().get_model_version("native-model", reg.version)
    assert mv.run_id == env["variant"]
    assert mv.tags["seofp.verdict"] == "no control"
    run = tracking.get_run(env["variant"])
    assert float(mv.tags["metric.stoi"]) == pytest.approx(run.data.metrics["stoi"], rel=1e-5)
    assert int(mv.tags["metric.size_bytes"]) == int(run.data.metrics["size_bytes"])
    assert mv.tags[tracking.TAG_FORMAT] == "s1e5"
    uri = f"models:/native-model/{reg.version}"
    assert tracking.resolve_run_id(uri) == env["variant"]
    assert resolve_run(uri).run_id == env["variant"]
    from seofp_lab.listening.stimuli import resolve_run as study_run

    assert study_run(uri, "native-test") == env["variant"]
    with pytest.raises(TrackingError, match=r"alias @candidate .* has no aliases"):
        tracking.resolve_run_id("models:/native-model@candidate")
    with pytest.raises(TrackingError, match=r"registered model 'nope'.*native-model"):
        tracking.resolve_run_id("models:/nope@candidate")
    with pytest.raises(TrackingError, match="models:/NAME@ALIAS"):
        tracking.resolve_run_id("models:/a/b/c")


def _log_paired(run_id: str, control: str, ci_low: float, n_units: float) -> None:
    """Give a run a control and paired_* numbers as `seofp evaluate` logs them."""
    with tracking.resume_run(run_id):
        tracking.set_tags({tracking.TAG_CONTROL: control, tracking.TAG_PAIRED_AGAINST: control})
        metrics = {}
        for metric, margin in (("pesq_wb", 0.05), ("stoi", 0.01), ("si_sdr", 0.5)):
            metrics.update({f"paired_{metric}_delta": ci_low + margin,
                            f"paired_{metric}_ci_low": ci_low * margin,
                            f"paired_{metric}_ci_high": 2 * margin,
                            f"paired_{metric}_margin": margin,
                            f"paired_{metric}_n_units": n_units})
        tracking.log_metrics(metrics)


def test_alias_only_on_a_non_inferior_verdict(env) -> None:
    """Runs the real registry path on the real variant run; its verdict comes from the logged
    paired numbers: CI low above -margin with 41 units is non-inferior."""
    from seofp_lab.registry import register, verdict_of

    run_id = env["variant"]
    _log_paired(run_id, env["baseline"], ci_low=-0.5, n_units=41)  # low = -margin/2
    assert verdict_of(tracking.get_run(run_id)).overall == "non-inferior"
    first = register(run_id, "native-alias", alias="candidate")
    assert first.alias == "candidate" and first.verdict.overall == "non-inferior"
    assert tracking.resolve_run_id("models:/native-alias@candidate") == run_id
    _log_paired(run_id, env["baseline"], ci_low=-3.0, n_units=41)  # high below -margin? no:
    v = verdict_of(tracking.get_run(run_id))
    assert v.overall == "inconclusive", v  # CI [-3 m, 2 m] spans -margin
    second = register(run_id, "native-alias", alias="candidate")
    assert second.alias is None
    aliases = tracking.client().get_registered_model("native-alias").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"candidate": first.version}  # unmoved
    _log_paired(run_id, env["baseline"], ci_low=-0.5, n_units=4)
    assert verdict_of(tracking.get_run(run_id)).overall == "insufficient"  # too few units
    _log_paired(run_id, env["baseline"], ci_low=-0.5, n_units=41)  # leave it non-inferior


def test_demo_registers_its_seofp_run_and_the_cli_prints_the_verdict(
        env, capsys: pytest.CaptureFixture[str]) -> None:
    from seofp_lab.cli import main
    from seofp_lab.demo import DemoResult, register_candidate

    _log_paired(env["variant"], env["baseline"], ci_low=-0.5, n_units=41)
    reg = register_candidate(DemoResult(runs={"SEOFP s1e5": env["variant"]}), "native-demo")
    assert reg is not None and reg.alias == "candidate"
    assert tracking.resolve_run_id("models:/native-demo@candidate") == env["variant"]
    assert register_candidate(DemoResult(runs={"fp32 baseline": env["baseline"]})) is None
    out = capsys.readouterr().out
    assert "verdict against its control: non-inferior" in out and "@candidate" in out
    # the baseline has no control: registered, but no alias
    assert main(["register", env["baseline"][:8], "--name", "native-cli", "--alias",
                 "candidate"]) == 0
    out = capsys.readouterr().out
    assert "registered native-cli version 1" in out and "alias @candidate not set" in out
    assert main(["register", "models:/native-cli@nope"]) == 2
    assert "alias @nope" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ serving
def _post(url: str, payload: object) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_served_model_answers_like_seofp_enhance(env, tmp_path: Path) -> None:
    from seofp_lab.infer.enhance_cli import enhance_files, model_path
    from seofp_lab.registry import register

    _log_paired(env["variant"], env["baseline"], ci_low=-0.5, n_units=41)  # non-inferior
    reg = register(env["variant"], "native-served", alias="candidate")
    assert reg.alias == "candidate"
    wav = tmp_path / "in.wav"  # 2 s at 22.05 kHz, stereo: the model resamples and downmixes
    rng = np.random.default_rng(0)
    sf.write(wav, (0.1 * rng.standard_normal((44100, 2))).astype(np.float32), 22050,
             subtype="PCM_16")
    expected = enhance_files(model_path("models:/native-served@candidate"), [wav],
                             tmp_path / "out")[0].out
    port = _free_port()
    proc = _start([f"{BIN}/mlflow", "models", "serve", "-m", "models:/native-served@candidate",
                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                  tmp_path / "serve.log", port)
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        deadline = time.time() + 60  # the port opens before the model is loaded
        while True:
            status, body = _post(url, {"dataframe_records": [
                {"wav": base64.b64encode(wav.read_bytes()).decode()}]})
            if status != 503 or time.time() > deadline:
                break
            time.sleep(1)
        assert status == 200, body
        got, rate = sf.read(io.BytesIO(base64.b64decode(body["predictions"][0]["wav"])),
                            dtype="float32")
        want, want_rate = sf.read(expected, dtype="float32")
        assert rate == want_rate == 22050
        np.testing.assert_array_equal(got, want)  # bit-equal samples
        # a float array at 16 kHz answers a float array
        x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
        status, body = _post(url, {"inputs": {"audio": x.tolist(), "sample_rate": 16000}})
        assert status == 200, body
        from seofp_lab.infer.engine import load

        direct = load(model_path("models:/native-served@candidate")).enhance(x)
        np.testing.assert_allclose(body["predictions"][0]["audio"], direct, atol=2 ** -15)
        for payload, words in (
            ({"dataframe_records": [{"wav": "not base64!"}]}, "not valid base64"),
            ({"dataframe_records": [{"wav": base64.b64encode(b"hello").decode()}]},
             "does not decode to audio"),
            ({"dataframe_records": [{"samples": [0.0]}]}, "expected a 'wav'"),
            ({"dataframe_records": [{"audio": [0.0] * 4000, "sample_rate": 5}]}, "sample_rate"),
            ({"dataframe_records": [{"audio": [0.0] * 50, "sample_rate": 16000}]}, "row 0"),
        ):
            status, body = _post(url, payload)
            assert 400 <= status < 500, (payload, status, body)
            assert words in body["message"], body
    finally:
        _stop(proc)


# ------------------------------------------------------------------------------------ browser
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(
    "needs Debian's chromium at /usr/bin/chromium: `apt-get install -y chromium "
    "chromium-driver` (as root)"))
def test_runs_table_shows_metrics_and_datasets_in_chromium(env, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from seofp_lab.ui_view import runs_url

    port = _free_port()
    cmd = tracking.ui_command("127.0.0.1", port)  # what `seofp ui` runs
    cmd[0] = f"{BIN}/mlflow"
    proc = _start(cmd, tmp_path / "ui.log", port)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        eid = tracking.client().get_experiment_by_name("native-test").experiment_id
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 2600, "height": 900})  # no column hidden
            page.goto(runs_url(f"http://127.0.0.1:{port}", eid), wait_until="commit",
                      timeout=120_000)  # the UI bundle is large: wait for the text instead
            page.get_by_text("baseline fp32 · embedded · demo_baseline").first.wait_for(
                timeout=120_000)
            page.get_by_text("stoi", exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "runs_table.png"), full_page=True)
            text = page.inner_text("body")
            browser.close()
        print(f"screenshot: {shots / 'runs_table.png'}")
        assert (shots / "runs_table.png").stat().st_size > 10_000
        assert "seofp s1e5 · embedded · demo_s1e5" in text
        assert "embedded-train" in text and "embedded-test" in text  # the Datasets column
        # the seofp view's metric columns, in its order, before any column is picked by hand
        header = text[text.index("Metrics"):text.index("seofp s1e5 · embedded")]
        shown = [m for m in ("stoi", "si_sdr", "size_bytes") if m in header.split()]
        assert shown == ["stoi", "si_sdr", "size_bytes"], header
        assert "Token Usage" not in text  # not the GenAI overview
    finally:
        _stop(proc)
