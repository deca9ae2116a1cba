"""What every kind of report shares: markdown tables, numbers as the tables print them, and which rows a newer run
(or a note in the superseded_by column) takes out of the tables."""

from dataclasses import asdict

import pandas as pd

from utils.levers.base import text

OLDER_SPELLINGS = {"bfloat16": "bf16"}  # dtype as rows written before the video script spell it
NO_RATIO = "—"  # a ratio with no denominator in the row's own campaign


def configuration_value(value, default) -> str:
    """A value as the configuration key compares it: a missing one (a column an older version did not write) as the
    schema's default, 1.0 as 1, older spellings as today's."""
    value = default if value != value else value
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    return str(OLDER_SPELLINGS.get(value, value))


def configuration_keys(group: pd.DataFrame, columns: list[str], row_class) -> list[str]:
    defaults = asdict(row_class())
    return ["|".join(configuration_value(value, defaults.get(column)) for column, value in zip(columns, values))
            for values in group[columns].itertuples(index=False)]


def newest_runs(group: pd.DataFrame, columns: list[str], row_class) -> tuple[pd.DataFrame, list[tuple]]:
    """The group without the rows that no longer stand: those with a superseded_by note; within one campaign, the
    runs of a configuration (same values in `columns`) before its newest finished one; and a failure that a later
    finished run of its configuration, in any campaign, left behind. A campaign keeps its other rows even where a
    later campaign measured them again: its own comparisons stand. Newer = later timestamp, then later in the file.
    Returns the rows kept and, for each row left out, (row, why): a note, or the index of the newer row."""
    noted = group.get("superseded_by", pd.Series("", index=group.index)).map(text)
    keys = configuration_keys(group, columns, row_class)
    moments = [(stamp if isinstance(stamp, str) else "", position) for position, stamp in enumerate(group.timestamp)]
    newest_ok, newest_in_unit = {}, {}  # a row with a note still counts as a later finished run
    for key, unit, moment, status, index in zip(keys, group.unit, moments, group.status, group.index):
        if status == "ok":
            for table, name in ((newest_ok, key), (newest_in_unit, (key, unit))):
                if moment >= table.get(name, (moment, None))[0]:
                    table[name] = (moment, index)
    keep, left_out = [], []
    for key, unit, moment, (index, row) in zip(keys, group.unit, moments, group.iterrows()):
        if noted[index]:
            keep.append(False)
            left_out.append((row, f"superseded: {noted[index]}"))
            continue
        newer = newest_in_unit.get((key, unit)) if row.status == "ok" else newest_ok.get(key)
        newer = newer or newest_in_unit.get((key, unit))
        stands = newer is None or moment >= newer[0]
        keep.append(stands)
        if not stands:
            left_out.append((row, ("newer", newer[1])))
    return group[keep], left_out


def left_out_note(left_out: list[tuple], describe, labels: dict[str, str], group: pd.DataFrame,
                  time_column: str = "time_median_s") -> list[str]:
    """One line per row left out of a table: what it was, its campaign and time, and why."""
    if not left_out:
        return []
    lines = ["", "Left out of this table and its plot (the CSV keeps every row):", ""]
    for row, why in left_out:
        seconds = row.get(time_column)
        measured = f", {seconds:.3f} s" if isinstance(seconds, float) and seconds == seconds else ""
        if isinstance(why, tuple):  # ("newer", index of the newer row)
            newer = group.loc[why[1]]
            why = ("measured again later in the same campaign" if newer.unit == row.unit
                   else f"measured again, and finished, in {labels[newer.unit]}")
        status = "" if row.status == "ok" else f", {row.status}"
        lines.append(f"- {describe(row)} ({labels[row.unit]}{measured}{status}): {why}.")
    return lines


def to_markdown(table: pd.DataFrame, columns: dict[str, str], text_columns=None, error_width: int = 60,
                floatfmt: str = ".3f") -> str:
    """The columns of `table` under their headers, the error cut to `error_width`. With `text_columns`, those are
    left-aligned and the others right-aligned (also when blank); else tabulate aligns by content."""
    table = table.reindex(columns=list(columns))
    if "error" in table:
        table["error"] = [text[:error_width] if isinstance(text, str) else None for text in table["error"]]
    align = {} if text_columns is None else {"colalign": ["left" if name in text_columns else "right"
                                                         for name in columns]}
    table = table.astype(object).where(table.notna(), None).rename(columns=columns)
    return table.to_markdown(index=False, floatfmt=floatfmt, missingval="", **align)


def time_ratio(reference: float, time_s: float) -> float:
    """How many times faster `time_s` is than `reference`; NaN where either is missing or the time is zero."""
    return reference / time_s if time_s else float("nan")


def ratio_cells(values, finished) -> list:
    """Ratios as the tables print them (text, right-aligned by the caller): 3 decimals, or NO_RATIO where the row
    finished but its campaign has no denominator; blank for a row that did not finish."""
    return [None if not done else NO_RATIO if value != value else f"{value:.3f}"
            for value, done in zip(values, finished)]
