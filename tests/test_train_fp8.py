"""training/train_fp8.py on the CPU with tiny-flux: float8 emulation, the loss, which layers are converted, the saved
LoRA's round trip into an inference pipeline, bad input and the CSV row."""

import csv
import importlib.util
import math
import re
import stat
import statistics
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT, TINY, expect_exit_2
from training import train_fp8
from utils import report
from utils.files import current_umask
from utils.pipelines import build_pipeline
from utils.results import TrainRow, columns_of, read_rows
from utils.training import data, float8, loop, lora, run

pytest.importorskip("peft")


def parse(tmp_path, *flags):
    output = [] if "--no_save" in flags else ["--output_dir", str(tmp_path / "lora")]
    return train_fp8.parse_config(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"),
                                   *output, *flags])


@pytest.fixture(scope="module")
def fixed_batch(tiny_pipe):
    """One synthetic image and its caption, cached as the script caches them: the fixed batch."""
    examples = data.make_synthetic_dataset(1, (64, 64), seed=0)
    return data.cache_data(tiny_pipe, examples, "cpu", max_sequence_length=32)


def fixed_loss(transformer, data) -> float:
    """The loss on fixed noise and timesteps, averaged over a few draws."""
    losses = []
    with torch.no_grad():
        for seed in range(4):
            generator = torch.Generator("cpu").manual_seed(1000 + seed)
            losses.append(loop.flow_matching_loss(transformer, data, [0], generator, "cpu").item())
    return statistics.mean(losses)


def read_csv(path):
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def test_compare_run_with_fp8_emulation(tmp_path, capsys):
    """bf16 then emulated rowwise float8 in one process: finite losses, two rows, the LoRA saved and reloaded."""
    plot = tmp_path / "loss.png"
    code = train_fp8.main(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"),
                           "--output_dir", str(tmp_path / "lora"), "--plot", str(plot), "--compare",
                           "--fp8", "rowwise", "--max_steps", "3", "--warmup_steps", "1", "--num_images", "2",
                           "--check_reload"])
    assert code == 0, capsys.readouterr().err
    header, rows = read_csv(tmp_path / "train.csv")
    assert header == columns_of(TrainRow)
    for column in ["timestamp", "git_sha", "command", "gpu", "torch_version", "diffusers_version", "torchao_version",
                   "peft_version", "weights", "method", "rank", "fp8", "fp8_emulate", "n_layers_fp8", "lr",
                   "resolution", "batch_size", "max_steps", "seed", "step_median_s", "step_min_s", "step_max_s",
                   "images_per_s", "peak_memory_GiB", "loss_first", "loss_last", "losses", "status"]:
        assert column in header, column
    assert [row["fp8"] for row in rows] == ["off", "rowwise"]
    bf16, fp8 = rows
    assert bf16["fp8_emulate"] == "False" and fp8["fp8_emulate"] == "True"
    assert bf16["n_layers_fp8"] == "0" and int(fp8["n_layers_fp8"]) > 0
    for row in rows:
        assert row["status"] == "ok" and row["weights"] == "random" and row["method"] == "lora"
        assert row["command"].startswith("python training/train_fp8.py ")
        losses = [float(loss) for loss in row["losses"].split()]
        assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
        assert float(row["step_min_s"]) <= float(row["step_median_s"]) <= float(row["step_max_s"])
        assert float(row["images_per_s"]) == pytest.approx(1 / float(row["step_median_s"]), rel=1e-3)
        assert row["peak_memory_GiB"] == ""  # CUDA only
    # Same seed and data: float8 only perturbs the first loss (the LoRA starts at zero, so the models are equal).
    assert float(fp8["loss_first"]) == pytest.approx(float(bf16["loss_first"]), rel=0.05)
    # Only the chosen recipe's LoRA is saved; it reloads into a fresh pipeline with the same output.
    assert bf16["saved_to"] == "" and fp8["saved_to"].endswith("pytorch_lora_weights.safetensors")
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert float(fp8["reload_max_abs_diff"]) == 0
    assert plot.stat().st_size > 0
    assert report.main([str(tmp_path / "train.csv")]) == 0
    table = (tmp_path / "train.md").read_text()
    assert re.search(r"\|\s*rowwise \(emulated\)\s*\|", table) and "wall clock on a CPU" in table


