"""Sweeps: a grid file (or flags) expanded into configurations of one script, each run in its own process, all
appending to one CSV. A grid file (JSON or YAML) is a mapping of these keys and no others (but a free-text
`description`); `grid`, `configs` and `ladder` exclude each other:

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
import functools
import hashlib
import importlib
import io
import itertools
import json
import math
import multiprocessing
import os
import queue
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from utils.campaign import CAMPAIGN_ENV
from utils.errors import UsageError
from utils.paths import REPO_ROOT
from utils.results import append_row_or_save_aside, read_rows
from utils.sweep_processes import Children

OUTPUT_FLAGS = ("--csv",)  # flags that say where results go, not what runs


def is_output_flag(name: str) -> bool:
    """Whether a flag named with or without its dashes says where results go (the sweep's own --csv decides)."""
    return f"--{name.lstrip('-')}" in OUTPUT_FLAGS

SPEC_KEYS = {"description": str, "script": str, "fixed": dict, "grid": dict, "configs": list, "ladder": list,
             "when": list, "timeout_s": (int, float)}
SCRIPT_API = ("build_parser", "parse_config", "blank_row")  # what a script needs to be swept


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

    def key(self):
        return configuration_key(self.command(), self.script)


def module_name(script: str) -> str:
    """The script as a module name (for importing it here: its parser, checks and blank row)."""
    return Path(script).with_suffix("").as_posix().replace("/", ".")


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


@functools.cache
def script_module(script: str):
    """The module of a repository script (e.g. inference/benchmark_image.py), which must expose SCRIPT_API."""
    module = importlib.import_module(module_name(script))
    missing = [name for name in SCRIPT_API if not hasattr(module, name)]
    if missing:
        raise UsageError(f"{script} cannot be swept: it has no {', '.join(missing)}")
    return module


@functools.cache
def configuration_key(command: str, script: str):
    """What a recorded command runs, as `script`'s parser reads it: flag order, aliases and defaults do not matter
    and output flags are left out, so resume finds a configuration however its command was spelled. A command of
    another script, or one the parser refuses (a flag since removed), is keyed by its text."""
    try:
        words = shlex.split(command)
        text = normalize_command(command)
    except ValueError:  # unbalanced quotes: not a command we wrote
        return command
    if script not in words:
        return text
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            flags = vars(script_module(script).build_parser().parse_args(words[words.index(script) + 1:]))
    except SystemExit:
        return text
    ignored = {flag.lstrip("-") for flag in OUTPUT_FLAGS} | {"overwrite"}  # where results go, not what runs
    return tuple(sorted((name, repr(value)) for name, value in flags.items() if name not in ignored))


def load_grid_file(path: Path) -> dict:
    """The grid file's spec, checked; a file that is no such spec raises UsageError (one line)."""
    if path.suffix in (".yaml", ".yml"):
        import yaml

        language, load, invalid = "YAML", yaml.safe_load, yaml.YAMLError
    else:
        language, load, invalid = "JSON", json.loads, ValueError
    try:
        spec = load(path.read_text())
    except (invalid, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not valid {language}: {' '.join(str(error).split())}") from None
    check_spec(spec, str(path))
    return spec


def check_spec(spec, source: str) -> None:
    """Raise UsageError for a spec that would silently run something else than it says: another shape, an unknown
    key (a typo is ignored otherwise) or a grid value that is not a list (a string would be crossed letter by
    letter)."""
    if not isinstance(spec, dict):
        raise UsageError(f"{source}: expected a mapping of {', '.join(SPEC_KEYS)}; got a {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UsageError(f"{source}: unknown key {', '.join(map(repr, unknown))}; known keys: {', '.join(SPEC_KEYS)}")
    for key, kind in SPEC_KEYS.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool)):
            raise UsageError(f"{source}: {key} must be a {getattr(kind, '__name__', 'number')}, got {spec[key]!r}")
    shapes = [key for key in ("grid", "configs", "ladder") if key in spec]
    if len(shapes) > 1:
        raise UsageError(f"{source}: give one of grid, configs and ladder, not {' and '.join(shapes)}")
    empty = [key for key in ("configs", "ladder") if key in spec and not spec[key]]
    if empty:
        raise UsageError(f"{source}: {empty[0]} is empty; list at least one entry")
    for name, values in spec.get("grid", {}).items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"{source}: grid key {name!r} must be a non-empty list of values, got {values!r}")
    for key, needed in (("configs", ()), ("ladder", ("lever",)), ("when", ("if", "set"))):
        for entry in spec.get(key, []):
            if not isinstance(entry, dict) or any(name not in entry for name in needed):
                raise UsageError(f"{source}: every {key} entry must be a mapping with {', '.join(needed) or 'set'}, "
                                 f"got {entry!r}")
            for part in ("if", "set", "measure"):
                if part in entry and not isinstance(entry[part], dict):
                    raise UsageError(f"{source}: a {key} entry's {part!r} must be a mapping of flags, got "
                                     f"{entry[part]!r}")
    flag_sets = [("fixed", spec.get("fixed", {})), ("grid", spec.get("grid", {}))]
    flag_sets += [(key, entry.get(part, {})) for key in ("configs", "ladder", "when") for entry in spec.get(key, [])
                  for part in ("set", "measure") if isinstance(entry, dict)]
    for key, flags in flag_sets:
        outputs = [name for name in flags if is_output_flag(name)]
        if outputs:
            raise UsageError(f"{source}: {key} sets {outputs[0]!r}; the sweep's own --csv names the one file every "
                             "configuration writes to")
    job_sets = [json.dumps(entry.get("set", {}), sort_keys=True, default=str) for entry in spec.get("configs", [])]
    repeated = next((flags for index, flags in enumerate(job_sets) if flags in job_sets[:index]), None)
    if repeated is not None:
        raise UsageError(f"{source}: two configs entries set the same flags ({repeated}); each job runs once")
    for step, entry in enumerate(spec.get("ladder", []), start=1):
        base = entry.get("base")
        if base is not None and (not isinstance(base, int) or isinstance(base, bool) or not 1 <= base < step):
            raise UsageError(f"{source}: ladder step {step}'s base must be an earlier step number, got {base!r}")
    timeout_s = spec.get("timeout_s")
    if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):
        raise UsageError(f"{source}: timeout_s must be a positive number of seconds, got {timeout_s!r}")


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
            raise UsageError(f"ladder step {number} ({entry['lever']!r}): base {base} is not an earlier step")
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
    """Every configuration of the spec, `when` rules applied, duplicates (rules or overrides can make two equal)
    dropped. The spec's `override` (sweep.py's --set, not a grid-file key) beats every value the file gives; its
    `flag_names` (flag_names(), also set by sweep.py) let a rule match a flag spelled by another of its names."""
    configs, seen = [], set()
    override, names = spec.get("override", {}), spec.get("flag_names", {})
    for own in combinations(spec):
        flags = with_flags({}, spec.get("fixed", {}), names)
        flags = with_flags(with_flags(flags, own, names), override, names)
        for rule in spec.get("when", []):
            named = {names.get(name, name): value for name, value in flags.items()}  # --model_id X is ckpt_id X
            if all(same_value(named.get(names.get(key, key)), value) for key, value in rule["if"].items()):
                flags = with_flags(flags, rule["set"], names)
        flags = with_flags(flags, override, names)
        config = Config(spec["script"], tuple((name, substitute(value, log_dir)) for name, value in flags.items()))
        if config.command() not in seen:
            seen.add(config.command())
            configs.append(config)
    return configs


