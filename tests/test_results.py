import multiprocessing

import pandas as pd
import pytest

from tests.conftest import markdown_tables
from utils import report
from utils.levers.step_cache import SECTION_TITLE
from utils.results import COLUMNS, Row, append_row, read_rows, render_row


def test_header_written_once_and_values_round_trip(tmp_path):
    path = tmp_path / "r.csv"
    append_row(path, Row(model="m", quantization="None", time_median_s=1.5, psnr_db=float("inf"), prompt='a, "b"'))
    append_row(path, Row(model="m", quantization="int8wo", status="error", error="x"))
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 3
    frame = read_rows(path)
    assert list(frame.quantization) == ["None", "int8wo"]  # "None" stays a string
    assert frame.time_median_s[0] == 1.5 and frame.psnr_db[0] == float("inf") and frame.prompt[0] == 'a, "b"'
    assert pd.isna(frame.time_median_s[1])


def test_appending_to_a_csv_with_unknown_columns_fails(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns this version does not know"):
        append_row(path, Row())
    assert path.read_text() == "a,b\n1,2\n"


def test_appending_to_an_older_csv_migrates_it(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("timestamp,git_sha,command,model,quantization,time_median_s,status\n"
                    "2025-01-01,abc,python x,m,int8wo,1.5,ok\n")
    append_row(path, Row(model="n", quantization="fp8dqrow", time_median_s=2.5))
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    frame = read_rows(path)
    assert list(frame.model) == ["m", "n"] and list(frame.time_median_s) == [1.5, 2.5]
    assert list(frame.kind) == ["benchmark", "benchmark"]  # the old row gets the kind it was written as


def _append_many(path, worker):
    for index in range(25):
        append_row(path, Row(model=f"w{worker}", seed=index, prompt="x" * 2000))


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "r.csv"
    workers = [multiprocessing.Process(target=_append_many, args=(path, w)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    frame = read_rows(path)
    assert len(frame) == 75 and (frame.prompt.str.len() == 2000).all()
    assert sorted(frame.groupby("model").seed.apply(sorted).iloc[0]) == list(range(25))


def test_markdown_rendering(tmp_path):
    text = render_row(Row(model="tiny-flux", quantization="int8wo", time_median_s=0.123456, compile_s=-0.01))
    header, rule, line = text.splitlines()
    assert "median s" in header and "| tiny-flux" in line and "0.123" in line and "nan" not in line
    assert "frames" not in header and "-0.010" not in line  # an image; nothing compiled: no compile time
    header, rule, line = render_row(Row(model="tiny-cogvideox", num_frames=9, compile=True, compile_s=2.5)).splitlines()
    cells = dict(zip([cell.strip() for cell in header.split("|")], [cell.strip() for cell in line.split("|")]))
    assert (cells["frames"], cells["compile s"]) == ("9", "2.500")


def test_report_groups_ranks_and_picks(tmp_path):
    path = tmp_path / "flux.csv"
    common = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024,
                  num_inference_steps=28, dtype="bf16", campaign="run-1")
    # an older bf16 eager run of the same campaign, a bit faster: the table shows the newer run only, speedups use it
    append_row(path, Row(**common, time_median_s=4.95, compile_s=-0.05, inference_memory_GiB=34.0,
                         psnr_db=float("inf")))
    append_row(path, Row(**common, time_median_s=5.0, compile_s=-0.04, inference_memory_GiB=34.0,
                         psnr_db=float("inf")))
    append_row(path, Row(**common, quantization="int8wo", compile=True, time_median_s=4.0, compile_s=21.5,
                         compile_trace_s=2.5, compile_backend_s=17.0, compile_start="cold",
                         inference_memory_GiB=22.0, psnr_db=47.0))
    append_row(path, Row(**common, quantization="fp8dqrow", compile=True, time_median_s=3.9,
                         inference_memory_GiB=24.0, psnr_db=43.0))
    append_row(path, Row(**{**common, "batch_size": 4}, quantization="fp8dq", status="oom", error="CUDA out of memory"))
    assert report.main([str(path)]) == 0
    text = (tmp_path / "flux.md").read_text()
    batch1, batch4 = text.split("## m · batch 1")[1].split("## m · batch 4")
    rows = markdown_tables(batch1)[0]
    assert [row["configuration"] for row in rows] == ["**fp8dqrow, compile** (fastest in C1)", "int8wo, compile",
                                                      "bf16"]
    assert {row["campaign"] for row in rows} == {"C1"} and "`run-1`" in text  # the campaigns table names it
    assert rows[0]["speedup"] == "1.282" and [rows[2][name] for name in ("median s", "speedup")] == ["5.000", "1.000"]
    assert [(row["compile s"], row["cache"]) for row in rows[1:]] == [("21.500", "cold"), ("", "")]
    assert rows[0]["cache"] == "?"  # compiled, but the row does not say how its caches started
    assert [(row["trace s"], row["backend s"]) for row in rows] == [("", ""), ("2.500", "17.000"), ("", "")]
    assert "bf16 (C1, 4.950 s): measured again later in the same campaign" in batch1
    assert "What to pick in C1 — fastest: fp8dqrow, compile (3.900 s, 1.28x C1's bf16 eager)" in batch1
    assert "least peak memory within 5% of the fastest: int8wo, compile (22.00 GiB)" in batch1
    assert "closest to bf16 among configurations faster than bf16 eager: int8wo" in batch1
    assert "What to pick" not in batch4 and "oom" in batch4
    assert not {"trace s", "backend s"} & set(markdown_tables(batch4)[0][0])  # no row of that table has them
    assert (tmp_path / "plots" / "flux-0.png").stat().st_size > 10_000


def test_a_row_with_a_wide_spread_of_call_times_is_called_noisy(tmp_path):
    path = tmp_path / "flux.csv"
    common = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024,
                  num_inference_steps=28, dtype="bf16", campaign="run-1")
    append_row(path, Row(**common, time_median_s=1.06, time_min_s=0.24, time_max_s=1.91))
    append_row(path, Row(**common, quantization="int8wo", time_median_s=0.045, time_min_s=0.044, time_max_s=0.047))
    append_row(path, Row(**common, quantization="int8dq", time_median_s=0.0, time_min_s=0.0, time_max_s=0.002))
    assert report.main([str(path)]) == 0
    text = " ".join(path.with_suffix(".md").read_text().split())
    assert ("Noisy timing: the slowest timed call took over 1.5x the fastest for bf16 in C1 (8.0x); rerun on an idle "
            "machine before trusting their medians and speedups.") in text
    assert "int8wo in C1" not in text and "int8dq in C1" not in text  # tight; a zero time has no ratio (nor speedup)


def test_ratios_and_picks_stay_within_one_campaign(tmp_path):
    """Two campaigns on one GPU model: each row's speedup divides by its own campaign's bf16 eager row (— where the
    campaign has none), each campaign gets its own pick line, and a configuration measured in both keeps both rows;
    a failure that a later campaign ran to the end is left out."""
    path = tmp_path / "flux.csv"
    common = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024,
                  num_inference_steps=28, dtype="bf16")
    early = dict(common, campaign="early", timestamp="2026-01-01T10:00:00+00:00")
    late = dict(common, campaign="late", timestamp="2026-01-01T12:00:00+00:00")
    append_row(path, Row(**early, time_median_s=5.0))
    append_row(path, Row(**early, quantization="fp8dqrow", compile=True, time_median_s=4.0))
    append_row(path, Row(**early, quantization="int8dq", compile=True, status="error", error="int_mm"))
    append_row(path, Row(**late, quantization="fp8dqrow", compile=True, time_median_s=3.0))
    append_row(path, Row(**late, quantization="int8dq", compile=True, time_median_s=3.5))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    rows = markdown_tables(text)[0]
    assert [(row["campaign"], row["configuration"].split("**")[-2 if "**" in row["configuration"] else 0],
             row["speedup"]) for row in rows] == [("C1", "fp8dqrow, compile", "1.250"), ("C1", "bf16", "1.000"),
                                                 ("C2", "fp8dqrow, compile", "—"), ("C2", "int8dq, compile", "—")]
    assert "What to pick in C1 — fastest: fp8dqrow, compile (4.000 s, 1.25x C1's bf16 eager)" in text
    assert "What to pick in C2 — fastest: fp8dqrow, compile (3.000 s, no bf16 eager in C2)" in text
    assert "No bf16 eager row in C2: its speedup is —." in text and "1.67" not in text  # never 5.0 / 3.0
    assert "int8dq, compile (C1, error): measured again, and finished, in C2" in text


def test_rows_without_a_campaign_get_one_by_the_legacy_rule(tmp_path):
    """One sha, GPU and output file within 10 minutes is one campaign; a gap over that, or another output file (a run
    beside it on another GPU), is another."""
    path = tmp_path / "flux.csv"
    common = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024,
                  num_inference_steps=28, dtype="bf16", git_sha="abc1234")
    for minute, output, quantization, median in [(0, "a", "None", 5.0), (2, "a", "int8wo", 4.0),
                                                 (1, "b", "fp8dqrow", 3.0), (30, "a", "fp8dq", 3.5)]:
        append_row(path, Row(**common, timestamp=f"2026-01-01T10:{minute:02d}:00+00:00", quantization=quantization,
                             command=f"python inference/benchmark_image.py --csv /out/{output}.csv",
                             time_median_s=median))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    assert "`abc1234:a:0101T1000`" in text and "`abc1234:b:0101T1001`" in text and "`abc1234:a:0101T1030`" in text
    speedups = {row["configuration"].strip("*").split("**")[0]: row["speedup"] for row in markdown_tables(text)[0]}
    assert speedups == {"int8wo": "1.250", "bf16": "1.000", "fp8dqrow": "—", "fp8dq": "—"}