@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise"])
def test_converted_layers(recipe, tmp_path):
    from torchao.float8.float8_linear import Float8Linear

    config = parse(tmp_path, "--fp8", recipe)
    transformer = run.load_transformer(config)
    linear_names = {name for name, module in transformer.named_modules() if isinstance(module, torch.nn.Linear)}
    count = float8.convert_to_fp8(transformer, recipe, "cpu")
    converted = {name for name, module in transformer.named_modules() if isinstance(module, Float8Linear)}
    per_image = {name for name in linear_names if name.startswith("time_text_embed.") or ".linear" in name}
    assert {"norm_out.linear", "transformer_blocks.0.norm1.linear", "transformer_blocks.0.norm1_context.linear",
            "single_transformer_blocks.0.norm.linear", "time_text_embed.timestep_embedder.linear_1"} <= per_image
    # tiny-flux has only multiple-of-16 sizes, so everything else is converted
    assert converted == linear_names - {"proj_out"} - per_image
    assert count == len(converted)
    assert "single_transformer_blocks.0.proj_out" in converted  # only the final projection is kept in bf16
    assert all(module.config.emulate for name, module in transformer.named_modules() if name in converted)
    # LoRA adapters added afterwards stay plain Linear layers on float8 base layers.
    lora.add_lora(transformer, rank=4, seed=0)
    query = transformer.transformer_blocks[0].attn.to_q
    assert isinstance(query.base_layer, Float8Linear)
    assert type(query.lora_A["default"]) is torch.nn.Linear and type(query.lora_B["default"]) is torch.nn.Linear


def test_filter_skips_sizes_not_multiples_of_16():
    model = torch.nn.ModuleDict({"odd_in": torch.nn.Linear(10, 32), "odd_out": torch.nn.Linear(32, 24),
                                 "ok": torch.nn.Linear(32, 48), "proj_out": torch.nn.Linear(32, 16)})
    assert float8.convert_to_fp8(model, "rowwise", "cpu") == 1
    assert [name for name, module in model.items() if type(module) is not torch.nn.Linear] == ["ok"]
    assert float8.convert_to_fp8(torch.nn.Linear(32, 32), "off", "cpu") == 0


def test_emulation_on_the_cpu():
    assert float8.needs_fp8_emulation("cpu")
    for recipe, granularity in [("tensorwise", "TENSORWISE"), ("rowwise", "AXISWISE")]:
        config = float8.fp8_config(recipe, "cpu")
        assert config.emulate and config.cast_config_input.scaling_granularity.name == granularity


@pytest.mark.parametrize("flags", [["--lr", "2e-2"], ["--full_finetune", "--lr", "3e-3"]], ids=["lora", "full"])
def test_loss_falls_on_a_fixed_batch(flags, fixed_batch, tmp_path):
    config = parse(tmp_path, "--fp8", "rowwise", "--max_steps", "20", "--no_save", *flags)
    transformer = run.load_transformer(config)
    before = fixed_loss(transformer, fixed_batch)
    row = run.new_row(config, "rowwise")
    result = loop.TrainResult([], [])
    run.run_once(config, "rowwise", transformer, fixed_batch, row, result)
    after = fixed_loss(transformer, fixed_batch)
    assert row.status == "ok" and all(math.isfinite(loss) for loss in result.losses)
    assert statistics.mean(result.losses[-5:]) < statistics.mean(result.losses[:5])
    assert after < 0.9 * before, (before, after)


def test_saved_lora_reloads_into_a_fresh_pipeline(fixed_batch, tmp_path):
    config = parse(tmp_path, "--fp8", "off", "--max_steps", "4", "--warmup_steps", "0", "--lr", "1e-2")
    transformer = run.load_transformer(config)
    lora.add_lora(transformer, config.rank, config.seed)
    params = loop.prepare_for_training(transformer, config)
    loop.train(transformer, params, fixed_batch, config, loop.TrainResult([], []))
    transformer.eval()
    trained = loop.predict(transformer, fixed_batch, [0], seed=7, device="cpu")
    path = lora.save_lora(transformer, config.output_dir)
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()  # not safetensors' 0600

    pipe = build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=config.seed)
    base = loop.predict(pipe.transformer, fixed_batch, [0], seed=7, device="cpu")
    pipe.load_lora_weights(config.output_dir)
    reloaded = loop.predict(pipe.transformer, fixed_batch, [0], seed=7, device="cpu")
    assert not torch.equal(base, trained)  # training changed the output, so the comparison means something
    assert torch.equal(reloaded, trained)
    image = pipe("a red circle", num_inference_steps=1, height=64, width=64, max_sequence_length=32,
                 generator=torch.Generator("cpu").manual_seed(0), output_type="np").images[0]
    assert image.shape == (64, 64, 3) and torch.isfinite(torch.from_numpy(image)).all()

    # The training-side resume path (diffusers' convert_unet_state_dict_to_peft) restores the same LoRA.
    from peft.utils import get_peft_model_state_dict

    resumed = run.load_transformer(config)
    lora.add_lora(resumed, config.rank, seed=123)
    lora.load_lora_into(resumed, config.output_dir)
    expected = get_peft_model_state_dict(transformer)
    actual = get_peft_model_state_dict(resumed)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(actual[key], expected[key].to(torch.bfloat16)) for key in expected)

    # Resuming takes the file's rank; another --rank is refused before anything is built.
    assert lora.saved_rank(path) == config.rank
    resume = ["--resume_lora", str(config.output_dir)]
    assert parse(tmp_path / "again", *resume).rank == config.rank
    with pytest.raises(SystemExit) as stopped:
        parse(tmp_path / "again", *resume, "--rank", "4")
    assert stopped.value.code == 2


