"""The one-pass GELU -> fp8 layers (utils/fp8_kernels.py, --gelu_fp8_one_pass): the PyTorch reference they run on
the CPU quantizes exactly as torchao's fp8dqrow does, and the pipeline keeps its output close to bf16 with them.
The Triton kernel runs here under Triton's interpreter when triton is installed; its speed and its rounding are
checked on the GPU."""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import benchmark_image
from tests.conftest import TINY
from utils import fp8_kernels
from utils.fp8_kernels import FP8, Fp8RowLinear, gelu_tanh, quantize_weight_rows, reference_rows_to_fp8, rows_to_fp8
from utils.levers import fusion, gelu_fp8
from utils.pipelines import build_pipeline


def image(pipe):
    generator = torch.Generator("cpu").manual_seed(0)
    return pipe(prompt="a", num_inference_steps=2, height=64, width=64, generator=generator, output_type="np").images


def test_rows_are_gelu_then_concatenated_then_quantized_per_row():
    plain, pre = torch.randn(16, 32, dtype=torch.bfloat16), 3 * torch.randn(16, 64, dtype=torch.bfloat16)
    rows, scale = rows_to_fp8(plain, pre)
    assert rows.dtype == FP8 and rows.shape == (16, 96) and scale.shape == (16, 1)
    expected = torch.cat([plain, torch.nn.functional.gelu(pre, approximate="tanh")], dim=-1).float()
    torch.testing.assert_close(scale, expected.abs().amax(dim=-1, keepdim=True) / 448)
    assert rows.float().abs().amax(dim=-1).eq(448).all()  # each row's largest value lands on e4m3's max
    assert ((rows.float() * scale - expected).norm() / expected.norm()) < 0.05
    only_gelu, _ = reference_rows_to_fp8(None, pre)
    assert only_gelu.shape == (16, 64)


def check_the_triton_kernel(plain_cols: int, gelu_cols: int) -> None:
    """Run in a process started with TRITON_INTERPRET=1 (Triton reads it when it is imported)."""
    generator = torch.Generator().manual_seed(plain_cols + gelu_cols)
    gelu_input = (3 * torch.randn(8, gelu_cols + 24, generator=generator)).bfloat16()[:, 24:]
    plain = None
    if plain_cols:  # every other row's largest value in the plain part
        plain = (torch.randn(8, plain_cols + 8, generator=generator) * torch.tensor([1.0, 10.0]).repeat(4)[:, None])
        plain = plain.bfloat16()[:, :plain_cols]
    scaled, scale = fp8_kernels.triton_rows_to_fp8(plain, gelu_input, out_dtype=torch.float32)
    activated = gelu_tanh(gelu_input)
    expected = (activated if plain is None else torch.cat([plain, activated], dim=-1)).float()
    # one bf16 step apart at most: the interpreter rounds the kernel's GELU to bf16 its own way (atol: values near
    # zero, far below e4m3's smallest step)
    torch.testing.assert_close(scale, expected.abs().amax(dim=-1, keepdim=True) / 448, rtol=2**-7, atol=0)
    torch.testing.assert_close(scaled, expected / scale, rtol=2**-7, atol=1e-4)
    torch.testing.assert_close(scaled.abs().amax(dim=-1), torch.full((8,), 448.0))  # each row's largest: e4m3's max


def test_the_triton_kernel_quantizes_like_the_reference_under_the_interpreter():
    """The Triton kernel itself, run on the CPU by Triton's interpreter, at FLUX.1-dev's row widths (feed-forward:
    12288; single block: 3072 + 12288) and at widths that are not powers of two, on column slices of wider tensors
    (row strides that are not the width): the reference's scales and scaled rows, up to the interpreter's own
    rounding to bf16. The e4m3 cast is checked on the GPU: the interpreter's halves some values just above a power of
    two."""
    pytest.importorskip("triton")
    cases = [(0, 12288), (3072, 12288), (40, 150)]
    calls = "; ".join(f"check_the_triton_kernel({plain}, {gelu})" for plain, gelu in cases)
    subprocess.run([sys.executable, "-c", f"from tests.test_fp8_levers import check_the_triton_kernel; {calls}"],
                   check=True, cwd=Path(__file__).parents[1], env={**os.environ, "TRITON_INTERPRET": "1"})


def test_the_weights_are_quantized_like_fp8dqrow_and_the_layer_matches_bf16():
    linear = torch.nn.Linear(96, 48).to(torch.bfloat16)
    weight, scale = quantize_weight_rows(linear.weight)
    assert weight.dtype == FP8 and scale.shape == (48, 1)
    layer = Fp8RowLinear.from_linear(linear)
    plain, pre = torch.randn(2, 8, 32, dtype=torch.bfloat16), torch.randn(2, 8, 64, dtype=torch.bfloat16)
    expected = linear(torch.cat([plain, torch.nn.functional.gelu(pre, approximate="tanh")], dim=-1)).float()
    out = layer(pre, plain=plain)
    assert out.shape == (2, 8, 48) and out.dtype == torch.bfloat16
    assert ((out.float() - expected).norm() / expected.norm()) < 0.06
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(layer)(pre, plain=plain), out)  # the custom op traces
    torch._dynamo.reset()


