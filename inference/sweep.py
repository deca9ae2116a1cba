"""Run a grid of configurations, one subprocess each (fresh CUDA context, compile state, inductor cache directory
and memory), all appending to one CSV. Resumable: a configuration whose row is already in the CSV with status ok is
skipped. A grid file is a crossed grid, a job list or a cumulative ladder (see utils/sweep.py and inference/grids/).

    python inference/sweep.py --grid inference/grids/flux-dev.json --csv results/flux-dev.csv --dry-run
    python inference/sweep.py --script inference/benchmark_image.py --set ckpt_id=tiny-flux \\
        --vary quantization=None,int8wo --vary batch_size=1,2 --csv results/tiny-flux.csv
"""

import argparse
import re
import sys
import time
from pathlib import Path

from utils.cli import Parser, positive_int
from utils.paths import REPO_ROOT
from utils.sweep import completed_commands, expand, load_grid_file, run_sweep

DEFAULT_TIMEOUT_S = 900


def build_parser() -> Parser:
    parser = Parser(prog="inference/sweep.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=Path, help="grid file (JSON or YAML); see inference/grids/")
    parser.add_argument("--script", help="the script to run, when the grid is given as flags")
    parser.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                        help="a flag every configuration gets (repeatable; overrides the grid file's fixed flags)")
    parser.add_argument("--vary", action="append", default=[], metavar="FLAG=V1,V2",
                        help="a flag to sweep over the listed values (repeatable; crossed with the others)")
    parser.add_argument("--csv", type=Path, required=True, help="CSV every configuration appends its row to")
    parser.add_argument("--timeout", type=positive_int, default=None,
                        help="seconds one configuration may take before it is killed and recorded as a timeout "
                             f"(default: the grid file's timeout_s, else {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--log_dir", type=Path, default=None,
                        help="one log per configuration (default: <csv folder>/logs/<csv stem>)")
    parser.add_argument("--shared_compile_cache", action="store_true",
                        help="let the configurations share inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, or its "
                             "default directory): later compiles get faster, but compile_s is then no longer a cold "
                             "compile. By default each configuration gets an empty cache directory of its own")
    parser.add_argument("--only", type=regex, default=None, metavar="REGEX",
                        help="run only the configurations whose command matches this regex (e.g. to split a ladder "
                             "across calls: --only 'ladder_step [1-5] ')")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="list the configurations that would run (and those skipped as done), run nothing")
    return parser


def regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"not a valid regex: {error}") from error


def parse_value(text: str):
    """Command-line values: true/false become booleans, everything else stays a string."""
    return {"true": True, "false": False}.get(text.lower(), text)


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
        parser.error(f"no such script: {spec['script']}")
    # The scripts record themselves as `python inference/<script>`: match that spelling, or resume never matches.
    spec["script"] = script.resolve().relative_to(REPO_ROOT).as_posix()
    return spec


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = grid_spec(parser, args)
    log_dir = args.log_dir or args.csv.parent / "logs" / args.csv.stem
    configs = [config for config in expand(spec, log_dir) if not args.only or args.only.search(config.command())]
    done = completed_commands(args.csv)
    todo = [config for config in configs if config.command() not in done]
    print(f"{len(configs)} configurations, {len(configs) - len(todo)} already ok in {args.csv}, {len(todo)} to run")
    if args.dry_run:
        for config in configs:
            print(("skip  " if config not in todo else "run   ") + config.command())
        return 0
    timeout_s = args.timeout or spec.get("timeout_s", DEFAULT_TIMEOUT_S)
    start = time.perf_counter()
    counts = run_sweep(todo, args.csv, timeout_s, log_dir, args.shared_compile_cache)
    print(f"done in {time.perf_counter() - start:.0f} s: {counts or 'nothing to run'}; rows in {args.csv}")
    return 0 if set(counts) <= {"ok"} else 1


if __name__ == "__main__":
    sys.exit(main())
