"""Sweeps: a grid file (or flags) expanded into configurations of one script, each run in its own process, all
appending to one CSV. A grid file (JSON or YAML) holds:

    script     the script every configuration runs, e.g. inference/benchmark_image.py
    fixed      flags every configuration gets
    grid       flag -> list of values, crossed                      (a grid)
    configs    a list of {"name": ..., "set": {flag: value}}        (a job list)
    ladder     a list of {"lever": ..., "set": {...}, "base": N,    (a cumulative ladder: each step is its base step,
                          "measure": {...}}                          the one before unless `base` names another, plus
                                                                     `set`; `measure` flags are its own, not passed on)
    when       rules {"if": {flag: value}, "set": {flag: value}} applied to every configuration
    timeout_s  seconds one configuration may take (the --timeout default)

A boolean flag is passed as `--flag` when true and left out when false. String values may hold `{log_dir}`, the
sweep's log folder. Ladder steps run with --ladder_step/--ladder_lever/--ladder_base, which the row records."""

import contextlib
import hashlib
import importlib
import itertools
import json
import os
import queue
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from utils.paths import REPO_ROOT
from utils.results import append_row, read_rows

OUTPUT_FLAGS = ("--csv",)  # flags that say where results go, not what runs


@dataclass(frozen=True)
class Config:
    script: str
    flags: tuple[tuple[str, object], ...]

    def argv(self, csv: Path) -> list[str]:
        args = []
        for name, value in self.flags:
            if value is True:
                args.append(f"--{name}")
            elif value is not False and value is not None:
                args += [f"--{name}", str(value)]
        return [*args, "--csv", str(csv)]

    def command(self) -> str:
        """How the script records this configuration in its `command` column (without output flags)."""
        return normalize_command(shlex.join(["python", self.script, *self.argv(Path("-"))]))

    @property
    def module(self) -> str:
        """The script as a module name (scripts are run with python -m from the repository root)."""
        return Path(self.script).with_suffix("").as_posix().replace("/", ".")


def normalize_command(command: str) -> str:
    words = shlex.split(command)
    kept = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in OUTPUT_FLAGS:
            skip = True
        else:
            kept.append(word)
    return shlex.join(kept)


def load_grid_file(path: Path) -> dict:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def same_value(given, wanted) -> bool:
    """Grid files hold typed values (4, 3.5), --vary/--set text ("4", "3.5"): those compare by their spelling.
    Booleans and None (a switch, a flag left out) compare as themselves, so "None" never matches a missing flag."""
    if isinstance(given, (bool, type(None))) or isinstance(wanted, (bool, type(None))):
        return given is wanted
    return str(given) == str(wanted)


def ladder_steps(spec: dict) -> list[dict]:
    """The flags of every ladder step: its base step's (the one before unless it names another) plus its own."""
    steps: list[dict] = []
    for number, entry in enumerate(spec["ladder"], start=1):
        base = entry.get("base", number - 1 if number > 1 else None)
        if base is not None and not 1 <= base < number:
            raise ValueError(f"ladder step {number} ({entry['lever']!r}): base {base} is not an earlier step")
        flags = {**(steps[base - 1]["inherited"] if base else {}), **entry.get("set", {})}
        steps.append({"inherited": flags, "flags": {**flags, **entry.get("measure", {}), "ladder_step": number,
                                                    "ladder_lever": entry["lever"], "ladder_base": base}})
    return [step["flags"] for step in steps]


def combinations(spec: dict) -> list[dict]:
    """The flags of each configuration before the `when` rules: the grid crossed, the job list or the ladder."""
    if "ladder" in spec:
        return ladder_steps(spec)
    if "configs" in spec:
        return [dict(entry.get("set", {})) for entry in spec["configs"]]
    names = list(spec.get("grid", {}))
    return [dict(zip(names, values)) for values in itertools.product(*(spec["grid"][name] for name in names))]


def substitute(value, log_dir: Path | None):
    return value.replace("{log_dir}", str(log_dir)) if isinstance(value, str) and log_dir is not None else value


def expand(spec: dict, log_dir: Path | None = None) -> list[Config]:
    """Every configuration of the spec, `when` rules applied, duplicates (rules can make two equal) dropped."""
    configs, seen = [], set()
    for own in combinations(spec):
        flags = {**spec.get("fixed", {}), **own}
        for rule in spec.get("when", []):
            if all(same_value(flags.get(key), value) for key, value in rule["if"].items()):
                flags.update(rule["set"])
        config = Config(spec["script"], tuple((name, substitute(value, log_dir)) for name, value in flags.items()))
        if config.command() not in seen:
            seen.add(config.command())
            configs.append(config)
    return configs


