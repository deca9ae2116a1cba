"""Multi-GPU flags on the CPU: argument wiring, validation, the two row columns, and diffusers' context parallelism
across two gloo processes (this file is also the torchrun worker: `python -m torch.distributed.run ... -m
tests.test_parallel`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inference import benchmark_image, benchmark_video
from tests.conftest import expect_exit_2
from utils.results import COLUMNS, Row, read_rows

REPO_ROOT = Path(__file__).resolve().parents[1]

BAD_INPUTS = {
    "without torchrun": (1, ["--context_parallel", "ulysses"], "launch with torchrun --nproc_per_node N"),
    "unknown mode": (2, ["--context_parallel", "tensor"], "invalid choice"),
    "degree without a mode": (1, ["--cp_degree", "2"], "--cp_degree needs --context_parallel"),
    "degree not the world size": (2, ["--context_parallel", "ring", "--cp_degree", "4"],
                                  "--cp_degree 4 must equal the world size 2"),
    "with offload": (2, ["--context_parallel", "ulysses", "--offload", "model"], "cannot be combined with --offload"),
    "on the cpu": (2, ["--context_parallel", "ulysses"], "--context_parallel needs CUDA"),
}


@pytest.mark.parametrize("world_size,flags,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_parallel_input_exits_2_with_one_line(world_size, flags, message, run_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    expect_exit_2(benchmark_image.main, [*run_args, *flags], message, capsys)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cogvideox_has_no_context_parallel_plan(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    argv = ["--ckpt_id", "tiny-cogvideox", "--context_parallel", "ulysses", "--csv", str(tmp_path / "results.csv")]
    expect_exit_2(benchmark_video.main, argv, "CogVideoXTransformer3DModel has no context-parallel plan", capsys)
    assert list(tmp_path.iterdir()) == []


def test_single_process_flags(run_args, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    config = benchmark_image.parse_config(run_args)
    assert (config.context_parallel, config.cp_degree, config.world_size) == ("none", None, 1)
    assert config.command.startswith("python inference/benchmark_image.py ")


def test_torchrun_fills_the_degree_and_the_command(run_args, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # validation only; nothing runs
    config = benchmark_image.parse_config([*run_args, "--device", "cuda", "--context_parallel", "ring"])
    assert (config.context_parallel, config.cp_degree, config.world_size) == ("ring", 4, 4)
    assert config.device == "cuda:0"
    assert config.command.startswith("torchrun --nproc_per_node 4 inference/benchmark_image.py ")


def test_both_scripts_have_the_flags():
    for script in (benchmark_image, benchmark_video):
        options = {option for action in script.build_parser()._actions for option in action.option_strings}
        assert {"--context_parallel", "--cp_degree"} <= options


def test_row_has_the_parallel_columns():
    assert {"world_size", "context_parallel"} <= set(COLUMNS)
    assert (Row().world_size, Row().context_parallel) == (1, "none")


def test_single_process_run_records_world_size_1(run_args, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert benchmark_image.main([*run_args, "--no_fidelity", "--warmup", "1", "--runs", "1"]) == 0
    row = read_rows(tmp_path / "results.csv").iloc[0]
    assert (row.world_size, row.context_parallel, row.status) == (1, "none", "ok")
    assert not torch.distributed.is_initialized()


def run_two_ranks(scenario: str, out: Path) -> dict:
    """Run the tiny-flux benchmark as two gloo processes with Ulysses over both; rank 0's row comes back."""
    temp = out / "tmp"  # torchrun's torchelastic_* folders land here, not in the machine's /tmp
    temp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TMPDIR": str(temp)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "tests.test_parallel", scenario, str(out)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    rows = read_rows(out / "results.csv") if (out / "results.csv").exists() else None
    assert rows is not None and len(rows) == 1, result.stdout[-3000:] + result.stderr[-3000:]  # rank 0 only
    return rows.iloc[0].to_dict()


def test_context_parallel_on_cpu_gloo(tmp_path):
    """diffusers as installed, two CPU processes. diffusers 0.42.1 puts rank r on accelerator
    r % torch.accelerator.device_count(), which has no accelerator to count on a CPU-only machine."""
    row = run_two_ranks("as-installed", tmp_path)
    if row["status"] == "error" and "ZeroDivisionError" in row["error"]:
        pytest.skip(f"diffusers {row['diffusers_version']} context parallelism does not run on CPU/gloo: "
                    f"enable_parallelism raised {row['error']} (it computes rank % torch.accelerator.device_count(), "
                    "and the count is 0 without an accelerator)")
    assert_equal_to_one_process(row, tmp_path)


