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
    # Layers fed one row per prompt token with the prompt not padded (Qwen-Image's text stream: 16 rows for the
    # default prompt, 6 for its negative " "): too few for torch._int_mm (more than 16 rows), so the methods that
    # quantize activations give them their weight-only form (utils.quant.QuantMethod.few_rows_as).
    few_rows_layers: str = ""

    @property
    def makes_video(self) -> bool:
        return "num_frames" in self.call_defaults

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
# Wan 2.2 (WanPipeline): UMT5-XXL, one transformer or two experts switched by timestep (transformer for the high-noise
# steps, transformer_2 below boundary_ratio x 1000), a UniPC flow-matching scheduler. The model cards load the VAE in
# fp32 and the rest in bf16; the prompt is padded to 512 tokens, so its text does not change the compute.
WAN_COMPONENTS = {
    "transformer": "WanTransformer3DModel",
    "vae": "AutoencoderKLWan",
    "text_encoder": "UMT5EncoderModel",
    "scheduler": "UniPCMultistepScheduler",
}
WAN_A14B_COMPONENTS = {**WAN_COMPONENTS, "transformer_2": "WanTransformer3DModel"}
WAN_TOKENIZERS = {"tokenizer": ("T5Tokenizer", 512)}
WAN_VAE_FP32 = {"vae": "fp32"}
# The model cards' calls: T2V-A14B 81 frames of 720x1280, 40 steps, CFG 4.0 (high-noise expert) and 3.0 (low-noise
# expert), 16 fps; TI2V-5B 121 frames of 704x1280, 50 steps, CFG 5.0, 24 fps.
WAN_A14B_CALL = dict(num_frames=81, height=720, width=1280, num_inference_steps=40, guidance_scale=4.0,
                     guidance_scale_2=3.0, max_sequence_length=512)
WAN_TI2V_CALL = dict(num_frames=121, height=704, width=1280, num_inference_steps=50, guidance_scale=5.0,
                     max_sequence_length=512)
# What each Wan 2.2 model and its tiny twin share (the tiny presets differ in size only).
WAN_A14B = dict(pipeline_class="WanPipeline", components=WAN_A14B_COMPONENTS, component_dtypes=WAN_VAE_FP32,
                pipeline_config={"boundary_ratio": 0.875}, fps=16)
WAN_TI2V = dict(pipeline_class="WanPipeline", components=WAN_COMPONENTS, component_dtypes=WAN_VAE_FP32,
                pipeline_config={"expand_timesteps": True},  # a timestep per latent frame (the first can be an image)
                size_multiple=32,  # its VAE downsamples 16x, its transformer patches 2x2
                fps=24)
