"""Numbers the README and docs quote from committed results, each checked against the row it names.

A quoted number carries a marker right after it, an HTML comment that GitHub does not show:

    the recipe took 2.975 s<!--=ladder-5.t-->, 1.79×<!--=ladder-1.t/ladder-5.t--> bf16 eager's speed

The marker holds an expression over `ROW.COLUMN` references, numbers, + - * / and parentheses. ROW is a name from
docs/quoted-rows.md, where each name maps to a results file and a selector that picks exactly one of its rows (a
CSV: column=value to match a cell, column~text for a cell that contains the text; `config` is the configuration
in the reports' words) or one object (a JSON file: a key path, then key=value pairs that pick one item of the list
there). COLUMN is a column of that row (a dotted key path in a JSON object) or one of the short names in SHORT. The
number must read exactly as the expression's value printed with the decimals the text shows (`f"{value:.2f}"` for
"1.79"). An expression over two or more rows (a ratio, a difference) may only combine rows of one campaign on one
host, or of one JSON file (one process): docs/campaigns.md.

Around each marker (its paragraph, table or list, or the block right before it) the text must say "random weights"
when a row it names ran on random weights, and name the GPU of each row (H100, H200).

In the README, every number that reads like a result (followed by s, ms, GiB, GB, dB, %, or ×) and every decimal
alone in a table cell must carry a marker, or `<!--seed-->` (a figure the seed README published) or
`<!--bound-->` (a target or limit we set, not a measurement).

    python -m utils.quotes                    # check every quote (README, docs/, ...); one line per problem
    python -m utils.quotes --show NAME        # every column of the row NAME selects (for updating a quote)
"""

import utils.interrupt_hook  # noqa: F401  (first: a Ctrl-C during the imports below is one line)

# isort: split

import ast
import difflib
import json
import math
import re
import shlex
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from utils.parser import Parser
from utils.paths import REPO_ROOT

ROWS_FILE = REPO_ROOT / "docs" / "quoted-rows.md"
# Short column names for the quotes that recur; any column's full name works too.
SHORT = {
    "benchmark": {"t": "time_median_s", "peak": "inference_memory_GiB", "model": "model_memory_GiB",
                  "compile": "compile_s", "plan": "plan_s", "psnr": "psnr_db"},
    "training": {"t": "step_median_s", "peak": "peak_memory_GiB", "compile": "compile_s"},
}
MARKER = re.compile(r"<!--=(.*?)-->")
OTHER_MARKERS = ("<!--seed-->", "<!--bound-->")
REFERENCE = re.compile(r"\b([A-Za-z][\w-]*)\.([A-Za-z_][\w.]*)")
UNIT = r"(?:\s?(?:s|ms|GiB|GB|dB)\b|%|×(?!\s?\d))"
NUMBER_BEFORE = re.compile(r"(\d+(?:\.\d+)?)" + UNIT + r"?\**$")
RESULT_LIKE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)" + UNIT)
DECIMAL_CELL = re.compile(r"^\**(\d+\.\d+)\**$")
GPUS = ("H100", "H200", "A100")


@dataclass(frozen=True)
class Source:
    """One row (or JSON object) a name selects."""
    name: str
    file: str  # relative to the repository root
    values: dict
    unit: str  # rows of one unit may be divided by each other: campaign|host, or the JSON file
    kind: str = "benchmark"
    weights: str = ""  # random | pretrained | "" (not recorded)
    gpu: str = ""

    def value(self, column: str) -> float:
        column = SHORT.get(self.kind, {}).get(column, column)
        value = self.values
        for key in column.split("."):
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"{self.name}: no column {column!r} in {self.file}")
            value = value[key]
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}.{column} is {value!r}, not a number") from None


@dataclass
class Quote:
    path: str
    line: int
    number: str  # as the text writes it
    expression: str
    block: str = field(repr=False)  # its paragraph, table or list and the block before it


