import ast
import os
import subprocess
import sys

import pytest

from inference import benchmark_image
from tests.conftest import REPO_ROOT, expect_exit_2

BAD_INPUTS = {
    "unknown quantization": (["--quantization", "int3"], "invalid choice"),
    "batch size 0": (["--batch_size", "0"], "must be >= 1"),
    "zero steps": (["--num_inference_steps", "0"], "must be >= 1"),
    "height not a multiple of 16": (["--height", "100"], "multiple of 16"),
    "width not a multiple of 16": (["--width", "72"], "multiple of 16"),
    "fp8 on the cpu": (["--quantization", "fp8dqrow"], "runs only on CUDA"),
    "int4 on the cpu": (["--quantization", "int4wo"], "runs only on CUDA"),
    "removed fpx": (["--quantization", "fp6_e3m2"], "removed the fpx"),
    "autoquant plan without autoquant": (["--autoquant_plan", "plan.json"], "needs --quantization autoquant"),
    "autoquant error bound 0": (["--quantization", "autoquant", "--autoquant_max_error", "0"], "positive number"),
    "autoquant error bound without autoquant": (["--autoquant_max_error", "0.1"], "needs --quantization autoquant"),
    "quantized VAE without a quantization": (["--quantize_vae"], "--quantize_vae applies only with --quantization"),
    "quantized text encoders and torchao's inductor flags without a quantization": (
        ["--quantize_text_encoders", "--torchao_inductor_config"],
        "--quantize_text_encoders and --torchao_inductor_config apply only with --quantization"),
    "compile mode with nothing compiled": (["--compile_mode", "max-autotune"], "needs something to compile"),
    "default compile mode, given, with nothing compiled": (["--compile_mode", "default"], "needs something to compile"),
    "default autoquant error bound, given, without autoquant": (["--autoquant_max_error", "0.05"],
                                                                "needs --quantization autoquant"),
    "autoquant of the VAE": (["--quantization", "autoquant", "--quantize_vae"], "transformer only"),
    "sparsify on the cpu": (["--sparsify"], "needs CUDA"),
    "sparsify with quantization": (["--sparsify", "--quantization", "int8wo"], "removed int8 + 2:4"),
    "unknown model, random weights": (["--ckpt_id", "acme/unknown", "--weights", "random"], "presets: "),
    "test preset, pretrained weights": (["--weights", "pretrained"], "test-only preset"),
    "bad skip regex": (["--quant_skip_pattern", "("], "not a valid regex"),
    "skip regex that skips every layer": (["--quantization", "int8wo", "--quant_skip_pattern", ".*"],
                                          "leaves no Linear layer of tiny-flux's transformer"),
    "unknown device": (["--device", "tpu9"], "not a torch device"),
    "cuDNN attention on the cpu": (["--attention_backend", "_native_cudnn"], "is a CUDA kernel"),
    "compile cache without compile": (["--compile_cache", "c.bin"], "needs --compile"),
    "CUDA graphs with regional compile": (["--regional_compile", "--compile_mode", "reduce-overhead"],
                                          "fail with --regional_compile"),
    "CUDA graphs with layer-wise text encoders": (["--compile_text_encoders", "--compile_mode", "reduce-overhead"],
                                                  "--compile_text_encoders compiles layer by"),
    "sequential offload with compiled text encoders": (
        ["--compile_text_encoders", "--offload", "sequential"],
        "cannot be combined with --compile/--compile_vae/--compile_text"),
    "max-autotune with regional compile": (["--regional_compile", "--compile_mode", "max-autotune"],
                                           "records CUDA graphs"),
    "autotune without int8dq": (["--autotune", "--quantization", "int8wo"], "only --quantization int8dq uses"),
    "autotune on the cpu": (["--autotune", "--quantization", "int8dq"], "--autotune needs CUDA"),
    "autotune cache without autotune": (["--autotune_cache", "tuned.pkl"], "needs --autotune"),
    "autotune configs without autotune": (["--autotune_configs", "all"], "--autotune_configs needs --autotune"),
    "a video model": (["--ckpt_id", "tiny-cogvideox"], "is a video model: run it with inference/benchmark_video.py"),
    "a recipe on the cpu": (["--recipe", "fastest"], "--recipe fastest: --quantization fp8dqrow runs only on CUDA"),
    "ladder base without a ladder step": (["--ladder_base", "3"], "give --ladder_step too"),
}


