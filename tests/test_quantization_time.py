"""inference/quantization_time.py on tiny-flux (CPU): one row per way, the schema, really quantized layers, and
one-line errors that write nothing."""

import subprocess
import sys
from dataclasses import fields

import pytest
import torch

from inference import quantization_time
from tests.conftest import REPO_ROOT, TINY, expect_exit_2
from utils import report
from utils.pipelines import build_transformer
from utils.quant import QUANTIZATIONS, count_quantized_linears
from utils.quantization_time import METHODS, SEED_MODEL, WAYS
from utils.results import QuantTimeRow, read_rows

COLUMNS = [field.name for field in fields(QuantTimeRow)]


@pytest.fixture(scope="module")
def all_ways(tmp_path_factory):
    """One `--method all` run: three subprocesses, one per way (each given the flags less --timeout_s, which only the
    parent takes)."""
    csv_path = tmp_path_factory.mktemp("quantization-time") / "quantization-time.csv"
    # run from the CSV's folder with a relative --csv: the subprocesses must append to the same file
    result = subprocess.run([sys.executable, str(REPO_ROOT / "inference/quantization_time.py"), "--ckpt_id", TINY,
                             "--device", "cpu", "--timeo=100", "--csv", csv_path.name],
                            cwd=csv_path.parent, capture_output=True, text=True, timeout=120)
    assert not (REPO_ROOT / csv_path.name).exists()
    return result, csv_path


def test_all_ways_append_one_ok_row_each(all_ways):
    result, csv_path = all_ways
    assert result.returncode == 0, result.stderr[-2000:]
    assert csv_path.read_text().splitlines()[0] == ",".join(COLUMNS)
    frame = read_rows(csv_path)
    assert list(frame.method) == list(METHODS)
    for row in frame.itertuples():
        assert (row.status, row.model, row.weights, row.device, row.quantization) == (
            "ok", TINY, "random", "cpu", "int8wo")
        assert row.n_layers_quantized > 0 and row.seconds > 0 and row.build_s > 0
        assert row.peak_GiB != row.peak_GiB  # NaN: no GPU memory on the CPU
        assert row.torch_version == torch.__version__ and f"--method {row.method}" in row.command
    assert len(set(frame.n_layers_quantized)) == 1  # the same layers, whichever way
    assert frame.campaign.nunique() == 1  # one run, one campaign
    assert "peak None" not in result.stdout


def test_markdown_is_rendered_next_to_the_csv_with_the_seed_apart(all_ways):
    _, csv_path = all_ways
    text = csv_path.with_suffix(".md").read_text()
    assert "seed's s" in text and "seed's peak GiB" in text and "(c) quantize_" in text
    assert "10.48" not in text  # the seed's figures only sit beside FLUX.1-dev int8wo rows
    row = QuantTimeRow(model=SEED_MODEL, quantization="int8wo", method="per_layer", seconds=1.0)
    flux_csv = csv_path.parent / "flux.csv"
    from utils.results import append_row

    append_row(flux_csv, row)
    assert "8.29" in report.render_file(flux_csv).read_text()


@pytest.mark.parametrize("method", list(METHODS))
def test_each_way_leaves_torchao_weights_on_the_device(method):
    model = build_transformer(TINY, "random", "cpu", torch.bfloat16, seed=0)
    WAYS[method](model, "int8dq", "cpu")
    linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
    quantized = [module for module in linears if type(module.weight).__module__.startswith("torchao")]
    assert quantized and len(quantized) == count_quantized_linears(model)
    assert {type(module.weight).__name__ for module in quantized} == {"Int8Tensor"}
    assert len(quantized) == len(linears)  # as the benchmarks quantize: the per-image layers get int8 weight-only
    dynamic = [getattr(module.weight, "act_quant_kwargs", None) is not None for module in quantized]
    assert any(dynamic) and not all(dynamic)
    assert {parameter.device.type for parameter in model.parameters()} == {"cpu"}


def test_the_per_layer_way_hands_the_device_to_both_quantization_passes(monkeypatch):
    import torchao.quantization

    devices = []
    real = torchao.quantization.quantize_
    monkeypatch.setattr(torchao.quantization, "quantize_",
                        lambda *args, device=None, **kwargs: devices.append(device) or real(*args, **kwargs))
    WAYS["per_layer"](build_transformer(TINY, "random", "cpu", torch.bfloat16, seed=0), "int8dq", "cpu")
    assert devices == ["cpu", "cpu"]


