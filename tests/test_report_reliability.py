"""The report refuses bad CSVs with one line and exit code 2, shows each configuration once (its newest finished
run), keeps interrupted rows out and names the command that regenerates it."""

import pytest

from tests.conftest import REPO_ROOT, markdown_tables
from utils import report
from utils.results import QuantTimeRow, Row, TrainRow, append_row, read_rows

COMMON = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024, num_inference_steps=28,
              dtype="bf16", campaign="run-1")


def table_rows(markdown: str) -> list[dict[str, str]]:
    """The rows of the first table after the campaigns table."""
    return markdown_tables(markdown)[0]


def refused(path, capsys) -> str:
    assert report.main([str(path)]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err, err
    assert not path.with_suffix(".md").exists() and "wrote" not in out
    return err


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"name,age\nbob,3\n", "columns this version does not know"),
    (b"Some notes about the run.\nNothing else.\n", "columns this version does not know"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"model,status\nm,ok,extra\n", "does not match the header"),
    (b"model,status\nm,ok\nn", "cut short"),
    (b"model,status\n", "no rows"),
    (b"timestamp,git_sha,command,status,model,time_median_s\n2026-01-01,abc,x,ok,m,1.0\n", "no batch_size value"),
])
def test_bad_csvs_are_refused_with_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert problem in refused(path, capsys)