@pytest.mark.parametrize("flags,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line(flags, message, run_args, tmp_path, capsys):
    argv = [*run_args, *flags]  # a repeated flag: the later value wins
    expect_exit_2(benchmark_image.main, argv, message, capsys)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_error_names_the_recipe_only_for_a_flag_the_recipe_gave(run_args, capsys):
    for flags, message in ((["--height", "17"], "multiple of 16"), (["--quantization", "fp8dq"], "only on CUDA")):
        expect_exit_2(benchmark_image.main, [*run_args, "--recipe", "readme", *flags], message, capsys)
    with pytest.raises(SystemExit):  # the user typed these flags: the message does not blame the recipe
        benchmark_image.main([*run_args, "--recipe", "readme", "--quantization", "fp8dq"])
    assert capsys.readouterr().err.split("error: ")[1].startswith("--quantization fp8dq runs only on CUDA")


def test_cuda_device_without_cuda(run_args, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.main([*run_args, "--device", "cuda"])
    assert exit_info.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, "inference/benchmark_image.py", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    for action in benchmark_image.build_parser()._actions:
        assert action.help, action.option_strings
        assert action.option_strings[0] in result.stdout
    for flag in ["--ckpt_id", "--quantization", "--sparsify", "--fuse_attn_projections", "--compile", "--compile_vae",
                 "--batch_size"]:  # the seed's flags still exist
        assert flag in result.stdout
    text = " ".join(result.stdout.split())
    assert "(default: False)" not in text and "(default: [])" not in text  # off switches, empty lists
    assert "(default: 1)" in text  # --batch_size: a default worth reading is still shown
    assert "results/<model>.csv) (default" not in text  # --csv names its own default, once


def test_autotuner_check_names_what_is_missing(monkeypatch):
    """On this CPU-only torch, Triton is what is missing; if int8dq stopped calling int_scaled_matmul, that is said."""
    from torchao.kernel import intmm
    from torchao.quantization.quantize_.workflows.int8 import int8_tensor

    from utils.levers import autotune

    if intmm.intmm_triton is None:
        assert "Triton is not installed" in autotune.unavailable_reason()
        with pytest.raises(RuntimeError, match="--autotune: .*Triton"):
            autotune.enable("unused.pkl")
    monkeypatch.setattr(int8_tensor, "int_scaled_matmul", lambda *args: None)
    assert "no longer calls torchao.kernel.intmm.int_scaled_matmul" in autotune.unavailable_reason()


def test_the_int8_autotuners_config_search_is_timed_as_planning():
    import time
    import types

    from utils.levers import autotune

    fake = types.SimpleNamespace(get_best_config_fn=lambda *args: time.sleep(0.05) or "config")
    before = autotune.tuning_seconds()
    autotune.time_config_search(fake)
    autotune.time_config_search(fake)  # wrapped once only
    assert fake.get_best_config_fn("fn", [], []) == "config" and fake.get_best_config_fn.timed
    assert 0.04 < autotune.tuning_seconds() - before < 1


def test_enable_int8_autotuner_sets_torchao_switch_and_cache(monkeypatch, tmp_path):
    """With a stand-in for Triton (the CPU torch has none), the switch and the cache path land in torchao's globals."""
    import types

    import torchao.kernel
    from torchao.kernel import intmm

    from utils.levers import autotune

    enable_int8_autotuner = autotune.enable
    monkeypatch.setattr(autotune, "_TORCHAO_INT8_MM_CONFIGS", [])
    had_autotuner = "torchao.kernel.autotuner" in sys.modules
    if had_autotuner:  # a machine with Triton: restore the real module's state afterwards
        from torchao.kernel import autotuner

        monkeypatch.setattr(autotuner, "AUTOTUNER_DATA_PATH", autotuner.AUTOTUNER_DATA_PATH)
        monkeypatch.setattr(autotuner, "_best_configs", autotuner._best_configs)
    elif intmm.intmm_triton is None:
        triton = types.ModuleType("triton")
        triton.runtime = types.SimpleNamespace(OutOfResources=RuntimeError)
        triton.Config = lambda meta, num_stages, num_warps: (meta["BLOCK_M"], meta["BLOCK_N"], meta["BLOCK_K"],
                                                             num_stages, num_warps)
        monkeypatch.setitem(sys.modules, "triton", triton)
        monkeypatch.setattr(intmm, "intmm_triton", types.SimpleNamespace(int8_mm_kernel_configs=["torchao's"] * 960))
    monkeypatch.setattr(intmm, "AUTOTUNER_ENABLE", intmm.AUTOTUNER_ENABLE)
    monkeypatch.setattr(intmm.intmm_triton, "int8_mm_kernel_configs", intmm.intmm_triton.int8_mm_kernel_configs)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    try:
        cache = tmp_path / "tuned" / "gpu.pkl"
        assert enable_int8_autotuner(cache) == "cold, 11 configs per shape" and cache.parent.is_dir()
        own_compile_cache = str(tmp_path / "inductor" / "int8-autotuner")  # kept apart from plain int8dq graphs
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == own_compile_cache
        from torchao.kernel import autotuner

        assert intmm.AUTOTUNER_ENABLE and autotuner.AUTOTUNER_DATA_PATH == str(cache)
        assert autotuner._best_configs is None
        assert len(intmm.intmm_triton.int8_mm_kernel_configs) == 11
        cache.write_bytes(b"")
        assert enable_int8_autotuner(cache, "all") == "warm, 960 configs per shape"
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == own_compile_cache  # not nested again
        with pytest.raises(ValueError, match="choose from baseline, all"):
            enable_int8_autotuner(cache, "most")
    finally:
        if not had_autotuner:  # the module imported the stand-in: drop it
            sys.modules.pop("torchao.kernel.autotuner", None)
            if hasattr(torchao.kernel, "autotuner"):
                delattr(torchao.kernel, "autotuner")


def test_a_checkpoint_whose_processor_needs_a_missing_package_is_refused_before_loading(run_args, capsys,
                                                                                       monkeypatch):
    """FLUX.2-dev's checkpoint loads transformers' PixtralProcessor, which imports torchvision: without it the run
    stops in one line before any download or load, and says that random weights need no torchvision."""
    import importlib.util

    from utils import cli

    monkeypatch.setattr(cli, "checkpoint_available", lambda ckpt_id: (True, ""))
    monkeypatch.setattr(cli, "available_GiB", lambda device: None)  # its 105 GiB of weights are not the point here
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else
                        find_spec(name, *a))
    argv = [*run_args, "--ckpt_id", "black-forest-labs/FLUX.2-dev", "--weights", "pretrained", "--device", "cpu"]
    expect_exit_2(benchmark_image.main, argv, "needs torchvision (pip install torchvision)", capsys)


def test_given_flags_are_the_typed_ones_whatever_their_spelling():
    from inference import benchmark_video
    from utils.cli import given_flags

    parser = benchmark_video.build_parser()  # sets defaults (base_dtype, sample_flag) that no one types
    assert given_flags(parser, []) == frozenset()
    argv = ["--compile_m=default", "--seed", "0", "--regional_compile"]  # an abbreviation, =, a default value
    assert given_flags(parser, argv) == {"compile_mode", "seed", "regional_compile"}


SCRIPTS = ("inference/benchmark_image.py", "inference/benchmark_video.py", "inference/quantization_time.py",
           "inference/serialize.py", "inference/sweep.py", "training/train_fp8.py")


def test_the_scripts_run_their_own_checkouts_code(tmp_path):
    # another copy of utils ahead on the path (another clone's editable install, say) must not be the one imported
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text("raise ImportError('the other copy of utils')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for script in SCRIPTS:
        done = subprocess.run([sys.executable, script, "--help"], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-500:]


def test_an_uncaught_ctrl_c_is_one_line_and_exits_by_sigint():
    """What every script imports first: a Ctrl-C while torch imports must not print a traceback."""
    code = "import utils.interrupt_hook; raise KeyboardInterrupt"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.stderr == "interrupted (Ctrl-C)\n"
    assert done.returncode == -2  # killed by SIGINT, as Python ends on an uncaught KeyboardInterrupt: the shell's 130
    modules_run_with_dash_m = ("utils/report.py", "utils/quotes.py", "utils/flags_doc.py")
    for script in SCRIPTS + modules_run_with_dash_m:  # the hook comes before every import not the standard library's
        imports = [node for node in ast.parse((REPO_ROOT / script).read_text()).body
                   if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = [node.module if isinstance(node, ast.ImportFrom) else node.names[0].name for node in imports]
        first = next(name for name in names if name.split(".")[0] not in sys.stdlib_module_names)
        assert first == "utils.interrupt_hook", script


def test_a_skip_pattern_that_leaves_only_fallback_layers_is_accepted(tmp_path):
    """int8dq's per-image layers (norms' linear, time embedders) get int8 weight-only in a fallback pass: a pattern
    that skips every other layer still quantizes those, so it is no 'nothing left' error."""
    config = benchmark_image.parse_config(["--device", "cpu", "--csv", str(tmp_path / "r.csv"), "--quantization",
                                           "int8dq", "--quant_skip_pattern", r"^(?!.*(norm\w*\.linear$|time_)).*"])
    assert config.quant_skip_pattern.startswith("^(?!")


def test_a_full_size_model_falls_back_to_the_cpu_only_when_asked(monkeypatch, tmp_path, capsys):
    """Without CUDA the default device is the CPU, where a full-size model runs for hours: --device cpu must say so."""
    from inference import benchmark_video
    from utils import cli

    monkeypatch.setattr(cli, "default_device", lambda: "cpu")
    argv = ["--ckpt_id", "THUDM/CogVideoX-2b", "--weights", "random", "--csv", str(tmp_path / "r.csv")]
    expect_exit_2(benchmark_video.parse_config, argv, "has no CUDA GPU: on the CPU it would run for hours; give "
                  "--device cpu to run it there anyway, or try --ckpt_id tiny-cogvideox", capsys)
    try:
        assert benchmark_video.parse_config([*argv, "--device", "cpu"]).device == "cpu"
    except SystemExit:  # a host too small for its weights: refused for that, not for the fallback
        assert "for its fp16 weights alone" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
