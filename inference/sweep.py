"""Run a grid of configurations, one subprocess each (fresh CUDA context, compile state, inductor cache directory
and memory), all appending to one CSV. Resumable: a configuration whose row is already in the CSV with status ok is
skipped. A grid file is a crossed grid, a job list or a cumulative ladder (format: docs/architecture.md, Grid files;
examples: inference/grids/).
Every configuration still to run is checked by its script before any runs: bad input is one line on stderr and exit
code 2, with nothing run or written. One sweep at a time per CSV. Ctrl-C (or SIGTERM) stops the running
configuration, which records itself as `interrupted` with the times it finished (killed after 20 s if it has not),
and exits with 130; a sweep killed outright takes its configuration process with it.

    python inference/sweep.py --grid inference/grids/flux-dev.json --csv results/flux-dev.csv --dry-run
    python inference/sweep.py --script inference/benchmark_image.py --set ckpt_id=tiny-flux \\
        --vary quantization=None,int8wo --vary batch_size=1,2 --csv results/tiny-flux.csv
"""

import argparse
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's utils, not another installed copy

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C while torch imports is one line)
from utils.campaign import CAMPAIGN_ENV, new_campaign_id
from utils.cli import positive_int
from utils.errors import UsageError
from utils.parser import Parser
from utils.path_checks import check_output_dir
from utils.paths import REPO_ROOT
from utils.results import check_csv_target
from utils.sweep import (
    check_configs,
    check_rule_flags,
    completed_keys,
    expand,
    first_refusal_of,
    flag_names,
    is_output_flag,
    load_grid_file,
    run_sweep,
    script_module,
)
from utils.sweep_processes import Children, compile_cache_root, csv_lock, sweep_running_on

DEFAULT_TIMEOUT_S = 900


def build_parser() -> Parser:
    parser = Parser(prog="inference/sweep.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=Path, help="grid file (JSON or YAML); see inference/grids/")
    parser.add_argument("--script", help="the script to run, when the grid is given as flags")
    parser.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                        help="a flag every configuration gets, in place of any value the grid file gives "
                             "it (repeatable); one that some configurations cannot take (e.g. --compile_mode on an "
                             "eager baseline) stops the sweep before anything runs: leave those out with --only")
    parser.add_argument("--vary", action="append", default=[], metavar="FLAG=V1,V2",
                        help="a flag to sweep over the listed values (repeatable; crossed with the others)")
    parser.add_argument("--csv", type=Path, required=True, help="CSV every configuration appends its row to")
    parser.add_argument("--timeout", type=positive_int, default=None,
                        help="seconds one configuration may take before it is stopped and recorded as a timeout "
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
                        help="list the configurations that would run (and those skipped as done), run nothing; "
                             "bad flags are refused, and a note names the first configuration that this machine "
                             "would refuse (its devices, their free memory), so that a grid can be planned elsewhere")
    return parser


def regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"not a valid regex: {error}") from error


def parse_value(text: str):
    """Command-line values: true/false become booleans, everything else stays a string."""
    return {"true": True, "false": False}.get(text.lower(), text)


def grid_spec(args) -> dict:
    """The spec the grid file and the flags describe; raises UsageError for input that cannot work."""
    if args.grid and args.script:
        raise UsageError("give --grid or --script, not both: the grid file names its script")
    spec = {}
    if args.grid:
        if not args.grid.is_file():
            raise UsageError(f"--grid {args.grid}: " + ("is a folder; give a grid file in it" if args.grid.is_dir()
                                                         else "no such file"))
        spec = load_grid_file(args.grid)
        if args.vary and ("configs" in spec or "ladder" in spec):
            raise UsageError(f"--vary crosses a grid; {args.grid} is a job list or a ladder (narrow it with --only)")
    else:
        spec["script"] = args.script
    if not spec.get("script"):
        raise UsageError(f"{args.grid}: names no script" if args.grid else "give --grid or --script")
    script = Path(spec["script"]).resolve() if Path(spec["script"]).is_absolute() else REPO_ROOT / spec["script"]
    if not (script.is_file() and script.suffix == ".py" and script.resolve().is_relative_to(REPO_ROOT.resolve())):
        raise UsageError(f"no such script in this repository: {spec['script']}")
    # The scripts record themselves as `python inference/<script>`: match that spelling, or resume never matches.
    spec["script"] = script.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    spec["flag_names"] = names = flag_names(spec["script"])
    spec["override"], given = {}, {}  # given: a flag's first name -> how --set or --vary spelled it
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--set expects FLAG=VALUE, got {item!r}")
        check_not_output(name, "--set")
        name = name.lstrip("-")
        earlier = given.get(names.get(name, name))
        if earlier:
            raise UsageError(f"--set {name} given twice: give each flag once" if earlier == f"--set {name}"
                             else f"{earlier} and --set {name} set the same flag: give each flag once")
        given[names.get(name, name)] = f"--set {name}"
        spec["override"][name] = parse_value(value)
    for item in args.vary:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise UsageError(f"--vary expects FLAG=V1,V2,..., got {item!r}")
        check_not_output(name, "--vary")
        name = name.lstrip("-")
        earlier = given.get(names.get(name, name))
        if earlier and earlier.startswith("--set"):
            raise UsageError(f"{earlier} and --vary {name}: give the flag one way")
        if earlier:
            raise UsageError((f"--vary {name} given twice" if earlier == f"--vary {name}" else
                              f"{earlier} and --vary {name} vary the same flag")
                             + f": list every value in one --vary {name}=V1,V2,...")
        given[names.get(name, name)] = f"--vary {name}"
        spec.setdefault("grid", {})[name] = [parse_value(value) for value in values.split(",")]
    check_rule_flags(spec)
    return spec


