"""End-to-end runs of inference/benchmark_image.py on tiny-flux (CPU)."""

import copy
import math
import os
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from inference import benchmark_image
from tests.conftest import lose_a_stop_in_call, signal_swallowed_by_a_weakref_callback
from utils import fidelity, timing
from utils.errors import Stopped
from utils.files import atomic_path
from utils.levers import compilation, fusion
from utils.results import COLUMNS, read_rows


def run(argv):
    return benchmark_image.main(argv)


def rows(tmp_path):
    return read_rows(tmp_path / "results.csv")


def test_default_run_appends_an_ok_row_with_the_schema(run_args, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BENCH_CAMPAIGN", raising=False)
    image_path = tmp_path / "sample.png"
    assert run([*run_args, "--save_image", str(image_path)]) == 0
    frame = rows(tmp_path)
    assert list(frame.columns) == COLUMNS and len(frame) == 1
    row = frame.iloc[0]
    assert (row.status, row.weights, row.quantization, row.model) == ("ok", "random", "None", "tiny-flux")
    assert (row.height, row.width, row.num_inference_steps) == (64, 64, 2)  # preset defaults
    assert row.time_min_s <= row.time_median_s <= row.time_max_s
    assert math.isinf(row.psnr_db) and row.latent_rel_l2 == 0  # bf16 eager is its own reference
    assert "benchmark_image.py" in row.command and row.torch_version == torch.__version__
    assert Image.open(image_path).size == (64, 64)
    out = capsys.readouterr().out
    assert "| tiny-flux" in out  # the row, printed as markdown
    assert f"This run is its own campaign ({row.campaign})" in out  # a run alone gets no speedup: say why


def test_a_run_inside_a_campaign_prints_no_campaign_hint(run_args, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CAMPAIGN", "20261207T000000Z-0000")
    assert run(run_args) == 0
    assert "own campaign" not in capsys.readouterr().out


def test_quantized_run_reuses_the_cached_reference_and_stays_close(run_args, tmp_path):
    assert run(run_args) == 0
    references = sorted((tmp_path / "references").iterdir())
    assert len(references) == 1
    assert run([*run_args, "--quantization", "int8wo", "--quantize_text_encoders", "--quantize_vae",
                "--fuse_attn_projections", "--batch_size", "2"]) == 0
    assert run([*run_args, "--quantization", "int8wo"]) == 0
    assert len(list((tmp_path / "references").iterdir())) == 2  # one more for batch size 2, none for the rerun
    quantized = rows(tmp_path).iloc[2]
    assert quantized.status == "ok" and quantized.n_layers_quantized > 0
    assert 25 < quantized.psnr_db < math.inf and 0 < quantized.latent_rel_l2 < 0.05


def test_regional_compile_runs_on_the_cpu(run_args, tmp_path):
    assert run([*run_args, "--quantization", "int8wo", "--regional_compile", "--compile_mode", "default"]) == 0
    row = rows(tmp_path).iloc[0]
    assert row.compile and row.regional_compile and row.compile_mode == "default"
    assert row.status == "ok" and row.compile_s > 0 and row.psnr_db > 25
    assert row.compile_start in ("cold", "shared") and row.campaign and row.host  # how its caches started
    # where the compile time went: tracing, then the backend, which includes waiting for the kernels
    assert 0 < row.compile_trace_s and 0 <= row.compile_kernel_wait_s <= row.compile_backend_s


def test_compiled_quantized_text_encoders_run_on_the_cpu(run_args, tmp_path):
    assert run([*run_args, "--quantization", "int8wo", "--quantize_text_encoders", "--compile_text_encoders"]) == 0
    row = rows(tmp_path).iloc[0]
    assert row.status == "ok" and row.compile_text_encoders and row.compile_mode == "default"
    assert row.psnr_db > 25


def test_text_encoders_compile_layer_by_layer():
    from utils.pipelines import build_pipeline

    pipe = build_pipeline("tiny-flux", "random", "cpu", torch.bfloat16, seed=0)
    compilation.compile_text_encoders(pipe, "default")
    for encoder, layer_list in [(pipe.text_encoder, "encoder.layers"), (pipe.text_encoder_2, "encoder.block")]:
        compiled = {name for name, module in encoder.named_modules() if module._compiled_call_impl is not None}
        layers = encoder.get_submodule(layer_list)
        assert compiled == {f"{layer_list}.{i}" for i in range(len(layers))} and len(layers) > 1


def test_encoder_layers_are_the_outermost_lists_of_one_class():
    layer = torch.nn.Sequential(torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]))
    model = torch.nn.Sequential(torch.nn.ModuleList([layer, copy.deepcopy(layer)]),
                                torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.ReLU()]))
    assert compilation.encoder_layers(model) == list(model[0])