def test_the_flux_layers_after_a_gelu_are_replaced_and_the_image_stays_close():
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    bf16 = image(pipe)
    applied = gelu_fp8.apply(pipe, None)
    one_pass = [module for module in pipe.transformer.modules() if isinstance(module, Fp8RowLinear)]
    # tiny-flux: one double block (ff, ff_context) and one single block (proj_out); unfused: nothing merged
    assert applied == {"n_layers_quantized": 3} and len(one_pass) == 3
    assert not any(hasattr(block, "act_mlp") for block in pipe.transformer.single_transformer_blocks)
    fp8 = image(pipe)
    assert fp8.shape == bf16.shape
    psnr = 10 * np.log10(1 / np.mean((fp8.astype(np.float64) - bf16) ** 2))
    assert psnr > 25


def test_with_fused_qkv_the_single_blocks_project_once_and_compute_the_same():
    pipe = build_pipeline(TINY, "random", "cpu", torch.float32, seed=0)
    block = pipe.transformer.single_transformer_blocks[0]
    width = block.proj_out.in_features - block.mlp_hidden_dim
    inputs = dict(hidden_states=torch.randn(1, 16, width), encoder_hidden_states=torch.randn(1, 8, width),
                  temb=torch.randn(1, width))
    expected = block(**inputs)
    fusion.fuse_qkv(pipe)
    assert gelu_fp8.merge_single_block_inputs(block) and not hasattr(block, "proj_mlp")
    assert isinstance(block.attn.to_qkv, torch.nn.Identity)
    block.forward = types.MethodType(gelu_fp8.single_block_forward, block)
    block.proj_out = _Plain(block.proj_out)  # the float32 layer, fed the way the fp8 one is
    for got, want in zip(block(**inputs), expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


class _Plain(torch.nn.Module):
    def __init__(self, linear):
        super().__init__()
        self.linear = linear

    def forward(self, gelu_input, plain=None):
        return self.linear(torch.cat([plain, torch.nn.functional.gelu(gelu_input, approximate="tanh")], dim=-1))


@pytest.mark.parametrize("quantization", ["None", "int8wo"])
def test_the_flag_needs_fp8dqrow_and_a_gelu(quantization, run_args, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.parse_config([*run_args, "--quantization", quantization, "--gelu_fp8_one_pass"])
    assert exit_info.value.code == 2
    assert "needs --quantization fp8dqrow" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (9, 0))
    with pytest.raises(SystemExit):
        benchmark_image.parse_config([*run_args, "--ckpt_id", "tiny-flux2", "--device", "cuda", "--quantization",
                                      "fp8dqrow", "--gelu_fp8_one_pass"])
    assert "SwiGLU" in capsys.readouterr().err


def test_the_gelu_layers_of_the_other_models_are_found():
    """CogVideoX, Wan 2.2 (both experts) and Qwen-Image use diffusers' GELU(tanh) feed-forward too."""
    from utils.pipelines import denoisers

    for name, per_model in [("tiny-cogvideox", [2]), ("tiny-wan22-a14b", [2, 2]), ("tiny-qwen-image", [4])]:
        pipe = build_pipeline(name, "random", "cpu", torch.bfloat16, seed=0)
        assert [gelu_fp8.use_one_pass_gelu_fp8(model) for model in denoisers(pipe)] == per_model, name


def test_qwen_images_text_stream_keeps_its_gelu_layer_for_the_weight_only_form():
    """The text stream's feed-forward sees one row per prompt token (Preset.few_rows_layers): no fp8 activations."""
    from utils.presets import get_preset

    pipe = build_pipeline("tiny-qwen-image", "random", "cpu", torch.bfloat16, seed=0)
    few_rows = get_preset("tiny-qwen-image").few_rows_layers
    assert gelu_fp8.use_one_pass_gelu_fp8(pipe.transformer, few_rows) == 2  # the image stream's, one per block
    for block in pipe.transformer.transformer_blocks:
        assert isinstance(block.img_mlp.net[1], Fp8RowLinear) and type(block.txt_mlp.net[2]) is torch.nn.Linear


def test_the_fp8_attention_processor_computes_what_diffusers_does(monkeypatch):
    """Wiring only: with the fp8 kernel swapped for bf16 SDPA the processor gives diffusers' own output, bit for bit
    (FA3 itself needs a Hopper GPU and is checked there)."""
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    from utils import fp8_attention

    def sdpa(query, key, value, query_bound, key_bound):  # what diffusers' processor calls (the active backend)
        assert query.abs().amax() <= query_bound and key.abs().amax() <= key_bound
        return dispatch_attention_fn(query, key, value)

    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    with torch.no_grad():  # text norms ten times the image norms: a bound that left one out would be exceeded
        for name, norm in pipe.transformer.named_modules():
            if isinstance(norm, torch.nn.RMSNorm) and ".attn.norm_" in name:
                norm.weight.uniform_(5, 10) if "added" in name else norm.weight.uniform_(0.5, 1)
    expected = image(pipe)
    monkeypatch.setattr(fp8_attention, "fp8_attention", sdpa)
    assert fp8_attention.set_fp8_attention(pipe.transformer) == 2  # one double and one single block
    np.testing.assert_array_equal(image(pipe), expected)


def test_each_attention_layer_gets_the_bounds_of_its_own_norms_as_buffers_outside_the_state_dict():
    from utils.fp8_attention import rms_norm_bound, set_fp8_attention

    transformer = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0).transformer
    with torch.no_grad():  # every norm its own largest weight: a bound taken from the wrong norms shows
        for index, norm in enumerate(m for m in transformer.modules() if isinstance(m, torch.nn.RMSNorm)):
            norm.weight.fill_(1.0 + index)
    assert set_fp8_attention(transformer) == 2
    layers = [m for m in transformer.modules() if type(m).__name__ == "FluxAttention"]
    joint, single = sorted(layers, key=lambda layer: layer.added_kv_proj_dim is None)
    assert joint.fp8_query_bound == rms_norm_bound(joint.norm_q, joint.norm_added_q)
    assert joint.fp8_key_bound == rms_norm_bound(joint.norm_k, joint.norm_added_k)
    assert single.fp8_query_bound == rms_norm_bound(single.norm_q) != joint.fp8_query_bound
    assert single.fp8_key_bound == rms_norm_bound(single.norm_k)
    assert not any("fp8_" in key for key in transformer.state_dict())  # checkpoints stay diffusers' own


