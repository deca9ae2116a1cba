"""Fine-tune the Flux transformer (DreamBooth-style LoRA, or all weights) with torchao float8 training, and measure
the step time, peak memory and loss against bf16. One process: parse -> validate -> build -> cache data -> convert to
float8 -> (compile) -> train -> record -> save.

    python training/train_fp8.py                                              # tiny-flux on the CPU, offline
    python training/train_fp8.py --ckpt_id black-forest-labs/FLUX.1-dev --fp8 rowwise --compare \\
        --gradient_checkpointing --compile --resolution 512 --max_steps 50 --plot results/loss.png

Each run appends one row to a CSV (default results/train-<model>.csv). Text embeddings and VAE latents are computed
once up front, so the step time measures the transformer (forward, backward, optimizer step) only.
"""

import argparse
import dataclasses
import gc
import logging
import math
import re
import shlex
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

import torch  # noqa: E402

from utils.benchmark import configure_torch, default_csv, one_line, provenance  # noqa: E402
from utils.cli import (ATTENTION_BACKENDS, REPO_ROOT, Parser, add_model_args, check_attention_backend,  # noqa: E402
                       check_device, check_weights, positive_int)
from utils.files import atomic_path  # noqa: E402
from utils.optimizations import compile_model  # noqa: E402
from utils.pipelines import build_pipeline, build_random_transformer  # noqa: E402
from utils.presets import get_preset  # noqa: E402
from utils.profiling import write_profile  # noqa: E402
from utils.quant import PER_IMAGE_LAYERS as PER_IMAGE_LAYER_PATTERN  # noqa: E402
from utils.results import Provenance, append_row  # noqa: E402
from utils.timing import (allocated_GiB, host_peak_GiB, peak_allocated_GiB, reset_peak_memory,  # noqa: E402
                          time_call_s)

logger = logging.getLogger(__name__)

FP8_RECIPES = ("off", "tensorwise", "rowwise")
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
WEIGHT_DTYPE = torch.bfloat16


