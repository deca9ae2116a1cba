"""Every configuration of the GPU jobs parses with the script it runs (checked here, on the CPU, with CUDA faked), so
a flag typo never costs GPU time: the grid files under inference/grids and the bash jobs left in results/commands."""

import importlib
import re
import shlex
import subprocess

import pytest
import torch

from tests.conftest import REPO_ROOT
from utils import cli, fp8_attention
from utils.levers import autotune
from utils.sweep import expand, load_grid_file

GRIDS = sorted(path.name for path in (REPO_ROOT / "inference" / "grids").iterdir())
BASH_JOBS = ["serialization.sh", "flux-autoquant.sh", "int8-autotuner.sh"]  # ordered runs sharing files


@pytest.fixture
def fake_h100(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(autotune, "unavailable_reason", lambda: None)  # CI has no Triton; the GPU machine has
    monkeypatch.setattr(fp8_attention, "missing_reason", lambda: None)  # nor the fa3-fwd wheel
    # the GPU machine's free memory (an H200's, for FLUX.2-dev), not this host's
    monkeypatch.setattr(cli, "available_GiB", lambda device: 139.0 if device.type == "cuda" else 120.0)


def parses(program: str, argv: list[str]) -> None:
    module = importlib.import_module(program.removesuffix(".py").replace("/", "."))
    try:
        module.parse_config(argv)
    except SystemExit as error:
        pytest.fail(f"{program} {shlex.join(argv)} exits {error.code}")


@pytest.mark.parametrize("grid", GRIDS)
def test_every_grid_configuration_parses(grid, tmp_path, fake_h100):
    configs = expand(load_grid_file(REPO_ROOT / "inference" / "grids" / grid), tmp_path / "logs")
    assert configs, f"{grid} has no configuration"
    for config in configs:
        parses(config.script, config.argv(tmp_path / "out.csv"))


def documented_commands() -> list[str]:
    """The suite's commands written out in the README and docs/ (backslash continuations joined, comments cut)."""
    commands = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for line in re.sub(r"\\\n\s*", " ", path.read_text()).splitlines():
            found = re.match(r"\s*python3? ((?:inference|training)/\w+\.py .*?)(?:\s+#.*)?$", line)
            if found and found.group(1).split()[0] != "inference/sweep.py":
                commands.append(found.group(1))
    return commands


@pytest.mark.parametrize("command", documented_commands())
def test_every_documented_command_parses(command, fake_h100):
    program, *argv = shlex.split(command)
    parses(program, argv)


def bash_commands(script: str, tmp_path) -> list[list[str]]:
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


@pytest.mark.parametrize("script", BASH_JOBS)
def test_every_bash_job_configuration_parses(script, tmp_path, fake_h100):
    commands = bash_commands(script, tmp_path)
    assert commands, f"{script} ran no configuration"
    for program, *argv in commands:
        parses(program, argv)


def test_a_job_with_a_failed_configuration_exits_1_after_running_the_rest(tmp_path):
    # the fake `timeout` fails the two sparsity configurations and runs (prints) every other one
    fake = ('timeout() { shift; echo "$@"; [[ "$*" != *--sparsify* ]]; }; python3() { echo "$@"; }; '
            'export -f timeout python3; ')
    job = f"results/commands/flux-autoquant.sh {tmp_path / 'out.csv'} {tmp_path / 'logs'}"
    inner = f"source results/commands/lib.sh; source {job}"
    done = subprocess.run(["bash", "-c", fake + f"bash -c {shlex.quote(inner)}"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "2 configuration(s) failed: bs16-sparse-2of4 (exit 1) bs16-fp8dqrow-sparse-2of4 (exit 1)" in done.stderr
    assert len(list((tmp_path / "logs").glob("*.log"))) == 14  # every configuration ran