def test_memory_runs_get_memory_tables_and_no_speedup_or_pick(tmp_path):
    path = tmp_path / "video.csv"
    common = dict(model="THUDM/CogVideoX-5b", gpu="H100", weights="random", batch_size=1, height=480, width=720,
                  num_frames=49, num_inference_steps=2, dtype="bf16", campaign="mem", memory_only=True)
    append_row(path, Row(**common, time_median_s=6.3, model_memory_GiB=19.7, inference_memory_GiB=34.5))
    append_row(path, Row(**common, quantization="int8wo", quantize_text_encoders=True, quantize_vae=True,
                         time_median_s=6.7, model_memory_GiB=10.2, inference_memory_GiB=25.0))
    assert report.main([str(path)]) == 0
    text = path.with_suffix(".md").read_text()
    assert "memory measurements" in text and "What to pick" not in text
    rows = markdown_tables(text)[0]
    assert "speedup" not in rows[0] and "model GiB" in rows[0]
    assert [(row["configuration"], row["seed peak GB"]) for row in rows] == [("bf16", "31.70"),
                                                                            ("int8wo, +text enc", "22.20")]
    assert (tmp_path / "plots" / "video-0.png").is_file()


def test_labels_name_the_autoquant_plan_and_compiled_text_encoders(tmp_path):
    path = tmp_path / "flux.csv"
    append_row(path, Row(model="m", dtype="bf16", quantization="autoquant", compile=True, compile_text_encoders=True,
                         autoquant="planned: 172 fp8dqrow, 85 bf16 (20 shape groups)", time_median_s=3.0))
    assert report.describe(read_rows(path).iloc[0]) == ("autoquant (planned: 172 fp8dqrow, 85 bf16), compile, "
                                                        "compiled text enc")


