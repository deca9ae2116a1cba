import os
import sys
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from utils.pipelines import build_pipeline  # noqa: E402

TINY = "tiny-flux"


@pytest.fixture(scope="session")
def tiny_pipe():
    """A tiny random-weight Flux pipeline; tests that mutate it must build their own."""
    return build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)


@pytest.fixture
def run_args(tmp_path):
    """Arguments for one fast tiny-flux benchmark run writing only under tmp_path."""
    return ["--ckpt_id", TINY, "--device", "cpu", "--warmup", "1", "--runs", "2",
            "--csv", str(tmp_path / "results.csv"), "--reference_dir", str(tmp_path / "references")]
