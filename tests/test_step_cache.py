"""Opt-in step caching (--step_cache, diffusers cache hooks) on tiny-flux and tiny-cogvideox (CPU)."""

import argparse
import math

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers.hooks.first_block_cache import FBCBlockHook, FBCHeadBlockHook
from diffusers.hooks.taylorseer_cache import TaylorSeerCacheHook

from inference import benchmark_image, benchmark_video
from tests.conftest import REPO_ROOT, TINY, expect_exit_2
from utils import report
from utils.levers import step_cache
from utils.levers.step_cache import SECTION_TITLE, enable
from utils.pipelines import build_pipeline
from utils.results import COLUMNS, Row, append_row, read_rows


def apply_step_cache(pipe, kind: str, threshold: float | None) -> dict:
    """The lever as a run applies it: its settings from the flags, then apply."""
    flags = argparse.Namespace(step_cache=kind, step_cache_threshold=threshold)
    return step_cache.apply(pipe, step_cache.settings(flags, run=None))


def hooks_of(module):
    registry = getattr(module, "_diffusers_hook", None)
    return list(registry.hooks.values()) if registry else []


def test_first_block_cache_hooks_every_block():
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    applied = apply_step_cache(pipe, "first_block", None)
    assert applied == {"step_cache": "first_block", "step_cache_threshold": 0.05}
    transformer = pipe.transformer
    assert transformer.is_cache_enabled and transformer._cache_config.threshold == 0.05
    head, *_, tail = [*transformer.transformer_blocks, *transformer.single_transformer_blocks]
    assert any(isinstance(hook, FBCHeadBlockHook) for hook in hooks_of(head))
    assert any(isinstance(hook, FBCBlockHook) and hook.is_tail for hook in hooks_of(tail))


def test_taylorseer_hooks_the_attention_modules():
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    assert apply_step_cache(pipe, "taylorseer", None) == {"step_cache": "taylorseer", "step_cache_threshold": None}
    assert pipe.transformer.is_cache_enabled
    attention = [pipe.transformer.transformer_blocks[0].attn, pipe.transformer.single_transformer_blocks[0].attn]
    assert all(isinstance(hooks_of(module)[0], TaylorSeerCacheHook) for module in attention)


def test_unsupported_models_fail_with_a_reason():
    with pytest.raises(ValueError, match="not a CacheMixin"):
        enable(torch.nn.Linear(4, 4), "first_block")
    cogvideox = build_pipeline("tiny-cogvideox", "random", "cpu", torch.bfloat16, seed=0).transformer
    with pytest.raises(ValueError, match="hooked no module of CogVideoXTransformer3DModel"):
        enable(cogvideox, "taylorseer")


def test_cache_state_is_reset_between_calls():
    """Every timed call must cache the same way: diffusers resets the hooks at the end of each pipeline call."""
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    apply_step_cache(pipe, "first_block", 10.0)
    kwargs = {"prompt": "a cat", "num_inference_steps": 4, "height": 64, "width": 64, "max_sequence_length": 32,
              "output_type": "np"}
    first, second = (pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images for _ in range(2))
    np.testing.assert_array_equal(first, second)


