"""The promotion rule as a table, its configuration file, and decisions as version tags (no MLflow here)."""

from __future__ import annotations

import pytest

from mm15.config import ConfigError
from mm15.registry import Decision, GateConfig, decide, load_gate_config

CONFIG = GateConfig(
    tolerance=2.0, tracked=("general", "text_rich", "knowledge", "refer_ground", "multi_image")
)
CHAMPION = {
    "categories": {"general": 40.0, "text_rich": 30.0, "knowledge": 20.0, "refer_ground": 10.0, "ocr": 50.0},
    "mmbase": 30.0,
}


def challenger(mmbase: float, **categories: float) -> dict:
    return {"categories": CHAMPION["categories"] | categories, "mmbase": mmbase}


@pytest.mark.parametrize(
    ("scores", "promoted", "reason"),
    [
        (challenger(31.0), True, "MMBase 31.00 beats 30.00 (+1.00)"),
        (challenger(30.0), False, "MMBase 30.00 did not improve on 30.00"),
        (challenger(29.5, general=45.0), False, "MMBase 29.50 did not improve on 30.00"),
        (challenger(35.0, text_rich=28.0), True, "beats"),  # a drop of exactly the tolerance passes
        (challenger(35.0, text_rich=27.99), False, "text_rich dropped 2.01 points (tolerance 2.00)"),
        (challenger(35.0, text_rich=26.9), False, "text_rich dropped 3.10 points (tolerance 2.00)"),
        (challenger(35.0, ocr=0.0), True, "beats"),  # ocr is not tracked
        (challenger(35.0, refer_ground=7.9, knowledge=17.0), False, "knowledge dropped 3.00 points"),
        (
            challenger(30.0, text_rich=20.0),
            False,
            "MMBase 30.00 did not improve on 30.00; text_rich dropped 10.00",
        ),
    ],
)
def test_rule_table(scores, promoted, reason):
    result, why, deltas = decide(scores, CHAMPION, CONFIG)
    assert result is promoted
    assert reason in why
    assert deltas["mmbase"] == pytest.approx(scores["mmbase"] - 30.0)
    assert set(deltas) == {
        "general",
        "text_rich",
        "knowledge",
        "refer_ground",
        "mmbase",
    }  # tracked and scored


def test_the_first_version_is_promoted():
    assert decide(challenger(1.0), None, CONFIG) == (True, "first version: no champion to beat", {})


def test_tolerance_boundary_is_inclusive_despite_float_error():
    # 48.1 - 50.1 is -2.0000000000000036 in floating point: still exactly the tolerance in hundredths
    champion = {"categories": {"general": 50.1}, "mmbase": 10.0}
    assert decide({"categories": {"general": 48.1}, "mmbase": 11.0}, champion, CONFIG)[0]
    assert not decide({"categories": {"general": 48.09}, "mmbase": 11.0}, champion, CONFIG)[0]


def test_a_tracked_category_the_challenger_lost_blocks():
    promoted, reason, _ = decide({"categories": {"general": 99.0}, "mmbase": 99.0}, CHAMPION, CONFIG)
    assert not promoted
    assert "text_rich has no score (champion 30.00)" in reason


def test_zero_tolerance_blocks_any_drop():
    strict = GateConfig(tolerance=0.0, tracked=("general",))
    assert decide(challenger(31.0, general=40.0), CHAMPION, strict)[0]
    assert not decide(challenger(31.0, general=39.99), CHAMPION, strict)[0]


def test_decision_tags_round_trip():
    decision = Decision(False, "text_rich dropped 3.10 points (tolerance 2.00)", 2, 1, {"text_rich": -3.1})
    tags = decision.as_tags()
    assert tags == {
        "mm15.gate.promoted": "false",
        "mm15.gate.reason": "text_rich dropped 3.10 points (tolerance 2.00)",
        "mm15.gate.champion": "1",
        "mm15.gate.forced": "false",
        "mm15.gate.delta.text_rich": "-3.1000",
    }
    assert Decision.from_tags(2, tags) == decision
    assert Decision(True, "first", 1, None).as_tags()["mm15.gate.champion"] == "none"


def test_default_config_file():
    config = load_gate_config()
    assert config == GateConfig(2.0, ("general", "text_rich", "knowledge", "refer_ground", "multi_image"))


def test_config_respects_mm15_catalogs(tmp_path, monkeypatch):
    (tmp_path / "promotion.yaml").write_text("tolerance: 0.5\ntracked: [ocr]\n")
    monkeypatch.setenv("MM15_CATALOGS", str(tmp_path))
    assert load_gate_config() == GateConfig(0.5, ("ocr",))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tolerance: -1\ntracked: [general]\n", "tolerance: input should be greater than or equal to 0"),
        ("tolerance: 1\ntracked: [general, vibes]\n", "tracked.1: input should be"),
        ("tolerance: 1\ntracked: [general]\nmargin: 3\n", "margin: unknown field"),
        ("tolerance: 1\ntracked: [general, general]\n", "tracked: 'general' is listed twice"),
        ("tracked: [general]\n", "tolerance: missing field"),
        ("tolerance: lots\ntracked: [general]\n", "tolerance: input should be a valid number"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(tmp_path, text, problem):
    path = tmp_path / "promotion.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_gate_config(path)
    message = str(caught.value)
    assert "promotion.yaml: " in message and problem in message and "\n" not in message
