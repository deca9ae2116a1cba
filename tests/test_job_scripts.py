"""Every configuration of the GPU job scripts in results/commands parses with the script it runs (checked here, on
the CPU, with CUDA faked), so a flag typo never costs GPU time."""

import shlex
import subprocess

import pytest
import torch

from inference import benchmark_image, benchmark_video, quantization_time, serialize
from tests.conftest import REPO_ROOT
from training import train_fp8
from utils import cli

PARSERS = {"inference/benchmark_image.py": benchmark_image.parse_args,
           "inference/benchmark_video.py": benchmark_video.parse_args,
           "inference/quantization_time.py": quantization_time.parse_args,
           "inference/serialize.py": serialize.parse_args,
           "training/train_fp8.py": train_fp8.parse_args}
SCRIPTS = ["flux-dev-core.sh", "flux-perf-ladder.sh", "cogvideox-5b-memory.sh", "cogvideox-latency.sh",
           "train-flux-dev.sh", "quantization-time.sh", "serialization.sh", "flux-autoquant.sh",
           "int8-autotuner.sh"]


def commands_of(script: str, tmp_path) -> list[list[str]]:
    """The command lines the script would run: `timeout` and `python3` replaced by functions that print them."""
    logs = tmp_path / "logs"
    # serialization.sh takes OUT_DIR WORKDIR and writes its logs into OUT_DIR; the others take OUT_CSV LOG_DIR
    arguments = f"{logs} {tmp_path / 'work'}" if script == "serialization.sh" else f"{tmp_path / 'out.csv'} {logs}"
    fake = 'timeout() { shift; echo "$@"; }; python3() { echo "$@"; }; export -f timeout python3; '
    inner = f"source results/commands/lib.sh; source results/commands/{script} {arguments}"
    subprocess.run(["bash", "-c", fake + f"bash -c {shlex.quote(inner)}"], cwd=REPO_ROOT, check=True,
                   capture_output=True, text=True)
    commands = [shlex.split(path.read_text()) for path in sorted(logs.glob("*.log"))]
    return [command[1:] if command[0] == "python3" else command for command in commands]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_job_configuration_parses(script, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(cli, "int8_autotuner_unavailable_reason", lambda: None)  # CI has no Triton; the H100 has
    commands = commands_of(script, tmp_path)
    assert commands, f"{script} ran no configuration"
    for program, *argv in commands:
        try:
            PARSERS[program](argv)
        except SystemExit as error:
            pytest.fail(f"{script}: {program} {shlex.join(argv)} exits {error.code}")