def test_nothing_is_written_when_one_of_several_csvs_is_bad(tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    append_row(good, Row(**COMMON, time_median_s=1.0))
    bad.write_text("")
    refused(bad, capsys)
    assert report.main([str(good), str(bad)]) == 2 and not good.with_suffix(".md").exists()


def test_a_configuration_measured_again_shows_its_newest_run_and_is_never_compared_with_itself(tmp_path):
    path = tmp_path / "flux.csv"
    append_row(path, Row(**COMMON, timestamp="2026-01-01T10:00:00+00:00", time_median_s=4.0))  # older bf16, faster
    append_row(path, Row(**COMMON, timestamp="2026-01-01T11:00:00+00:00", time_median_s=5.0))
    append_row(path, Row(**COMMON, timestamp="2026-01-01T09:00:00+00:00", quantization="int8wo", status="error",
                         error="older failure"))
    append_row(path, Row(**COMMON, timestamp="2026-01-01T10:30:00+00:00", quantization="int8wo", time_median_s=6.0))
    append_row(path, Row(**COMMON, timestamp="2026-01-01T12:00:00+00:00", quantization="int8wo", status="oom",
                         error="newer failure"))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    rows = table_rows(text)
    assert [(row["configuration"], row["median s"], row["status"]) for row in rows] == [
        ("**bf16** (fastest in C1)", "5.000", "ok"), ("int8wo", "6.000", "ok"), ("int8wo", "", "oom")]
    assert "fastest: bf16 (5.000 s, the bf16 eager baseline)" in text and "x C1's bf16 eager" not in text
    assert text.count("measured again later in the same campaign") == 2 and "older failure" not in text


def test_old_rows_spelling_bfloat16_are_the_same_configuration(tmp_path):
    path = tmp_path / "flux.csv"
    path.write_text("timestamp,git_sha,command,model,gpu,weights,batch_size,height,width,num_inference_steps,dtype,"
                    "quantization,time_median_s,status,campaign\n,abc,python x,m,H100,random,1,1024,1024,28,bfloat16,"
                    "None,4.0,ok,run-1\n")
    append_row(path, Row(**COMMON, time_median_s=5.0))
    append_row(path, Row(**COMMON, quantization="int8wo", time_median_s=4.5))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    assert [(row["configuration"], row["median s"]) for row in table_rows(text)] == [
        ("**int8wo** (fastest in C1)", "4.500"), ("bf16", "5.000")]
    assert "1.11x C1's bf16 eager" in text


def test_interrupted_rows_stay_out_of_tables_picks_and_plots(tmp_path):
    path = tmp_path / "flux.csv"
    append_row(path, Row(**COMMON, time_median_s=5.0))
    append_row(path, Row(**COMMON, quantization="int8wo", time_median_s=4.0))
    append_row(path, Row(**COMMON, quantization="fp8dqrow", compile=True, time_median_s=1.0, status="interrupted",
                         error="sweep stopped"))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    assert "fp8dqrow" not in text and "interrupted sweep" in text and "fastest: int8wo" in text
    assert len(read_rows(path)) == 3  # the CSV keeps it


def test_interrupted_training_and_quantization_time_rows_are_left_out(tmp_path):
    train = tmp_path / "train.csv"
    append_row(train, TrainRow(model="m", method="lora", rank=4, resolution="64x64", step_median_s=1.0))
    append_row(train, TrainRow(model="m", method="lora", rank=4, resolution="64x64", fp8="rowwise",
                               status="interrupted"))
    quant = tmp_path / "quant.csv"
    append_row(quant, QuantTimeRow(model="m", quantization="int8wo", method="per_layer", seconds=1.0))
    append_row(quant, QuantTimeRow(model="m", quantization="int8wo", method="cpu_then_move", status="interrupted"))
    assert report.main([str(train), str(quant)]) == 0
    assert "rowwise" not in train.with_suffix(".md").read_text()
    assert "interrupted |" not in quant.with_suffix(".md").read_text()


def test_training_rows_of_the_same_configuration(tmp_path):
    path = tmp_path / "train.csv"
    common = dict(model="m", method="lora", rank=4, resolution="64x64", compile=True, campaign="run-1")
    append_row(path, TrainRow(**common, timestamp="2026-01-01T10:00:00+00:00", max_steps=20, step_median_s=0.9))
    append_row(path, TrainRow(**common, timestamp="2026-01-01T11:00:00+00:00", max_steps=20, step_median_s=1.0))
    append_row(path, TrainRow(**common, timestamp="2026-01-01T11:00:00+00:00", max_steps=8, step_median_s=2.0))
    append_row(path, TrainRow(**common, timestamp="2026-01-01T12:00:00+00:00", max_steps=20, fp8="rowwise",
                              step_median_s=0.8))
    append_row(path, TrainRow(**{**common, "campaign": "run-2"}, timestamp="2026-01-01T13:00:00+00:00", max_steps=8,
                              fp8="rowwise", step_median_s=1.6, compile_start="cold"))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    rows = [(row["campaign"], row["fp8"], row["steps"], row["step median s"], row["speedup"], row["cache"])
            for row in table_rows(text)]
    assert rows == [("C1", "rowwise", "20", "0.800", "1.250", "?"), ("C1", "off", "20", "1.000", "1.000", "?"),
                    ("C1", "off", "8", "2.000", "1.000", "?"),
                    ("C2", "rowwise", "8", "1.600", "—", "cold")]  # its bf16 row is of another campaign
    assert "measured again later in the same campaign" in text


def test_the_header_names_the_command_that_regenerates_it(tmp_path):
    path = tmp_path / "flux.csv"
    append_row(path, Row(**COMMON, time_median_s=5.0))
    assert report.main([str(path)]) == 0
    assert f"`python -m utils.report {path.resolve()}`" in path.with_suffix(".md").read_text()
    assert report.regenerate_command(REPO_ROOT / "results" / "flux-dev.csv") == ("python -m utils.report "
                                                                                  "results/flux-dev.csv")


def test_a_file_that_is_not_a_csv_is_never_overwritten(tmp_path, capsys):
    path = tmp_path / "table.md"
    append_row(tmp_path / "r.csv", Row(**COMMON, time_median_s=1.0))
    path.write_bytes((tmp_path / "r.csv").read_bytes())
    before = path.read_bytes()
    assert report.main([str(path)]) == 2 and "not a .csv file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_report_replaces_and_removes_only_what_a_report_wrote(tmp_path, capsys):
    csv = tmp_path / "good.csv"
    append_row(csv, Row(**COMMON, time_median_s=1.0, quantization="None"))
    append_row(csv, Row(**COMMON, time_median_s=0.5, quantization="int8wo"))
    notes = csv.with_suffix(".md")
    notes.write_text("my notes\n")
    assert report.main([str(csv)]) == 2 and "was not written by utils.report" in capsys.readouterr().err
    notes.unlink()
    (tmp_path / "plots").mkdir()
    mine = tmp_path / "plots" / "good-7.png"
    mine.write_bytes(b"my plot")
    assert report.main([str(csv)]) == 2 and "good-7.png: named like a plot" in capsys.readouterr().err
    assert mine.read_bytes() == b"my plot" and not notes.exists()
    mine.unlink()
    assert report.main([str(csv)]) == 0 and [path.name for path in (tmp_path / "plots").iterdir()] == ["good-0.png"]
    append_row(csv, Row(**{**COMMON, "batch_size": 4}, time_median_s=2.0))  # a second group: two plots
    append_row(csv, Row(**{**COMMON, "batch_size": 4}, time_median_s=1.5, quantization="int8wo"))
    assert report.main([str(csv)]) == 0 and len(list((tmp_path / "plots").iterdir())) == 2
    assert report.main([str(csv)]) == 0  # again: its own markdown and plots are replaced
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:3]))  # the batch-4 group leaves
    assert report.main([str(csv)]) == 0 and [path.name for path in (tmp_path / "plots").iterdir()] == ["good-0.png"]
    # a report stopped after its plots, before its markdown: its plots carry their own mark, so the next one goes on
    (tmp_path / "plots" / "good-0.png").rename(tmp_path / "plots" / "good-5.png")
    csv.with_suffix(".md").unlink()
    assert report.main([str(csv)]) == 0 and [path.name for path in (tmp_path / "plots").iterdir()] == ["good-0.png"]
