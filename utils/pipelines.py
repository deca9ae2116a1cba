"""Build a pipeline: from a checkpoint (`from_pretrained`, exactly as users load one) or, with no weights
available, from the architecture configs kept in the repo with seeded random weights."""

import functools
import json
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from utils.presets import COMPONENT_DTYPES, Preset, get_preset

logger = logging.getLogger(__name__)

WEIGHTS_CHOICES = ("auto", "pretrained", "random")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
DENOISERS = ("transformer", "transformer_2", "unet")


def denoiser(pipe) -> torch.nn.Module:
    """The model that runs the first step: `transformer` (Flux, CogVideoX, Wan, Qwen-Image) or `unet` (SDXL and
    older)."""
    return denoisers(pipe)[0]


def denoisers(pipe) -> list[torch.nn.Module]:
    """Every model that runs denoising steps: the transformer, plus `transformer_2` in pipelines that switch experts
    by timestep (Wan 2.2 A14B), or the unet. The levers apply to each of them."""
    models = [getattr(pipe, name, None) for name in DENOISERS]
    return [model for model in models if model is not None]


def checkpoint_available(ckpt_id: str) -> tuple[bool, str]:
    """Whether `from_pretrained(ckpt_id)` can work here, and why not if it cannot."""
    if Path(ckpt_id).is_dir():
        return True, ""
    import huggingface_hub

    try:
        cached = huggingface_hub.try_to_load_from_cache(ckpt_id, "model_index.json")
    except ValueError:  # huggingface_hub's HFValidationError: neither a folder here nor a valid hub id
        return False, "no such folder, and not a valid hub id"
    if cached is not None:
        return True, ""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return False, "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    try:
        huggingface_hub.HfApi().auth_check(ckpt_id)  # fails fast without network, or for gated repos without access
    except Exception as error:  # noqa: BLE001 - any failure means we cannot download it
        return False, f"hub not reachable ({type(error).__name__})"
    return True, ""


def resolve_weights(ckpt_id: str, requested: str) -> str:
    """Turn --weights auto into pretrained or random (with a one-line warning when falling back)."""
    if requested != "auto":
        return requested
    preset = get_preset(ckpt_id)
    if preset is not None and preset.hub_id is None:
        return "random"  # test-only presets have no checkpoint
    available, reason = checkpoint_available(ckpt_id)
    if available:
        return "pretrained"
    logger.warning("%s: %s; using random weights built from the kept configs", ckpt_id, reason)
    return "random"


@contextmanager
def _creation_defaults(device: str, dtype: torch.dtype):
    """Allocate new parameters directly on `device` in `dtype`: no fp32 copy on the CPU first."""
    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous_dtype)


def _component_class(class_name: str):
    import diffusers
    import transformers

    return getattr(diffusers, class_name, None) or getattr(transformers, class_name)


def pipeline_class(class_name: str):
    """The diffusers pipeline class of that name."""
    return _component_class(class_name)


def build_random_component(class_name: str, config: dict, device: str, dtype: torch.dtype, seed: int):
    cls = _component_class(class_name)
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    if class_name.endswith("Scheduler"):
        return cls.from_config(config)
    torch.manual_seed(seed)
    with _creation_defaults(device, dtype):
        if hasattr(cls, "from_config"):  # diffusers model
            model = cls.from_config(config)
            keep_in_fp32(model)
        else:  # transformers model
            model = cls(cls.config_class(**config))
    return model.eval().requires_grad_(False)


def keep_in_fp32(model: torch.nn.Module) -> None:
    """What diffusers' from_pretrained does for any other precision: the weights of the modules a model class names
    in _keep_in_fp32_modules stay fp32 (Wan: its time embedder, modulation tables and norms)."""
    names = getattr(model, "_keep_in_fp32_modules", None) or []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.is_floating_point() and any(part in names for part in name.split(".")):
            tensor.data = tensor.data.float()


# Whole-word tokens of the Qwen2 vocabulary we build: the words of QwenImagePipeline's prompt template, so that its
# system prefix is 34 tokens long as with the real vocabulary (the pipeline drops the first 34 hidden states), and of
# the default prompt, so that it is as many tokens as with the real one. Other words are split into bytes.
QWEN_WORDS = ("the image by detailing color shape size texture quantity text spatial relationships of objects and "
              "background photo an astronaut riding a horse on moon").split()  # after a space