def with_flags(flags: dict, new: dict, names: dict[str, str]) -> dict:
    """`flags` updated with `new`, where a new value also replaces the flag spelled by another of its names
    (--model_id after --ckpt_id), so that every flag appears once."""
    result = dict(flags)
    for name, value in new.items():
        for other in [other for other in result if other != name and names.get(other, other) == names.get(name, name)]:
            del result[other]
        result[name] = value
    return result


def flag_names(script: str) -> dict[str, str]:
    """Every long flag name of `script` -> the name its parser gives that flag first (model_id -> ckpt_id,
    ckpt_id -> ckpt_id)."""
    names = {}
    for action in script_module(script).build_parser()._actions:
        spellings = [option[2:] for option in action.option_strings if option.startswith("--")]
        if spellings:
            names.update(dict.fromkeys(spellings, spellings[0]))
    return names


def check_rule_flags(spec: dict) -> None:
    """Raise UsageError for a `when` rule whose `if` names no flag of the script (spec["flag_names"]): a misspelled
    name never matches, so the rule would silently never apply."""
    for number, rule in enumerate(spec.get("when", []), start=1):
        unknown = [name for name in rule["if"] if name not in spec["flag_names"]]
        if unknown:
            raise UsageError(f"when rule {number}: its if names {unknown[0]!r}, which is no flag of {spec['script']} "
                             "(write flags without dashes, as in set), so the rule would never apply")