def test_first_block_run_records_the_cache_and_the_report_keeps_it_apart(run_args, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CAMPAIGN", "both-runs")  # one campaign, as a sweep would give them
    flags = [*run_args, "--num_inference_steps", "4"]
    assert benchmark_image.main(flags) == 0
    # a threshold this high skips every block after the first one in every step but the first
    assert benchmark_image.main([*flags, "--step_cache", "first_block", "--step_cache_threshold", "10"]) == 0
    frame = read_rows(tmp_path / "results.csv")
    assert list(frame.step_cache) == ["none", "first_block"]
    plain, cached = frame.iloc[0], frame.iloc[1]
    assert math.isnan(plain.step_cache_threshold) and cached.step_cache_threshold == 10
    assert cached.status == "ok" and 0 < cached.psnr_db < math.inf and cached.latent_rel_l2 > 0
    assert report.main([str(tmp_path / "results.csv")]) == 0
    text = (tmp_path / "results.md").read_text()
    main, section = text.split(f"### {SECTION_TITLE}")
    assert "step cache" not in main.split("Columns:")[0] and "| bf16 " in main  # a pick needs two model rows
    assert "first_block step cache (threshold 10)" in section and "(fastest" not in section


def test_taylorseer_run_changes_the_output(run_args, tmp_path):
    # TaylorSeer's defaults compute steps 0-2 fully and predict step 3
    assert benchmark_image.main([*run_args, "--num_inference_steps", "4", "--step_cache", "taylorseer",
                                 "--runs", "1"]) == 0
    row = read_rows(tmp_path / "results.csv").iloc[0]
    assert (row.status, row.step_cache) == ("ok", "taylorseer") and math.isnan(row.step_cache_threshold)
    assert 0 < row.psnr_db < math.inf


def test_first_block_on_cogvideox(tmp_path):
    assert benchmark_video.main(["--model_id", "tiny-cogvideox", "--device", "cpu", "--warmup", "1", "--runs", "1",
                                 "--num_inference_steps", "3", "--step_cache", "first_block",
                                 "--csv", str(tmp_path / "video.csv"),
                                 "--reference_dir", str(tmp_path / "references")]) == 0
    row = read_rows(tmp_path / "video.csv").iloc[0]
    assert (row.status, row.step_cache, row.step_cache_threshold) == ("ok", "first_block", 0.05)
    assert row.psnr_db > 0


BAD_COMBINATIONS = {
    "with compile": (["--step_cache", "first_block", "--compile"], "cannot be combined with --compile"),
    "with regional compile": (["--step_cache", "taylorseer", "--regional_compile"],
                              "cannot be combined with --compile"),
    "threshold without first_block": (["--step_cache_threshold", "0.1"], "needs --step_cache first_block"),
    "threshold with taylorseer": (["--step_cache", "taylorseer", "--step_cache_threshold", "0.1"],
                                  "needs --step_cache first_block"),
    "negative threshold": (["--step_cache", "first_block", "--step_cache_threshold", "-1"], "must be a number >= 0"),
    "unknown kind": (["--step_cache", "teacache"], "invalid choice"),
}


@pytest.mark.parametrize("flags,message", BAD_COMBINATIONS.values(), ids=BAD_COMBINATIONS.keys())
def test_bad_step_cache_input_exits_2_with_one_line(flags, message, run_args, tmp_path, capsys):
    expect_exit_2(benchmark_image.main, [*run_args, *flags], message, capsys)
    assert list(tmp_path.iterdir()) == []


def test_taylorseer_on_cogvideox_is_refused_up_front(tmp_path, capsys):
    argv = ["--model_id", "tiny-cogvideox", "--device", "cpu", "--step_cache", "taylorseer",
            "--csv", str(tmp_path / "video.csv")]
    expect_exit_2(benchmark_video.main, argv, "CogVideoXTransformer3DModel", capsys)
    assert list(tmp_path.iterdir()) == []


def test_context_parallel_with_a_step_cache_is_refused(run_args, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # validation only; nothing runs
    argv = [*run_args, "--device", "cuda", "--context_parallel", "ulysses", "--step_cache", "first_block"]
    expect_exit_2(benchmark_image.parse_config, argv, "--context_parallel", capsys)


def test_columns_are_last_and_older_csvs_render_as_uncached(tmp_path):
    start = COLUMNS.index("step_cache")
    assert COLUMNS[start + 1] == "step_cache_threshold"
    assert (Row().step_cache, Row().step_cache_threshold) == ("none", None)
    common = {"model": "m", "gpu": "H100", "weights": "random", "batch_size": 1, "height": 64, "width": 64,
              "num_inference_steps": 2, "dtype": "bf16", "campaign": "run-1"}
    path = tmp_path / "old.csv"
    append_row(path, Row(**common, time_median_s=2.0))
    append_row(path, Row(**common, quantization="int8wo", time_median_s=1.0))
    old = pd.read_csv(path, keep_default_na=False).drop(columns=["step_cache", "step_cache_threshold"])
    old.to_csv(path, index=False)  # as a version without the columns wrote it
    assert report.main([str(path)]) == 0
    text = (tmp_path / "old.md").read_text()
    assert SECTION_TITLE not in text and "**int8wo** (fastest in C1)" in text and "2.000" in text
    append_row(path, Row(**common, time_median_s=0.5, step_cache="first_block", step_cache_threshold=0.05,
                         psnr_db=30.0))  # migrates the old file first
    assert report.main([str(path)]) == 0
    main, section = (tmp_path / "old.md").read_text().split(f"### {SECTION_TITLE}")
    assert "**int8wo** (fastest in C1)" in main and "bf16, first_block step cache (threshold 0.05)" in section
    assert "4.000" in section  # speedup against the bf16 eager row of the group (2.0 s / 0.5 s)


def test_the_flags_reference_lists_the_flags():
    flags = (REPO_ROOT / "docs" / "flags.md").read_text()
    assert "`--step_cache` {none,first_block,taylorseer}" in flags and "`--step_cache_threshold`" in flags