def test_per_head_scales_put_each_heads_largest_value_on_the_fp8_max():
    from utils.fp8_attention import to_fp8_per_head

    x = torch.randn(2, 40, 3, 16, dtype=torch.bfloat16) * torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1)
    values, scale = to_fp8_per_head(x)
    assert values.dtype == FP8 and scale.shape == (2, 3)
    assert values.float().abs().amax(dim=(1, 3)).eq(448).all()
    back = values.float() * scale[:, None, :, None]
    assert ((back - x.float()).norm() / x.float().norm()) < 0.05


def test_the_rms_norm_bound_holds_through_rope_and_is_what_the_scales_put_on_the_fp8_max():
    from diffusers.models.embeddings import apply_rotary_emb

    from utils.fp8_attention import rms_norm_bound, to_fp8_bounded

    torch.manual_seed(0)
    norm = torch.nn.RMSNorm(16, eps=1e-6)  # the class FluxAttention uses
    torch.nn.init.uniform_(norm.weight, -3, 3)
    x = torch.randn(2, 64, 3, 16)
    x[0, 0, 0] = 0.0  # the worst case: one entry, under the largest weight, holds the whole norm, and is not rotated
    x[0, 0, 0, norm.weight.abs().argmax()] = 40.0
    angles = torch.rand(64, 8) * 6.3
    angles[0] = 0.0
    rope = angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)
    y = apply_rotary_emb(norm(x), rope, sequence_dim=1)
    bound = rms_norm_bound(norm)
    assert torch.isclose(bound, norm.weight.abs().max() * 4) and y.abs().max() <= bound
    assert y.abs().max() > 0.9 * bound  # the bound is reached, not just respected
    values, scale = to_fp8_bounded(y, bound)
    assert values.dtype == FP8 and scale.shape == (2, 3) and torch.allclose(scale, bound / 448)
    assert ((values.float() * scale[:, None, :, None] - y).norm() / y.norm()) < 0.05
    assert rms_norm_bound(torch.nn.RMSNorm(16, elementwise_affine=False)) == 4  # no weight: sqrt(head_dim)


@pytest.mark.parametrize("flags, message", [
    (["--attention_backend", "fa3_fp8"], "Hopper GPU kernel"),
    (["--attention_backend", "fa3_fp8", "--device", "cuda"], "fa3-fwd"),
    (["--attention_backend", "fa3_fp8", "--device", "cuda", "--offload", "sequential"], "--offload sequential"),
    (["--attention_backend", "fa3_fp8", "--device", "cuda", "--context_parallel", "ring"], "--context_parallel"),
])
def test_fp8_attention_is_refused_where_it_cannot_run(flags, message, run_args, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.parse_config([*run_args, *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_recipe_is_its_flags_and_flags_beside_it_win(run_args, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (9, 0))
    monkeypatch.setattr("utils.fp8_attention.missing_reason", lambda: None)
    config = benchmark_image.parse_config([*run_args, "--device", "cuda", "--recipe", "fastest", "--runs", "7"])
    assert (config.quantization, config.gelu_fp8_one_pass, config.cuda_graph, config.attention_backend) == (
        "fp8dqrow", True, True, "fa3_fp8")
    assert config.regional_compile and config.compile_vae and config.persistent_reductions_up_to == 16384
    assert config.runs == 7 and "--recipe" in config.command
    lossless = benchmark_image.parse_config([*run_args, "--device", "cuda", "--recipe", "fastest-lossless"])
    assert lossless.attention_backend == "default" and lossless.gelu_fp8_one_pass