def check_configs(configs: list[Config], csv: Path, on_this_machine: bool) -> None:
    """Raise UsageError (one line) naming the first configuration its script would refuse, so that bad flags or
    values never launch a process or write a row."""
    refusal = first_refusal_of(configs, csv, on_this_machine)
    if refusal:
        raise UsageError(refusal)


def first_refusal_of(configs: list[Config], csv: Path, on_this_machine: bool) -> str | None:
    """The first configuration its script would refuse, and why; None if none. `on_this_machine` runs the script's
    own checks, which look at this machine (its devices and their free memory, the hub); without it, only the
    script's parser reads the flags."""
    if not configs:
        return None
    if not on_this_machine:
        return first_refusal(configs, csv, False)
    # In a process of its own: asking CUDA (for free memory) opens a context, which must not stay in the sweep's
    # process, on a GPU, through every measurement.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_stderr) as pool:
        return pool.submit(first_refusal, configs, csv, True).result()


def quiet_stderr() -> None:
    """Silence a checking process's stderr (warnings its imports print): bad input is reported in one line."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


def first_refusal(configs: list[Config], csv: Path, on_this_machine: bool) -> str | None:
    for number, config in enumerate(configs, start=1):
        module = script_module(config.script)
        refusal = io.StringIO()
        try:
            with contextlib.redirect_stderr(refusal):
                if on_this_machine:
                    module.parse_config(config.argv(csv))
                else:
                    module.build_parser().parse_args(config.argv(csv))
        except SystemExit as exit_info:
            if exit_info.code:
                reason = (refusal.getvalue().strip().splitlines() or [f"exit code {exit_info.code}"])[-1]
                return f"configuration {number} of the {len(configs)} to run ({config.command()}) is refused: {reason}"
    return None


def recorded_statuses(csv: Path, script: str) -> list[tuple[object, str]]:
    """(configuration key, status) of every row in the CSV, in order."""
    if not csv.exists():
        return []
    frame = read_rows(csv)
    return [(configuration_key(str(command), script), str(status))
            for command, status in zip(frame.command, frame.status)]


def completed_keys(csv: Path, script: str) -> set:
    return {key for key, status in recorded_statuses(csv, script) if status == "ok"}


def failure_row(config: Config, status: str, message: str, gpu: str | None = None, campaign: str | None = None):
    """The row for a configuration whose process died before writing its own (timeout, crash, kill, bad input): the
    script reads its flags as it would have (aliases and derived flags land where they would); `gpu` is the GPU the
    sweep gave it (CUDA_VISIBLE_DEVICES), if it chose one, `campaign` the sweep's."""
    module = script_module(config.script)
    try:
        row = module.blank_row(config.argv(Path("-")))
    except (SystemExit, Exception):  # noqa: BLE001 - flags it cannot read: the row of the defaults still says why
        row = module.blank_row([])
    row.command, row.status, row.error = config.command(), status, message[:500]
    if gpu is not None:
        row.gpu_index = gpu
    if campaign:
        row.campaign = campaign
    return row


