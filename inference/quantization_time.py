"""How long quantizing a transformer takes, and how much GPU memory it needs on the way, for three ways of getting a
bf16 model that sits on the CPU into quantized form on the GPU:

  cpu_then_move       quantize on the CPU, then move the quantized model to the GPU
  move_then_quantize  move the whole bf16 model to the GPU, then quantize it there
  per_layer           torchao's quantize_(model, config, device=...): each Linear is moved to the GPU just before it
                      is quantized, so at most one bf16 Linear (plus one block's small non-Linear parameters) is on the
                      GPU beside the layers already quantized

    python inference/quantization_time.py --ckpt_id black-forest-labs/FLUX.1-dev --quantization int8wo
    python inference/quantization_time.py --ckpt_id tiny-flux --device cpu      # the plumbing, on the CPU

The transformer is the pipeline's `transformer`; for Wan2.2-T2V-A14B, which has two, that is the high-noise expert
(the second, `transformer_2`, has the same architecture and would take the same time).

Every way runs in its own process, so each starts with empty CUDA memory and a zeroed peak counter. The model is
built on the CPU (random weights from the kept configs, or the checkpoint's) before the clock starts; the clock covers
the quantize and move calls only, with CUDA synchronized before it is read, and CUDA is initialized before it starts.
Each way appends one row to a CSV (default results/quantization-time.csv); the markdown table next to it
(same name, .md) is rendered from the whole CSV, with the seed's published figures in their own column.

On the CPU (--device cpu) there is nothing to move: the three ways all quantize in host memory and differ only in
how quantize_ is called, and the peak-GPU-memory column stays empty. Those rows check the plumbing; they are not a
comparison.
"""

import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)
from utils.campaign import CAMPAIGN_ENV, campaign_id
from utils.cli import (
    add_model_args,
    check_device,
    check_memory,
    check_weights,
    given_flags,
    parse_checked,
    positive_int,
)
from utils.errors import INTERRUPTED_EXIT_CODE, STOP_SIGNALS, Stopped, UsageError, stop_signals_raise
from utils.logs import setup_logging
from utils.parser import Parser
from utils.paths import RESULTS_DIR
from utils.presets import get_preset, preset_names
from utils.quant import QUANTIZATIONS, unsupported_reason
from utils.quantization_time import METHODS, measure, new_row
from utils.report import check_report_targets, render_file
from utils.results import QuantTimeRow, append_row_or_save_aside, check_csv_target, count_rows
from utils.sweep_processes import STOP_GRACE_S, die_with_parent

PROG = "inference/quantization_time.py"
DEFAULT_CSV = RESULTS_DIR / "quantization-time.csv"
TINY_CSV = RESULTS_DIR / "tiny-quantization-time.csv"


@dataclass(frozen=True)
class QuantTimeConfig:
    command: str
    ckpt_id: str
    weights: str  # pretrained | random
    device: str
    seed: int
    quantization: str
    method: str  # all, or a key of METHODS
    timeout_s: int
    csv: Path


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0].rstrip(":") + "; --method lists the three.")
    add_model_args(parser, default_ckpt="tiny-flux")
    parser.add_argument("--quantization", choices=[name for name in QUANTIZATIONS if name != "None"],
                        default="int8wo",
                        help="registry name of the quantization (each is described under the image benchmark's "
                             "--quantization)")
    parser.add_argument("--method", choices=["all", *METHODS], default="all",
                        help="all: each way in its own subprocess, one after the other; a single name: that way, "
                             "in this process. " + "; ".join(f"{name} = {text}" for name, text in METHODS.items()))
    parser.add_argument("--timeout_s", type=positive_int, default=1800,
                        help="with --method all: seconds each subprocess may take before it is killed and recorded "
                             "as a timeout row")
    parser.add_argument("--csv", type=Path, default=None,
                        help="CSV the rows are appended to; the markdown table is written next to it (.md). Default "
                             "results/quantization-time.csv, or results/tiny-quantization-time.csv (git-ignored, like "
                             "the other CPU smoke runs) for the tiny test presets")
    return parser


def build_config(args, argv: list[str]) -> QuantTimeConfig:
    """Raises UsageError before any model is built or any file written."""
    preset = get_preset(args.ckpt_id)
    if preset is None:
        raise UsageError(f"unknown model {args.ckpt_id!r}: the transformer is built from a preset; presets: "
                         f"{', '.join(preset_names())}")
    if args.method != "all" and "timeout_s" in given_flags(build_parser(), argv):
        raise UsageError(f"--timeout_s limits the subprocesses of --method all; --method {args.method} runs in this "
                         "process (a sweep's grid sets its own timeout_s)")
    device = check_device(args.device)
    reason = unsupported_reason(args.quantization, str(device))
    if reason:
        raise UsageError(reason)
    if QUANTIZATIONS[args.quantization].make_config is None:  # autoquant: a config per layer, chosen by timing
        raise UsageError(f"--quantization {args.quantization} picks a config per layer from a recorded pipeline "
                         "call; this study times one config applied to every layer: pick a registry config")
    csv = args.csv or (TINY_CSV if preset.hub_id is None else DEFAULT_CSV)
    if csv.suffix != ".csv":
        raise UsageError(f"--csv must name a .csv file (the table goes beside it as .md), got {csv}")
    check_csv_target(csv, QuantTimeRow)
    check_report_targets(csv)  # its .md and plots: ours to replace
    weights = check_weights(args.ckpt_id, args.weights)
    check_memory(preset, preset.base_dtype, args.device, components=("transformer",))
    return QuantTimeConfig(command=shlex.join(["python", PROG, *argv]), ckpt_id=args.ckpt_id, weights=weights,
                           device=args.device, seed=args.seed, quantization=args.quantization, method=args.method,
                           timeout_s=args.timeout_s, csv=csv)