def test_image_folder_captions(tmp_path):
    from PIL import Image

    for name, size in [("a", (80, 64)), ("b", (64, 100))]:
        Image.new("RGB", size, (200, 30, 30)).save(tmp_path / f"{name}.png")
    (tmp_path / "a.txt").write_text("a red square\n")
    examples = data.load_image_folder(tmp_path, (32, 32), "a photo of sks object")
    assert [caption for _, caption in examples] == ["a red square", "a photo of sks object"]
    assert all(image.size == (32, 32) for image, _ in examples)


def test_synthetic_dataset_is_seeded():
    first, second = (data.make_synthetic_dataset(3, (48, 32), seed=5) for _ in range(2))
    assert first[0][0].size == (48, 32)
    assert [caption for _, caption in first] == [caption for _, caption in second]
    assert all(image.tobytes() == other.tobytes() for (image, _), (other, _) in zip(first, second))


BAD_INPUTS = {
    "resolution not a multiple of 16": (["--resolution", "100"], "multiples of 16"),
    "resolution not WxH": (["--resolution", "64x"], "WIDTHxHEIGHT"),
    "CUDA attention kernel on the CPU": (["--attention_backend", "_native_flash"], "is a CUDA kernel"),
    "rank 0": (["--rank", "0"], "must be >= 1"),
    "zero steps": (["--max_steps", "0"], "must be >= 1"),
    "batch size 0": (["--batch_size", "0"], "must be >= 1"),
    "warmup not below steps": (["--max_steps", "2", "--warmup_steps", "2"], "--warmup_steps"),
    "negative lr": (["--lr", "-1"], "--lr must be a positive"),
    "unknown recipe": (["--fp8", "mxfp8"], "invalid choice"),
    "compare without fp8": (["--compare", "--fp8", "off"], "--compare"),
    "missing dataset": (["--dataset_dir", "/nonexistent/images"], "not a directory"),
    "resume without file": (["--resume_lora", "/nonexistent/lora"], "no pytorch_lora_weights"),
    "reload check with full finetune": (["--full_finetune", "--check_reload"], "not --full_finetune"),
    "LoRA rank with full finetune": (["--full_finetune", "--rank", "8"], "--full_finetune trains every weight"),
    "default LoRA rank, given, with full finetune": (["--full_finetune", "--rank", "16"], "trains every weight"),
    "reload check without saving": (["--no_save", "--check_reload"], "not with --no_save"),
    "not a flux model": (["--ckpt_id", "tiny-cogvideox"], "not a FLUX.1 model"),
    "FLUX.2 is not trained": (["--ckpt_id", "tiny-flux2"], "not a FLUX.1 model"),
    "unknown model, random weights": (["--ckpt_id", "acme/unknown", "--weights", "random"], "presets: "),
    "test preset, pretrained weights": (["--weights", "pretrained"], "test-only preset"),
    "unknown device": (["--device", "tpu9"], "not a torch device"),
}


@pytest.mark.parametrize("flags,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line(flags, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "build_pipeline", lambda *args, **kwargs: pytest.fail("a model was built"))
    argv = ["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"),
            "--output_dir", str(tmp_path / "lora"), *flags]
    expect_exit_2(train_fp8.main, argv, message, capsys)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_8bit_adam_needs_bitsandbytes(tmp_path, capsys):
    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(SystemExit) as exit_info:
        parse(tmp_path, "--use_8bit_adam")
    assert exit_info.value.code == 2 and "bitsandbytes" in capsys.readouterr().err


