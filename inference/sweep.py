"""Run a grid of benchmark configurations, one subprocess each (fresh CUDA context, compile state, inductor cache
directory and memory), all appending to one CSV. Resumable: a configuration whose row is already in the CSV with
status ok is skipped.

    python inference/sweep.py --grid inference/grids/flux-dev.json --csv results/flux-dev.csv --dry-run
    python inference/sweep.py --script inference/benchmark_image.py --set ckpt_id=tiny-flux \\
        --vary quantization=None,int8wo --vary batch_size=1,2 --csv results/tiny-flux.csv

A grid file (JSON or YAML) holds `script`, `fixed` flags, `grid` (flag -> list of values, crossed) and `when`
rules ({"if": {flag: value}, "set": {flag: value}}) applied to every combination. A boolean flag is passed as
`--flag` when true and left out when false.
"""

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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

from tqdm.auto import tqdm  # noqa: E402

from utils.cli import REPO_ROOT, Parser, positive_int  # noqa: E402
from utils.results import COLUMNS, Row, append_row, read_rows  # noqa: E402

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
        """How the benchmark records this configuration in its `command` column (without output flags)."""
        return normalize_command(shlex.join(["python", self.script, *self.argv(Path("-"))]))


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


def parse_value(text: str):
    """Command-line values: true/false become booleans, everything else stays a string."""
    return {"true": True, "false": False}.get(text.lower(), text)


def same_value(given, wanted) -> bool:
    """Grid files hold typed values (4, 3.5), --vary/--set text ("4", "3.5"): those compare by their spelling.
    Booleans and None (a switch, a flag left out) compare as themselves, so "None" never matches a missing flag."""
    if isinstance(given, (bool, type(None))) or isinstance(wanted, (bool, type(None))):
        return given is wanted
    return str(given) == str(wanted)


def expand(spec: dict) -> list[Config]:
    """Cross the grid, apply the `when` rules, drop duplicates (rules can make two combinations equal)."""
    names = list(spec.get("grid", {}))
    configs, seen = [], set()
    for values in itertools.product(*(spec["grid"][name] for name in names)):
        flags = {**spec.get("fixed", {}), **dict(zip(names, values))}
        for rule in spec.get("when", []):
            if all(same_value(flags.get(key), value) for key, value in rule["if"].items()):
                flags.update(rule["set"])
        config = Config(spec["script"], tuple(flags.items()))
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


def failure_row(config: Config, status: str, message: str) -> Row:
    """The row for a configuration whose process died before writing its own (timeout, crash, kill): its columns
    come from the script's own parser, so aliases and derived flags (--dtype, --fuse_qkv, ...) land as they would."""
    row = Row(command=config.command(), status=status, error=message[:500])
    module = importlib.import_module(Path(config.script).with_suffix("").as_posix().replace("/", "."))
    parser = module.build_parser()
    try:
        args = parser.parse_args(config.argv(Path("-")))
        if hasattr(module, "resolve_dtype"):
            module.resolve_dtype(parser, args)
    except SystemExit:  # the flags do not parse: keep only what we know
        return row
    args.compile = args.compile or args.regional_compile
    for name, value in vars(args).items():
        if name in COLUMNS and value is not None and not isinstance(value, Path):
            setattr(row, name, value)
    row.model = args.ckpt_id
    row.dtype = getattr(args, "base_dtype", None) or "bf16"
    return row


def run_config(config: Config, csv: Path, timeout_s: float, gpu: str | None, log_dir: Path,
               shared_compile_cache: bool = False) -> str:
    """Run one configuration in its own process; returns its status. The benchmark appends its own row; if the
    process is killed or dies without one, we append a row saying so. Unless `shared_compile_cache`, the process
    gets empty inductor and Triton cache directories of its own (removed afterwards), so its compile_s does not
    depend on which configurations ran before it on this machine."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{hashlib.sha1(config.command().encode()).hexdigest()[:12]}.log"
    command = config.command()
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
            result = subprocess.run([sys.executable, config.script, *config.argv(csv)], cwd=REPO_ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
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
    """Run every configuration, one per visible GPU at a time; returns how many ended in each status."""
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


def build_parser() -> Parser:
    parser = Parser(prog="inference/sweep.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=Path, help="grid file (JSON or YAML); see inference/grids/")
    parser.add_argument("--script", help="benchmark script, when the grid is given as flags")
    parser.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                        help="a flag every configuration gets (repeatable; overrides the grid file's fixed flags)")
    parser.add_argument("--vary", action="append", default=[], metavar="FLAG=V1,V2",
                        help="a flag to sweep over the listed values (repeatable; crossed with the others)")
    parser.add_argument("--csv", type=Path, required=True, help="CSV every configuration appends its row to")
    parser.add_argument("--timeout", type=positive_int, default=900,
                        help="seconds one configuration may take before it is killed and recorded as a timeout")
    parser.add_argument("--log_dir", type=Path, default=None,
                        help="one log per configuration (default: <csv folder>/logs/<csv stem>)")
    parser.add_argument("--shared_compile_cache", action="store_true",
                        help="let the configurations share inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, or its "
                             "default directory): later compiles get faster, but compile_s is then no longer a cold "
                             "compile. By default each configuration gets an empty cache directory of its own")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="list the configurations that would run (and those skipped as done), run nothing")
    return parser


def grid_spec(parser: Parser, args) -> dict:
    spec = {"fixed": {}, "grid": {}, "when": []}
    if args.grid:
        if not args.grid.is_file():
            parser.error(f"--grid {args.grid}: no such file")
        spec.update(load_grid_file(args.grid))
    if args.script:
        spec["script"] = args.script
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects FLAG=VALUE, got {item!r}")
        spec["fixed"][name] = parse_value(value)
    for item in args.vary:
        name, sep, values = item.partition("=")
        if not sep or not values:
            parser.error(f"--vary expects FLAG=V1,V2,..., got {item!r}")
        spec["grid"][name] = [parse_value(value) for value in values.split(",")]
    if not spec.get("script"):
        parser.error("give --grid or --script")
    script = Path(spec["script"]).resolve() if Path(spec["script"]).is_absolute() else REPO_ROOT / spec["script"]
    if not script.is_file():
        parser.error(f"no such benchmark script: {spec['script']}")
    # The benchmarks record themselves as `python inference/<script>`: match that spelling, or resume never matches.
    spec["script"] = script.resolve().relative_to(REPO_ROOT).as_posix()
    return spec


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configs = expand(grid_spec(parser, args))
    done = completed_commands(args.csv)
    todo = [config for config in configs if config.command() not in done]
    print(f"{len(configs)} configurations, {len(configs) - len(todo)} already ok in {args.csv}, {len(todo)} to run")
    if args.dry_run:
        for config in configs:
            print(("skip  " if config not in todo else "run   ") + config.command())
        return 0
    log_dir = args.log_dir or args.csv.parent / "logs" / args.csv.stem
    start = time.perf_counter()
    counts = run_sweep(todo, args.csv, args.timeout, log_dir, args.shared_compile_cache)
    print(f"done in {time.perf_counter() - start:.0f} s: {counts or 'nothing to run'}; rows in {args.csv}")
    return 0 if set(counts) <= {"ok"} else 1


if __name__ == "__main__":
    sys.exit(main())
