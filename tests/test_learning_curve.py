"""The measured learning curve (issue 27): `evaluate --takes --json` rows -> the bundle's
learning_curve.json (`dictation learning-curve`), read back without torch and plotted on
the "What I learned" page and summarised in the About box."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Two speakers from two sources at 10 and 20 takes; fine-tuning measured on both.
# Means by hand: 10 takes base (0.2+0.4)/2 = 0.3, MAML (0.1+0.3)/2 = 0.2 (gain 1/3),
# fine-tune (0.15+0.25)/2 = 0.2 (gain 1/3); 20 takes base 0.3, MAML (0.05+0.2)/2 = 0.125
# (gain 0.5833), fine-tune (0.1+0.2)/2 = 0.15 (gain 0.5).
ROWS = [
    # An earlier row for the same speaker and takes (a resumed run): the later one counts.
    {"speaker": "s1", "source": "a", "takes": 10, "steps": 5, "base_wer": 0.2, "adapted_wer": 0.9},
    {
        "speaker": "s1",
        "source": "a",
        "takes": 10,
        "steps": 5,
        "base_wer": 0.2,
        "adapted_wer": 0.1,
        "finetune_wer": 0.15,
    },
    {
        "speaker": "s1",
        "source": "a",
        "takes": 20,
        "steps": 10,
        "base_wer": 0.2,
        "adapted_wer": 0.05,
        "finetune_wer": 0.1,
    },
    {
        "speaker": "s2",
        "source": "b",
        "takes": 10,
        "steps": 5,
        "base_wer": 0.4,
        "adapted_wer": 0.3,
        "finetune_wer": 0.25,
    },
    {
        "speaker": "s2",
        "source": "b",
        "takes": 20,
        "steps": 10,
        "base_wer": 0.4,
        "adapted_wer": 0.2,
        "finetune_wer": 0.2,
    },
]
MAML_LINE = "Adapted (meta-learned)"
FINETUNE_LINE = "Plain fine-tuning"


def write_run(path: Path, rows: list[dict] = ROWS) -> Path:
    lines = [json.dumps(r) for r in rows]
    lines += ['{"summary": {"speakers": 2, "takes": 10}}', '{"takes_summary": []}', "not json at all", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def make_bundle(tmp_path: Path, curve: dict | str | None) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "bundle.json").write_text(json.dumps({"version": "7.1.0"}))
    if curve is not None:
        text = curve if isinstance(curve, str) else json.dumps(curve)
        (bundle / "learning_curve.json").write_text(text, encoding="utf-8")
    return bundle


def summary(tmp_path: Path, rows: list[dict] = ROWS) -> dict:
    from dictation.lab.learning_curve import curve_from_rows, read_rows

    return curve_from_rows(read_rows(write_run(tmp_path / "run.jsonl", rows)), "dictation evaluate X", "7.1.0")


def test_summary_means_over_speakers_and_gains_relative_to_base(tmp_path):
    curve = summary(tmp_path)
    assert curve["measured_with"] == "dictation evaluate X" and curve["model_version"] == "7.1.0"
    assert curve["speakers"] == 2
    ten, twenty = curve["points"]
    assert ten["takes"] == 10 and twenty["takes"] == 20
    assert ten["speakers"] == twenty["speakers"] == 2
    assert ten["base_wer"] == pytest.approx(0.3) and twenty["base_wer"] == pytest.approx(0.3)
    assert ten["maml_wer"] == pytest.approx(0.2) and twenty["maml_wer"] == pytest.approx(0.125)
    assert ten["maml_gain"] == pytest.approx(1 / 3) and twenty["maml_gain"] == pytest.approx(0.175 / 0.3)
    assert ten["finetune_wer"] == pytest.approx(0.2) and twenty["finetune_wer"] == pytest.approx(0.15)
    assert ten["finetune_gain"] == pytest.approx(1 / 3) and twenty["finetune_gain"] == pytest.approx(0.5)
    by_source = curve["by_source"]
    assert sorted(by_source) == ["a", "b"] and by_source["a"]["speakers"] == 1
    assert [p["maml_wer"] for p in by_source["a"]["points"]] == pytest.approx([0.1, 0.05])
    assert [p["maml_gain"] for p in by_source["b"]["points"]] == pytest.approx([0.25, 0.5])


def test_a_speaker_not_measured_at_every_n_is_left_out_of_every_point(tmp_path):
    # s3 was measured at 10 takes only (a run stopped part way): its 0.9 must not enter
    # the 10-takes mean while it is missing from the 20-takes one.
    partial = {"speaker": "s3", "source": "a", "takes": 10, "steps": 5, "base_wer": 0.9, "adapted_wer": 0.9}
    curve = summary(tmp_path, [*ROWS, partial])
    assert curve["speakers"] == 2 and [p["speakers"] for p in curve["points"]] == [2, 2]
    assert curve["points"][0]["base_wer"] == pytest.approx(0.3)
    from dictation.lab.learning_curve import curve_from_rows

    with pytest.raises(ValueError, match="every number of takes"):
        curve_from_rows([ROWS[0], ROWS[2] | {"speaker": "s9"}], "x", "1")


def test_summary_without_finetuning_has_no_finetune_fields(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "finetune_wer"} for r in ROWS]
    curve = summary(tmp_path, rows)
    assert all("finetune_wer" not in p and "finetune_gain" not in p for p in curve["points"])
    assert curve["points"][1]["maml_wer"] == pytest.approx(0.125)


def test_cli_writes_the_bundle_file_the_app_reads(tmp_path, capsys):
    from dictation.app.learning_curve import curve_caption, load_learning_curve
    from dictation.cli.main import main

    run = write_run(tmp_path / "run.jsonl")
    bundle = make_bundle(tmp_path, None)
    command = "dictation evaluate --heldout --split test --takes 10,20 --json"
    assert main(["learning-curve", "--from", str(run), "--out", str(bundle), "--command", command]) == 0
    assert f"wrote {bundle / 'learning_curve.json'}" in capsys.readouterr().out
    curve = load_learning_curve(bundle)
    assert curve is not None
    assert curve.model_version == "7.1.0"  # from the bundle's bundle.json
    assert [p.takes for p in curve.points] == [10, 20]
    assert [p.maml_wer for p in curve.points] == pytest.approx([0.2, 0.125])
    assert curve.by_source == {"a": 1, "b": 1}
    caption = curve_caption(curve, "7.1.0")
    assert command in caption and "2 held-out speakers" in caption and "different one" not in caption
    assert "different one" in curve_caption(curve, "8.0.0")


def test_cli_takes_keeps_only_those_numbers_of_takes(tmp_path):
    from dictation.app.learning_curve import load_learning_curve
    from dictation.cli.main import main

    # s2 also measured at 80 takes: without --takes it would leave s1 out of every point.
    extra = {"speaker": "s2", "source": "b", "takes": 80, "steps": 10, "base_wer": 0.4, "adapted_wer": 0.1}
    run = write_run(tmp_path / "run.jsonl", [*ROWS, extra])
    bundle = make_bundle(tmp_path, None)
    assert main(["learning-curve", "--from", str(run), "--out", str(bundle)]) == 0
    assert load_learning_curve(bundle).speakers == 1
    assert main(["learning-curve", "--from", str(run), "--out", str(bundle), "--takes", "10,20"]) == 0
    curve = load_learning_curve(bundle)
    assert curve.speakers == 2 and [p.takes for p in curve.points] == [10, 20]


def test_cli_refuses_a_run_without_speaker_rows_and_writes_nothing(tmp_path, capsys):
    from dictation.cli.main import main

    run = tmp_path / "run.jsonl"
    run.write_text('{"summary": {"speakers": 0}}\n')
    out = tmp_path / "curve.json"
    assert main(["learning-curve", "--from", str(run), "--out", str(out), "--model-version", "1.0"]) == 2
    assert "no per-speaker rows" in capsys.readouterr().err and not out.exists()


def test_page_plots_the_curve_from_the_bundle(qtbot, tmp_path):
    from dictation.app.gui.curve_chart import SERIES
    from dictation.app.gui.learned_page import LearnedPage

    page = LearnedPage()
    qtbot.addWidget(page)
    view = page.curve_view
    view.load(make_bundle(tmp_path, summary(tmp_path)), shipped_version="7.1.0")
    page.resize(700, 1000)
    page.show()
    qtbot.waitExposed(page)
    series = view.chart.series()
    assert [n for n, _ in series["Base model"]] == [10, 20]
    assert [v for _, v in series[MAML_LINE]] == pytest.approx([20.0, 12.5])
    assert [v for _, v in series[FINETUNE_LINE]] == pytest.approx([20.0, 15.0])
    assert view.chart.isVisible() and "dictation evaluate X" in view.caption.text()
    assert "10 takes: base 30.0%, adapted 20.0% (33% fewer errors)" in view.summary.text()
    # The lines are really painted: the MAML and fine-tuning colours appear in the chart.
    image = view.chart.grab().toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    for name, colour, _ in SERIES:
        assert colour.name() in colours, name


def test_chart_without_finetuning_draws_no_finetune_line(qtbot, tmp_path):
    from dictation.app.gui.curve_chart import SERIES, LearningCurveView

    rows = [{k: v for k, v in r.items() if k != "finetune_wer"} for r in ROWS]
    view = LearningCurveView()
    qtbot.addWidget(view)
    view.load(make_bundle(tmp_path, summary(tmp_path, rows)))
    view.resize(500, 400)
    assert FINETUNE_LINE not in view.chart.series() and MAML_LINE in view.chart.series()
    image = view.chart.grab().toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    assert SERIES[1][1].name() in colours and SERIES[2][1].name() not in colours


def test_page_says_not_measured_without_a_file(qtbot, tmp_path):
    from dictation.app.gui.curve_chart import LearningCurveView
    from dictation.app.learning_curve import NOT_MEASURED

    view = LearningCurveView()
    qtbot.addWidget(view)
    view.load(make_bundle(tmp_path, None))
    view.show()
    assert view.caption.text() == NOT_MEASURED
    assert view.curve is None and view.chart.isHidden() and view.chart.series() == {}


@pytest.mark.parametrize(
    "damage",
    [
        '{"points": [{"takes": 10,',  # cut off mid-write
        json.dumps({"measured_with": "x", "model_version": "1", "speakers": 2, "points": []}),
        json.dumps(
            {
                "measured_with": "x",
                "model_version": "1",
                "speakers": 2,
                "points": [{"takes": 10, "speakers": 2, "base_wer": 0.3, "maml_wer": -0.1}],
            }
        ),
        "[1, 2, 3]",
    ],
    ids=["truncated", "no-points", "negative-wer", "not-an-object"],
)
def test_damaged_file_is_said_plainly_on_the_page_and_in_about(qtbot, tmp_path, damage):
    from dictation.app.gui.curve_chart import LearningCurveView
    from dictation.app.gui.model_texts import about_html

    bundle = make_bundle(tmp_path, damage)
    view = LearningCurveView()
    qtbot.addWidget(view)
    view.load(bundle)
    assert view.caption.text().startswith("The measured learning curve cannot be shown:")
    assert "learning_curve.json" in view.caption.text() and view.chart.isHidden()
    assert "its file is damaged" in about_html(None, bundle)


def test_about_box_summarises_the_curve_or_says_not_measured(tmp_path):
    from dictation.app.gui.model_texts import about_html
    from dictation.app.learning_curve import NOT_MEASURED

    assert NOT_MEASURED in about_html(None, make_bundle(tmp_path, None))
    text = about_html(None, make_bundle(tmp_path, summary(tmp_path)))
    assert "10 takes: 30.0% \u2192 20.0%, 33% fewer errors" in text
    assert "20 takes: 30.0% \u2192 12.5%, 58% fewer errors" in text and "2 held-out speakers" in text