QWEN_FIRST_WORDS = ("system", "user", "assistant", "Describe", "A")  # where a line starts
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def build_qwen2_tokenizer(max_length: int):
    """A byte-level BPE tokenizer of the Qwen2 class: the 256 byte symbols, merges that build the words above from
    them, and Qwen's chat tokens; ids stay below 520. The merges of the words after a space come first: BPE applies
    the lowest-ranked merge first, so a word is built from its start and no merge of another word cuts into it."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {symbol: index for index, symbol in enumerate(bytes_to_unicode().values())}
    merges = []
    for word in ["\u0120" + word for word in QWEN_WORDS] + list(QWEN_FIRST_WORDS):  # \u0120: a space's symbol
        for end in range(2, len(word) + 1):
            if word[:end] not in vocab:
                merges.append((word[:end - 1], word[end - 1]))
                vocab[word[:end]] = len(vocab)
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=max_length,
                          additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]))


# FLUX.2's Mistral-Small chat markers and Pixtral's image tokens, and a chat template of the same shape as Mistral's
# (system prompt, then the user's turn). FLUX.2 pads the prompt to max_sequence_length tokens, so the encoder's work
# does not depend on how the vocabulary splits the text.
MISTRAL_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                          "[IMG]", "[IMG_BREAK]", "[IMG_END]")
MISTRAL_CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
                         "[SYSTEM_PROMPT]{{ message['content'][0]['text'] }}[/SYSTEM_PROMPT]{% else %}"
                         "[INST]{{ message['content'][0]['text'] }}[/INST]{% endif %}{% endfor %}")


def build_pixtral_processor(max_length: int):
    """What FLUX.2's pipeline asks of its Pixtral processor (apply_chat_template on text prompts), without downloaded
    files and without torchvision, which transformers' PixtralProcessor requires: a tokenizer with a chat template, a
    byte-level vocabulary after the special tokens (ids below 300)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {token: index for index, token in enumerate(MISTRAL_SPECIAL_TOKENS)}
    vocab.update({symbol: len(MISTRAL_SPECIAL_TOKENS) + index
                  for index, symbol in enumerate(bytes_to_unicode().values())})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_max_length=max_length, chat_template=MISTRAL_CHAT_TEMPLATE,
                                   additional_special_tokens=list(MISTRAL_SPECIAL_TOKENS[4:]))


def build_tokenizer(class_name: str, max_length: int):
    """Tokenizers without downloaded files. T5 builds a minimal vocabulary by itself; CLIP gets a one-character
    vocabulary written to a temporary folder (the file form works on every transformers 5.x); Qwen2 and FLUX.2's
    processor get byte-level ones. Token ids stay small, so they are valid for any embedding size; the compute depends
    on how many tokens a prompt gets (where the pipeline does not pad it to a fixed length), not on which."""
    cls = _component_class(class_name)
    if class_name == "Qwen2Tokenizer":
        return build_qwen2_tokenizer(max_length)
    if class_name == "PixtralProcessor":
        return build_pixtral_processor(max_length)
    if not class_name.startswith("CLIP"):
        return cls(model_max_length=max_length)
    letters = [chr(code) for code in range(ord("a"), ord("z") + 1)]
    vocab = ["<|startoftext|>", "<|endoftext|>", *letters, *(letter + "</w>" for letter in letters)]
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = Path(folder) / "vocab.json", Path(folder) / "merges.txt"
        vocab_file.write_text(json.dumps({token: index for index, token in enumerate(vocab)}))
        merges_file.write_text("#version: 0.2\n")
        return cls(str(vocab_file), str(merges_file), model_max_length=max_length)


def build_random_pipeline(preset: Preset, device: str, dtype: torch.dtype, seed: int):
    """`dtype` is the base precision; components the preset keeps in another (component_dtypes) get theirs."""
    components = {}
    for index, (name, class_name) in enumerate(preset.components.items()):
        component_dtype = COMPONENT_DTYPES[preset.component_dtypes.get(name, dtype_name(dtype))]
        components[name] = build_random_component(class_name, preset.config(name), device, component_dtype,
                                                   seed + index)
    for name, (class_name, max_length) in preset.tokenizers.items():
        components[name] = build_tokenizer(class_name, max_length)
    return _component_class(preset.pipeline_class)(**components, **preset.pipeline_config)


def dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in COMPONENT_DTYPES.items() if value == dtype)


