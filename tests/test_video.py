"""inference/benchmark_video.py on tiny-cogvideox (CPU)."""

import json

import imageio.v3 as iio
import pytest
import torch

from inference import benchmark_video
from tests.conftest import expect_exit_2
from utils.levers.memory import apply_offload, apply_vae_memory_savers
from utils.pipelines import build_pipeline
from utils.results import read_rows

TINY = "tiny-cogvideox"


@pytest.fixture
def video_args(tmp_path):
    return ["--model_id", TINY, "--device", "cpu", "--warmup", "1", "--runs", "1",
            "--csv", str(tmp_path / "video.csv"), "--reference_dir", str(tmp_path / "references")]


def last_row(tmp_path):
    return read_rows(tmp_path / "video.csv").iloc[-1]


def test_default_run_writes_a_row_and_an_mp4(video_args, tmp_path):
    path = tmp_path / "clip.mp4"
    assert benchmark_video.main([*video_args, "--save_video", str(path)]) == 0
    row = last_row(tmp_path)
    assert (row.status, row.model, row.num_frames, row.height, row.width) == ("ok", TINY, 9, 64, 64)
    assert row["dtype"] == "bf16"
    assert iio.imread(path).shape == (9, 64, 64, 3)


@pytest.mark.parametrize("dtype", ["fp16", "int8wo", "int8dq", "int4dq", "fp8wo"])
def test_dtype_names_that_run_on_the_cpu(video_args, tmp_path, dtype):
    assert benchmark_video.main([*video_args, "--dtype", dtype]) == 0
    row = last_row(tmp_path)
    assert row.status == "ok"
    if dtype == "fp16":
        assert (row["dtype"], row.quantization) == ("fp16", "None")
    else:
        assert (row["dtype"], row.quantization) == ("bf16", dtype) and row.n_layers_quantized > 0 and row.psnr_db > 20


@pytest.mark.parametrize("flags,message", [
    (["--dtype", "fp8dqrow"], "runs only on CUDA"),
    (["--dtype", "int4wo"], "runs only on CUDA"),
    (["--dtype", "fp8dqrow", "--base_dtype", "fp16"], "needs bf16 weights"),
    (["--dtype", "fp4_e2m1"], "removed the fpx"),
    (["--dtype", "fp16", "--base_dtype", "bf16"], "contradicts"),
    (["--dtype", "int8wo", "--quantization", "fp8wo"], "contradicts"),
    (["--dtype", "int8wo", "--quantization", "None"], "contradicts"),
    (["--num_frames", "10"], "4k+1"),
    (["--offload", "model"], "needs a CUDA device"),
    (["--offload", "sequential", "--compile"], "cannot be combined"),
    (["--ckpt_id", "tiny-flux"], "is an image model: run it with inference/benchmark_image.py"),
    (["--dtype", "int8wo", "--quantize_vae"], "VAE has no Linear layers"),
    (["--channels_last"], "convolves over time"),
    (["--guidance_scale_2", "2"], "has one transformer: use --guidance_scale"),
    (["--ckpt_id", "tiny-wan22-a14b", "--guidance_scale_2", "-1"], "finite number >= 0"),
    (["--ckpt_id", "tiny-wan22-ti2v", "--channels_last"], "convolves over time"),
])
def test_bad_video_input_exits_2(video_args, tmp_path, capsys, flags, message):
    expect_exit_2(benchmark_video.main, [*video_args, *flags], message, capsys)
    assert list(tmp_path.iterdir()) == []


def test_offload_and_vae_flags_reach_diffusers():
    calls = []

    class Pipe:
        def enable_model_cpu_offload(self, device):
            calls.append(("model", device))

        def enable_sequential_cpu_offload(self, device):
            calls.append(("sequential", device))

    apply_offload(Pipe(), "model", "cuda:1")
    apply_offload(Pipe(), "sequential", "cuda")
    apply_offload(Pipe(), "none", "cuda")
    assert calls == [("model", "cuda:1"), ("sequential", "cuda")]
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    apply_vae_memory_savers(pipe, tiling=True, slicing=True)
    assert pipe.vae.use_tiling and pipe.vae.use_slicing


def test_regional_compile_without_declared_repeated_blocks(video_args, tmp_path):
    assert benchmark_video.main([*video_args, "--regional_compile", "--compile_mode", "default", "--fuse_qkv"]) == 0
    row = last_row(tmp_path)
    assert row.status == "ok" and row.regional_compile and row.fuse_attn_projections and row.psnr_db > 25


def test_the_a14b_grid_runs_a_step_on_each_expert():
    """Wan2.2-T2V-A14B's grid runs a few of the 40 steps; they must still reach both experts (the high-noise one at
    timesteps >= boundary_ratio x 1000, the low-noise one below), with the scheduler the preset keeps."""
    import diffusers

    from tests.conftest import REPO_ROOT
    from utils.presets import get_preset

    preset = get_preset("Wan-AI/Wan2.2-T2V-A14B-Diffusers")
    grid = json.loads((REPO_ROOT / "inference/grids/wan22-a14b.json").read_text())
    scheduler = getattr(diffusers, preset.components["scheduler"]).from_config(preset.config("scheduler"))
    scheduler.set_timesteps(grid["fixed"]["num_inference_steps"])
    boundary = preset.pipeline_config["boundary_ratio"] * scheduler.config.num_train_timesteps
    assert {bool(t >= boundary) for t in scheduler.timesteps.tolist()} == {True, False}


def test_each_a14b_expert_gets_its_own_guidance_and_the_row_records_both(video_args, tmp_path):
    """The model card's 4.0 (high-noise expert) and 3.0 (low-noise expert) by default; each flag sets its own."""
    args = [*video_args, "--ckpt_id", "tiny-wan22-a14b", "--num_inference_steps", "2", "--no_fidelity"]
    assert benchmark_video.main(args) == 0
    assert benchmark_video.main([*args, "--guidance_scale", "2.5", "--guidance_scale_2", "1.5"]) == 0
    rows = read_rows(tmp_path / "video.csv")
    assert rows[["guidance_scale", "guidance_scale_2"]].values.tolist() == [[4.0, 3.0], [2.5, 1.5]]