def build_parser() -> Parser:
    parser = Parser(prog="training/train_fp8.py", description=__doc__.split("\n\n")[0])
    add_model_args(parser, default_ckpt="tiny-flux")

    group = parser.add_argument_group("what to train")
    group.add_argument("--full_finetune", action="store_true",
                       help="train every transformer weight (fp32 master weights) instead of a LoRA")
    group.add_argument("--rank", type=positive_int, default=16,
                       help="LoRA rank (lora_alpha = rank) on the attention to_q/to_k/to_v/to_out.0 projections")
    group.add_argument("--resume_lora", type=Path, default=None,
                       help="start the LoRA from one saved by this script (a folder with "
                            "pytorch_lora_weights.safetensors)")
    group.add_argument("--num_layers", type=positive_int, default=None,
                       help="random weights only: train a shallower copy of the architecture with this many "
                            "double-stream blocks (FLUX.1-dev has 19), e.g. to fit --full_finetune on one GPU; "
                            "recorded in the row's transformer_blocks")
    group.add_argument("--num_single_layers", type=positive_int, default=None,
                       help="the same for the single-stream blocks (FLUX.1-dev has 38)")

    group = parser.add_argument_group("float8 (torchao.float8 training)")
    group.add_argument("--fp8", choices=FP8_RECIPES, default="rowwise",
                       help="off: bf16. tensorwise/rowwise: convert_to_float8_training with that recipe on the "
                            "transformer's Linear layers (not proj_out, not the per-image embedder and adaLN layers, "
                            "not layers with sizes that are not multiples of 16); emulated (correct but slow) where the device has no float8 matmul")
    group.add_argument("--compare", action="store_true",
                       help="also run bf16 (--fp8 off) first, with the same seed and data, and write both rows")

    group = parser.add_argument_group("optimization")
    group.add_argument("--max_steps", type=positive_int, default=20, help="optimizer steps")
    group.add_argument("--warmup_steps", type=int, default=2,
                       help="the first steps are trained but left out of the step-time statistics (compilation, "
                            "allocator warm-up)")
    group.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (constant)")
    group.add_argument("--guidance_scale", type=float, default=1.0,
                       help="the guidance-embedding input during training (models with guidance_embeds, e.g. "
                            "FLUX.1-dev); diffusers' DreamBooth example uses 3.5")
    group.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping norm; 0 turns it off")
    group.add_argument("--batch_size", type=positive_int, default=1, help="images per step")
    group.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes AdamW8bit (must be installed)")
    group.add_argument("--gradient_checkpointing", action="store_true",
                       help="recompute block activations in the backward pass (less memory, more time)")
    group.add_argument("--attention_backend", choices=("auto", *ATTENTION_BACKENDS), default="auto",
                       help="diffusers attention backend of the transformer (set_attention_backend). auto: "
                            "_native_flash on CUDA (torch 2.11's pick for Flux on the H100, cuDNN attention, crashed "
                            "in the backward pass), default (torch's SDPA choice) elsewhere")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile each transformer block in place (regional: compiles in a fraction of "
                            "the whole model's time)")

    group = parser.add_argument_group("data")
    group.add_argument("--dataset_dir", type=Path, default=None,
                       help="a folder of images with same-name .txt captions; default: a synthetic dataset of "
                            "coloured shapes on gradients, made on the fly")
    group.add_argument("--instance_prompt", default="a photo of sks object",
                       help="the caption of dataset images that have no .txt file")
    group.add_argument("--num_images", type=positive_int, default=8, help="size of the synthetic dataset")
    group.add_argument("--resolution", type=resolution_type, default=None,
                       help="training resolution in pixels: N (square) or WIDTHxHEIGHT, multiples of 16; None: the "
                            "preset's height, square (1024 for FLUX.1-dev, 64 for tiny-flux)")
    group.add_argument("--max_sequence_length", type=positive_int, default=None,
                       help="T5 caption length in tokens; None: the preset's (512 for FLUX.1-dev)")

    group = parser.add_argument_group("outputs")
    group.add_argument("--output_dir", type=Path, default=REPO_ROOT / "outputs" / "train_fp8",
                       help="where the LoRA (pytorch_lora_weights.safetensors) or the full transformer is saved")
    group.add_argument("--no_save", action="store_true", help="do not save the trained weights")
    group.add_argument("--check_reload", action="store_true",
                       help="after saving, load the LoRA into a fresh pipeline with pipe.load_lora_weights and "
                            "record the largest difference of its transformer output from the trained one's "
                            "(needs memory for a second pipeline)")
    group.add_argument("--csv", type=Path, default=None,
                       help="CSV to append the rows to; None: results/train-<model slug>.csv")
    group.add_argument("--plot", type=Path, default=None, help="write the loss curves to this PNG")
    group.add_argument("--profile", type=Path, default=None,
                       help="after the timed steps, train one more step under torch.profiler (not in the statistics or "
                            "the loss curve; it is in the saved weights) and write where its time goes to this "
                            "markdown file (with --compare: one file per run, the recipe added to the name)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    validate(parser, args, sys.argv[1:] if argv is None else argv)
    return args


def validate(parser: Parser, args, argv: list[str]) -> None:
    """Reject bad input in one line (exit 2) before any model is built. Fills args.command, args.weights_resolved
    and the preset defaults (resolution, max_sequence_length)."""
    args.command = shlex.join(["python", parser.prog, *argv])
    preset = get_preset(args.ckpt_id)
    if preset is not None and preset.pipeline_class != "FluxPipeline":
        parser.error(f"{args.ckpt_id} is not a Flux model; this script trains the Flux transformer")
    defaults = preset.call_defaults if preset else {}
    side = defaults.get("height", 512)
    args.width, args.height = args.resolution or (side, side)
    args.max_sequence_length = args.max_sequence_length or defaults.get("max_sequence_length", 512)
    if args.width % 16 or args.height % 16:
        parser.error(f"--resolution must be multiples of 16, got {args.width}x{args.height}")
    if not 0 <= args.warmup_steps < args.max_steps:
        parser.error(f"--warmup_steps must be >= 0 and below --max_steps ({args.max_steps}), got {args.warmup_steps}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if not (math.isfinite(args.max_grad_norm) and args.max_grad_norm >= 0):
        parser.error(f"--max_grad_norm must be >= 0, got {args.max_grad_norm}")
    device = check_device(parser, args.device)
    if args.attention_backend == "auto":
        args.attention_backend = "_native_flash" if device.type == "cuda" else "default"
    check_attention_backend(parser, args.attention_backend, device)
    if args.compare and args.fp8 == "off":
        parser.error("--compare runs bf16 against a float8 recipe: pick --fp8 tensorwise or rowwise")
    if args.use_8bit_adam and not _bitsandbytes_installed():
        parser.error("--use_8bit_adam needs bitsandbytes, which is not installed")
    if args.full_finetune and (args.resume_lora or args.check_reload):
        parser.error("--resume_lora and --check_reload are for LoRA training, not --full_finetune")
    if args.resume_lora is not None and not (args.resume_lora / "pytorch_lora_weights.safetensors").is_file():
        parser.error(f"--resume_lora {args.resume_lora}: no pytorch_lora_weights.safetensors there")
    if args.dataset_dir is not None:
        if not args.dataset_dir.is_dir():
            parser.error(f"--dataset_dir {args.dataset_dir} is not a directory")
        if not image_files(args.dataset_dir):
            parser.error(f"--dataset_dir {args.dataset_dir} has no images ({', '.join(IMAGE_SUFFIXES)})")
    args.weights_resolved = check_weights(parser, args.ckpt_id, args.weights)
    if (args.num_layers or args.num_single_layers) and args.weights_resolved != "random":
        parser.error("--num_layers/--num_single_layers change the architecture: they need --weights random")
    if (args.num_layers or args.num_single_layers) and args.check_reload:
        parser.error("--check_reload loads the LoRA into the full-depth pipeline: not with --num_layers/--num_single_layers")


def _bitsandbytes_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


@dataclass
class CachedData:
    """Everything the transformer needs per example, on the training device, computed once."""
    latents: torch.Tensor  # (N, C, h, w): VAE latents, shifted and scaled as FluxPipeline un-does them
    prompt_embeds: torch.Tensor  # (N, seq, D) T5
    pooled_prompt_embeds: torch.Tensor  # (N, D) CLIP
    text_ids: torch.Tensor  # (seq, 3)
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)


COLOURS = {"red": (220, 40, 40), "green": (40, 180, 70), "blue": (40, 80, 220), "yellow": (240, 210, 40),
           "purple": (140, 60, 190), "orange": (245, 140, 30), "white": (245, 245, 245), "black": (20, 20, 20)}
SHAPES = ("circle", "square", "stripe")


def make_synthetic_dataset(count: int, resolution: tuple[int, int], seed: int) -> list[tuple["Image.Image", str]]:
    """Coloured shapes on two-colour gradients, with captions that say what is where: learnable, and offline."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    width, height = resolution
    ys, xs = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    examples = []
    for _ in range(count):
        top, bottom, fill = (names[i] for i in rng.choice(len(names), size=3, replace=False))
        shape = SHAPES[rng.integers(len(SHAPES))]
        ramp = ys[..., None]
        pixels = (1 - ramp) * np.array(COLOURS[top]) + ramp * np.array(COLOURS[bottom])
        cy, cx, size = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        if shape == "circle":
            mask = (ys - cy) ** 2 + (xs - cx) ** 2 < size**2
        elif shape == "square":
            mask = (abs(ys - cy) < size) & (abs(xs - cx) < size)
        else:
            mask = abs(xs - cx) < size / 3
        pixels[mask] = COLOURS[fill]
        image = Image.fromarray(pixels.astype(np.uint8))
        examples.append((image, f"a {fill} {shape} on a gradient from {top} to {bottom}"))
    return examples


def image_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(folder: Path, resolution: tuple[int, int],
                      default_caption: str) -> list[tuple["Image.Image", str]]:
    """Images resized and centre-cropped to (width, height); the caption is the same-name .txt file."""
    from PIL import Image, ImageOps

    examples = []
    for path in image_files(folder):
        image = ImageOps.fit(Image.open(path).convert("RGB"), resolution, Image.Resampling.BICUBIC)
        caption_file = path.with_suffix(".txt")
        caption = caption_file.read_text().strip() if caption_file.is_file() else default_caption
        examples.append((image, caption))
    return examples


@torch.no_grad()
def cache_data(pipe, examples, device: str, max_sequence_length: int) -> CachedData:
    import numpy as np

    latents, prompt_embeds, pooled_embeds, text_ids = [], [], [], None
    vae = pipe.vae
    for image, caption in examples:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        latent = vae.encode(pixels.to(device, vae.dtype)).latent_dist.mode()
        latents.append((latent - vae.config.shift_factor) * vae.config.scaling_factor)
        embeds, pooled, text_ids = pipe.encode_prompt(caption, prompt_2=None, device=device,
                                                      max_sequence_length=max_sequence_length)
        prompt_embeds.append(embeds)
        pooled_embeds.append(pooled)
    return CachedData(torch.cat(latents).to(WEIGHT_DTYPE), torch.cat(prompt_embeds).to(WEIGHT_DTYPE),
                      torch.cat(pooled_embeds).to(WEIGHT_DTYPE), text_ids, [caption for _, caption in examples])


def batch_indices(step: int, batch_size: int, count: int) -> list[int]:
    """Cycle through the dataset in order: every run with the same flags sees the same batches."""
    return [(step * batch_size + offset) % count for offset in range(batch_size)]


def resolution_type(text: str) -> tuple[int, int]:
    """N or WIDTHxHEIGHT -> (width, height)."""
    parts = text.lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"expected N or WIDTHxHEIGHT in pixels, got {text!r}")
    return (sizes[0], sizes[-1])


def load_transformer(args):
    """A fresh transformer with the same weights as the pipeline's (for the second run of --compare), or the
    shallower copy that --num_layers/--num_single_layers ask for."""
    if args.weights_resolved == "pretrained":
        from diffusers import FluxTransformer2DModel

        return FluxTransformer2DModel.from_pretrained(args.ckpt_id, subfolder="transformer",
                                                      dtype=WEIGHT_DTYPE).to(args.device)
    depth = {name: getattr(args, name) for name in ("num_layers", "num_single_layers") if getattr(args, name)}
    return build_random_transformer(get_preset(args.ckpt_id), args.device, WEIGHT_DTYPE, args.seed, **depth)


def needs_fp8_emulation(device: str) -> bool:
    """Float8 matmuls (torch._scaled_mm) need a CUDA GPU of compute capability 8.9 (Ada, Hopper) or newer."""
    device = torch.device(device)
    return device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9)


def fp8_config(recipe: str, device: str):
    from torchao.float8 import Float8LinearConfig

    config = Float8LinearConfig.from_recipe_name(recipe)
    return dataclasses.replace(config, emulate=True) if needs_fp8_emulation(device) else config


# float8 gains nothing on layers fed one row per image (utils.quant.PER_IMAGE_LAYERS), and rowwise float8's weight
# gradient fails on them in a full fine-tune (torch 2.11, H100: "self must be row_major, got stride (1, 18432)" for
# norm1.linear).
PER_IMAGE_LAYERS = re.compile(PER_IMAGE_LAYER_PATTERN)


def fp8_module_filter(module: torch.nn.Module, fqn: str) -> bool:
    """Which Linear layers become Float8Linear: not the final output projection (the prediction itself is sensitive
    to float8 rounding), not the per-image layers above, and not layers the float8 matmul cannot take (both sizes
    must be multiples of 16)."""
    if fqn == "proj_out" or PER_IMAGE_LAYERS.search(fqn):
        return False
    if isinstance(module, torch.nn.Linear):
        return module.in_features % 16 == 0 and module.out_features % 16 == 0
    return True


def convert_to_fp8(transformer, recipe: str, device: str) -> int:
    """Swap the filtered Linear layers for Float8Linear; returns how many were swapped."""
    from torchao.float8 import convert_to_float8_training
    from torchao.float8.float8_linear import Float8Linear

    if recipe == "off":
        return 0
    convert_to_float8_training(transformer, module_filter_fn=fp8_module_filter, config=fp8_config(recipe, device))
    return sum(isinstance(module, Float8Linear) for module in transformer.modules())


def add_lora(transformer, rank: int, seed: int) -> None:
    """LoRA adapters on the attention projections. Added after the float8 conversion, so the adapters themselves
    stay plain bf16/fp32 Linear layers and only the frozen base layers run in float8."""
    from peft import LoraConfig

    torch.manual_seed(seed)  # the same LoRA initialization in both runs of --compare
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=LORA_TARGETS))


def prepare_for_training(transformer, args) -> list[torch.nn.Parameter]:
    """Freeze what is not trained and keep trained weights in fp32 (bf16 autocast does the compute)."""
    transformer.requires_grad_(args.full_finetune)
    if not args.full_finetune:
        for name, param in transformer.named_parameters():
            param.requires_grad_("lora_" in name)
    for param in transformer.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    if args.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return [param for param in transformer.parameters() if param.requires_grad]


def make_optimizer(params, lr: float, use_8bit_adam: bool) -> torch.optim.Optimizer:
    if use_8bit_adam:
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def load_lora_into(transformer, lora_dir: Path) -> None:
    """Load a LoRA saved by save_lora into a transformer that already has the (same-shaped) adapter: the resume path
    of diffusers' training examples."""
    from diffusers import FluxPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state_dict = FluxPipeline.lora_state_dict(lora_dir)
    state_dict = {key.removeprefix("transformer."): value for key, value in state_dict.items()
                  if key.startswith("transformer.")}
    result = set_peft_model_state_dict(transformer, convert_unet_state_dict_to_peft(state_dict), adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"{lora_dir} does not match this LoRA: unexpected keys {unexpected[:3]}")


def save_lora(transformer, output_dir: Path) -> Path:
    """The LoRA as diffusers' training examples save it, loadable with pipe.load_lora_weights(output_dir)."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    state_dict = {key: value.detach().to(WEIGHT_DTYPE) for key, value in get_peft_model_state_dict(transformer).items()}
    FluxPipeline.save_lora_weights(output_dir, transformer_lora_layers=state_dict,
                                   transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict())
    return output_dir / "pytorch_lora_weights.safetensors"


def save_full(transformer, output_dir: Path) -> Path:
    """The whole fine-tuned transformer in bf16 (Float8Linear keeps nn.Linear's state-dict names)."""
    transformer.to(WEIGHT_DTYPE).save_pretrained(output_dir / "transformer")
    return output_dir / "transformer"


def pack(latents: torch.Tensor) -> torch.Tensor:
    from diffusers import FluxPipeline

    batch, channels, height, width = latents.shape
    return FluxPipeline._pack_latents(latents, batch, channels, height, width)


def model_inputs(transformer, data: CachedData, indices: list[int], generator: torch.Generator,
                 guidance_scale: float = 1.0):
    """The flow-matching pair for one batch: the transformer's keyword arguments and the packed target. With t ~ U(0,
    1) and noise ~ N(0, I): noisy = (1 - t) x0 + t noise, and the transformer predicts the velocity noise - x0."""
    from diffusers import FluxPipeline

    x0 = data.latents[indices].float()
    batch, _, height, width = x0.shape
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    # rounded to bf16 first: the transformer sees a bf16 timestep (as FluxPipeline passes it), so the mix must use it
    t = torch.rand(batch, generator=generator, device=x0.device).to(WEIGHT_DTYPE).float()
    noisy = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise
    guidance = None
    if transformer.config.guidance_embeds:
        guidance = torch.full((batch,), guidance_scale, device=x0.device)
    kwargs = dict(
        hidden_states=pack(noisy).to(WEIGHT_DTYPE),
        timestep=t.to(WEIGHT_DTYPE),  # in [0, 1]: FluxPipeline passes timesteps / 1000
        guidance=guidance,
        pooled_projections=data.pooled_prompt_embeds[indices],
        encoder_hidden_states=data.prompt_embeds[indices],
        txt_ids=data.text_ids,
        img_ids=FluxPipeline._prepare_latent_image_ids(batch, height // 2, width // 2, x0.device, WEIGHT_DTYPE),
        return_dict=False,
    )
    return kwargs, pack(noise - x0)


def autocast(device: str):
    return torch.autocast(torch.device(device).type, dtype=WEIGHT_DTYPE)


def flow_matching_loss(transformer, data: CachedData, indices: list[int], generator: torch.Generator, device: str,
                       guidance_scale: float = 1.0):
    kwargs, target = model_inputs(transformer, data, indices, generator, guidance_scale)
    with autocast(device):
        prediction = transformer(**kwargs)[0]
    return torch.nn.functional.mse_loss(prediction.float(), target)


@torch.no_grad()
def predict(transformer, data: CachedData, indices: list[int], seed: int, device: str,
            guidance_scale: float = 1.0) -> torch.Tensor:
    """The transformer output on fixed inputs, computed exactly as in training."""
    generator = torch.Generator(device).manual_seed(seed)
    kwargs, _ = model_inputs(transformer, data, indices, generator, guidance_scale)
    with autocast(device):
        return transformer(**kwargs)[0].float()


@dataclass
class TrainResult:
    losses: list[float]
    step_s: list[float]
    output: torch.Tensor | None = None  # for --check_reload: the trained transformer's output on fixed inputs


def train(transformer, params, data: CachedData, args, label: str = "train") -> TrainResult:
    from tqdm.auto import tqdm

    optimizer = make_optimizer(params, args.lr, args.use_8bit_adam)
    generator = torch.Generator(args.device).manual_seed(args.seed)  # same noise and t in every run of --compare

    def step(index: int) -> torch.Tensor:
        loss = flow_matching_loss(transformer, data, batch_indices(index, args.batch_size, len(data)), generator,
                                  args.device, args.guidance_scale)
        loss.backward()
        if args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    result = TrainResult([], [])
    with tqdm(range(args.max_steps), desc=label, unit="step") as bar:
        for index in bar:
            if index == args.warmup_steps:
                reset_peak_memory(args.device)  # steady-state peak, not the compile-time one
            seconds, loss = time_call_s(lambda: step(index), args.device)
            result.step_s.append(seconds)
            result.losses.append(loss.item())
            bar.set_postfix(loss=f"{result.losses[-1]:.4f}", step_s=f"{seconds:.3f}")
    if args.profile:
        tag = re.sub(r"[^\w.]+", "-", label).strip("-")  # "fp8 rowwise (emulated)" -> "fp8-rowwise-emulated"
        path = args.profile.with_name(f"{args.profile.stem}-{tag}{args.profile.suffix}")
        write_profile(lambda: step(args.max_steps), args.device, path, f"One training step ({label}): {args.command}")
        print(f"profile written to {path}")
    return result


@dataclass
class TrainRow(Provenance):
    peft_version: str = ""
    # what ran
    model: str = ""
    weights: str = ""  # pretrained | random (random weights: timing and memory are real, the loss is not)
    device: str = ""
    method: str = ""  # lora | full
    rank: int | None = None
    fp8: str = "off"  # off | tensorwise | rowwise
    fp8_emulate: bool = False  # float8 emulated in high precision (no float8 matmul on this device)
    n_layers_fp8: int = 0
    n_trainable_params: int = 0
    gradient_checkpointing: bool = False
    compile: bool = False
    attention_backend: str = "default"
    optimizer: str = ""
    lr: float = 0.0
    guidance_scale: float = 1.0
    max_grad_norm: float = 0.0
    batch_size: int = 1
    resolution: str = ""  # WIDTHxHEIGHT
    transformer_blocks: str = ""  # double+single stream blocks trained (fewer than the model's with --num_layers)
    max_sequence_length: int = 0
    max_steps: int = 0
    warmup_steps: int = 0
    seed: int = 0
    dataset: str = ""  # synthetic | the dataset folder
    num_images: int = 0
    resume_lora: str = ""
    # measurements
    load_s: float | None = None  # build the pipeline (or the fresh transformer)
    cache_s: float | None = None  # text embeddings and VAE latents, once
    first_step_s: float | None = None
    compile_s: float | None = None  # first step minus the median
    step_median_s: float | None = None  # steps after warmup_steps
    step_min_s: float | None = None
    step_max_s: float | None = None
    images_per_s: float | None = None  # batch_size / step_median_s
    model_memory_GiB: float | None = None  # allocated before the first step (CUDA only)
    peak_memory_GiB: float | None = None  # peak allocated during the steps after warmup_steps (CUDA only)
    host_peak_memory_GiB: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    losses: str = ""  # every step's loss, space-separated
    # --check_reload: the reloaded LoRA's transformer output vs the trained one (0 = exact; small with --compile)
    reload_max_abs_diff: float | None = None
    saved_to: str = ""
    status: str = "ok"  # ok | error | oom | nan
    error: str = ""


TRAIN_COLUMNS = [field.name for field in fields(TrainRow)]


def new_row(args, fp8: str) -> TrainRow:
    import peft

    return TrainRow(**provenance(args.command, args.device), peft_version=peft.__version__, model=args.ckpt_id, weights=args.weights_resolved,
                   device=args.device, method="full" if args.full_finetune else "lora",
                   rank=None if args.full_finetune else args.rank, fp8=fp8,
                   fp8_emulate=fp8 != "off" and needs_fp8_emulation(args.device),
                   gradient_checkpointing=args.gradient_checkpointing, compile=args.compile,
                   attention_backend=args.attention_backend,
                   optimizer="adamw8bit" if args.use_8bit_adam else "adamw", lr=args.lr,
                   guidance_scale=args.guidance_scale, max_grad_norm=args.max_grad_norm, batch_size=args.batch_size,
                   resolution=f"{args.width}x{args.height}", max_sequence_length=args.max_sequence_length,
                   max_steps=args.max_steps,
                   warmup_steps=args.warmup_steps, seed=args.seed,
                   dataset=str(args.dataset_dir) if args.dataset_dir else "synthetic",
                   resume_lora=str(args.resume_lora or ""))


def record_training(row: TrainRow, result: TrainResult, batch_size: int, warmup_steps: int) -> None:
    timed_s = result.step_s[warmup_steps:]
    row.first_step_s = result.step_s[0]
    row.step_median_s = statistics.median(timed_s)
    row.step_min_s, row.step_max_s = min(timed_s), max(timed_s)
    row.compile_s = row.first_step_s - row.step_median_s
    row.images_per_s = batch_size / row.step_median_s
    row.loss_first, row.loss_last = result.losses[0], result.losses[-1]
    row.losses = " ".join(f"{loss:.6g}" for loss in result.losses)
    if not all(math.isfinite(loss) for loss in result.losses):
        row.status, row.error = "nan", "non-finite loss"


def plot_losses(path: Path, curves: dict[str, list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for label, losses in curves.items():
        axes.plot(range(1, len(losses) + 1), losses, label=label)
    axes.set(xlabel="step", ylabel="flow-matching MSE loss", title=title)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=120)
    plt.close(figure)


def run_label(fp8: str, emulate: bool) -> str:
    return "bf16" if fp8 == "off" else f"fp8 {fp8}" + (" (emulated)" if emulate else "")


def check_reload(args, expected: torch.Tensor, data: CachedData, fp8: str) -> float:
    """Load the saved LoRA into a fresh inference pipeline, as a user would, and return the largest difference of its
    transformer output from the trained transformer's on the same inputs (0 when the round trip is exact)."""
    pipe = build_pipeline(args.ckpt_id, args.weights_resolved, args.device, WEIGHT_DTYPE, args.seed)
    convert_to_fp8(pipe.transformer, fp8, args.device)  # the same numerics as in training
    if args.attention_backend != "default":
        pipe.transformer.set_attention_backend(args.attention_backend)
    pipe.load_lora_weights(args.output_dir)
    actual = predict(pipe.transformer, data, [0], args.seed, args.device, args.guidance_scale)
    return (actual - expected).abs().max().item()


def run_once(args, fp8: str, transformer, data: CachedData, row: TrainRow) -> TrainResult:
    """Convert -> (LoRA) -> compile -> train -> record -> save, filling `row`. The transformer is consumed."""
    row.transformer_blocks = f"{transformer.config.num_layers}+{transformer.config.num_single_layers}"
    row.n_layers_fp8 = convert_to_fp8(transformer, fp8, args.device)
    if row.fp8_emulate:
        logger.warning("float8 is emulated on %s (no float8 matmul): the numerics are float8's, the speed is not",
                       row.gpu)
    if not args.full_finetune:
        add_lora(transformer, args.rank, args.seed)
        if args.resume_lora:
            load_lora_into(transformer, args.resume_lora)
    params = prepare_for_training(transformer, args)
    row.n_trainable_params = sum(param.numel() for param in params)
    if args.attention_backend != "default":
        transformer.set_attention_backend(args.attention_backend)
    if args.compile:
        compile_model(transformer, regional=True)  # each block on its own: a fraction of the whole model's compile
    row.model_memory_GiB = allocated_GiB(args.device)
    result = train(transformer, params, data, args, label=run_label(fp8, row.fp8_emulate))
    record_training(row, result, args.batch_size, args.warmup_steps)
    row.peak_memory_GiB = peak_allocated_GiB(args.device)
    if args.no_save or fp8 != args.fp8:  # with --compare only the run of the chosen recipe is saved
        return result
    transformer.eval()
    if args.full_finetune:
        row.saved_to = str(save_full(transformer, args.output_dir))
        return result
    row.saved_to = str(save_lora(transformer, args.output_dir))
    if args.check_reload:
        result.output = predict(transformer, data, [0], args.seed, args.device, args.guidance_scale)
    return result


def build_and_cache(args, rows: list[TrainRow]):
    """Build the pipeline, cache the dataset's embeddings and latents, and keep only the transformer."""
    start = time.perf_counter()
    pipe = build_pipeline(args.ckpt_id, args.weights_resolved, args.device, WEIGHT_DTYPE, args.seed)
    rows[0].load_s = time.perf_counter() - start
    start = time.perf_counter()
    examples = (load_image_folder(args.dataset_dir, (args.width, args.height), args.instance_prompt)
                if args.dataset_dir else make_synthetic_dataset(args.num_images, (args.width, args.height), args.seed))
    data = cache_data(pipe, examples, args.device, args.max_sequence_length)
    for row in rows:
        row.cache_s, row.num_images = time.perf_counter() - start, len(data)
    if args.num_layers or args.num_single_layers:
        del pipe
        free_memory(args.device)
        return None, data  # main() builds the shallower transformer
    return pipe.transformer, data  # the text encoders and the VAE go with the pipeline


def record_failure(rows: list[TrainRow], error: Exception) -> None:
    if not isinstance(error, torch.OutOfMemoryError):
        traceback.print_exc()
    for row in rows:
        row.status = "oom" if isinstance(error, torch.OutOfMemoryError) else "error"
        row.error = one_line(error)


def free_memory(device: str) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        try:
            torch.cuda.empty_cache()
        except torch.AcceleratorError:  # the context died with an earlier run's error: that run records it
            logger.exception("CUDA error while freeing memory")


def render_summary(row: TrainRow) -> str:
    label = run_label(row.fp8, row.fp8_emulate)
    if row.status != "ok" and row.step_median_s is None:
        return f"{label}: {row.status} {row.error}"
    memory = f", peak {row.peak_memory_GiB:.2f} GiB" if row.peak_memory_GiB is not None else ""
    text = (f"{label}: {row.status}, step median {row.step_median_s:.4f} s (min {row.step_min_s:.4f}, max "
            f"{row.step_max_s:.4f}), {row.images_per_s:.2f} images/s{memory}, loss {row.loss_first:.4f} -> "
            f"{row.loss_last:.4f}")
    if row.saved_to:
        text += f", saved to {row.saved_to}"
    if row.reload_max_abs_diff is not None:
        text += f", reload max abs diff {row.reload_max_abs_diff:.3g}"
    return text


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    configure_torch()
    recipes = ["off", args.fp8] if args.compare else [args.fp8]
    rows = [new_row(args, fp8) for fp8 in recipes]
    transformer, data, curves = None, None, {}
    try:
        transformer, data = build_and_cache(args, rows)
    except Exception as error:  # noqa: BLE001 - a failed run is recorded, not lost
        record_failure(rows, error)
    csv_path = args.csv or default_csv(args.ckpt_id, prefix="train-")
    for fp8, row in zip(recipes, rows):
        if data is not None:
            try:
                if transformer is None:  # the second run of --compare starts from the same weights
                    start = time.perf_counter()
                    transformer = load_transformer(args)
                    row.load_s = (row.load_s or 0.0) + time.perf_counter() - start  # plus the pipeline's, if any
                result = run_once(args, fp8, transformer, data, row)
                curves[run_label(fp8, row.fp8_emulate)] = result.losses
                transformer = None
                free_memory(args.device)  # before --check_reload builds a second pipeline
                if result.output is not None:
                    row.reload_max_abs_diff = check_reload(args, result.output, data, fp8)
            except Exception as error:  # noqa: BLE001
                record_failure([row], error)
            transformer = None
            free_memory(args.device)
        row.host_peak_memory_GiB = host_peak_GiB()
        append_row(csv_path, row)
        print(render_summary(row))
    print(f"{len(rows)} row(s) appended to {csv_path}")
    if args.plot and curves:
        plot_losses(args.plot, curves, f"{args.ckpt_id} {rows[0].method}, {args.weights_resolved} weights")
        print(f"loss curves written to {args.plot}")
    return 0 if all(row.status == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