def test_older_csvs_with_fewer_columns_still_load(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("timestamp,git_sha,command,model,quantization,time_median_s,status\n"
                    "2025-01-01,abc,python x,m,int8wo,1.5,ok\n")
    frame = read_rows(path)
    assert list(frame.columns) == COLUMNS and frame.time_median_s[0] == 1.5 and frame.compile.isna().all()


def test_report_missing_file(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope.csv")]) == 2
    assert "no such CSV" in capsys.readouterr().err


def test_ladder_report_shows_each_step_against_its_base(tmp_path):
    """The step, lever and base columns a ladder grid's sweep writes: gain against the base step's median (a failed
    step has none), speedup against bf16 eager, step-cached rows apart."""
    path = tmp_path / "perf-ladder.csv"
    common = dict(model="m", gpu="H100", weights="random", batch_size=1, height=1024, width=1024,
                  num_inference_steps=28, dtype="bf16", campaign="ladder")
    steps = [dict(step=1, lever="bf16 eager", time_median_s=5.0),
             dict(step=2, lever="regional compile", base_step=1, compile=True, regional_compile=True,
                  compile_mode="default", time_median_s=4.0),
             dict(step=3, lever="CUDA graphs", base_step=2, compile=True, regional_compile=True, status="error",
                  error="CUDAGraphs overwritten"),
             dict(step=4, lever="fp8dqrow", base_step=2, quantization="fp8dqrow", compile=True, time_median_s=3.2,
                  time_min_s=3.1, time_max_s=6.4),
             dict(step=5, lever="on step 3", base_step=3, quantization="fp8dqrow", compile=True, time_median_s=3.3)]
    for step in reversed(steps):  # rows in any order: the table follows the steps
        append_row(path, Row(**common, **step))
    assert report.main([str(path)]) == 0
    rows = markdown_tables((tmp_path / "perf-ladder.md").read_text())[0]
    assert [[row["step"], row["lever"], row["base"]] for row in rows] == [
        ["1", "bf16 eager", ""], ["2", "regional compile", "1"], ["3", "CUDA graphs", "2"], ["4", "fp8dqrow", "2"],
        ["5", "on step 3", "3"]]
    assert [rows[3]["gain"], rows[3]["speedup"]] == ["1.250", "1.562"]  # gain over step 2, speedup over bf16 eager
    assert rows[4]["gain"] == "—"  # its base failed: no gain
    assert "Noisy timing: the slowest timed call took over 1.5x the fastest for fp8dqrow, compile in C1 (2.1x)" in (
        " ".join((tmp_path / "perf-ladder.md").read_text().split()))

    append_row(path, Row(**common, step_cache="first_block", time_median_s=2.5, psnr_db=30.0))
    assert report.main([str(path)]) == 0
    ladder, cached = (tmp_path / "perf-ladder.md").read_text().split(f"### {SECTION_TITLE}")
    assert "first_block" not in ladder and "first_block step cache" in cached and "|     2.000 |" in cached


def test_report_renders_quantization_time_csvs_with_their_own_table(tmp_path):
    from utils.results import QuantTimeRow

    path = tmp_path / "quantization-time.csv"
    append_row(path, QuantTimeRow(model="black-forest-labs/FLUX.1-dev", quantization="int8wo", method="per_layer",
                                  seconds=6.1, peak_GiB=11.4, status="ok"))
    assert report.main([str(path)]) == 0
    text = (tmp_path / "quantization-time.md").read_text()
    assert "the seed's published figures" in text and "|      6.10 |      11.40 |" in text
