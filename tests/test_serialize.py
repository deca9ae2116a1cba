import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import torch

from inference import benchmark_image
from inference.serialize import main
from utils.aot import aot_compile_transformer, capture_transformer_inputs, load_aot_transformer, run_transformer
from utils.benchmark import call_kwargs
from utils.levers.compilation import load_compile_cache, save_compile_cache
from utils.pipelines import build_pipeline, build_random_component
from utils.presets import get_preset
from utils.quant import QUANTIZATIONS, apply_quantization, unsupported_reason
from utils.serialization import CheckpointError, load_pipeline_with, load_transformer, save_transformer

# autoquant is planned per layer by the benchmarks; serialize.py does not offer it
RUNS_ON_CPU = [name for name, method in QUANTIZATIONS.items()
               if unsupported_reason(name, "cpu") is None and not method.planned]


def call_kwargs_for(pipe, ckpt_id: str, prompt: str = "A photo of an astronaut riding a horse") -> dict:
    """The pipeline-call arguments the image benchmark would use for `ckpt_id`."""
    config = benchmark_image.parse_config(["--ckpt_id", ckpt_id, "--device", "cpu", "--prompt", prompt])
    return call_kwargs(pipe, config)


def tiny_transformer(preset_name="tiny-flux"):
    """The same weights as the transformer of build_pipeline(preset_name, "random", ..., seed=0)."""
    preset = get_preset(preset_name)
    config = json.loads((preset.config_dir / "transformer.json").read_text())
    return build_random_component(preset.components["transformer"], config, "cpu", torch.bfloat16, seed=0)


@pytest.fixture(scope="module")
def flux_inputs(tiny_pipe):
    """What tiny-flux's pipeline passes to its transformer at the first step (shapes, dtypes, ids)."""
    return capture_transformer_inputs(tiny_pipe, call_kwargs_for(tiny_pipe, "tiny-flux"), seed=0)


def saved(tmp_path, quantization="int8wo", fmt="auto", preset_name="tiny-flux"):
    model = tiny_transformer(preset_name)
    apply_quantization(model, quantization)
    directory = tmp_path / f"{preset_name}-{quantization}-{fmt}"
    save_transformer(model, directory, quantization, fmt)
    return model, directory


def generate(pipe):
    return pipe("a dog", num_inference_steps=2, height=64, width=64, max_sequence_length=32, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


def test_every_cpu_method_is_covered():
    assert set(RUNS_ON_CPU) == {"None", "int8wo", "int8dq", "int4dq", "fp8wo"}


@pytest.mark.parametrize("fmt", ["auto", "pickle"])
@pytest.mark.parametrize("quantization", RUNS_ON_CPU)
def test_round_trip_gives_identical_transformer_output(tmp_path, flux_inputs, quantization, fmt):
    model = tiny_transformer()
    apply_quantization(model, quantization)
    reference = run_transformer(model, flux_inputs)

    summary = save_transformer(model, tmp_path / "ckpt", quantization, fmt)
    loaded = load_transformer(tmp_path / "ckpt", expected_class="FluxTransformer2DModel",
                              expected_config=dict(model.config))

    assert summary["format"] == ("safetensors" if fmt == "auto" else "pickle")  # torchao 0.18 flattens them all
    assert torch.equal(run_transformer(loaded, flux_inputs), reference)
    weight_types = {name: type(tensor) for name, tensor in model.state_dict().items()}
    assert {name: type(tensor) for name, tensor in loaded.state_dict().items()} == weight_types


def test_saved_transformer_gives_the_same_images_in_its_pipeline(tmp_path):
    pipe = build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, seed=0)
    apply_quantization(pipe.transformer, "int8wo")
    reference = generate(pipe)
    save_transformer(pipe.transformer, tmp_path / "ckpt", "int8wo")

    loaded = load_transformer(tmp_path / "ckpt", expected_class="FluxTransformer2DModel")
    again = load_pipeline_with("tiny-flux", "random", loaded, "cpu", torch.bfloat16, seed=0)

    assert again.transformer is loaded
    assert (generate(again) == reference).all()


def test_cli_save_and_load_cogvideox(tmp_path, capsys):
    assert main(["save", "--ckpt_id", "tiny-cogvideox", "--quantization", "int8wo", "--output",
                 str(tmp_path / "cog")]) == 0
    assert "reloaded copy gives the same transformer output" in capsys.readouterr().out
    assert main(["load", "--ckpt_id", "tiny-cogvideox", "--path", str(tmp_path / "cog"), "--num_inference_steps",
                 "1"]) == 0
    assert "time to first image" in capsys.readouterr().out


