"""Model presets: one row per model, with its pipeline class, the architecture configs we keep as JSON and the
pipeline-call defaults. The configs let us build the real architectures with random weights when no
checkpoint can be downloaded; `pretrained` loading ignores them and reads the checkpoint's own."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

CONFIG_ROOT = Path(__file__).parent / "configs"


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions a model's weights are built or loaded in
COMPONENT_DTYPES = {**DTYPES, "fp32": torch.float32}  # what a preset may keep one component in (Wan's VAE: fp32)


@dataclass(frozen=True)
class Preset:
    name: str  # the hub id users pass as --ckpt_id (or a short name for test-only models)
    slug: str  # file-name stem: the config folder and the default results CSV
    pipeline_class: str  # a diffusers pipeline class name
    components: dict[str, str]  # model or scheduler component -> class name (diffusers or transformers)
    tokenizers: dict[str, tuple[str, int]]  # tokenizer component -> (class name, max length)
    call_defaults: dict = field(default_factory=dict)  # keyword arguments of the pipeline call
    hub_id: str | None = None  # where `--weights pretrained` loads from; None for models with no checkpoint
    base_dtype: str = "bf16"  # the precision the model is meant to run in
    component_dtypes: dict[str, str] = field(default_factory=dict)  # components kept in another precision
    pipeline_config: dict = field(default_factory=dict)  # the pipeline's own settings (its model_index.json's)
    guidance_argument: str = "guidance_scale"  # the pipeline-call argument --guidance_scale sets
    size_multiple: int = 16  # height and width must be multiples of this (VAE downsampling x patch size)
    fps: int = 8  # frames per second of a saved sample video

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.slug

    def config(self, component: str) -> dict:
        """The kept architecture config of one component."""
        return json.loads((self.config_dir / f"{component}.json").read_text())

    def dtype(self, component: str, base_dtype: str) -> torch.dtype:
        """The precision `component` is built or loaded in: its own (component_dtypes), else the run's base one."""
        return COMPONENT_DTYPES[self.component_dtypes.get(component, base_dtype)]


FLUX_COMPONENTS = {
    "transformer": "FluxTransformer2DModel",
    "vae": "AutoencoderKL",
    "text_encoder": "CLIPTextModel",
    "text_encoder_2": "T5EncoderModel",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
}
COGVIDEOX_COMPONENTS = {
    "transformer": "CogVideoXTransformer3DModel",
    "vae": "AutoencoderKLCogVideoX",
    "text_encoder": "T5EncoderModel",
    "scheduler": "CogVideoXDDIMScheduler",
}
FLUX_TOKENIZERS = {"tokenizer": ("CLIPTokenizer", 77), "tokenizer_2": ("T5Tokenizer", 512)}
COGVIDEOX_CALL = dict(num_frames=49, height=480, width=720, num_inference_steps=50, guidance_scale=6.0,
                      use_dynamic_cfg=True, max_sequence_length=226)

PRESETS = {
    preset.name: preset
    for preset in [
        Preset(
            name="black-forest-labs/FLUX.1-dev",
            slug="flux-dev",
            pipeline_class="FluxPipeline",
            components=FLUX_COMPONENTS,
            tokenizers=FLUX_TOKENIZERS,
            call_defaults=dict(num_inference_steps=28, guidance_scale=3.5, height=1024, width=1024,
                               max_sequence_length=512),
            hub_id="black-forest-labs/FLUX.1-dev",
        ),
        Preset(
            name="black-forest-labs/FLUX.1-schnell",
            slug="flux-schnell",
            pipeline_class="FluxPipeline",
            components=FLUX_COMPONENTS,
            tokenizers={**FLUX_TOKENIZERS, "tokenizer_2": ("T5Tokenizer", 256)},
            call_defaults=dict(num_inference_steps=4, guidance_scale=0.0, height=1024, width=1024,
                               max_sequence_length=256),
            hub_id="black-forest-labs/FLUX.1-schnell",
        ),
        # One double and one single block, 64x64 images: the same classes as FLUX.1-dev, small enough for CPU tests.
        Preset(
            name="tiny-flux",
            slug="tiny-flux",
            pipeline_class="FluxPipeline",
            components=FLUX_COMPONENTS,
            tokenizers={**FLUX_TOKENIZERS, "tokenizer_2": ("T5Tokenizer", 32)},
            call_defaults=dict(num_inference_steps=2, guidance_scale=3.5, height=64, width=64,
                               max_sequence_length=32),
        ),
        # CogVideoX-2b is meant to run in fp16 and 5b in bf16 (THUDM's model cards).
        Preset(
            name="THUDM/CogVideoX-2b",
            slug="cogvideox-2b",
            pipeline_class="CogVideoXPipeline",
            components=COGVIDEOX_COMPONENTS,
            tokenizers={"tokenizer": ("T5Tokenizer", 226)},
            call_defaults=COGVIDEOX_CALL,
            hub_id="THUDM/CogVideoX-2b",
            base_dtype="fp16",
        ),
        Preset(
            name="THUDM/CogVideoX-5b",
            slug="cogvideox-5b",
            pipeline_class="CogVideoXPipeline",
            components=COGVIDEOX_COMPONENTS,
            tokenizers={"tokenizer": ("T5Tokenizer", 226)},
            call_defaults=COGVIDEOX_CALL,
            hub_id="THUDM/CogVideoX-5b",
        ),
        # Two blocks, 9 frames of 64x64: the same classes as CogVideoX-5b (rotary embeddings), for CPU tests.
        Preset(
            name="tiny-cogvideox",
            slug="tiny-cogvideox",
            pipeline_class="CogVideoXPipeline",
            components=COGVIDEOX_COMPONENTS,
            tokenizers={"tokenizer": ("T5Tokenizer", 16)},
            call_defaults={**COGVIDEOX_CALL, "num_frames": 9, "height": 64, "width": 64, "num_inference_steps": 2,
                           "max_sequence_length": 16},
        ),
    ]
}


def get_preset(name: str) -> Preset | None:
    """Exact lookup by hub id or slug; None when `name` is not a preset."""
    for preset in PRESETS.values():
        if name in (preset.name, preset.slug):
            return preset
    return None


def preset_names() -> list[str]:
    return list(PRESETS)
