"""Bad paths, bad files and inputs beyond what can work: each stops with one line and exit code 2 before any model is
built, writes nothing, and deletes nothing it did not write."""

import json
import logging
import os
import subprocess
import sys
import zipfile

import pytest
import torch

from inference import benchmark_image, benchmark_video, quantization_time, serialize
from tests.conftest import REPO_ROOT, TINY, expect_exit_2
from training import train_fp8
from utils import cli, profiling
from utils.errors import failure_status
from utils.logs import KNOWN_HARMLESS
from utils.results import COLUMNS


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything builds a pipeline."""
    import utils.benchmark
    import utils.training.run

    def refuse(*args, **kwargs):
        pytest.fail("a model was built")

    for module in (utils.benchmark, utils.training.run, serialize):
        monkeypatch.setattr(module, "build_pipeline", refuse)


def corrupt_files(tmp_path) -> dict:
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "plain.txt").write_text("not a model\n")
    (tmp_path / "plan.json").write_text('{"version": ')
    (tmp_path / "cache.bin").write_bytes(b"\x00garbage")
    (tmp_path / "list-plan.json").write_text("[1, 2]")
    for name, header in (("cut", b"{}"), ("odd", b'{"w": 5}')):  # a cut-off file; a header of the wrong shape
        (tmp_path / name / "transformer").mkdir(parents=True)
        (tmp_path / name / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
        weights = tmp_path / name / "transformer" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes((1000 if name == "cut" else len(header)).to_bytes(8, "little") + header)
    (tmp_path / "list-index").mkdir()
    (tmp_path / "list-index" / "model_index.json").write_text("[1]")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere" / "r.csv")
    names = {"folder": "folder", "empty_dir": "empty_dir", "plain": "plain.txt", "plan": "plan.json",
             "cache": "cache.bin", "cut": "cut", "odd": "odd", "list_plan": "list-plan.json",
             "list_index": "list-index", "dangling": "dangling.csv"}
    return {key: str(tmp_path / name) for key, name in names.items()}


BENCHMARK_PATHS = {
    "csv is a folder": (["--csv", "{folder}"], "is a directory"),
    "csv under a file": (["--csv", "{plain}/rows.csv"], "is not a directory"),
    "sample is a folder": (["--save_image", "{folder}"], "is a folder"),
    "sample of unknown type": (["--save_image", "{folder}/out.xyz"], "unknown file type '.xyz'"),
    "profile is a folder": (["--profile", "{folder}"], "is a folder"),
    "reference dir is a file": (["--reference_dir", "{plain}"], "is a file; give a folder"),
    "corrupt autoquant plan": (["--quantization", "autoquant", "--autoquant_plan", "{plan}"],
                               "not an autoquant plan"),
    "compile cache not a cache": (["--regional_compile", "--compile_cache", "{cache}"],
                                  "not a torch.compile cache"),
    "checkpoint is an empty folder": (["--ckpt_id", "{empty_dir}"], "no model_index.json"),
    "checkpoint is a file": (["--ckpt_id", "{plain}"], "is a file, not a pipeline folder"),
    "checkpoint with a cut safetensors": (["--ckpt_id", "{cut}"], "truncated"),
    "size beyond the limit": (["--height", "65536", "--width", "65536"], "at most 8192"),
    "a million steps": (["--num_inference_steps", "1000000"], "at most 1000"),
    "NaN guidance": (["--guidance_scale", "nan"], "finite number"),
    "prompt longer than T5 takes": (["--max_sequence_length", "100000"], "at most 512 tokens"),
    "CSV that links to nothing": (["--csv", "{dangling}"], "link to nothing"),
    "autoquant plan not an object": (["--quantization", "autoquant", "--autoquant_plan", "{list_plan}"],
                                     "not an autoquant plan"),
    "safetensors header of the wrong shape": (["--ckpt_id", "{odd}"], "malformed safetensors header"),
    "model_index.json not an object": (["--ckpt_id", "{list_index}"], "not a diffusers pipeline index"),
    "checkpoint path that does not exist": (["--ckpt_id", "{folder}/missing/model"], "no such folder"),
    "seed beyond 64 bits": (["--seed", "18446744073709551616"], "--seed: must be within"),
    "device the suite does not run on": (["--device", "meta"], "runs on cpu or cuda"),
    "skip pattern without a quantization": (["--quant_skip_pattern", "proj"], "needs --quantization"),
    "a batch too large to hold": (["--batch_size", "100000000"], "the decoded output alone"),
}


@pytest.mark.parametrize("flags,message", BENCHMARK_PATHS.values(), ids=BENCHMARK_PATHS.keys())
def test_benchmark_refuses_bad_paths_before_building(flags, message, tmp_path, capsys, no_model):
    paths = corrupt_files(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    argv = ["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "out" / "rows.csv"),
            "--reference_dir", str(tmp_path / "out" / "refs"), *[flag.format(**paths) for flag in flags]]
    expect_exit_2(benchmark_image.main, argv, message, capsys)
    assert not (tmp_path / "nowhere").exists()
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_video_refuses_frames_beyond_the_limit(tmp_path, capsys, no_model):
    argv = ["--device", "cpu", "--csv", str(tmp_path / "rows.csv"), "--num_frames", "100001"]
    expect_exit_2(benchmark_video.main, argv, "at most 1025", capsys)
    argv = ["--device", "cpu", "--csv", str(tmp_path / "rows.csv"), "--save_video", str(tmp_path / "v.png")]
    expect_exit_2(benchmark_video.main, argv, "unknown file type '.png'", capsys)


def test_non_utf8_argument_is_refused(tmp_path, capsys, no_model):
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of a Latin-1 byte in argv
    expect_exit_2(benchmark_image.main, ["--device", "cpu", "--csv", str(tmp_path / "r.csv"), "--prompt", bad],
                  "not valid UTF-8", capsys)
    assert list(tmp_path.iterdir()) == []


def test_model_that_does_not_fit_is_refused(monkeypatch, tmp_path, capsys, no_model):
    monkeypatch.setattr(cli, "available_GiB", lambda device: 1.0)
    argv = ["--ckpt_id", "black-forest-labs/FLUX.1-dev", "--weights", "random", "--device", "cpu",
            "--csv", str(tmp_path / "r.csv")]
    expect_exit_2(benchmark_image.main, argv, "needs about 31.4 GiB for its bf16 weights alone", capsys)


def test_model_whose_weights_just_fit_is_refused(monkeypatch, tmp_path, capsys, no_model):
    # the weights alone (31.4 GiB) fit, but not the activations and the runtime beside them
    monkeypatch.setattr(cli, "available_GiB", lambda device: 32.0)
    argv = ["--ckpt_id", "black-forest-labs/FLUX.1-dev", "--weights", "random", "--device", "cpu",
            "--csv", str(tmp_path / "r.csv")]
    expect_exit_2(benchmark_image.main, argv, "35.6 GiB with room to run; cpu has 32.0 GiB free", capsys)


def test_uncached_hub_checkpoint_is_one_line(monkeypatch, tmp_path, capsys, no_model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(cli, "checkpoint_available", lambda ckpt_id: (False, "not in the Hugging Face cache"))
    argv = ["--ckpt_id", "acme/no-such-model", "--weights", "pretrained", "--device", "cpu",
            "--csv", str(tmp_path / "r.csv")]
    expect_exit_2(benchmark_image.main, argv, "cannot load pretrained weights", capsys)


def test_cpu_allocation_failure_is_oom():
    assert failure_status(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                                       "memory: you tried to allocate 1000 bytes")) == "oom"
    assert failure_status(MemoryError()) == "oom"
    assert failure_status(torch.OutOfMemoryError("CUDA out of memory")) == "oom"
    assert failure_status(RuntimeError("shape mismatch")) == "error"


def test_outputs_that_would_replace_a_file_are_refused(tmp_path, capsys, no_model):
    rows = tmp_path / "rows.png"
    rows.write_text(",".join(COLUMNS) + "\n")  # a CSV of ours, by another name
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    base = ["--ckpt_id", TINY, "--device", "cpu", "--no_fidelity"]
    same_image = tmp_path / ".." / tmp_path.name / "rows.png"  # another spelling of the CSV's path
    expect_exit_2(benchmark_image.main, [*base, "--csv", str(rows), "--save_image", str(same_image)],
                  "--csv and --save_image name the same file", capsys)
    expect_exit_2(benchmark_image.main, [*base, "--csv", str(tmp_path / "r.csv"), "--profile",
                                         str(tmp_path / "notes.md")], "notes.txt, exists and was not written", capsys)
    expect_exit_2(train_fp8.main, ["--device", "cpu", "--fp8", "off", "--max_steps", "3", "--no_save", "--csv",
                                   str(tmp_path / "t.txt"), "--profile", str(tmp_path / "t.md")],
                  "--csv and --profile (its operator table t.txt) name the same file", capsys)
    (tmp_path / "step-bf16.txt").write_text("mine")  # --compare profiles each run to its own file
    expect_exit_2(train_fp8.main, ["--device", "cpu", "--fp8", "rowwise", "--compare", "--max_steps", "3", "--no_save",
                                   "--csv", str(tmp_path / "t.csv"), "--profile", str(tmp_path / "step.md")],
                  "step-bf16.txt, exists and was not written by --profile", capsys)
    assert notes.read_text() == "my notes" and sorted(path.name for path in tmp_path.iterdir()) == [
        "notes.txt", "rows.png", "step-bf16.txt"]


def test_a_profile_written_before_is_replaced(tmp_path, capsys):
    (tmp_path / "p.txt").write_text(f"{profiling.RAW_TABLE_HEADER}\n\nan earlier table\n")
    (tmp_path / "p.md").write_text("# my notes\n")
    expect_exit_2(benchmark_image.main, ["--device", "cpu", "--csv", str(tmp_path / "r.csv"), "--profile",
                                         str(tmp_path / "p.md")], "p.md: it exists and was not written", capsys)
    (tmp_path / "p.md").write_text(f"# an earlier profile\n{profiling.SUMMARY_MARK}\n")
    config = benchmark_image.parse_config(["--device", "cpu", "--csv", str(tmp_path / "r.csv"), "--profile",
                                           str(tmp_path / "p.md")])
    assert config.profile == tmp_path / "p.md"


def test_train_replaces_saved_weights_only_with_overwrite(tmp_path, capsys, monkeypatch):
    lora = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(b"the user's LoRA")
    argv = ["--device", "cpu", "--fp8", "off", "--max_steps", "3", "--csv", str(tmp_path / "t.csv"),
            "--output_dir", str(lora.parent)]
    expect_exit_2(train_fp8.main, argv, "already holds pytorch_lora_weights.safetensors; pass --overwrite", capsys)
    expect_exit_2(train_fp8.main, [*argv, "--no_save", "--overwrite"], "not with --no_save", capsys)
    assert lora.read_bytes() == b"the user's LoRA"
    assert train_fp8.parse_config([*argv, "--overwrite"]).output_dir == lora.parent


def test_train_refuses_an_output_dir_that_is_a_file(tmp_path, capsys, no_model):
    target = tmp_path / "lora"
    target.write_text("mine")
    argv = ["--device", "cpu", "--fp8", "off", "--max_steps", "3", "--csv", str(tmp_path / "t.csv"),
            "--output_dir", str(target)]
    expect_exit_2(train_fp8.main, argv, "is a file; give a folder", capsys)
    assert target.read_text() == "mine"


def test_quantization_time_defaults_to_the_tiny_preset():
    assert quantization_time.build_parser().get_default("ckpt_id") == TINY


def user_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"_class_name": "FluxTransformer2DModel"}))
    (path / "important.txt").write_text("the user's")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(b"\x01\x02")
    return sorted(path.rglob("*"))


def test_save_overwrite_never_deletes_user_files(tmp_path, capsys, no_model):
    target = tmp_path / "model"
    before = user_folder(target)
    expect_exit_2(serialize.main, ["save", "--device", "cpu", "--output", str(target), "--overwrite"],
                  "not written by this tool", capsys)
    assert sorted(target.rglob("*")) == before


def test_measure_never_deletes_user_files_in_its_workdir(tmp_path, capsys, no_model):
    before = user_folder(tmp_path / "work" / "bf16")
    expect_exit_2(serialize.main, ["measure", "--device", "cpu", "--workdir", str(tmp_path / "work")],
                  "not written by this tool", capsys)
    assert sorted((tmp_path / "work" / "bf16").rglob("*")) == before


def test_aot_never_replaces_a_file_that_is_not_a_package(tmp_path, capsys, no_model):
    target = tmp_path / "mine.pt2"
    target.write_text("not a package")
    expect_exit_2(serialize.main, ["aot", "--device", "cpu", "--output", str(target)], "not an AOT package", capsys)
    assert target.read_text() == "not a package"


def test_aot_replaces_an_existing_package_only_with_overwrite(tmp_path, capsys, monkeypatch):
    target = tmp_path / "old.pt2"
    with zipfile.ZipFile(target, "w") as package:  # what an earlier `aot` wrote (a zip archive)
        package.writestr("old/data", "earlier package")
    before = target.read_bytes()
    expect_exit_2(serialize.main, ["aot", "--device", "cpu", "--output", str(target)], "pass --overwrite", capsys)
    assert target.read_bytes() == before
    monkeypatch.setitem(serialize.COMMANDS, "aot", lambda config: 0)  # the checks pass; no model is built here
    assert serialize.main(["aot", "--device", "cpu", "--output", str(target), "--overwrite"]) == 0


def test_save_overwrites_only_what_it_wrote(tmp_path):
    target = tmp_path / "model"
    argv = ["save", "--device", "cpu", "--output", str(target), "--quantization", "None"]
    assert serialize.main(argv) == 0
    assert serialize.main([*argv, "--overwrite"]) == 0  # our own folder: replaced
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]  # no partial or old folder left
    (target / "notes.txt").write_text("added by the user")
    with pytest.raises(SystemExit):
        serialize.main([*argv, "--overwrite"])
    assert (target / "notes.txt").read_text() == "added by the user"


def test_saved_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        argv = ["save", "--device", "cpu", "--output", str(tmp_path / "m"), "--quantization", "None"]
        assert serialize.main(argv) == 0
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "m").iterdir()}
    assert set(modes.values()) == {0o644}, modes
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755


def test_known_harmless_warnings_stay_out_of_a_run(tmp_path):
    result = subprocess.run([sys.executable, "inference/benchmark_image.py", "--device", "cpu", "--no_fidelity",
                             "--warmup", "1", "--runs", "1", "--csv", str(tmp_path / "r.csv")],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    for _, text in KNOWN_HARMLESS:
        assert text not in result.stderr, text
    assert "Traceback" not in result.stderr


def test_the_filter_keeps_other_warnings(caplog):
    from utils.logs import setup_logging

    setup_logging()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torchao").warning("Failed to load something")
        logging.getLogger("torchao").warning("a real problem")
    assert [record.getMessage() for record in caplog.records] == ["a real problem"]


TRAINING_INPUTS = {
    "NaN guidance": (["--guidance_scale", "nan"], "finite number"),
    "a side beyond the limit": (["--resolution", "65536"], "at most 8192"),
    "a prompt longer than T5 takes": (["--max_sequence_length", "100000"], "at most 512 tokens"),
    "a deeper copy than the model": (["--num_layers", "100000", "--weights", "random"], "shallower copy"),
    "a dataset too large to hold": (["--num_images", "1000000000"], "the training images alone"),
    "warm-up as long as the run, by default": (["--max_steps", "2"], "got 2 (its default)"),
}


@pytest.mark.parametrize("flags,message", TRAINING_INPUTS.values(), ids=TRAINING_INPUTS.keys())
def test_training_limits(flags, message, tmp_path, capsys, no_model):
    argv = ["--device", "cpu", "--csv", str(tmp_path / "t.csv"), "--output_dir", str(tmp_path / "lora"), *flags]
    expect_exit_2(train_fp8.main, argv, message, capsys)


def test_a_typed_warmup_is_not_called_the_default(tmp_path, capsys, no_model):
    argv = ["--device", "cpu", "--csv", str(tmp_path / "t.csv"), "--max_steps", "2", "--warmup_steps", "2"]
    expect_exit_2(train_fp8.main, argv, "--max_steps (2), got 2", capsys)
    with pytest.raises(SystemExit):
        train_fp8.main(argv)
    assert capsys.readouterr().err.strip().endswith("got 2")


def test_training_files_are_read_before_building(tmp_path, capsys, no_model):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.png").write_text("not an image")
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "pytorch_lora_weights.safetensors").write_bytes(b"junk")
    base = ["--device", "cpu", "--csv", str(tmp_path / "t.csv"), "--no_save"]
    expect_exit_2(train_fp8.main, [*base, "--dataset_dir", str(tmp_path / "data")], "not an image", capsys)
    expect_exit_2(train_fp8.main, [*base, "--resume_lora", str(tmp_path / "lora")], "safetensors", capsys)


def test_serialize_checks_its_regex_before_building(tmp_path, capsys, no_model):
    expect_exit_2(serialize.main, ["save", "--device", "cpu", "--output", str(tmp_path / "m"),
                                   "--quant_skip_pattern", "["], "not a valid regex", capsys)


def test_overwrite_keeps_a_folder_the_user_added(tmp_path, capsys):
    argv = ["save", "--device", "cpu", "--output", str(tmp_path / "m"), "--quantization", "None"]
    assert serialize.main(argv) == 0
    (tmp_path / "m" / "notes" / "sub").mkdir(parents=True)
    expect_exit_2(serialize.main, [*argv, "--overwrite"], "files or folders this tool did not write", capsys)
    assert (tmp_path / "m" / "notes" / "sub").is_dir()


def test_serialize_refuses_a_model_that_does_not_fit(monkeypatch, tmp_path, capsys, no_model):
    monkeypatch.setattr(cli, "available_GiB", lambda device: 1.0)
    argv = ["save", "--ckpt_id", "black-forest-labs/FLUX.1-dev", "--weights", "random", "--device", "cpu",
            "--output", str(tmp_path / "out")]
    expect_exit_2(serialize.main, argv, "needs about 31.4 GiB for its bf16 weights alone", capsys)
    assert list(tmp_path.iterdir()) == []