def test_help_explains_every_flag():
    result = subprocess.run([sys.executable, "training/train_fp8.py", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    for action in train_fp8.build_parser()._actions:
        assert action.help, action.option_strings
        assert action.option_strings[0] in result.stdout


def test_readme_lists_every_flag():
    readme = (REPO_ROOT / "training" / "README.md").read_text()
    for action in train_fp8.build_parser()._actions:
        if action.option_strings[0] != "-h":
            assert f"`{action.option_strings[0]}" in readme, action.option_strings[0]


def test_profile_writes_one_summary_per_run(tmp_path):
    argv = ["--compare", "--max_steps", "2", "--warmup_steps", "1", "--no_save", "--csv", str(tmp_path / "rows.csv"),
            "--profile", str(tmp_path / "step.md")]
    assert train_fp8.main(argv) == 0
    written = sorted(path.name for path in tmp_path.glob("step-*.md"))
    assert written == ["step-bf16.md", "step-fp8-rowwise-emulated.md"]
    assert "| gemm |" in (tmp_path / "step-bf16.md").read_text()


def test_profile_of_one_run_goes_to_the_named_file(tmp_path):
    argv = ["--max_steps", "2", "--warmup_steps", "1", "--no_save", "--csv", str(tmp_path / "rows.csv"),
            "--profile", str(tmp_path / "step.md")]
    assert train_fp8.main(argv) == 0
    assert sorted(path.name for path in tmp_path.glob("step*")) == ["step.md", "step.txt"]  # summary, raw table


def test_ctrl_c_records_the_run_in_progress_with_its_finished_steps(tmp_path, monkeypatch):
    """Ctrl-C in the first run of --compare, during step 5 of 8: that row is interrupted with four steps' times and
    losses, nothing is saved, the second run never starts (no row), and the script exits with 130."""
    import os
    import signal
    import time

    real, calls = loop.time_call_s, []

    def fifth_step_interrupted(call, device):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        return real(call, device)

    monkeypatch.setattr(loop, "time_call_s", fifth_step_interrupted)
    code = train_fp8.main(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"),
                           "--output_dir", str(tmp_path / "lora"), "--compare", "--fp8", "rowwise",
                           "--max_steps", "8", "--warmup_steps", "1", "--num_images", "2"])
    assert code == 130
    _, rows = read_csv(tmp_path / "train.csv")
    [row] = rows
    assert row["status"] == "interrupted" and row["fp8"] == "off" and "after 4 of 8 steps" in row["error"]
    assert len(row["losses"].split()) == 4 and float(row["step_median_s"]) > 0 and not row["saved_to"]
    assert not (tmp_path / "lora").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after the run


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallow itself
def test_a_stop_swallowed_during_a_step_stops_the_run_after_that_step(tmp_path, monkeypatch):
    """A Ctrl-C lost in a weakref callback (torch.compile's) during step 3 of 8 of --compare's first run: that run
    stops after step 3 and the second never starts."""
    from tests.conftest import lose_a_stop_in_call

    lose_a_stop_in_call(monkeypatch, loop, 3)
    code = train_fp8.main(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"), "--no_save",
                           "--compare", "--max_steps", "8", "--warmup_steps", "1", "--num_images", "2"])
    assert code == 130
    _, rows = read_csv(tmp_path / "train.csv")
    [row] = rows
    assert row["status"] == "interrupted" and "after 3 of 8 steps" in row["error"]


def test_ctrl_c_while_a_row_is_written_records_it_once_and_starts_nothing(tmp_path, monkeypatch):
    """Ctrl-C while the first run of --compare prints its row: that row is written once (ok), the second run does
    not start, and the script still exits with 130."""
    import os
    import signal

    real = train_fp8.render_summary

    def interrupted_while_printing(row):
        os.kill(os.getpid(), signal.SIGINT)
        return real(row)

    monkeypatch.setattr(train_fp8, "render_summary", interrupted_while_printing)
    code = train_fp8.main(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "train.csv"),
                           "--compare", "--fp8", "rowwise",
                           "--max_steps", "3", "--warmup_steps", "1", "--num_images", "2", "--no_save"])
    assert code == 130
    _, rows = read_csv(tmp_path / "train.csv")
    assert [(row["fp8"], row["status"]) for row in rows] == [("off", "ok")]


def test_saved_rank_is_the_transformers(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "pytorch_lora_weights.safetensors"
    save_file({"text_encoder.layer.lora_A.weight": torch.zeros(4, 8),  # sorts first, another rank
               "transformer.blocks.0.attn.to_q.lora.down.weight": torch.zeros(8, 32),
               "transformer.blocks.0.attn.to_q.lora.up.weight": torch.zeros(32, 8)}, str(path))
    assert lora.saved_rank(path) == 8


def test_ctrl_c_while_plotting_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    import os
    import signal
    import time

    def interrupted_plot(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises before this ends

    monkeypatch.setattr(train_fp8, "plot_losses", interrupted_plot)
    argv = ["--max_steps", "2", "--warmup_steps", "1", "--no_save", "--csv", str(tmp_path / "rows.csv"),
            "--plot", str(tmp_path / "loss.png")]
    assert train_fp8.main(argv) == 130
    assert "while plotting" in capsys.readouterr().err and not (tmp_path / "loss.png").exists()
    assert read_rows(tmp_path / "rows.csv").status.tolist() == ["ok"]  # the finished run's row is kept