def run_config(config: Config, csv: Path, timeout_s: float, gpu: str | None, log_dir: Path,
               cache_root: Path | None, children: Children, campaign: str | None = None) -> str | None:
    """Run one configuration in its own process; returns its status (None if the sweep stopped before it started).
    The script appends its own row; if the process is killed or dies without one, we append a row saying so.
    Unless `cache_root` is None (a shared compile cache), the process gets empty inductor and Triton cache
    directories of its own under it (removed afterwards), so its compile_s does not depend on which configurations
    ran before it on this machine. `campaign` goes to the process in BENCH_CAMPAIGN (its row's campaign)."""
    env = dict(os.environ)
    if campaign:
        env[CAMPAIGN_ENV] = campaign
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    log_dir.mkdir(parents=True, exist_ok=True)
    command, key = config.command(), config.key()
    log_path = log_dir / f"{hashlib.sha1(command.encode()).hexdigest()[:12]}.log"
    rows_before = sum(recorded == key for recorded, _ in recorded_statuses(csv, config.script))
    fresh_cache = (contextlib.nullcontext() if cache_root is None
                   else tempfile.TemporaryDirectory(prefix="inductor-", dir=cache_root, ignore_cleanup_errors=True))
    with open(log_path, "w") as log, fresh_cache as cache_dir:
        if cache_dir is not None:  # Triton keeps its kernels apart when TRITON_CACHE_DIR is set: point it here too
            env.update(TORCHINDUCTOR_CACHE_DIR=cache_dir, TRITON_CACHE_DIR=str(Path(cache_dir) / "triton"))
        log.write(command + "\n")
        log.flush()
        # By its path and in the sweep's own working directory, so that relative paths (--csv, --set values) mean
        # what they mean to the sweep; the script puts its checkout first on sys.path itself.
        process = children.start([sys.executable, str(REPO_ROOT / config.script), *config.argv(csv)], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
        if process is not None:
            returncode = children.wait(process, timeout_s)
    if process is None:  # the sweep stopped before it started: no log of a run that never was
        log_path.unlink(missing_ok=True)
        return None
    # Other GPUs' workers append to the same CSV, so look for this configuration's own new row.
    statuses = [status for recorded, status in recorded_statuses(csv, config.script) if recorded == key]
    if len(statuses) > rows_before:
        return statuses[-1]
    if children.stopped:
        status, message = "interrupted", f"the sweep was interrupted (SIGINT/SIGTERM) and stopped it; log {log_path}"
    elif returncode is None:
        status, message = "timeout", f"stopped after {timeout_s:.0f} s; log {log_path}"
    elif returncode == 2:
        status, message = "error", f"rejected as bad input (exit 2); log {log_path}"
    else:
        status, message = "crash", f"exit code {returncode} and no row; log {log_path}"
    append_row_or_save_aside(csv, failure_row(config, status, message, gpu, campaign))
    return status


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


def run_sweep(configs: list[Config], csv: Path, timeout_s: float, log_dir: Path, cache_root: Path | None,
              children: Children, campaign: str | None = None) -> dict[str, int]:
    """Run every configuration, one per visible GPU at a time (in order on one GPU); returns how many ended in each
    status. On KeyboardInterrupt the running configurations are stopped and recorded as interrupted, none starts
    after, and the KeyboardInterrupt goes on up."""
    gpus = queue.Queue()
    for gpu in visible_gpus():
        gpus.put(gpu)
    counts: dict[str, int] = {}
    with tqdm(total=len(configs), desc="sweep", unit="config") as bar:

        def worker(config: Config) -> None:
            gpu = gpus.get()
            try:
                status = run_config(config, csv, timeout_s, gpu, log_dir, cache_root, children, campaign)
            finally:
                gpus.put(gpu)
            if status is not None:
                counts[status] = counts.get(status, 0) + 1
                bar.set_postfix(counts)
                bar.update()

        with ThreadPoolExecutor(max_workers=gpus.qsize()) as pool:
            try:
                for future in [pool.submit(worker, config) for config in configs]:
                    future.result()
            except KeyboardInterrupt:
                children.stop()
                pool.shutdown(cancel_futures=True)  # the workers record what they were running
                raise
    return counts
