"""--sparsify: 2:4 semi-structured sparsity on the transformer's Linear layers (magnitude-pruned), run with torchao's
2:4 kernels: bf16 (cuSPARSELt) or float8 rowwise + 2:4 (CUTLASS)."""

import re
from dataclasses import dataclass

import torch

from utils.errors import UsageError
from utils.fp8_kernels import MIN_AMAX
from utils.levers.base import is_set
from utils.pipelines import denoisers
from utils.quant import PER_IMAGE_LAYERS, quantizable_linear

QUANTIZATIONS = ("None", "fp8dqrow")  # what --sparsify combines with in torchao 0.18
FP8_MIN_CAPABILITY = (9, 0)  # the CUTLASS float8 2:4 kernels are built for SM90 (H100)


@dataclass(frozen=True, kw_only=True)
class Settings:
    sparsify: bool = False


@dataclass
class Columns:
    sparsify: bool = False
    n_layers_sparsified: int = 0


def add_flags(parser) -> None:
    group = parser.add_argument_group("2:4 sparsity")
    group.add_argument("--sparsify", action="store_true",
                       help="2:4 semi-structured sparsity (magnitude-pruned) on the transformer's Linear layers "
                            "(per-image layers stay dense); CUDA only. With --quantization None: torchao's bf16 2:4 "
                            "kernels; with fp8dqrow: float8 rowwise + 2:4 (CUTLASS, compute capability 9.0)")


def settings(flags, run) -> Settings:
    return Settings(sparsify=flags.sparsify)


def check(config) -> None:
    if not config.sparsify:
        return
    if config.quantization not in QUANTIZATIONS:
        raise UsageError("--sparsify works with --quantization None (bf16 2:4 kernels) or fp8dqrow (float8 + 2:4, "
                         "CUTLASS): torchao 0.17 removed int8 + 2:4 sparsity")
    device = torch.device(config.device)
    if device.type != "cuda":
        raise UsageError("--sparsify needs CUDA: the 2:4 semi-structured kernels have no CPU implementation")
    if config.quantization == "fp8dqrow" and torch.cuda.get_device_capability(device) < FP8_MIN_CAPABILITY:
        raise UsageError("--sparsify --quantization fp8dqrow needs compute capability >= 9.0 (CUTLASS's float8 2:4 "
                         f"kernels are built for Hopper); {torch.cuda.get_device_name(device)} has "
                         f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}")


def columns(config) -> dict:
    return {"sparsify": config.sparsify}


def label(row) -> str | None:
    return "2:4 sparse" if is_set(row.sparsify) else None


def prune_to_2_4(weight: torch.Tensor) -> torch.Tensor:
    """Zero the two smallest-magnitude values in every group of four along the input dimension."""
    groups = weight.reshape(-1, 4)
    keep = groups.abs().topk(2, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return (groups * mask).reshape(weight.shape)


def sparse_fp8_config():
    """fp8dqrow with the weights packed for CUTLASS's float8 2:4 sparse kernel (per-row scales fused into it)."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow
    from torchao.quantization.quantize_.workflows.float8.float8_packing_format import Float8PackingFormat

    return Float8DynamicActivationFloat8WeightConfig(
        granularity=PerRow(), packing_format=Float8PackingFormat.SPARSE_2D_DATA_2D_METADATA,
        activation_value_lb=MIN_AMAX, set_inductor_config=False)  # the floor utils/quant.py explains


def apply_sparsity(transformer: torch.nn.Module, quantization: str = "None") -> int:
    """Magnitude-prune the transformer's Linear weights to 2:4, then run them with 2:4 kernels: bf16 semi-structured
    (quantization None) or float8 rowwise + 2:4 (fp8dqrow, CUDA only). Per-image layers (adaLN, embedders: one row
    per image) are left dense: nothing to gain on one row. Returns how many layers were made sparse."""
    from torchao.quantization import quantize_
    from torchao.sparsity import sparsify_
    from torchao.sparsity.sparse_api import SemiSparseWeightConfig  # not re-exported by torchao.sparsity in 0.18

    per_image = re.compile(PER_IMAGE_LAYERS)
    layers = {fqn: module for fqn, module in transformer.named_modules() if quantizable_linear(module, fqn, per_image)}
    for module in layers.values():
        module.weight.data = prune_to_2_4(module.weight.data)
    chosen = lambda module, fqn: fqn in layers  # noqa: E731
    if quantization == "None":
        sparsify_(transformer, SemiSparseWeightConfig(), filter_fn=chosen)
    elif quantization == "fp8dqrow":
        quantize_(transformer, sparse_fp8_config(), filter_fn=chosen)
    else:
        raise ValueError(f"2:4 sparsity combines with {' or '.join(QUANTIZATIONS)}, not {quantization}")
    for module in layers.values():  # sparsify_ and quantize_ swap the weights, not the modules
        run_on_rows(module)
    return len(layers)


class RowwiseLinear(torch.nn.Linear):
    """nn.Linear that flattens its input's leading dimensions into rows before the matmul. Both 2:4 kernels take
    2-D activations only: torchao's float8 one refuses 3-D input ("Expected Xq scale argument to be 2D tensor"), and
    under torch.compile the bf16 one failed on FLUX's 3-D activations ("SparseSemiStructuredTensorCUSPARSELT only
    supports a specific set of operations, can't perform requested op (expand.default)")."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rows = super().forward(input.reshape(-1, input.shape[-1]))
        return rows.reshape(*input.shape[:-1], rows.shape[-1])


def run_on_rows(linear: torch.nn.Linear) -> None:
    """Make `linear` a RowwiseLinear in place: same parameters and names, survives copying and pickling."""
    if type(linear) is not torch.nn.Linear:
        raise TypeError(f"run_on_rows takes a plain nn.Linear, not {type(linear).__name__}")
    linear.__class__ = RowwiseLinear


def apply(pipe, config) -> dict:
    """Before quantization: fp8dqrow then quantizes only the layers left dense."""
    return {"n_layers_sparsified": sum(apply_sparsity(model, config.quantization) for model in denoisers(pipe))}
