import json
import re

import pytest
import torch

from utils.fp8_kernels import MIN_AMAX
from utils.pipelines import build_random_component
from utils.presets import get_preset
from utils.quant import (
    PER_IMAGE_LAYERS,
    QUANTIZATIONS,
    apply_quantization,
    bf16_layers_pattern,
    unsupported_reason,
    weight_only_layers,
)

RUNS_ON_CPU = ["int8wo", "int8dq", "int4dq", "fp8wo"]
CUDA_ONLY = ["int4wo", "fp8dq", "fp8dqrow"]
REMOVED = ["fp6_e3m2", "fp5_e2m2", "fp4_e2m1"]


def tiny_transformer():
    preset = get_preset("tiny-flux")
    config = json.loads((preset.config_dir / "transformer.json").read_text())
    return build_random_component("FluxTransformer2DModel", config, "cpu", torch.bfloat16, seed=0)


def transformer_inputs(transformer, seed=0):
    generator = torch.Generator().manual_seed(seed)
    config = transformer.config
    tokens, text_tokens = 16, 8

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(torch.bfloat16)

    return dict(hidden_states=randn(1, tokens, config.in_channels),
                encoder_hidden_states=randn(1, text_tokens, config.joint_attention_dim),
                pooled_projections=randn(1, config.pooled_projection_dim), timestep=torch.tensor([0.5]),
                img_ids=torch.zeros(tokens, 3), txt_ids=torch.zeros(text_tokens, 3), guidance=torch.tensor([3.5]))


def relative_error(output, reference):
    return (torch.linalg.vector_norm((output - reference).float()) / torch.linalg.vector_norm(reference.float())).item()


def test_registry_covers_the_seed_names():
    assert set(QUANTIZATIONS) == {"None", *RUNS_ON_CPU, *CUDA_ONLY, *REMOVED, "autoquant"}


@pytest.mark.parametrize("name", RUNS_ON_CPU)
def test_quantization_replaces_linear_weights_and_stays_close_to_bf16(name):
    transformer = tiny_transformer()
    inputs = transformer_inputs(transformer)
    reference = transformer(**inputs).sample
    linears = [(fqn, m) for fqn, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]

    n_quantized = apply_quantization(transformer, name)

    quantized = [fqn for fqn, m in linears if type(m.weight).__module__.startswith("torchao")]
    assert n_quantized == len(quantized) > 0
    if name in ("int8wo", "fp8wo"):
        assert len(quantized) == len(linears)  # every tiny-flux Linear has dims that are multiples of 16
    error = relative_error(transformer(**inputs).sample, reference)
    assert error < {"int8wo": 0.02, "int8dq": 0.05, "int4dq": 0.15, "fp8wo": 0.1}[name]


def test_int8dq_gives_per_image_layers_int8_weights_only():
    """torch._int_mm needs more than 16 rows: the layers fed one row per image get int8 weight-only (a GEMV that
    reads half the bytes) instead of bf16; a layer the user skips stays bf16."""
    transformer = tiny_transformer()
    linears = sum(isinstance(module, torch.nn.Linear) for module in transformer.modules())
    assert apply_quantization(transformer, "int8dq", skip_pattern=r"^proj_out$") == linears - 1
    assert type(transformer.proj_out.weight) is torch.nn.Parameter
    for fqn, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and fqn != "proj_out":
            per_image = bool(re.search(PER_IMAGE_LAYERS, fqn))
            int8dq = getattr(module.weight, "act_quant_kwargs", None) is not None
            assert int8dq != per_image, fqn
    assert bf16_layers_pattern("int8dq", None) is None and bf16_layers_pattern("int8dq", "x") == "x"


def test_int8dq_gives_qwen_images_unpadded_text_stream_int8_weights_only():
    """Qwen-Image's text stream is fed one row per prompt token, unpadded (16 for the default prompt): its layers get
    int8dq's weight-only form, every other layer int8dq proper, and the row's column says which."""
    preset = get_preset("tiny-qwen-image")
    transformer = build_random_component("QwenImageTransformer2DModel", preset.config("transformer"), "cpu",
                                         torch.bfloat16, seed=0)
    linears = {fqn: module for fqn, module in transformer.named_modules() if isinstance(module, torch.nn.Linear)}
    assert apply_quantization(transformer, "int8dq", few_rows_pattern=preset.few_rows_layers) == len(linears)
    weight_only = re.compile(weight_only_layers("int8dq", preset.few_rows_layers))
    text_stream = [fqn for fqn in linears if re.search(preset.few_rows_layers, fqn)]
    assert "txt_in" in text_stream and "transformer_blocks.0.txt_mlp.net.2" in text_stream
    assert "transformer_blocks.0.attn.add_q_proj" in text_stream and "transformer_blocks.0.attn.to_q" not in text_stream
    for fqn, module in linears.items():
        int8dq = getattr(module.weight, "act_quant_kwargs", None) is not None
        assert int8dq != bool(weight_only.search(fqn)), fqn
    assert weight_only_layers("int8wo", preset.few_rows_layers) is None  # weight-only already: nothing to change


def test_skip_pattern_keeps_named_layers_in_bf16():
    transformer = tiny_transformer()
    total = sum(isinstance(m, torch.nn.Linear) for m in transformer.modules())
    n_quantized = apply_quantization(transformer, "int8wo", skip_pattern=r"proj_out$")
    assert n_quantized == total - 2  # proj_out of the single block and of the model
    assert type(transformer.proj_out.weight) is torch.nn.Parameter


@pytest.mark.parametrize("name", CUDA_ONLY)
def test_cuda_only_names_say_so_on_cpu(name):
    reason = unsupported_reason(name, "cpu")
    assert reason and "runs only on CUDA" in reason and name in reason


