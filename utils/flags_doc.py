"""docs/flags.md, generated from the scripts' own parsers and the quantization registry, so that it cannot drift
from them (tests/test_flags_doc.py regenerates it and compares).

    python -m utils.flags_doc            # rewrite docs/flags.md
"""

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C during the imports below is one line)

# isort: split

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

from utils.parser import Parser
from utils.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "flags.md"
# script path -> module with build_parser(); the image benchmark first, in full; the others after it.
SCRIPTS = {
    "inference/benchmark_image.py": "inference.benchmark_image",
    "inference/benchmark_video.py": "inference.benchmark_video",
    "inference/sweep.py": "inference.sweep",
    "inference/serialize.py": "inference.serialize",
    "inference/quantization_time.py": "inference.quantization_time",
    "training/train_fp8.py": "training.train_fp8",
}
# Defaults that depend on the machine the doc is generated on, as they read on any machine.
MACHINE_DEFAULTS = {"device": "`cuda` if available, else `cpu`"}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def flag_names(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
    if action.choices is not None and not isinstance(action.choices, dict):
        names += " {" + ",".join(str(choice) for choice in action.choices) + "}"
    elif action.nargs != 0 and action.metavar:
        names += f" {action.metavar}"
    return names


def default_text(action: argparse.Action) -> str:
    if action.dest in MACHINE_DEFAULTS:
        return MACHINE_DEFAULTS[action.dest]
    default = action.default
    if action.nargs == 0 or default is None or default is argparse.SUPPRESS or default == []:
        return ""
    if isinstance(default, Path) and default.is_absolute() and default.is_relative_to(REPO_ROOT):
        default = default.relative_to(REPO_ROOT)
    return f"`{default}`"


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as written, without the "(default: ...)" that the scripts' formatter appends (its own column here,
    where a machine-dependent default is spelled out)."""
    return argparse.HelpFormatter(parser.prog)._expand_help(action) if action.help else ""


def flag_rows(parser: argparse.ArgumentParser, skip: set[str] = frozenset()) -> list[str]:
    """One table row per flag of `parser`, by argument group, with a header row per group."""
    rows = []
    for group in parser._action_groups:
        actions = [action for action in group._group_actions
                   if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
                   and action.dest not in skip]
        if not actions:
            continue
        if group.title not in ("options", "optional arguments", "positional arguments"):
            rows.append(f"| **{_cell(group.title)}** | | |")
        for action in actions:
            rows.append(f"| {_cell(flag_names(action))} | {_cell(help_text(parser, action))} | "
                        f"{_cell(default_text(action))} |")
    return rows


def table(rows: list[str]) -> list[str]:
    return ["| flag | what it does | default |", "|---|---|---|", *rows]


def dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if not isinstance(action, argparse._HelpAction)}


def config_text(config) -> str:
    """A torchao config as its class and the arguments that differ from the class's defaults (set_inductor_config,
    False on every config of the suite, left out)."""
    default = type(config)()
    changed = [f"{field.name}={getattr(config, field.name)!r}" for field in dataclasses.fields(config)
               if field.name != "set_inductor_config" and getattr(config, field.name) != getattr(default, field.name)]
    return f"{type(config).__name__}({', '.join(changed)})"


def quantization_table() -> list[str]:
    from utils.quant import FP8_MIN_CAPABILITY, QUANTIZATIONS

    fp8 = ".".join(map(str, FP8_MIN_CAPABILITY))
    rows = ["| name | what it quantizes | torchao config | runs on |", "|---|---|---|---|"]
    for name, method in QUANTIZATIONS.items():
        if method.removed:
            config, where = "removed", "—"
        elif method.make_config is None:
            config, where = "—", "CPU, CUDA"
        else:
            config = f"`{config_text(method.make_config(False))}`"
            where = "CUDA" if method.cuda_only else "CPU, CUDA"
            if method.min_capability:
                where += f" (compute capability ≥ {fp8})" if method.cuda_only else f" (CUDA: ≥ {fp8})"
        if method.planned:
            config = "per layer group, one of the above (`utils/autoquant.py`)"
            where = "CPU, CUDA"
        summary = method.removed or method.summary
        rows.append(f"| `{name}` | {_cell(summary)} | {config} | {where} |")
    return rows


def render() -> str:
    parsers = {script: importlib.import_module(module).build_parser() for script, module in SCRIPTS.items()}
    image = parsers["inference/benchmark_image.py"]
    lines = ["# Flags and quantization names", "",
             "<!-- generated by `python -m utils.flags_doc` from the scripts' parsers and utils/quant.py; do not "
             "edit -->", "",
             "Every script also takes `-h` / `--help`. Bad input stops before any model is built, with one line on "
             "stderr and exit code 2.", "",
             "## `inference/benchmark_image.py`", "", *table(flag_rows(image)), ""]
    video = parsers["inference/benchmark_video.py"]
    missing = sorted(dests(image) - dests(video))
    lines += ["## `inference/benchmark_video.py`", "",
              "The flags of the image benchmark (`--save_video` in place of `--save_image`), except "
              + (", ".join(f"`{name}`" for name in missing) or "none") + ", and these:", "",
              *table(flag_rows(video, skip=dests(image))), ""]
    for script in ("inference/sweep.py", "inference/quantization_time.py", "training/train_fp8.py"):
        lines += [f"## `{script}`", "", *table(flag_rows(parsers[script])), ""]
    serialize = parsers["inference/serialize.py"]
    lines += ["## `inference/serialize.py`", ""]
    for action in serialize._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                lines += [f"### `serialize.py {name}`", "", _cell(helps.get(name, "")), "",
                          *table(flag_rows(sub)), ""]
    lines += ["## Quantization names (`--quantization`; the video script's `--dtype` takes them too)", "",
              *quantization_table(), "",
              "Every config is created with `set_inductor_config=False` (`--torchao_inductor_config` turns it on).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    Parser(prog="python -m utils.flags_doc", description=__doc__.split("\n\n")[0]).parse_args(argv)
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