def check_not_output(name: str, flag: str) -> None:
    if is_output_flag(name):
        raise UsageError(f"{flag} {name}: the sweep's own --csv names the one file every configuration writes to")


@contextlib.contextmanager
def interrupts_raise():
    """SIGTERM, like SIGINT, raises KeyboardInterrupt in the main thread; after the first, both are ignored so that
    nothing interrupts the cleanup (stopping and recording the running configurations)."""
    def interrupt(signum, frame):
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with interrupts_raise():
        try:
            return sweep(args)
        except UsageError as error:
            parser.error(str(error))
        except KeyboardInterrupt:
            print(f"interrupted: a configuration that was running is recorded as interrupted in {args.csv} (if one "
                  "had started); run the same command again to resume", file=sys.stderr)
            return 130


def sweep(args) -> int:
    spec = grid_spec(args)
    log_dir = args.log_dir or args.csv.parent / "logs" / args.csv.stem
    check_csv_target(args.csv, type(script_module(spec["script"]).blank_row([])))
    check_output_dir("--log_dir" if args.log_dir else "the log folder (--log_dir's default, beside --csv)", log_dir)
    every = expand(spec, log_dir)
    configs = [config for config in every if not args.only or args.only.search(config.command())]
    if every and not configs:
        raise UsageError(f"--only {args.only.pattern!r} matches none of the {len(every)} configurations' commands "
                         "(--dry_run without --only lists them)")
    # Only what is still to run is checked: a finished configuration need not fit this machine.
    todo = still_to_run(configs, args.csv)
    if args.dry_run:
        check_configs(todo, args.csv, on_this_machine=False)
        print(plan(configs, todo, args.csv))
        for config in configs:
            print(("run   " if config in todo else "skip  ") + config.command())
        if sweep_running_on(args.csv):  # checking opens a CUDA context beside its measurements
            print(f"note: a sweep on {args.csv} is running, so this machine's checks were left out")
        else:
            refusal = first_refusal_of(todo, args.csv, on_this_machine=True)
            if refusal:
                print(f"note: run here, the sweep would stop before starting anything: {refusal}")
        return 0
    check_configs(todo, args.csv, on_this_machine=True)
    # One campaign for every configuration this run starts (the rows' campaign column; the report takes ratios only
    # within one); a BENCH_CAMPAIGN already set (a job script's) is kept.
    campaign = os.environ.get(CAMPAIGN_ENV) or new_campaign_id()
    with contextlib.ExitStack() as held:
        lock_fd = held.enter_context(csv_lock(args.csv))
        cache_root = None if args.shared_compile_cache else held.enter_context(compile_cache_root(args.csv))
        todo = still_to_run(configs, args.csv)  # read under the lock: no other sweep is adding rows
        print(plan(configs, todo, args.csv) + f"; campaign {campaign}")
        start = time.perf_counter()
        counts = run_sweep(todo, args.csv, args.timeout or spec.get("timeout_s", DEFAULT_TIMEOUT_S), log_dir,
                           cache_root, Children(inherited_fds=(lock_fd,)), campaign=campaign)
    outcome = ", ".join(f"{count} {status}" for status, count in counts.items()) or "nothing to run"
    print(f"done in {time.perf_counter() - start:.0f} s: {outcome}; rows in {args.csv}")
    return 0 if set(counts) <= {"ok"} else 1


def still_to_run(configs: list, csv: Path) -> list:
    """The configurations without an ok row in the CSV (matched on what they run, not how the command is spelled)."""
    done = completed_keys(csv, configs[0].script) if configs else set()
    return [config for config in configs if config.key() not in done]


def plan(configs: list, todo: list, csv: Path) -> str:
    return (f"{len(configs)} configuration{'s' * (len(configs) != 1)}, {len(configs) - len(todo)} already ok in {csv}, "
            f"{len(todo)} to run")


if __name__ == "__main__":
    sys.exit(main())
