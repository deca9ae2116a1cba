import subprocess
import sys

import pytest

from inference import benchmark_image
from tests.conftest import REPO_ROOT

BAD_INPUTS = {
    "unknown quantization": (["--quantization", "int3"], "invalid choice"),
    "batch size 0": (["--batch_size", "0"], "must be >= 1"),
    "zero steps": (["--num_inference_steps", "0"], "must be >= 1"),
    "height not a multiple of 16": (["--height", "100"], "multiple of 16"),
    "width not a multiple of 16": (["--width", "72"], "multiple of 16"),
    "fp8 on the cpu": (["--quantization", "fp8dqrow"], "runs only on CUDA"),
    "int4 on the cpu": (["--quantization", "int4wo"], "runs only on CUDA"),
    "removed fpx": (["--quantization", "fp6_e3m2"], "removed the fpx"),
    "removed autoquant": (["--quantization", "autoquant"], "removed autoquant"),
    "sparsify on the cpu": (["--sparsify"], "needs CUDA"),
    "sparsify with quantization": (["--sparsify", "--quantization", "int8wo"], "removed int8 + 2:4"),
    "unknown model, random weights": (["--ckpt_id", "acme/unknown", "--weights", "random"], "presets: "),
    "test preset, pretrained weights": (["--weights", "pretrained"], "test-only preset"),
    "bad skip regex": (["--quant_skip_pattern", "("], "not a valid regex"),
    "unknown device": (["--device", "tpu9"], "not a torch device"),
    "cuDNN attention on the cpu": (["--attention_backend", "_native_cudnn"], "is a CUDA kernel"),
    "compile cache without compile": (["--compile_cache", "c.bin"], "needs --compile"),
}


@pytest.mark.parametrize("flags,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line(flags, message, run_args, tmp_path, capsys):
    argv = [*run_args, *flags]  # a repeated flag: the later value wins
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


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