def recorded_statuses(csv: Path) -> list[tuple[str, str]]:
    """(normalized command, status) of every row in the CSV, in order."""
    if not csv.exists():
        return []
    frame = read_rows(csv)
    return [(normalize_command(str(command)), str(status)) for command, status in zip(frame.command, frame.status)]


def completed_commands(csv: Path) -> set[str]:
    return {command for command, status in recorded_statuses(csv) if status == "ok"}


def failure_row(config: Config, status: str, message: str):
    """The row for a configuration whose process died before writing its own (timeout, crash, kill, bad input): the
    script reads its flags as it would have (aliases and derived flags land where they would)."""
    row = importlib.import_module(config.module).blank_row(config.argv(Path("-")))
    row.command, row.status, row.error = config.command(), status, message[:500]
    return row


def run_config(config: Config, csv: Path, timeout_s: float, gpu: str | None, log_dir: Path,
               shared_compile_cache: bool = False) -> str:
    """Run one configuration in its own process; returns its status. The script appends its own row; if the process
    is killed or dies without one, we append a row saying so. Unless `shared_compile_cache`, the process gets empty
    inductor and Triton cache directories of its own (removed afterwards), so its compile_s does not depend on which
    configurations ran before it on this machine."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    log_dir.mkdir(parents=True, exist_ok=True)
    command = config.command()
    log_path = log_dir / f"{hashlib.sha1(command.encode()).hexdigest()[:12]}.log"
    rows_before = sum(recorded == command for recorded, _ in recorded_statuses(csv))
    # A killed configuration's compile workers may still write into its directory: never let that end the sweep.
    fresh_cache = (contextlib.nullcontext() if shared_compile_cache
                   else tempfile.TemporaryDirectory(prefix="inductor-", ignore_cleanup_errors=True))
    with open(log_path, "w") as log, fresh_cache as cache_dir:
        if cache_dir is not None:  # Triton keeps its kernels apart when TRITON_CACHE_DIR is set: point it here too
            env.update(TORCHINDUCTOR_CACHE_DIR=cache_dir, TRITON_CACHE_DIR=str(Path(cache_dir) / "triton"))
        log.write(command + "\n")
        log.flush()
        try:
            result = subprocess.run([sys.executable, "-m", config.module, *config.argv(csv)], cwd=REPO_ROOT,
                                    env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            append_row(csv, failure_row(config, "timeout", f"killed after {timeout_s:.0f} s; log {log_path}"))
            return "timeout"
    if result.returncode == 2:
        append_row(csv, failure_row(config, "error", f"rejected as bad input (exit 2); log {log_path}"))
        return "error"
    # Other GPUs' workers append to the same CSV, so look for this configuration's own new row.
    statuses = [status for recorded, status in recorded_statuses(csv) if recorded == command]
    if len(statuses) <= rows_before:
        append_row(csv, failure_row(config, "crash", f"exit code {result.returncode} and no row; log {log_path}"))
        return "crash"
    return statuses[-1]


def visible_gpus() -> list[str | None]:
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA: run on whatever the configuration asks for
        count = 0
    if count <= 1:
        return [None]
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = listed.split(",") if listed else [str(index) for index in range(count)]
    return ids[:count]


def run_sweep(configs: list[Config], csv: Path, timeout_s: float, log_dir: Path,
              shared_compile_cache: bool = False) -> dict[str, int]:
    """Run every configuration, one per visible GPU at a time (in order on one GPU); returns how many ended in each
    status."""
    gpus = queue.Queue()
    for gpu in visible_gpus():
        gpus.put(gpu)
    counts: dict[str, int] = {}
    with tqdm(total=len(configs), desc="sweep", unit="config") as bar:

        def worker(config: Config) -> None:
            gpu = gpus.get()
            try:
                status = run_config(config, csv, timeout_s, gpu, log_dir, shared_compile_cache)
            finally:
                gpus.put(gpu)
            counts[status] = counts.get(status, 0) + 1
            bar.set_postfix(counts)
            bar.update()

        with ThreadPoolExecutor(max_workers=gpus.qsize()) as pool:
            list(pool.map(worker, configs))
    return counts