def build_random_transformer(preset: Preset, device: str, dtype: torch.dtype, seed: int, **config_overrides):
    """The preset's transformer alone, with the same random weights as in build_random_pipeline(seed) (components
    are seeded with seed + their index); `config_overrides` change the architecture (then the weights differ)."""
    config = {**preset.config("transformer"), **config_overrides}
    seed += list(preset.components).index("transformer")
    return build_random_component(preset.components["transformer"], config, device, dtype, seed)


def component_parameters(preset: Preset) -> dict[str, int]:
    """Parameters per model of the preset's pipeline, counted on the meta device (no memory, no weights), once per
    process and preset."""
    return dict(_count_parameters(preset.name))


@functools.cache
def _count_parameters(preset_name: str) -> dict[str, int]:
    preset = get_preset(preset_name)
    counts = {}
    for name, class_name in preset.components.items():
        if not class_name.endswith("Scheduler"):
            model = build_random_component(class_name, preset.config(name), "meta", torch.bfloat16, seed=0)
            counts[name] = sum(parameter.numel() for parameter in model.parameters())
    return counts


@functools.cache
def meta_vae(preset_name: str) -> torch.nn.Module:
    """The preset's VAE on the meta device (its layers, no memory, no weights), for checks made before any build."""
    preset = get_preset(preset_name)
    return build_random_component(preset.components["vae"], preset.config("vae"), "meta", torch.bfloat16, seed=0)


def vae_linear_layers(preset_name: str) -> int:
    """Linear layers in the preset's VAE: the only layers torchao quantizes. FLUX's VAEs have a few (their
    attention); the video and Qwen-Image VAEs, all convolutions, have none."""
    return sum(isinstance(module, torch.nn.Linear) for module in meta_vae(preset_name).modules())


def vae_is_3d(preset_name: str) -> bool:
    """Whether the preset's VAE convolves over time (5-D weights: CogVideoX, Wan, Qwen-Image)."""
    return any(isinstance(module, torch.nn.Conv3d) for module in meta_vae(preset_name).modules())


def weight_bytes(preset: Preset, base_dtype: str) -> dict[str, int]:
    """Bytes the weights of each model of the preset's pipeline take at their precisions (Wan's VAE is fp32)."""
    return {name: count * preset.dtype(name, base_dtype).itemsize
            for name, count in component_parameters(preset).items()}


def transformer_class_name(ckpt_id: str, preset: Preset | None) -> str:
    """The denoiser's class: the preset's, or the one the checkpoint's model_index.json names."""
    if preset is not None:
        return preset.components["transformer"]
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.load_config(ckpt_id)["transformer"][1]


def build_transformer(ckpt_id: str, weights: str, device: str, dtype: torch.dtype, seed: int, **config_overrides):
    """The transformer alone: from the checkpoint (`weights` "pretrained") or the preset's random weights, the same
    as the whole pipeline's; `config_overrides` (random weights only) change the architecture."""
    preset = get_preset(ckpt_id)
    if weights == "random":
        return build_random_transformer(preset, device, dtype, seed, **config_overrides)
    if config_overrides:
        raise ValueError("a pretrained checkpoint keeps its own architecture: no config overrides")
    cls = _component_class(transformer_class_name(ckpt_id, preset))
    model = cls.from_pretrained(ckpt_id, subfolder="transformer", torch_dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def load_pretrained_pipeline(ckpt_id: str, device: str, dtype: torch.dtype):
    """`dtype` for every component, except those a preset keeps in another precision (Wan's VAE in fp32)."""
    from diffusers import DiffusionPipeline

    preset = get_preset(ckpt_id)
    own = {name: COMPONENT_DTYPES[value] for name, value in preset.component_dtypes.items()} if preset else {}
    return DiffusionPipeline.from_pretrained(ckpt_id, dtype={"default": dtype, **own} if own else dtype).to(device)


def build_pipeline(ckpt_id: str, weights: str, device: str, dtype: torch.dtype, seed: int):
    """`weights` is already resolved to "pretrained" or "random"."""
    if weights == "pretrained":
        pipe = load_pretrained_pipeline(ckpt_id, device, dtype)
    else:
        pipe = build_random_pipeline(get_preset(ckpt_id), device, dtype, seed)
    pipe.set_progress_bar_config(disable=True)  # the runner shows one bar over all calls instead
    return pipe
