"""Model presets: one row per model, with its pipeline class, the architecture configs we keep as JSON and the
pipeline-call defaults. The configs let us build the real architectures with random weights when no
checkpoint can be downloaded; `pretrained` loading ignores them and reads the checkpoint's own."""

from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ROOT = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class Preset:
    name: str  # the hub id users pass as --ckpt_id (or a short name for test-only models)
    slug: str  # file-name stem: the config folder and the default results CSV
    pipeline_class: str  # a diffusers pipeline class name
    components: dict[str, str]  # pipeline component -> class name (diffusers or transformers)
    call_defaults: dict = field(default_factory=dict)  # keyword arguments of the pipeline call
    hub_id: str | None = None  # where `--weights pretrained` loads from; None for models with no checkpoint

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.slug


FLUX_COMPONENTS = {
    "transformer": "FluxTransformer2DModel",
    "vae": "AutoencoderKL",
    "text_encoder": "CLIPTextModel",
    "text_encoder_2": "T5EncoderModel",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
    "tokenizer": "CLIPTokenizer",
    "tokenizer_2": "T5Tokenizer",
}

PRESETS = {
    preset.name: preset
    for preset in [
        Preset(
            name="black-forest-labs/FLUX.1-dev",
            slug="flux-dev",
            pipeline_class="FluxPipeline",
            components=FLUX_COMPONENTS,
            call_defaults=dict(num_inference_steps=28, guidance_scale=3.5, height=1024, width=1024,
                               max_sequence_length=512),
            hub_id="black-forest-labs/FLUX.1-dev",
        ),
        Preset(
            name="black-forest-labs/FLUX.1-schnell",
            slug="flux-schnell",
            pipeline_class="FluxPipeline",
            components=FLUX_COMPONENTS,
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
            call_defaults=dict(num_inference_steps=2, guidance_scale=3.5, height=64, width=64,
                               max_sequence_length=32),
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