def test_cli_load_into_a_pretrained_pipeline_folder(tiny_pipe, tmp_path, capsys):
    tiny_pipe.save_pretrained(tmp_path / "pipe")
    _, directory = saved(tmp_path)
    assert main(["load", "--ckpt_id", str(tmp_path / "pipe"), "--weights", "pretrained", "--path", str(directory),
                 "--num_inference_steps", "1", "--height", "64", "--width", "64", "--max_sequence_length", "32"]) == 0
    assert "(Int8WeightOnlyConfig)" in capsys.readouterr().out


def test_cli_measure_compares_load_paths(tmp_path, capsys):
    report = tmp_path / "measure.json"
    assert main(["measure", "--quantization", "int8dq", "--workdir", str(tmp_path / "work"), "--json",
                 str(report), "--num_inference_steps", "1"]) == 0
    measured = json.loads(report.read_text(), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert measured["command"].startswith("python inference/serialize.py measure --quantization int8dq")
    assert measured["torchao_version"] and measured["gpu"] and measured["checkpoint_GiB"] > 0
    rows = measured["rows"]
    assert [row["path"] for row in rows] == ["bf16 + quantize", "pre-quantized safetensors"]
    assert all(row["same_image"] and row["load_s"] > 0 and row["load_peak_GiB"] is None for row in rows)
    assert all(row["second_call_s"] > 0 and row["device_GiB"] is None for row in rows)
    assert "| bf16 + quantize |" in capsys.readouterr().out


def test_cli_measure_aot_times_the_package_against_torch_compile(tmp_path):
    # int8dq, not int8wo: compiling an int8wo model loaded from safetensors crashes the CPU process (segfault in
    # the aten._weight_int8pack_mm that inductor substitutes; torch 2.11, torchao 0.18), a freshly quantized one not
    report = tmp_path / "measure.json"
    assert main(["measure", "--quantization", "int8dq", "--aot", "--workdir", str(tmp_path / "work"), "--json",
                 str(report), "--num_inference_steps", "1"]) == 0
    measured = json.loads(report.read_text())
    rows = {row["path"]: row for row in measured["rows"]}
    assert list(rows) == ["bf16 + quantize", "pre-quantized safetensors", "pre-quantized safetensors + torch.compile",
                          "AOT package"]
    assert measured["aot"]["size_GiB"] > 0 and measured["aot"]["aoti_compile_s"] > 0
    for label in ("pre-quantized safetensors + torch.compile", "AOT package"):
        assert rows[label]["psnr_db"] > 25 and rows[label]["second_call_s"] > 0


def test_truncated_safetensors_fails_with_the_file_name(tmp_path):
    _, directory = saved(tmp_path)
    weights = directory / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors: truncated: \d+ bytes"):
        load_transformer(directory)


def test_truncated_pickle_fails_with_the_file_name(tmp_path):
    _, directory = saved(tmp_path, fmt="pickle")
    weights = directory / "diffusion_pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.bin: truncated or not a torch.save"):
        load_transformer(directory)