def test_context_parallel_on_cpu_gloo_with_the_device_lookup_patched(tmp_path):
    """The same with only that lookup patched (one "accelerator", so every rank's device is cpu:0): everything
    after it -- the sequence split and gather hooks, the all-to-alls over gloo, the lockstep runner -- is diffusers'
    and ours, unchanged. Ring attention cannot run on the CPU at all: it needs the log-sum-exp, and no attention
    backend of diffusers that runs on the CPU returns it."""
    assert_equal_to_one_process(run_two_ranks("device-lookup-patched", tmp_path), tmp_path)


def test_context_parallel_splits_both_wan_experts(tmp_path):
    """Wan 2.2 A14B's two experts, each split across the two gloo processes (the device lookup patched as above):
    the output is the one process's, and the second block of each expert sees half of the 3 x 2 x 2 video tokens."""
    row = run_two_ranks("wan-two-experts", tmp_path)
    assert (row["status"], row["model"], row["context_parallel"]) == ("ok", "tiny-wan22-a14b", "ulysses"), row["error"]
    assert row["psnr_db"] == float("inf") and row["latent_rel_l2"] == 0
    for rank in (0, 1):
        tokens = json.loads((tmp_path / f"rank{rank}-tokens.json").read_text())
        assert set(tokens["whole"]) == {12} and set(tokens["per_block"]) == set(tokens["per_block_2"]) == {6}, tokens


def assert_equal_to_one_process(row: dict, out: Path) -> None:
    """Rank 0's fidelity columns compare the parallel output with the eager output the same rank computed as one
    process before the transformer was split: bit-identical images and latents, from half-length sequences."""
    assert (row["status"], row["world_size"], row["context_parallel"]) == ("ok", 2, "ulysses"), row["error"]
    assert row["psnr_db"] == float("inf") and row["latent_rel_l2"] == 0
    assert (out / "sample.png").exists() and not (out / "rank1-sample.png").exists()
    for rank in (0, 1):
        tokens = json.loads((out / f"rank{rank}-tokens.json").read_text())
        assert tokens["whole"] and tokens["per_block"] == [whole // 2 for whole in tokens["whole"]], tokens


def worker(scenario: str, out: Path) -> int:
    """One torchrun rank: the tiny-flux benchmark (tiny-wan22-a14b for "wan-two-experts") with Ulysses over two
    processes, recording how many image tokens the transformer gets and how many its first block sees (each expert's
    first block for Wan), in every parallel call."""
    import dataclasses

    from utils.benchmark import run_benchmark
    from utils.levers import context_parallel

    if scenario != "as-installed":
        torch.accelerator.device_count = lambda: 1
    rank = int(os.environ["RANK"])
    wan = scenario == "wan-two-experts"
    script, model = (benchmark_video, "tiny-wan22-a14b") if wan else (benchmark_image, "tiny-flux")
    sample = [] if wan else ["--save_image", str(out / ("sample.png" if rank == 0 else "rank1-sample.png"))]
    config = script.parse_config(["--ckpt_id", model, "--device", "cpu", "--warmup", "1", "--runs", "1",
                                  "--csv", str(out / "results.csv"), "--reference_dir", str(out / "references"),
                                  *sample])
    # validation refuses context parallelism on the CPU (the device lookup above), so it is switched on after it
    config = dataclasses.replace(config, context_parallel="ulysses", cp_degree=2)
    tokens = {"whole": [], "per_block": [], "per_block_2": []}
    apply = context_parallel.apply

    def watch(module, name):  # torch's pre-hooks run before diffusers' split, which wraps forward
        module.register_forward_pre_hook(
            lambda _, args, kwargs: tokens[name].append((args[0] if args else kwargs["hidden_states"]).shape[1]),
            with_kwargs=True)

    def apply_and_watch(pipe, config):
        apply(pipe, config)
        if wan:  # diffusers splits the tokens entering blocks.0 (a wrapped forward, after this pre-hook)
            watch(pipe.transformer.blocks[0], "whole")
            watch(pipe.transformer.blocks[1], "per_block")
            watch(pipe.transformer_2.blocks[1], "per_block_2")
            return
        watch(pipe.transformer, "whole")
        watch(pipe.transformer.transformer_blocks[0], "per_block")

    context_parallel.apply = apply_and_watch
    row, _ = run_benchmark(config, save_sample=benchmark_image.save_image)
    (out / f"rank{rank}-tokens.json").write_text(json.dumps(tokens))
    return 0 if row.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1], Path(sys.argv[2])))