@pytest.mark.parametrize("name", REMOVED)
def test_removed_names_fail_with_upstream_reason(name):
    reason = unsupported_reason(name, "cpu")
    assert "torchao removed" in reason
    assert ("0.16" if name.startswith("fp") else "0.17") in reason


def test_cpu_names_are_supported_on_cpu():
    assert all(unsupported_reason(name, "cpu") is None for name in ["None", *RUNS_ON_CPU])


def test_sparsity_prunes_to_2_4_and_reaches_torchaos_cuda_only_kernels():
    """On the CPU torchao's 2:4 conversions refuse to run; getting that far proves the configs still import (an
    H100 run once failed on the import) and the chosen weights were pruned to two non-zeros in every four, while
    the per-image layers stayed dense. The float8 + 2:4 kernels themselves run only on an H100."""
    from utils.levers.sparsity import apply_sparsity, prune_to_2_4, sparse_fp8_config

    weight = torch.randn(32, 64)
    assert ((prune_to_2_4(weight).reshape(-1, 4) != 0).sum(dim=1) == 2).all()

    def model():
        layers = torch.nn.ModuleDict({"proj": torch.nn.Linear(64, 64), "norm1": torch.nn.Module()})
        layers["norm1"].linear = torch.nn.Linear(64, 64)
        return layers.to(torch.bfloat16)

    def nonzeros_per_four(linear):
        return (linear.weight.reshape(-1, 4) != 0).sum(dim=1)

    bf16 = model()
    with pytest.raises(RuntimeError, match="Only CUDA tensors"):
        apply_sparsity(bf16)
    assert (nonzeros_per_four(bf16["proj"]) <= 2).all() and (nonzeros_per_four(bf16["norm1"].linear) == 4).all()
    with pytest.raises(AssertionError, match="compute capability"):  # torchao's float8 path refuses the CPU
        apply_sparsity(model(), "fp8dqrow")
    assert sparse_fp8_config().packing_format.value == "sparse_2d_data_2d_metadata"
    assert sparse_fp8_config().activation_value_lb == MIN_AMAX
    with pytest.raises(ValueError, match="combines with None or fp8dqrow, not int8wo"):
        apply_sparsity(model(), "int8wo")


def test_sparse_layers_run_on_rows_with_the_same_result(monkeypatch):
    """The 2:4 kernels take 2-D input only. apply_sparsity turns exactly the layers it made sparse into
    RowwiseLinear, which feeds F.linear 2-D input and gives nn.Linear's output for 3-D input, eager and compiled,
    with its parameter names unchanged and through a pickle round trip."""
    import io

    import torchao.quantization
    import torchao.sparsity

    from utils.levers.sparsity import RowwiseLinear, apply_sparsity, run_on_rows

    ranks = []

    class RecordLinearInputs(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.nn.functional.linear:
                ranks.append(args[0].dim())
            return func(*args, **(kwargs or {}))

    linear = torch.nn.Linear(16, 8)
    hidden = torch.randn(2, 5, 16)
    expected = linear(hidden)
    run_on_rows(linear)
    with RecordLinearInputs():
        assert torch.equal(linear(hidden), expected)
    assert ranks == [2]
    assert torch.allclose(torch.compile(linear, backend="aot_eager")(hidden), expected)
    assert list(linear.state_dict()) == ["weight", "bias"]
    buffer = io.BytesIO()
    torch.save(linear, buffer)
    buffer.seek(0)
    assert type(torch.load(buffer, weights_only=False)) is RowwiseLinear
    with pytest.raises(TypeError, match="plain nn.Linear"):
        run_on_rows(RowwiseLinear(4, 4))

    # the kernels themselves need CUDA: stub them out to check which layers apply_sparsity rewires
    monkeypatch.setattr(torchao.sparsity, "sparsify_", lambda *args, **kwargs: None)
    monkeypatch.setattr(torchao.quantization, "quantize_", lambda *args, **kwargs: None)
    layers = torch.nn.ModuleDict({"proj": torch.nn.Linear(64, 64), "norm1": torch.nn.Module()})
    layers["norm1"].linear = torch.nn.Linear(64, 64)
    for quantization in ("None", "fp8dqrow"):
        assert apply_sparsity(layers, quantization) == 1
        assert type(layers["proj"]) is RowwiseLinear and type(layers["norm1"].linear) is torch.nn.Linear
        layers["proj"].__class__ = torch.nn.Linear


@pytest.mark.parametrize("name", ["fp8dq", "fp8dqrow"])
def test_fp8_activation_scales_have_a_floor_so_zero_rows_stay_zero(name):
    """Wan pads its text embeddings with all-zero rows; torchao's scale is amax / 448, so without a floor such a row
    (or, per tensor, an all-zero input) is quantized as 0 / 0 = NaN: a whole video of NaN on the GPU. The registry's
    configs set one, and with it torchao's own scale and cast (CPU-runnable primitives; the fp8 matmul needs CUDA)
    keep those values at zero."""
    from torchao.quantization.quant_primitives import _choose_scale_float8, _quantize_affine_float8

    config = QUANTIZATIONS[name].make_config(False)
    assert config.activation_value_lb == MIN_AMAX > 0
    rows = torch.randn(3, 64, dtype=torch.bfloat16)
    rows[1] = 0
    if name == "fp8dq":
        rows, block = torch.zeros_like(rows), [3, 64]
    else:
        block = [1, 64]
    for floor in (None, config.activation_value_lb):
        scale = _choose_scale_float8(rows, block, hp_value_lb=floor)
        quantized = _quantize_affine_float8(rows, scale, torch.float8_e4m3fn).float()
        assert quantized.isnan().any() == (floor is None)
    assert (quantized[1] == 0).all() and quantized.isfinite().all()
