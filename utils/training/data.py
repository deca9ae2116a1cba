"""Training data: a folder of captioned images or a synthetic dataset, encoded once (VAE latents, text embeddings) so
that a training step runs the transformer alone."""

from dataclasses import dataclass
from pathlib import Path

import torch

from utils.errors import UsageError
from utils.training import WEIGHT_DTYPE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


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


def make_synthetic_dataset(count: int, resolution: tuple[int, int], seed: int) -> list[tuple]:
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


def check_images(folder: Path) -> None:
    """Every image file of the dataset opens as an image (read before any model is built)."""
    from PIL import Image, UnidentifiedImageError

    for path in image_files(folder):
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
            raise UsageError(f"--dataset_dir: {path} is not an image PIL can read ({type(error).__name__})") from None


def load_image_folder(folder: Path, resolution: tuple[int, int],
                      default_caption: str) -> list[tuple]:
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
