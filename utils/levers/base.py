"""What the lever modules share."""

from dataclasses import fields

import numpy as np


def is_set(value) -> bool:
    """A boolean setting or column is on. CSVs written before a column existed leave it empty (NaN), which is off."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def same_named(config, columns_class) -> dict:
    """The config values of the columns that share their name with a setting."""
    return {field.name: getattr(config, field.name) for field in fields(columns_class) if hasattr(config, field.name)}


def off_as(off: str):
    """An argparse type for a flag whose off value is spelled `off`: "none" and "off", in any case, mean it too, so
    every flag of the suite is switched off the same way."""
    def parse(value: str) -> str:
        return off if value.lower() in ("none", "off") else value

    return parse


def text(value) -> str:
    """A text column of a report row: "" for an empty cell (NaN)."""
    return value if isinstance(value, str) else ""
