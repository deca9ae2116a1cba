"""Fidelity against the bf16 eager output of the same model, weights and inputs: PSNR of the decoded 8-bit
images and relative L2 error of the final latents. The reference is computed once and cached on disk, keyed by
everything that determines it."""

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from utils.files import atomic_path

logger = logging.getLogger(__name__)


@dataclass
class Output:
    """What one pipeline call produced: decoded frames, float in [0, 1] as the pipeline returns them (uint8 once
    cached), shaped (batch, [frames,] H, W, 3), and the final latents (empty if the pipeline has no callback)."""
    images: np.ndarray
    latents: torch.Tensor

    def finite(self) -> bool:
        images_finite = self.images.dtype == np.uint8 or bool(np.isfinite(self.images).all())
        return images_finite and bool(torch.isfinite(self.latents).all())

    def images_uint8(self) -> np.ndarray:
        if self.images.dtype == np.uint8:
            return self.images
        return (np.nan_to_num(self.images.astype(np.float32)).clip(0, 1) * 255).round().astype(np.uint8)


def reference_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_reference(directory: Path, key: str) -> Output | None:
    path = Path(directory) / f"{key}.pt"
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        return Output(images=saved["images"].numpy(), latents=saved["latents"])
    except Exception as error:  # noqa: BLE001 - cut short, emptied or not ours: made again, and replaced whole
        logger.warning("%s: cannot read this cached reference (%s); computing it again", path,
                       " ".join(str(error).split())[:200] or type(error).__name__)
        return None


def save_reference(directory: Path, key: str, output: Output, inputs: dict) -> None:
    with atomic_path(Path(directory) / f"{key}.pt") as partial:
        torch.save({"images": torch.from_numpy(output.images_uint8()), "latents": output.latents.float().cpu(),
                    "inputs": json.dumps(inputs, sort_keys=True, default=str)}, partial)


def psnr_db(images: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((images.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def relative_l2(latents: torch.Tensor, reference: torch.Tensor) -> float:
    latents, reference = latents.double().cpu(), reference.double().cpu()
    return (torch.linalg.vector_norm(latents - reference) / torch.linalg.vector_norm(reference)).item()


def compare(output: Output, reference: Output) -> dict:
    if output.images.shape != reference.images.shape:
        raise ValueError(f"output shape {output.images.shape} differs from the reference's {reference.images.shape}")
    has_latents = output.latents.numel() > 0 and reference.latents.numel() > 0
    return {"psnr_db": psnr_db(output.images_uint8(), reference.images_uint8()),
            "latent_rel_l2": relative_l2(output.latents, reference.latents) if has_latents else None}
