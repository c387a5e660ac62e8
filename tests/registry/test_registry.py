"""Registration, gate, promotion and serving against a real SQLite MLflow store in a temporary MM15_HOME.

One store per module, two tiny checkpoints (untrained, different weights): `mm15-tiny` goes through the
pipeline's path (register, gate), `mm15-other` through a person's (`mm15 promote`, with and without force).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mm15.cli import app
from mm15.errors import UserError
from mm15.registry import (
    checkpoint_digest,
    gate,
    list_models,
    model_card,
    model_name,
    promote,
    register_model,
)
from mm15.registry.pyfunc import example_png

runner = CliRunner()
TRACKED = {"general": 30.0, "refer_ground": 5.0, "multi_image": 8.0}
GOOD = {"categories": TRACKED | {"text_rich": 20.0, "knowledge": 10.0}, "mmbase": 20.0}
# a better MMBase, but text_rich drops by more than the tolerance (2 points)
WORSE = {"categories": TRACKED | {"general": 36.3, "text_rich": 16.9, "knowledge": 10.0}, "mmbase": 21.07}
LINEAGE = {"mm15.preset": "tiny", "mm15.catalog_snapshot": "3", "mm15.manifest_hash": "abc123"}


def card(scores: dict) -> str:
    return model_card(
        name="mm15-tiny",
        preset="tiny",
        training={},
        manifests={},
        scores=scores,
        baseline=None,
        lineage=LINEAGE,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """MM15_HOME (with its SQLite MLflow store) for this module, and two checkpoint folders."""
    from mm15.model.presets import build_model, build_processor

    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MM15_HOME", str(root / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        processor = build_processor("tiny")
        torch.manual_seed(0)
        model = build_model("tiny", processor)
        folders = []
        for k in range(2):
            folder = root / f"checkpoint-{k}"
            if k:
                with torch.no_grad():
                    next(model.parameters()).add_(0.01)
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
            (folder / "training_state.pt").write_bytes(b"optimizer state: not part of the model")
            folders.append(folder)
        yield {"home": root / "home", "checkpoints": folders}


@pytest.fixture(scope="module")
def tiny(store):
    """mm15-tiny: v1 (GOOD) registered and gated, then v2 (WORSE) registered and gated."""
    first, second = store["checkpoints"]
    name = model_name("tiny")
    v1 = register_model(first, name, tags=LINEAGE, scores=GOOD, card=card(GOOD))
    d1 = gate(name, v1)
    v2 = register_model(second, name, tags=LINEAGE, scores=WORSE, card=card(WORSE))
    d2 = gate(name, v2)
    return {"name": name, "versions": (v1, v2), "decisions": (d1, d2)}


def client():
    from mm15.tracking import client as tracking_client

    return tracking_client()


def runs_of_models_experiment() -> int:
    c = client()
    return len(c.search_runs([c.get_experiment_by_name("mm15-models").experiment_id]))


def test_model_name():
    assert model_name("tiny") == "mm15-tiny"


def test_register_is_idempotent(store, tiny):
    assert tiny["versions"] == (1, 2)
    runs = runs_of_models_experiment()
    again = register_model(store["checkpoints"][0], "mm15-tiny", tags=LINEAGE, scores=GOOD, card="other")
    assert again == 1
    assert runs_of_models_experiment() == runs == 2
    assert len(client().search_model_versions("name = 'mm15-tiny'")) == 2


def test_version_carries_lineage_scores_digest_card_and_signature(store, tiny):
    import mlflow

    from mm15.tracking import download_model

    version = client().get_model_version("mm15-tiny", "1")
    tags = version.tags
    assert {k: tags[k] for k in LINEAGE} == LINEAGE
    assert tags["mm15.git_commit"]  # lineage_tags()
    assert tags["mm15.score.text_rich"] == "20.0" and tags["mm15.score.mmbase"] == "20.0"
    digest = checkpoint_digest(store["checkpoints"][0])
    assert tags["mm15.checkpoint_digest"] == digest and len(digest) == 64
    assert version.description == card(GOOD)
    metrics = client().get_run(version.run_id).data.metrics
    assert metrics["eval/mmbase"] == 20.0 and metrics["eval/category/general"] == 30.0

    folder = download_model("models:/mm15-tiny/1")
    assert (folder / "README.md").read_text() == card(GOOD)
    assert (folder / "model.safetensors").is_file() and not (folder / "training_state.pt").exists()

    signature = mlflow.models.get_model_info("models:/mm15-tiny/1").signature
    assert signature.inputs.input_names() == ["image", "prompt"]
    assert [c.type.name for c in signature.inputs.inputs] == ["binary", "string"]
    assert signature.outputs.inputs[0].type.name == "string"
    assert signature.params.params[0].name == "max_new_tokens"


def test_digest_ignores_training_state_and_changes_with_the_weights(store, tmp_path):
    first, second = store["checkpoints"]
    assert checkpoint_digest(first) != checkpoint_digest(second)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in first.iterdir():
        if path.name != "training_state.pt":
            (copy / path.name).write_bytes(path.read_bytes())
    assert checkpoint_digest(copy) == checkpoint_digest(first)


def test_gate_promotes_the_first_and_keeps_the_champion_against_a_worse_one(tiny):
    first, second = tiny["decisions"]
    assert first.promoted and first.champion is None and first.reason.startswith("first version")
    assert not second.promoted and second.champion == 1
    assert second.reason == "text_rich dropped 3.10 points (tolerance 2.00)"
    assert second.deltas["mmbase"] == pytest.approx(1.07) and second.deltas["text_rich"] == pytest.approx(
        -3.1
    )
    aliases = client().get_registered_model("mm15-tiny").aliases
    assert aliases == {"champion": 1, "challenger": 2}
    tags = client().get_model_version("mm15-tiny", "2").tags
    assert tags["mm15.gate.promoted"] == "false" and tags["mm15.gate.champion"] == "1"
    assert tags["mm15.gate.reason"] == second.reason and tags["mm15.gate.delta.text_rich"] == "-3.1000"
    assert client().get_model_version("mm15-tiny", "1").tags["mm15.gate.promoted"] == "true"


def test_gate_twice_returns_the_recorded_decision(tiny):
    assert gate("mm15-tiny", 2) == tiny["decisions"][1]
    assert client().get_registered_model("mm15-tiny").aliases == {"champion": 1, "challenger": 2}


def test_promote_by_rule_then_by_force(store, tiny):
    first, second = store["checkpoints"]
    assert register_model(first, "mm15-other", tags=LINEAGE, scores=GOOD, card=card(GOOD)) == 1
    assert promote("mm15-other", 1).promoted  # the first version: no champion yet
    assert register_model(second, "mm15-other", tags=LINEAGE, scores=WORSE, card=card(WORSE)) == 2

    refused = promote("mm15-other", 2)
    assert not refused.promoted and not refused.forced and "text_rich dropped 3.10" in refused.reason
    assert client().get_registered_model("mm15-other").aliases == {"champion": 1}

    result = runner.invoke(app, ["promote", "mm15-other", "2", "--force", "--json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["name"] == "mm15-other" and decision["promoted"] and decision["forced"]
    assert decision["champion"] == 1 and "text_rich dropped 3.10" in decision["reason"]
    assert client().get_registered_model("mm15-other").aliases == {"champion": 2}
    tags = client().get_model_version("mm15-other", "2").tags
    assert tags["mm15.gate.forced"] == "true" and tags["mm15.gate.promoted"] == "true"

    result = runner.invoke(app, ["promote", "mm15-other", "2"])
    assert result.exit_code == 0 and "champion already" in result.output


def test_promote_prints_the_decision_and_deltas(tiny):
    result = runner.invoke(app, ["promote", "mm15-tiny", "2"])
    assert result.exit_code == 0, result.output
    assert "mm15-tiny version 2 not promoted, against champion version 1" in result.output
    assert "text_rich dropped 3.10 points" in result.output
    assert "MMBase" in result.output and "+1.07" in result.output and "-3.10" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "mm15-tiny", "9"], "model 'mm15-tiny' has no version 9 (versions: 1, 2)"),
        (["promote", "mm15-nothing", "1"], "no registered model 'mm15-nothing'"),
        (["models", "list", "mm15-nothing"], "no registered model 'mm15-nothing'"),
    ],
)
def test_unknown_models_and_versions_are_user_errors(tiny, args, message):
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_list_models(tiny):
    rows = list_models("mm15-tiny")
    assert [(r["name"], r["version"], r["aliases"]) for r in rows] == [
        ("mm15-tiny", 1, ["champion"]),
        ("mm15-tiny", 2, ["challenger"]),
    ]
    assert rows[1]["mmbase"] == 21.07 and rows[1]["categories"]["text_rich"] == 16.9
    assert rows[1]["promoted"] is False and "text_rich dropped" in rows[1]["reason"]
    assert rows[0]["created"].endswith("+00:00") and rows[0]["run_id"]
    assert rows[0]["description"].startswith("mm15-tiny: the tiny preset")
    assert {r["name"] for r in list_models()} >= {"mm15-tiny"}

    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = [r for r in json.loads(result.output) if r["name"] == "mm15-tiny"]
    assert listed == json.loads(json.dumps(rows))
    result = runner.invoke(app, ["models", "list", "mm15-tiny"])
    assert result.exit_code == 0, result.output
    for text in ("model", "MMBase", "text_rich", "champion", "challenger", "21.07", "16.90", "no"):
        assert text in result.output


def test_the_champion_loads_for_evaluation(tiny):
    from mm15.eval.generate import generate, load_model

    loaded = load_model("models:/mm15-tiny@champion", "cpu")
    assert loaded.name == "models:/mm15-tiny@champion"
    answers = generate(loaded, [([{"role": "user", "content": "<image>\nWhat?"}], [example_png()])], 3)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_the_champion_predicts_through_pyfunc(tiny):
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model("models:/mm15-tiny@champion")
    frame = pd.DataFrame(
        {
            "image": [example_png(), None, example_png()],
            "prompt": ["What colour is the shape?", "Say hello.", "<image>\nWhere is the disc?"],
        }
    )
    answers = list(model.predict(frame, params={"max_new_tokens": 4}))
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert answers[0] == list(model.predict(frame.iloc[:1], params={"max_new_tokens": 4}))[0]  # batch-free


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_serves_the_registered_model(store, tiny, tmp_path):
    from mm15.tracking import tracking_uri

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env |= {"MLFLOW_TRACKING_URI": tracking_uri(), "MM15_HOME": str(store["home"])}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                *(f"{bin_dir}/mlflow", "models", "serve", "-m", "models:/mm15-tiny/1"),
                *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no /ping answer in 120 s: " + log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        body = {
            "dataframe_split": {
                "columns": ["image", "prompt"],
                "data": [[base64.b64encode(example_png()).decode(), "What colour is the shape?"]],
            },
            "params": {"max_new_tokens": 4},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
            predictions = json.loads(answer.read())["predictions"]
        assert len(predictions) == 1 and isinstance(predictions[0], str)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