def test_a_failing_run_still_records_its_row(run_args, tmp_path, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(fusion, "fuse_qkv", explode)
    assert run([*run_args, "--fuse_attn_projections"]) == 1
    row = rows(tmp_path).iloc[0]
    assert row.status == "error" and row.error == "RuntimeError: boom second line"
    assert math.isnan(row.time_median_s)


def test_nan_output_is_marked(run_args, tmp_path, monkeypatch):
    def poison(pipe):
        for parameter in pipe.transformer.proj_out.parameters():
            parameter.data.fill_(float("nan"))

    monkeypatch.setattr(fusion, "vae_channels_last", poison)
    assert run([*run_args, "--channels_last"]) == 1
    assert rows(tmp_path).iloc[0].status == "nan"


def test_out_of_memory_is_marked(run_args, tmp_path, monkeypatch):
    def oom(*_args, **_kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fusion, "vae_channels_last", oom)
    assert run([*run_args, "--channels_last"]) == 1
    assert rows(tmp_path).iloc[0].status == "oom"


@pytest.mark.parametrize("batch_size", [1, 3])
def test_batch_sizes(run_args, tmp_path, batch_size):
    image_path = tmp_path / "sample.png"
    assert run([*run_args, "--batch_size", str(batch_size), "--height", "32", "--width", "48",
                "--save_image", str(image_path)]) == 0
    assert np.asarray(Image.open(image_path)).shape == (32, 48, 3)
    assert rows(tmp_path).iloc[0].batch_size == batch_size


def test_compile_cache_cold_then_warm(run_args, tmp_path):
    cache = tmp_path / "compile.bin"
    flags = [*run_args, "--regional_compile", "--compile_mode", "default", "--compile_cache", str(cache)]
    assert run(flags) == 0 and cache.stat().st_size > 0
    assert run(flags) == 0
    assert list(rows(tmp_path).compile_cache) == ["cold", "warm"]


def test_attention_backend_is_applied_and_recorded(run_args, tmp_path):
    assert run([*run_args, "--attention_backend", "_native_math"]) == 0
    row = rows(tmp_path).iloc[0]
    assert row.attention_backend == "_native_math" and row.psnr_db > 40


def test_a_failed_sample_write_is_an_error_row(run_args, tmp_path, monkeypatch):
    def disk_full(image, path):
        with atomic_path(path) as partial:
            partial.write_bytes(b"half")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(benchmark_image, "save_image", disk_full)
    assert run([*run_args, "--save_image", str(tmp_path / "sample.png")]) == 1
    row = rows(tmp_path).iloc[0]
    assert row.status == "error" and "No space left" in row.error and not (tmp_path / "sample.png").exists()
    assert [path.name for path in tmp_path.iterdir() if "partial" in path.name] == []


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("signum, status, code", [(signal.SIGUSR1, "timeout", 1), (signal.SIGTERM, "interrupted", 130),
                                                  (signal.SIGINT, "interrupted", 130)])
def test_a_stopped_run_after_timing_keeps_its_times(run_args, tmp_path, monkeypatch, signum, status, code, wrapped):
    """The sweep stops a configuration with SIGUSR1 (out of time) or SIGTERM (the sweep stopped), a user with Ctrl-C
    (SIGINT): here the signal comes during the fidelity comparison, after the timed runs, and the row keeps their
    times, also when the stop reaches the run wrapped in another exception (as torch.compile wraps what its backend
    raises). An interrupted run exits with 130, as a shell reports Ctrl-C."""
    def stopped_during_fidelity(output, reference):
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler raises before this ends
        except Stopped as stopped:
            if wrapped:
                raise RuntimeError("the backend failed") from stopped
            raise
        raise AssertionError("the stop signal did not interrupt the run")

    monkeypatch.setattr(fidelity, "compare", stopped_during_fidelity)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    assert run(run_args) == code
    [row] = rows(tmp_path).itertuples()
    assert row.status == status and row.time_median_s > 0 and math.isnan(row.psnr_db)
    assert row.error.startswith(f"Stopped: {signal.Signals(signum).name} ({status}") and "times are kept" in row.error
    assert {number: signal.getsignal(number) for number in handlers} == handlers  # put back after the run


def test_a_run_stopped_during_its_timed_calls_keeps_those_it_finished(run_args, tmp_path, monkeypatch):
    """Ctrl-C during the third of five timed calls: the row is interrupted and holds the two finished calls."""
    calls = []
    real = timing.time_call_s

    def third_timed_call_interrupted(call, device):
        calls.append(1)
        if len(calls) == 4:  # one warm-up call, then the timed ones
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        return real(call, device)

    monkeypatch.setattr(timing, "time_call_s", third_timed_call_interrupted)
    assert run([*run_args, "--runs", "5"]) == 130
    [row] = rows(tmp_path).itertuples()
    assert row.status == "interrupted" and row.time_min_s <= row.time_median_s <= row.time_max_s
    assert "after 2 of 5 timed runs" in row.error and math.isnan(row.psnr_db)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallow itself
def test_a_stop_swallowed_during_warm_up_stops_the_run_after_that_call(run_args, tmp_path, monkeypatch):
    calls = lose_a_stop_in_call(monkeypatch, timing, 1)
    assert run([*run_args, "--runs", "3"]) == 130
    [row] = rows(tmp_path).itertuples()
    assert len(calls) == 1 and row.status == "interrupted" and math.isnan(row.time_median_s)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallow itself
def test_a_stop_swallowed_after_the_timed_calls_is_recorded_with_every_column(run_args, tmp_path, monkeypatch):
    real = fidelity.compare

    def compare_swallows_the_stop(output, reference):
        signal_swallowed_by_a_weakref_callback()
        return real(output, reference)

    monkeypatch.setattr(fidelity, "compare", compare_swallows_the_stop)
    assert run(run_args) == 130
    [row] = rows(tmp_path).itertuples()
    assert row.status == "interrupted" and row.time_median_s > 0 and not math.isnan(row.psnr_db)
    assert "went on to its end: every column is kept" in row.error and "times are kept" not in row.error


def test_an_unreadable_cached_reference_is_made_again(tmp_path, caplog):
    for name, content in (("empty", b""), ("garbage", b"not a torch file")):
        (tmp_path / f"{name}.pt").write_bytes(content)
        assert fidelity.load_reference(tmp_path, name) is None
        assert f"{name}.pt: cannot read this cached reference" in caplog.text
    output = fidelity.Output(images=np.zeros((1, 2, 2, 3), dtype=np.uint8), latents=torch.ones(2))
    fidelity.save_reference(tmp_path, "garbage", output, {})  # replaced whole
    assert torch.equal(fidelity.load_reference(tmp_path, "garbage").latents, output.latents)