BAD_INPUTS = {
    "unknown model": (["--ckpt_id", "acme/unknown"], "unknown model"),
    "removed quantization": (["--quantization", "fp6_e3m2"], "removed the fpx"),
    "None is not a quantization": (["--quantization", "None"], "invalid choice"),
    "cuda-only quantization on the cpu": (["--quantization", "int4wo"], "runs only on CUDA"),
    "unknown way": (["--method", "teleport"], "invalid choice"),
    "test preset, pretrained weights": (["--weights", "pretrained"], "test-only preset"),
    "csv without .csv": (["--csv", "out.txt"], "must name a .csv"),
    "a timeout for one way, run in this process": (["--method", "per_layer", "--timeout_s", "1800"],
                                                    "limits the subprocesses of --method all"),
}


@pytest.mark.parametrize("flags,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line_and_writes_nothing(flags, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "q.csv"), *flags]
    expect_exit_2(quantization_time.main, argv, message, capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_method_without_one_config_is_refused(tmp_path, capsys):
    """Registry names that choose a config per layer (autoquant, ours) cannot be timed as one quantize_ call."""
    names = [method.name for method in QUANTIZATIONS.values()
             if method.name != "None" and method.make_config is None and not method.removed]
    if not names:
        pytest.skip("every registry name maps to one config")
    argv = ["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "q.csv"), "--quantization", names[0]]
    expect_exit_2(quantization_time.main, argv, "one config applied to every layer", capsys)
    assert list(tmp_path.iterdir()) == []


def test_cuda_requested_without_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        quantization_time.main(["--ckpt_id", TINY, "--device", "cuda", "--csv", str(tmp_path / "q.csv")])
    assert exit_info.value.code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_explains_every_flag():
    for action in quantization_time.build_parser()._actions:
        assert action.help, action.option_strings


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM", "SIGUSR1"])
def test_a_stop_keeps_the_finished_ways_and_records_the_running_one(tmp_path, signum):
    """Ctrl-C (SIGINT), or a sweep's SIGTERM (stopped) or SIGUSR1 (out of time), while the second way runs: the
    first way's row stays, the second is recorded with the stop's status (by itself, or by the parent if it had no
    handler yet), the third never starts, and the script exits with 130 after one line, no traceback."""
    import os
    import signal
    import time

    from utils.errors import STOP_SIGNALS

    number = signal.Signals[signum]
    csv_path = tmp_path / "q.csv"
    process = subprocess.Popen([sys.executable, "inference/quantization_time.py", "--ckpt_id", TINY, "--device",
                                "cpu", "--csv", str(csv_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    second = f"=== {list(METHODS)[1]}"
    seen = []
    while not seen or not seen[-1].startswith(second):
        seen.append(process.stdout.readline())
        assert seen[-1], "the second way never started"
    time.sleep(0.5)  # its process is starting or building its model
    os.killpg(process.pid, number)  # the parent's group only: each way runs in a session of its own
    out, err = process.communicate(timeout=60)
    out = "".join(seen) + out
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and f"stopped ({signum} ({STOP_SIGNALS[number]}" in out
    frame = read_rows(csv_path)
    assert list(frame.method) == list(METHODS)[:2] and list(frame.status) == ["ok", STOP_SIGNALS[number]]
    assert f"--ckpt_id {TINY} --device cpu" in frame.command.iloc[1]  # whoever wrote the row


def test_a_row_written_for_a_dead_way_records_its_whole_command(tmp_path):
    config = quantization_time.parse_config(["--ckpt_id", TINY, "--device", "cpu", "--csv", str(tmp_path / "q.csv")])
    command = [sys.executable, str(REPO_ROOT / "inference/quantization_time.py"), "--ckpt_id", TINY, "--method",
               "per_layer"]
    row = quantization_time.failure_row(config, "per_layer", command, "timeout", "stopped after 1 s")
    assert row.command == f"python inference/quantization_time.py --ckpt_id {TINY} --method per_layer"
