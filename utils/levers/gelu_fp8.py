"""--gelu_fp8_one_pass: the Linear layers that read a GELU output (the feed-forward out-projections; FLUX's single
blocks' proj_out, whose input is [attention output, GELU(MLP branch)]) get their fp8 input from one kernel that does
GELU (+ the concatenation) + row amax + cast with the row on chip, instead of torchao quantizing an input inductor
has already written out in bf16. Same fp8dqrow numerics (row-wise e4m3 scales); the kernel is utils/fp8_kernels.py.
With --fuse_attn_projections, each single block's to_qkv and proj_mlp also become one GEMM (one quantized input)."""

import re
import types
from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.fp8_kernels import Fp8RowLinear
from utils.levers.base import is_set, same_named
from utils.levers.quantization import few_rows_layers
from utils.pipelines import denoiser, denoisers


@dataclass(frozen=True, kw_only=True)
class Settings:
    gelu_fp8_one_pass: bool = False


@dataclass
class Columns:
    gelu_fp8_one_pass: bool = False


def add_flags(parser) -> None:
    group = parser.add_argument_group("one-pass fp8 activations")
    group.add_argument("--gelu_fp8_one_pass", action="store_true",
                       help="with --quantization fp8dqrow: the layers after a GELU take their fp8 input from one "
                            "Triton kernel (GELU + row amax + cast) instead of torchao's separate quantization")


def settings(flags, run) -> Settings:
    return Settings(gelu_fp8_one_pass=flags.gelu_fp8_one_pass)


NO_GELU = {"Flux2Pipeline": "FLUX.2's feed-forward layers use SwiGLU, not GELU"}


def check(config) -> None:
    if not config.gelu_fp8_one_pass:
        return
    if config.quantization != "fp8dqrow":
        raise UsageError("--gelu_fp8_one_pass hands fp8dqrow layers an already quantized input: it needs "
                         "--quantization fp8dqrow")
    if config.preset is not None and config.preset.pipeline_class in NO_GELU:
        raise UsageError(f"--gelu_fp8_one_pass has nothing to fuse: {NO_GELU[config.preset.pipeline_class]}")


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    return "one-pass GELU→fp8" if is_set(row.get("gelu_fp8_one_pass")) else None


def is_tanh_gelu_feed_forward(module) -> bool:
    """diffusers' FeedForward as FLUX builds it: [GELU(tanh) with its projection, Dropout, Linear(, Dropout)]."""
    if type(module).__name__ != "FeedForward":  # by name: diffusers is imported only once a run builds a model
        return False
    first, *rest = module.net
    return (getattr(first, "approximate", None) == "tanh" and isinstance(getattr(first, "proj", None), torch.nn.Linear)
            and len(rest) >= 2 and isinstance(rest[1], torch.nn.Linear)
            and all(isinstance(layer, torch.nn.Dropout) for layer in rest[:1] + rest[2:]))


def single_block_forward(self, hidden_states, encoder_hidden_states, temb, image_rotary_emb=None,
                         joint_attention_kwargs=None):
    """FluxSingleTransformerBlock.forward (diffusers 0.42) with the MLP's GELU and the concatenation moved into
    proj_out's one-pass quantization, and (after merge_single_block_inputs) one GEMM for Q/K/V and the MLP branch."""
    text_length = encoder_hidden_states.shape[1]
    hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    normed, gate = self.norm(hidden_states, emb=temb)
    if hasattr(self, "proj_qkv_mlp"):  # attn.to_qkv is now the identity: it receives q/k/v already projected
        qkv, mlp = self.proj_qkv_mlp(normed).split([self.proj_qkv_mlp.out_features - self.mlp_hidden_dim,
                                                    self.mlp_hidden_dim], dim=-1)
    else:
        qkv, mlp = normed, self.proj_mlp(normed)
    attention = self.attn(hidden_states=qkv, image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {}))
    hidden_states = hidden_states + gate.unsqueeze(1) * self.proj_out(mlp, plain=attention)
    return hidden_states[:, :text_length], hidden_states[:, text_length:]


def merge_single_block_inputs(block) -> bool:
    """With fused Q/K/V, the single block's two layers on the normed input (attn.to_qkv and proj_mlp) become one
    Linear, so that input is read, and quantized, once. Returns whether it merged."""
    attention = block.attn
    if not getattr(attention, "fused_projections", False) or not isinstance(attention.to_qkv, torch.nn.Linear):
        return False
    layers = (attention.to_qkv, block.proj_mlp)
    merged = torch.nn.Linear(layers[0].in_features, sum(layer.out_features for layer in layers),
                             device=layers[0].weight.device, dtype=layers[0].weight.dtype)
    with torch.no_grad():
        merged.weight.copy_(torch.cat([layer.weight for layer in layers]))
        merged.bias.copy_(torch.cat([layer.bias for layer in layers]))
    block.proj_qkv_mlp = merged
    attention.to_qkv = torch.nn.Identity()
    del block.proj_mlp
    return True


def use_one_pass_gelu_fp8(model: torch.nn.Module, few_rows_pattern: str | None = None) -> int:
    """Replace the Linear layers that read a GELU output with Fp8RowLinear layers fed by the one-pass kernel; call it
    before torchao's quantize_ (which then skips them: they are no longer nn.Linear). Feed-forwards whose output layer
    `few_rows_pattern` names (fed too few rows for fp8 activations: Preset.few_rows_layers) keep theirs for the
    quantization's weight-only form. Returns how many it replaced."""
    few_rows = re.compile(few_rows_pattern) if few_rows_pattern else None
    replaced = 0
    for name, module in list(model.named_modules()):
        if few_rows and few_rows.search(f"{name}.net.2"):
            continue
        if is_tanh_gelu_feed_forward(module):
            module.net = torch.nn.ModuleList([module.net[0].proj, Fp8RowLinear.from_linear(module.net[2])])
            replaced += 1
        elif type(module).__name__ == "FluxSingleTransformerBlock":
            module.proj_out = Fp8RowLinear.from_linear(module.proj_out)
            del module.act_mlp
            merge_single_block_inputs(module)
            module.forward = types.MethodType(single_block_forward, module)
            replaced += 1
    return replaced


def apply(pipe, config) -> dict:
    replaced = sum(use_one_pass_gelu_fp8(model, few_rows_layers(config)) for model in denoisers(pipe))
    if not replaced:
        raise UsageError(f"--gelu_fp8_one_pass found no GELU feed-forward in {type(denoiser(pipe)).__name__}")
    return {"n_layers_quantized": replaced}