# Qwen-Image (QwenImagePipeline): Qwen2.5-VL-7B as text encoder, true classifier-free guidance (a second transformer
# pass with the negative prompt; the model card's is " "), which --guidance_scale sets as true_cfg_scale.
QWEN_IMAGE_COMPONENTS = {
    "transformer": "QwenImageTransformer2DModel",
    "vae": "AutoencoderKLQwenImage",
    "text_encoder": "Qwen2_5_VLForConditionalGeneration",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
}
# FLUX.2-dev (Flux2Pipeline): Mistral-Small-3.2-24B as text encoder (hidden states of its layers 10, 20 and 30, the
# prompt padded to 512 tokens), guidance distilled into the transformer (one pass per step). Model card: 50 steps,
# guidance 4.0, the pipeline's default 1024x1024.
FLUX2_COMPONENTS = {
    "transformer": "Flux2Transformer2DModel",
    "vae": "AutoencoderKLFlux2",
    "text_encoder": "Mistral3ForConditionalGeneration",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
}
FLUX2_CALL = dict(height=1024, width=1024, num_inference_steps=50, guidance_scale=4.0, max_sequence_length=512)
QWEN_IMAGE_TEXT_STREAM = r"^txt_in$|\.add_[qkv]_proj$|\.to_add_out$|\.txt_mlp\."
QWEN_IMAGE_CALL = dict(height=1328, width=1328, num_inference_steps=50, true_cfg_scale=4.0, negative_prompt=" ",
                       max_sequence_length=512)

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
            tokenizers={"tokenizer": ("T5Tokenizer", 32)},
            call_defaults={**COGVIDEOX_CALL, "num_frames": 9, "height": 64, "width": 64, "num_inference_steps": 2,
                           "max_sequence_length": 32},
        ),
        Preset(
            name="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            slug="wan22-t2v-a14b",
            tokenizers=WAN_TOKENIZERS,
            call_defaults=WAN_A14B_CALL,
            hub_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            **WAN_A14B,
        ),
        Preset(
            name="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            slug="wan22-ti2v-5b",
            tokenizers=WAN_TOKENIZERS,
            call_defaults=WAN_TI2V_CALL,
            hub_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            **WAN_TI2V,
        ),
        # Two blocks per expert, 9 frames of 32x32: the same classes and expert switch as Wan2.2-T2V-A14B.
        Preset(
            name="tiny-wan22-a14b",
            slug="tiny-wan22-a14b",
            tokenizers={"tokenizer": ("T5Tokenizer", 16)},
            call_defaults={**WAN_A14B_CALL, "num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 2,
                           "max_sequence_length": 16},
            **WAN_A14B,
        ),
        # Two blocks, 9 frames of 64x64: the same classes (the Wan 2.2 VAE) and timestep layout as Wan2.2-TI2V-5B.
        Preset(
            name="tiny-wan22-ti2v",
            slug="tiny-wan22-ti2v",
            tokenizers={"tokenizer": ("T5Tokenizer", 16)},
            call_defaults={**WAN_TI2V_CALL, "num_frames": 9, "height": 64, "width": 64, "num_inference_steps": 2,
                           "max_sequence_length": 16},
            **WAN_TI2V,
        ),
        Preset(
            name="Qwen/Qwen-Image",
            slug="qwen-image",
            pipeline_class="QwenImagePipeline",
            components=QWEN_IMAGE_COMPONENTS,
            tokenizers={"tokenizer": ("Qwen2Tokenizer", 1024)},
            call_defaults=QWEN_IMAGE_CALL,
            hub_id="Qwen/Qwen-Image",
            guidance_argument="true_cfg_scale",
            few_rows_layers=QWEN_IMAGE_TEXT_STREAM,
        ),
        # Two blocks, 32x32 images, a 2-layer Qwen2.5-VL: the same classes as Qwen-Image.
        Preset(
            name="tiny-qwen-image",
            slug="tiny-qwen-image",
            pipeline_class="QwenImagePipeline",
            components=QWEN_IMAGE_COMPONENTS,
            tokenizers={"tokenizer": ("Qwen2Tokenizer", 1024)},
            call_defaults={**QWEN_IMAGE_CALL, "height": 32, "width": 32, "num_inference_steps": 2,
                           "max_sequence_length": 64},
            guidance_argument="true_cfg_scale",
            few_rows_layers=QWEN_IMAGE_TEXT_STREAM,
        ),
        Preset(
            name="black-forest-labs/FLUX.2-dev",
            slug="flux2-dev",
            pipeline_class="Flux2Pipeline",
            components=FLUX2_COMPONENTS,
            tokenizers={"tokenizer": ("PixtralProcessor", 512)},
            call_defaults=FLUX2_CALL,
            hub_id="black-forest-labs/FLUX.2-dev",
        ),
        # One double and one single block, 32x32 images, a 3-layer Mistral: the same classes as FLUX.2-dev.
        Preset(
            name="tiny-flux2",
            slug="tiny-flux2",
            pipeline_class="Flux2Pipeline",
            components=FLUX2_COMPONENTS,
            tokenizers={"tokenizer": ("PixtralProcessor", 64)},
            call_defaults={**FLUX2_CALL, "height": 32, "width": 32, "num_inference_steps": 2,
                           "max_sequence_length": 64, "text_encoder_out_layers": (1, 2, 3)},
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
