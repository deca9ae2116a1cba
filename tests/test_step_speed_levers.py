"""The levers that shorten a FLUX step without changing its math: fusion that drops the unfused projections, wider
persistent reductions in inductor, and one CUDA graph over the whole transformer (its recording needs a GPU: here
its bookkeeping and its checks)."""

import numpy as np
import pytest
import torch

from inference import benchmark_image
from tests.conftest import TINY
from utils.levers import cuda_graph, fusion, reductions
from utils.pipelines import build_pipeline
from utils.quant import apply_quantization


def image(pipe):
    generator = torch.Generator("cpu").manual_seed(0)
    return pipe(prompt="a", num_inference_steps=2, height=64, width=64, generator=generator, output_type="np").images


def test_fusion_drops_the_unfused_projections_and_keeps_the_output():
    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    unfused = image(pipe)
    parameters = sum(parameter.numel() for parameter in pipe.transformer.parameters())
    fusion.fuse_qkv(pipe)
    attention = [module for module in pipe.transformer.modules() if type(module).__name__ == "FluxAttention"]
    assert attention and all(not hasattr(module, "to_q") for module in attention)
    assert all(not hasattr(module, "add_q_proj") for module in attention if hasattr(module, "to_added_qkv"))
    # the fused copies replace the separate weights: same parameter count, nothing kept twice
    assert sum(parameter.numel() for parameter in pipe.transformer.parameters()) == parameters
    np.testing.assert_array_equal(image(pipe), unfused)
    fused_layers = apply_quantization(pipe.transformer, "int8wo")
    fresh = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)
    fresh.transformer.fuse_qkv_projections()  # diffusers' fusion alone quantizes the dead copies too
    assert fused_layers < apply_quantization(fresh.transformer, "int8wo")


def test_wider_persistent_reductions_compile_and_name_themselves(monkeypatch):
    choices = reductions.choices_class(16384)
    assert choices().uuid() != reductions.choices_class(4096)().uuid()
    monkeypatch.setattr(torch._inductor.config, "inductor_choices_class", choices)
    torch._dynamo.reset()
    x = torch.randn(8, 3072)
    compiled = torch.compile(lambda t: t / t.abs().amax(dim=-1, keepdim=True))
    torch.testing.assert_close(compiled(x), x / x.abs().amax(dim=-1, keepdim=True))
    torch._dynamo.reset()


def test_graphed_forward_warms_up_per_signature(monkeypatch):
    calls, recorded = [], []
    graphed = cuda_graph.GraphedForward(lambda x, scale=1: calls.append(x.shape) or x * scale)
    monkeypatch.setattr(graphed, "record", lambda key, args, kwargs: recorded.append(key) or args[0])
    small, large = torch.ones(2), torch.ones(3)
    for _ in range(cuda_graph.WARMUP_CALLS):
        graphed(small, scale=2)
    assert not recorded and len(calls) == cuda_graph.WARMUP_CALLS
    graphed(small, scale=2)
    assert len(recorded) == 1
    graphed(large, scale=2)  # another shape: its own warm-up
    graphed(small, scale=3)  # another value of a non-tensor argument: its own warm-up too
    assert len(recorded) == 1


def test_graph_helpers_copy_nested_tensors():
    static = {"a": torch.zeros(2), "b": (torch.zeros(1), None)}
    cuda_graph.copy_into(static, {"a": torch.ones(2), "b": (torch.full((1,), 5.0), None)})
    assert static["a"].tolist() == [1, 1] and static["b"][0].item() == 5
    output = (torch.ones(2),)
    copy = cuda_graph.cloned(output)
    output[0].zero_()
    assert copy[0].tolist() == [1, 1]


BAD = {
    "on the cpu": (["--cuda_graph"], "needs a CUDA device"),
    "reductions without compile": (["--persistent_reductions_up_to", "16384"], "needs --compile"),
}


@pytest.mark.parametrize("flags,message", BAD.values(), ids=BAD.keys())
def test_refused_up_front(flags, message, run_args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark_image.main([*run_args, *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cuda_graph_conflicts_are_named(run_args, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # validation only; nothing runs
    for flags, conflict in ((["--regional_compile", "--step_cache", "first_block"], "--step_cache"),
                            (["--compile"], "whole-model --compile")):
        with pytest.raises(SystemExit):
            benchmark_image.parse_config([*run_args, "--device", "cuda", "--cuda_graph", *flags])
        assert conflict in capsys.readouterr().err
