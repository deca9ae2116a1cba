"""The Wan 2.2, Qwen-Image and FLUX.2-dev presets: the full-size configs against the published sizes (meta device),
the tiny presets built offline and run end to end through the benchmark scripts (CPU), both Wan experts optimized,
and the levers that cannot apply refused before anything is built."""

import imageio.v3 as iio
import pytest
import torch
from PIL import Image

from inference import benchmark_image, benchmark_video, serialize
from tests.conftest import expect_exit_2
from utils.benchmark import call_kwargs
from utils.config import build_config
from utils.levers.quantization import targets
from utils.pipelines import build_pipeline, component_parameters, denoisers, load_pretrained_pipeline
from utils.presets import get_preset
from utils.results import read_rows

# Parameters per model on the meta device, in billions, and the published sizes they must match.
PUBLISHED_B = {
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": {"transformer": 14.3, "transformer_2": 14.3, "text_encoder": 5.7, "vae": 0.13},
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": {"transformer": 5.0, "text_encoder": 5.7, "vae": 0.7},
    "Qwen/Qwen-Image": {"transformer": 20.4, "text_encoder": 8.3, "vae": 0.13},
    "black-forest-labs/FLUX.2-dev": {"transformer": 32.2, "text_encoder": 24.0, "vae": 0.08},
}


@pytest.mark.parametrize("name", list(PUBLISHED_B))
def test_full_size_configs_have_the_published_sizes(name):
    counts = component_parameters(get_preset(name))
    assert {model: round(count / 1e9, 1 if count > 1e9 else 2) for model, count in counts.items()} == PUBLISHED_B[name]


@pytest.fixture
def paths(tmp_path):
    return ["--device", "cpu", "--warmup", "1", "--runs", "1", "--csv", str(tmp_path / "rows.csv"),
            "--reference_dir", str(tmp_path / "references")]


def last_row(tmp_path):
    return read_rows(tmp_path / "rows.csv").iloc[-1]


@pytest.mark.parametrize("name,frames,side", [("tiny-wan22-a14b", 9, 32), ("tiny-wan22-ti2v", 9, 64)])
def test_tiny_wan_runs_end_to_end(paths, tmp_path, name, frames, side):
    path = tmp_path / "clip.mp4"
    assert benchmark_video.main(["--model_id", name, *paths, "--save_video", str(path)]) == 0
    row = last_row(tmp_path)
    assert (row.status, row.model, row.num_frames, row.height, row.width) == ("ok", name, frames, side, side)
    assert row.psnr_db == float("inf")  # the bf16 eager reference is this very configuration
    assert iio.imread(path).shape == (frames, side, side, 3)


def test_tiny_qwen_image_runs_end_to_end_with_true_cfg(paths, tmp_path):
    path = tmp_path / "image.png"
    args = ["--ckpt_id", "tiny-qwen-image", *paths, "--batch_size", "2", "--guidance_scale", "2.5"]
    assert benchmark_image.main([*args, "--save_image", str(path)]) == 0
    row = last_row(tmp_path)
    assert (row.status, row.batch_size, row.height, row.width, row.guidance_scale) == ("ok", 2, 32, 32, 2.5)
    assert Image.open(path).size == (32, 32)
    config = benchmark_image.parse_config(args)
    pipe = build_pipeline("tiny-qwen-image", "random", "cpu", torch.bfloat16, seed=0)
    kwargs = call_kwargs(pipe, config)  # --guidance_scale is Qwen-Image's true CFG, one negative prompt per prompt
    assert (kwargs["true_cfg_scale"], kwargs["negative_prompt"], "guidance_scale" in kwargs) == (2.5, [" ", " "], False)


def test_tiny_flux2_runs_end_to_end(paths, tmp_path):
    path = tmp_path / "image.png"
    args = ["--ckpt_id", "tiny-flux2", *paths, "--batch_size", "2", "--save_image", str(path)]
    assert benchmark_image.main(args) == 0
    row = last_row(tmp_path)
    assert (row.status, row.batch_size, row.height, row.width, row.guidance_scale) == ("ok", 2, 32, 32, 4.0)
    assert Image.open(path).size == (32, 32)