def parse_rows_table(text: str) -> dict[str, tuple[str, str]]:
    """name -> (file, selector) from the table of docs/quoted-rows.md."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip().strip("`") for cell in line.split("|")[1:-1]]
        if len(cells) == 3 and cells[0] not in ("name", "") and not set(cells[0]) <= set("-:"):
            if cells[0] in rows:
                raise ValueError(f"{ROWS_FILE.name}: {cells[0]} is defined twice")
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _cell_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _matches(cell, wanted: str) -> bool:
    text = _cell_text(cell)
    if text == wanted:
        return True
    try:
        return float(text) == float(wanted)
    except ValueError:
        return False


def _filters(selector: str) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """The words of a selector and its filters: (column, value, True) for column=value (equal), (column, text,
    False) for column~text (contains)."""
    words, filters = [], []
    for token in shlex.split(selector):
        match = re.match(r"([\w.]+)([=~])(.*)$", token, flags=re.DOTALL)
        if match:
            filters.append((match.group(1), match.group(3), match.group(2) == "="))
        else:
            words.append(token)
    return words, filters


def _passes(cell, value: str, equal: bool) -> bool:
    return _matches(cell, value) if equal else value in _cell_text(cell)


@cache
def _csv_frame(path: str) -> pd.DataFrame:
    from utils.optimize import describe
    from utils.report_campaigns import with_campaigns
    from utils.results import read_rows

    frame = with_campaigns(read_rows(REPO_ROOT / path))
    if (frame.kind == "benchmark").all():
        frame = frame.assign(config=[describe(row) for _, row in frame.iterrows()])
    return frame


def _select_csv(name: str, path: str, selector: str) -> Source:
    frame = _csv_frame(path)
    words, filters = _filters(selector)
    if words:
        raise ValueError(f"{name}: a CSV selector is column=value pairs, got {words}")
    chosen = frame
    for column, value, equal in filters:
        if column not in frame:
            raise ValueError(f"{name}: {path} has no column {column!r}")
        chosen = chosen[[_passes(cell, value, equal) for cell in chosen[column]]]
    if len(chosen) != 1:
        raise ValueError(f"{name}: `{selector}` selects {len(chosen)} rows of {path}, not one")
    row = chosen.iloc[0].to_dict()
    return Source(name, path, row, unit=str(row["unit"]), kind=str(row["kind"]), weights=_cell_text(row.get("weights")),
                  gpu=_cell_text(row.get("gpu")))


def _select_json(name: str, path: str, selector: str) -> Source:
    data = json.loads((REPO_ROOT / path).read_text())
    words, filters = _filters(selector)
    chosen = data
    for key in ".".join(words).split(".") if words else []:
        chosen = chosen[key]
    if filters:
        items = [item for item in chosen if all(_passes(item.get(key), value, equal) for key, value, equal in filters)]
        if len(items) != 1:
            raise ValueError(f"{name}: `{selector}` selects {len(items)} objects of {path}, not one")
        chosen = items[0]
    if not isinstance(chosen, dict):
        raise ValueError(f"{name}: `{selector}` does not select an object of {path}")
    return Source(name, path, chosen, unit=path, kind="json", weights=str(data.get("weights", "")),
                  gpu=str(data.get("gpu", "")))


def load_sources(rows_file: Path = ROWS_FILE) -> dict[str, Source]:
    """Every name of the rows table resolved to its row; raises ValueError for a name that selects no row or
    several, or a file that does not exist."""
    sources = {}
    for name, (path, selector) in parse_rows_table(rows_file.read_text()).items():
        if not (REPO_ROOT / path).is_file():
            raise ValueError(f"{name}: no such file {path}")
        select = _select_json if path.endswith(".json") else _select_csv
        sources[name] = select(name, path, selector)
    return sources


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    kept, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        kept.append((number, "" if fenced else line))
    return kept


def _blocks(lines: list[tuple[int, str]]) -> dict[int, str]:
    """Line number -> the text of its block (lines between blank lines) and of the block before it."""
    blocks, current = [], []
    for number, line in lines:
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    context = {}
    for position, block in enumerate(blocks):
        before = "\n".join(line for _, line in blocks[position - 1]) if position else ""
        text = before + "\n" + "\n".join(line for _, line in block)
        for number, _ in block:
            context[number] = text
    return context


def _blank_code_spans(line: str) -> str:
    return re.sub(r"`[^`]*`", lambda match: " " * len(match.group(0)), line)


def find_quotes(text: str, path: str = "README.md") -> tuple[list[Quote], list[str]]:
    """The marked numbers of a markdown text, and a problem for each marker with no number right before it."""
    lines = _prose_lines(text)
    context = _blocks(lines)
    quotes, problems = [], []
    for number, line in lines:
        line = _blank_code_spans(line)  # a marker shown in backticks is an example
        for match in MARKER.finditer(line):
            before = NUMBER_BEFORE.search(line[:match.start()])
            if not before:
                problems.append(f"{path}:{number}: a marker with no number right before it: {match.group(0)}")
                continue
            quotes.append(Quote(path, number, before.group(1), match.group(1).strip(), context[number]))
    return quotes, problems


def evaluate(expression: str, sources: dict[str, Source]) -> tuple[float, list[Source]]:
    """The value of a marker's expression and the rows it names."""
    used, names = [], {}

    def placeholder(match: re.Match) -> str:
        if match.group(1) not in sources:
            raise KeyError(f"no row named {match.group(1)!r} in {ROWS_FILE.relative_to(REPO_ROOT)}")
        source = sources[match.group(1)]
        used.append(source)
        names[f"_q{len(names)}"] = source.value(match.group(2))
        return f"_q{len(names) - 1}"

    tree = ast.parse(REFERENCE.sub(placeholder, expression), mode="eval")

    def value(node) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        operators = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__,
                     ast.Div: float.__truediv__}
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            return operators[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not allowed in a quote: {ast.dump(node)[:60]}")

    return value(tree), used


def referenced_names(expression: str) -> set[str]:
    return {match.group(1) for match in REFERENCE.finditer(expression)}


def gpu_name(gpu: str) -> str:
    return next((name for name in GPUS if name in gpu), "")


def check_quote(quote: Quote, sources: dict[str, Source]) -> list[str]:
    where = f"{quote.path}:{quote.line}"
    try:
        value, used = evaluate(quote.expression, sources)
    except (KeyError, ValueError, SyntaxError, ZeroDivisionError) as error:
        return [f"{where}: {quote.number} <!--={quote.expression}-->: {error}"]
    problems = []
    decimals = len(quote.number.split(".", 1)[1]) if "." in quote.number else 0
    printed = f"{value:.{decimals}f}"
    if printed != quote.number:
        problems.append(f"{where}: the text says {quote.number}, its rows give {printed} ({quote.expression})")
    units = {source.unit for source in used}
    if len(units) > 1:
        problems.append(f"{where}: {quote.expression} combines rows of {len(units)} campaigns or files: "
                        f"{', '.join(sorted(units))}")
    context = quote.block.lower()
    if any(source.weights == "random" for source in used) and "random weights" not in context:
        problems.append(f"{where}: {quote.number} comes from random weights and its text does not say so")
    for gpu in sorted({gpu_name(source.gpu) for source in used} - {""}):
        if gpu.lower() not in context:
            problems.append(f"{where}: {quote.number} was measured on an {gpu} and its text does not say so")
    return problems


def unmarked_numbers(text: str, path: str = "README.md") -> list[str]:
    """Result-like numbers with no marker after them (see the module docstring)."""
    problems = []
    for number, line in _prose_lines(text):
        line = _blank_code_spans(line)  # code is not a result
        for marker in OTHER_MARKERS:  # a seed figure or a bound: marked, as "@"
            line = line.replace(marker, "@" * len(marker))
        line = re.sub(r"<!--(?!=).*?-->", lambda match: " " * len(match.group(0)), line)  # other comments mark nothing
        line = re.sub(r"\]\([^)]*\)", lambda match: " " * len(match.group(0)), line)  # link targets
        spans = [match.span(1) for match in RESULT_LIKE.finditer(line)]
        if line.startswith("|"):
            position = 0
            for cell in line.split("|"):
                stripped = cell.strip()
                start = position + cell.find(stripped) if stripped else position
                found = DECIMAL_CELL.match(re.sub(r"<!--.*?-->", "", stripped))
                if found and "<!--" not in stripped:
                    spans.append((start, start + len(stripped)))
                position += len(cell) + 1
        for start, end in sorted(set(spans)):
            after = re.match(r"[\d.]*" + UNIT + r"?\**", line[end:])
            rest = line[end + (after.end() if after else 0):]
            if not rest.startswith(("<!--=", "@")):
                problems.append(f"{path}:{number}: {line[start:end]} reads like a result and has no marker")
    return problems


def check_files(paths: list[Path], sources: dict[str, Source] | None = None, every_number: tuple = ()) -> list[str]:
    """Every problem of the quotes in `paths`; the files in `every_number` must also mark every result-like
    number."""
    sources = load_sources() if sources is None else sources
    problems = []
    for path in paths:
        name = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
        text = path.read_text()
        quotes, found = find_quotes(text, name)
        problems += found
        for quote in quotes:
            problems += check_quote(quote, sources)
        if path in every_number:
            problems += unmarked_numbers(text, name)
    return problems


def quoted_files() -> list[Path]:
    """Every hand-written markdown file that may quote results."""
    folders = ("docs", "inference", "training", "results")
    return [REPO_ROOT / "README.md", *sorted(path for folder in folders for path in (REPO_ROOT / folder).glob("*.md"))]


def main(argv=None) -> int:
    parser = Parser(prog="python -m utils.quotes",
                    description="Check every number the README and docs quote against its row.")
    parser.add_argument("files", nargs="*", type=Path,
                        help="markdown files to check (default: README.md and every .md in docs/, inference/, "
                             "training/ and results/)")
    parser.add_argument("--show", metavar="NAME",
                        help="print every column of the row NAME (a name from docs/quoted-rows.md) selects, to "
                             "update a quote")
    args = parser.parse_args(argv)
    if args.show is not None:
        if args.files:
            parser.error("--show NAME prints one row: give it alone, without files to check")
        sources = load_sources()
        if args.show not in sources:
            near = difflib.get_close_matches(args.show, sources, n=3)
            parser.error(f"--show {args.show}: no such row name in {ROWS_FILE.relative_to(REPO_ROOT)}"
                         + (f" (did you mean {', '.join(near)}?)" if near else ""))
        source = sources[args.show]
        print(f"{source.name}: {source.file} ({source.unit})")
        for column, value in source.values.items():
            print(f"  {column} = {value}")
        return 0
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        parser.error(f"not a file: {', '.join(missing)}")
    for path in args.files:
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            parser.error(f"{path}: not UTF-8 text; give markdown files")
    paths = [path.resolve() for path in args.files] or quoted_files()
    problems = check_files(paths, every_number=(REPO_ROOT / "README.md",))
    print("\n".join(problems) or f"every quote in {len(paths)} files matches its row")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