def parse_config(argv=None) -> QuantTimeConfig:
    return parse_checked(build_parser(), build_config, argv)


def blank_row(argv: list[str]):
    """The row these flags describe (the sweep's row for a run that wrote none)."""
    args = build_parser().parse_args(argv)
    config = QuantTimeConfig(command=shlex.join(["python", PROG, *argv]), ckpt_id=args.ckpt_id, weights=args.weights,
                             device=args.device, seed=args.seed, quantization=args.quantization, method=args.method,
                             timeout_s=args.timeout_s, csv=args.csv or DEFAULT_CSV)
    return new_row(config, args.method)


def without_flag(argv: list[str], flag: str) -> list[str]:
    """argv less every `flag VALUE` and `flag=VALUE`, the flag also as the prefix argparse takes for it."""
    kept, skip_value = [], False
    for token in argv:
        name, has_value, _ = token.partition("=")
        if skip_value:
            skip_value = False
        elif len(name) > 2 and flag.startswith(name):  # "--t" is the shortest prefix
            skip_value = not has_value
        else:
            kept.append(token)
    return kept


def run_all(config: QuantTimeConfig, argv: list[str]) -> list[str]:
    """Each way in a fresh subprocess (fresh CUDA memory statistics), all in one campaign. A subprocess that dies
    without writing its row (killed, segfault, timeout) gets a crash or timeout row written here. A stop signal
    (Ctrl-C, or a sweep's SIGTERM/SIGUSR1) is passed on to the running way, which records itself, then raises
    Stopped. Returns the statuses."""
    statuses = []
    env = {**os.environ, CAMPAIGN_ENV: campaign_id()}
    for method in METHODS:
        command = [sys.executable, str(Path(__file__).resolve()), *without_flag(argv, "--timeout_s"),
                   "--method", method,
                   "--weights", config.weights]  # argparse keeps the last value of a repeated flag
        print(f"=== {method}: {METHODS[method]}", flush=True)
        rows_before = count_rows(config.csv)
        # A session of its own: a terminal's Ctrl-C reaches only this process, which passes the stop on as SIGTERM
        # (silent if it comes before the child's handlers are in place, as SIGINT would not be).
        process = subprocess.Popen(command, preexec_fn=die_with_parent(), env=env,  # in our working directory:
                                   start_new_session=True)  # a relative --csv is the same file to both
        with stop_signals_raise() as stop:
            try:
                returncode = process.wait(timeout=config.timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                returncode = None
            except Stopped:
                process.send_signal(signal.SIGUSR1 if stop.signum == signal.SIGUSR1 else signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if count_rows(config.csv) == rows_before:  # stopped before it could record itself
                    append_row_or_save_aside(config.csv, failure_row(
                        config, method, command, STOP_SIGNALS[stop.signum],
                        f"{signal.Signals(stop.signum).name} before this way could record itself"))
                raise
        if returncode in (0, 1, INTERRUPTED_EXIT_CODE):  # it wrote its own row (ok, failed, interrupted)
            statuses.append({0: "ok", 1: "failed"}.get(returncode, "interrupted"))
            continue
        status = "timeout" if returncode is None else "crash"
        append_row_or_save_aside(config.csv, failure_row(
            config, method, command, status, f"killed after --timeout_s {config.timeout_s}" if returncode is None
            else f"the subprocess exited with code {returncode} without writing its row"))
        statuses.append(status)
    return statuses


def failure_row(config: QuantTimeConfig, method: str, command: list[str], status: str, error: str) -> QuantTimeRow:
    """The row of a way whose subprocess wrote none."""
    row = new_row(config, method)
    row.command = shlex.join(["python", PROG, *command[2:]])  # command: [python, the script's path, flags...]
    row.status, row.error = status, error
    return row


def main(argv=None) -> int:
    setup_logging()
    argv = sys.argv[1:] if argv is None else list(argv)
    config = parse_config(argv)
    interrupted = False
    if config.method == "all":
        try:
            ok = all(status == "ok" for status in run_all(config, argv))
        except Stopped as stopped:
            ok, interrupted = False, True
            print(f"stopped ({stopped}): the ways that finished, and the one that was running, are in the CSV")
    else:
        row = measure(config, config.method)
        if append_row_or_save_aside(config.csv, row) != config.csv:
            return 1
        ok, interrupted = row.status == "ok", row.status == "interrupted"
        seconds = "—" if row.seconds is None else f"{row.seconds:.3f}"
        peak = "" if row.peak_GiB is None else f", peak {row.peak_GiB:.2f} GiB"
        print(f"{config.method}: {row.status}, {seconds} s{peak}, {row.n_layers_quantized} layers quantized "
              f"{row.error}".rstrip())
    md_path = render_file(config.csv)
    if config.method == "all" and not interrupted:
        print(md_path.read_text())
    print(f"rows appended to {config.csv}; table written to {md_path}")
    if interrupted:
        return INTERRUPTED_EXIT_CODE
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