def test_cogvideox_checkpoint_loaded_as_flux_fails_in_one_line(tmp_path, capsys):
    _, directory = saved(tmp_path, preset_name="tiny-cogvideox")
    assert main(["load", "--ckpt_id", "tiny-flux", "--path", str(directory)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{directory}/config.json: holds a CogVideoXTransformer3DModel checkpoint" in error
    assert "needs a FluxTransformer2DModel" in error


def test_same_class_other_architecture_fails(tmp_path):
    model, directory = saved(tmp_path)
    expected = {**dict(model.config), "num_layers": 19}
    with pytest.raises(CheckpointError, match=r"config\.json: architecture differs .*num_layers=1 \(pipeline: 19\)"):
        load_transformer(directory, expected_class="FluxTransformer2DModel", expected_config=expected)


def test_torchao_safetensors_without_its_quantization_config_fails(tmp_path):
    # diffusers itself only warns and leaves every quantized Linear randomly initialized.
    _, directory = saved(tmp_path)
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    del config["quantization_config"]
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"safetensors: does not match .* weights missing .* unexpected"):
        load_transformer(directory)


def test_missing_pieces_fail_with_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        load_transformer(tmp_path / "nowhere")
    _, directory = saved(tmp_path)
    (directory / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no diffusion_pytorch_model\.safetensors or .*\.bin"):
        load_transformer(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        load_transformer(directory)


def test_save_never_deletes_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="not empty; pass --overwrite"):
        save_transformer(tiny_transformer(), tmp_path, "None")
    with pytest.raises(CheckpointError, match="not written by this tool"):
        save_transformer(tiny_transformer(), tmp_path, "None", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_cli_rejects_cuda_only_methods_on_the_cpu(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["save", "--device", "cpu", "--quantization", "int4wo", "--output", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "runs only on CUDA" in capsys.readouterr().err


def test_cli_refuses_measuring_compiled_int8wo_after_loading_on_the_cpu(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["measure", "--aot", "--quantization", "int8wo", "--workdir", str(tmp_path)])
    assert exit_info.value.code == 2 and "crashes on the CPU" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_compile_cache_round_trip(tmp_path):
    from torch._dynamo.utils import counters
    from torch._inductor.utils import fresh_cache

    def f(x, w):
        return torch.nn.functional.gelu(x @ w) * 2 + 1

    x, w = torch.randn(8, 16), torch.randn(16, 16)
    path = tmp_path / "compile_cache.bin"
    with fresh_cache():  # an empty inductor cache directory: a cold compile
        reference = torch.compile(f, fullgraph=True)(x, w)
        written = save_compile_cache(path)
    assert path.stat().st_size > 0 and written["inductor"] >= 1

    torch._dynamo.reset()
    counters.clear()
    with fresh_cache():  # empty again, as on a new machine: only the saved file can make this a hit
        loaded = load_compile_cache(path)
        output = torch.compile(f, fullgraph=True)(x, w)
    assert loaded["inductor"] >= 1
    assert counters["inductor"]["fxgraph_cache_hit"] >= 1
    assert torch.equal(output, reference)


def test_compile_cache_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="no such compile cache file"):
        load_compile_cache(tmp_path / "missing.bin")
    (tmp_path / "garbage.bin").write_bytes(b"not a cache")
    with pytest.raises(ValueError, match=r"garbage\.bin: not a torch.compile cache"):
        load_compile_cache(tmp_path / "garbage.bin")


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="AOTInductor on the CPU compiles C++ and needs a compiler")
def test_aot_package_runs_inside_the_pipeline(tmp_path):
    pipe = build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, seed=0)
    apply_quantization(pipe.transformer, "int8wo")
    kwargs = call_kwargs_for(pipe, "tiny-flux", prompt="a dog")
    inputs = capture_transformer_inputs(pipe, kwargs, seed=0)
    eager_sample = run_transformer(pipe.transformer, inputs)
    eager_images = pipe(**kwargs, generator=torch.Generator().manual_seed(0), output_type="np").images

    aot_compile_transformer(pipe.transformer, inputs, tmp_path / "flux.pt2")
    shim = load_aot_transformer(tmp_path / "flux.pt2")
    pipe.transformer = shim
    images = pipe(**kwargs, generator=torch.Generator().manual_seed(0), output_type="np").images

    sample = run_transformer(shim, inputs)
    error = (torch.linalg.vector_norm((sample - eager_sample).float()) / torch.linalg.vector_norm(eager_sample.float()))
    assert error < 0.1  # inductor's fused bf16 kernels round differently from eager
    assert images.shape == eager_images.shape and np.abs(images - eager_images).max() < 0.1
    assert shim.config.in_channels == 16 and shim.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="shapes are static"):
        pipe(**{**kwargs, "height": 128}, output_type="latent")
    with pytest.raises(ValueError, match="LoRA scales"):
        shim(**{**inputs, "joint_attention_kwargs": {"scale": 0.5}})


def test_aot_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such AOT package"):
        load_aot_transformer(tmp_path / "missing.pt2")
    (tmp_path / "broken.pt2").write_bytes(b"PK not really")
    with pytest.raises(CheckpointError, match=r"broken\.pt2: not a loadable AOTInductor package"):
        load_aot_transformer(tmp_path / "broken.pt2")


@pytest.mark.parametrize("wrapped", [False, True])
def test_ctrl_c_is_one_line_and_exit_130_with_no_output_left(tmp_path, capsys, monkeypatch, wrapped):
    """Also when the stop reaches the script wrapped in another exception (as torch.compile wraps its backend's)."""
    from inference import serialize
    from utils import serialization
    from utils.errors import Stopped

    real = serialization.replace_directory

    def interrupted_before_the_move(directory, new):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises before this ends
        except Stopped as stopped:
            if wrapped:
                raise RuntimeError("the backend failed") from stopped
            raise
        real(directory, new)

    monkeypatch.setattr(serialization, "replace_directory", interrupted_before_the_move)
    assert serialize.main(["save", "--ckpt_id", "tiny-flux", "--device", "cpu", "--output",
                           str(tmp_path / "saved")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SIGINT" in err[0] and "half-written" in err[0]
    assert list(tmp_path.iterdir()) == []