def test_qwen_tokenizer_keeps_the_template_prefix_length():
    """QwenImagePipeline drops the first prompt_template_encode_start_idx hidden states: the template's system part
    must be that many tokens with our offline vocabulary too, and the default prompt as many as with Qwen's."""
    pipe = build_pipeline("tiny-qwen-image", "random", "cpu", torch.bfloat16, seed=0)
    prefix = pipe.prompt_template_encode.split("{}")[0]
    assert len(pipe.tokenizer(prefix).input_ids) == pipe.prompt_template_encode_start_idx == 34
    prompt = pipe.tokenizer("A photo of an astronaut riding a horse on the moon").input_ids
    assert len(prompt) == 11


def test_both_wan_experts_are_built_run_and_quantized(paths, tmp_path):
    pipe = build_pipeline("tiny-wan22-a14b", "random", "cpu", torch.bfloat16, seed=0)
    first, second = denoisers(pipe)
    assert (first, second) == (pipe.transformer, pipe.transformer_2) and pipe.config.boundary_ratio == 0.875
    assert not torch.equal(first.proj_out.weight, second.proj_out.weight)  # each its own seeded weights
    assert next(pipe.vae.parameters()).dtype == torch.float32  # as the model cards load it
    assert first.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32  # as from_pretrained does
    config = build_config("inference/benchmark_video.py", benchmark_video.build_parser().parse_args(
        ["--model_id", "tiny-wan22-a14b", *paths, "--quantization", "int8wo"]), [])
    assert list(targets(pipe, config)) == ["transformer", "transformer_2"]
    calls = []
    for model in (first, second):
        model.register_forward_hook(lambda module, args, output: calls.append(module))
    pipe("a dog", num_frames=9, height=32, width=32, num_inference_steps=2, max_sequence_length=16,
         output_type="latent")
    assert {id(model) for model in calls} == {id(first), id(second)}  # 2 steps: one above the boundary, one below
    assert benchmark_video.main(["--model_id", "tiny-wan22-a14b", *paths, "--quantization", "int8wo"]) == 0
    single = benchmark_video.main(["--model_id", "tiny-wan22-ti2v", *paths, "--quantization", "int8wo"])
    rows = read_rows(tmp_path / "rows.csv")
    assert single == 0 and rows.n_layers_quantized.tolist() == [52, 26]  # 26 Linear layers per expert
    assert (rows.status == "ok").all() and (rows.psnr_db > 20).all()


def test_wan_pretrained_path_keeps_both_experts(tmp_path):
    pipe = build_pipeline("tiny-wan22-a14b", "random", "cpu", torch.bfloat16, seed=0)
    pipe.save_pretrained(tmp_path / "ckpt")
    loaded = load_pretrained_pipeline(str(tmp_path / "ckpt"), "cpu", torch.bfloat16)
    assert loaded.config.boundary_ratio == 0.875
    for name in ("transformer", "transformer_2"):
        saved, again = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(torch.equal(saved[key], again[key]) and saved[key].dtype == again[key].dtype for key in saved)


@pytest.mark.parametrize("script,flags,message", [
    (benchmark_image, ["--ckpt_id", "tiny-qwen-image", "--fuse_attn_projections"], "fuses no attention projection"),
    (benchmark_video, ["--model_id", "tiny-wan22-a14b", "--step_cache", "taylorseer"], "named like blocks.0.attn1"),
    (benchmark_video, ["--model_id", "tiny-wan22-ti2v", "--height", "48"], "multiple of 32"),
    (benchmark_image, ["--ckpt_id", "tiny-flux2", "--step_cache", "first_block"], "outside a cache context"),
    (benchmark_video, ["--model_id", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "--quantization", "fp8dqrow"],
     "runs only on CUDA"),
])
def test_levers_that_cannot_apply_are_refused(paths, tmp_path, capsys, script, flags, message):
    expect_exit_2(script.main, [*flags, *paths], message, capsys)
    assert list(tmp_path.iterdir()) == []


def test_serialize_refuses_two_experts(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serialize.main(["save", "--ckpt_id", "tiny-wan22-a14b", "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "two transformers" in capsys.readouterr().err


def test_context_parallel_needs_token_counts_that_divide(paths, tmp_path, capsys, monkeypatch):
    """Qwen-Image's default 1328x1328 gives 83 x 83 image tokens, which no even number of GPUs splits evenly."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.main(["--ckpt_id", "tiny-qwen-image", "--height", "48", "--width", "48",
                              "--context_parallel", "ulysses", *paths])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "9 image tokens at this size, which do not divide by 2 GPUs" in err, err
    assert list(tmp_path.iterdir()) == []
