"""Campaigns in the reports: which rows may be divided by each other, the short labels (C1, C2, ...) the tables use,
and the table that says what each label is. A campaign is one sweep, ladder or job-script run (utils.campaign); the
reports compare rows of one campaign on one host only. Rows written before the campaign column get one by the rule
in docs/campaigns.md (LEGACY_GAP_S below); results/commands/backfill_campaigns.py wrote it, and the exceptions the
repository's records call for, into the committed CSVs."""

import shlex
from pathlib import Path

import pandas as pd

from utils.levers.base import text

# Rows without a campaign: those of one git sha, one GPU and one output file (--csv in the command) more than this
# apart came from different runs; no configuration of those runs took longer.
LEGACY_GAP_S = 600
UNKNOWN = "?"


def output_stem(command) -> str:
    """The stem of the CSV a recorded command appended to ("" when it names none)."""
    try:
        words = shlex.split(str(command))
    except ValueError:
        return ""
    for position, word in enumerate(words):
        if word == "--csv" and position + 1 < len(words):
            return Path(words[position + 1]).stem
        if word.startswith("--csv="):
            return Path(word.split("=", 1)[1]).stem
    return ""


def legacy_campaign_ids(frame: pd.DataFrame) -> pd.Series:
    """Campaign ids by the legacy rule for every row of `frame`: `<sha>:<output file>:<MMDDTHHMM of its first row>`
    for rows of one sha, GPU and output file with no gap over LEGACY_GAP_S between them."""
    ids = pd.Series("", index=frame.index, dtype=object)
    keys = pd.DataFrame({"sha": frame.git_sha.map(text), "gpu": frame.gpu.map(text),
                         "output": [output_stem(command) for command in frame.command],
                         "moment": pd.to_datetime(frame.timestamp, errors="coerce", utc=True)}, index=frame.index)
    for (sha, _, output), group in keys.groupby(["sha", "gpu", "output"], sort=False):
        start = previous = None
        for index, moment in group.moment.sort_values(kind="stable").items():
            if moment is pd.NaT or start is None or (moment - previous).total_seconds() > LEGACY_GAP_S:
                start = moment
            previous = moment
            when = f"row{index}" if start is pd.NaT else start.strftime("%m%dT%H%M")
            ids[index] = f"{sha or 'unknown'}:{output or 'unknown'}:{when}"
    return ids


def with_campaigns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every row's campaign filled (the legacy rule where the column is empty) and its `unit`: the
    campaign on its host, within which rows are compared."""
    given = frame.campaign.map(text)
    campaigns = given.where(given != "", legacy_campaign_ids(frame))
    hosts = frame.host.map(text)
    return frame.assign(campaign=campaigns, unit=campaigns + "|" + hosts)


def campaign_labels(frame: pd.DataFrame) -> dict[str, str]:
    """unit -> C1, C2, ... in the order of each unit's first row."""
    first = frame.assign(moment=frame.timestamp.map(text)).groupby("unit", sort=False).moment.min()
    ordered = sorted(first.index, key=lambda unit: first[unit])
    return {unit: f"C{number}" for number, unit in enumerate(ordered, start=1)}


def time_range(stamps: pd.Series) -> str:
    moments = pd.to_datetime(stamps, errors="coerce", utc=True).dropna()
    if moments.empty:
        return UNKNOWN
    start, end = moments.min(), moments.max()
    tail = end.strftime("%H:%M") if start.date() == end.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M}–{tail}"


def joined(values) -> str:
    kept = [text(value) if not isinstance(value, float) else "" for value in values]
    return ", ".join(dict.fromkeys(value for value in kept if value)) or UNKNOWN


def render_campaigns(frame: pd.DataFrame, labels: dict[str, str], compiles) -> list[str]:
    """The table of the file's campaigns: what each label stands for. `compiles(row)` says whether a row compiled
    anything (its compile_start then matters)."""
    lines = ["", "Campaigns (each one sweep, ladder or job-script run; no ratio or pick mixes two; see "
                 "docs/campaigns.md):", "",
             "| campaign | id | GPU | host | GPU index | rows written (UTC) | sha | rows | compile caches at start |",
             "|---|---|---|---|---|---|---|---:|---|"]
    for unit, label in labels.items():
        rows = frame[frame.unit == unit]
        compiled = [row for _, row in rows.iterrows() if compiles(row)]
        starts = joined(text(row.get("compile_start")) or UNKNOWN for row in compiled) if compiled else "—"
        lines.append(f"| {label} | `{rows.campaign.iloc[0]}` | {joined(rows.gpu)} | {joined(rows.host)} | "
                     f"{joined(rows.gpu_index.map(index_text))} | {time_range(rows.timestamp)} | "
                     f"{joined(rows.git_sha)} | {len(rows)} | {starts} |")
    return lines


def index_text(value) -> str:
    """A GPU index as written: pandas reads a column of plain indices as numbers."""
    if isinstance(value, float):
        return "" if value != value else str(int(value))
    return text(value) or (str(value) if value is not None else "")


def cache_state(row, compiles: bool) -> str | None:
    """The compile cache column of a row: its compile_start, "?" when it compiled but was written before the column
    existed, nothing when it compiled nothing."""
    if not compiles:
        return None
    return text(row.get("compile_start")) or UNKNOWN
