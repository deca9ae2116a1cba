"""--persistent_reductions_up_to N: let inductor keep a whole row on chip (a persistent reduction: one pass over the
row) for rows of up to N elements, instead of its default 1024. FLUX's norms, adaLN modulations and the row-wise
fp8 activation quantization before every quantized Linear reduce rows of 3072 to 15360 elements; above the limit
inductor reads each row twice (or more), once for the reduction and once for the elementwise work."""

from dataclasses import dataclass

import torch

from utils.cli import positive_int
from utils.errors import UsageError
from utils.levers.base import same_named


@dataclass(frozen=True, kw_only=True)
class Settings:
    persistent_reductions_up_to: int | None = None


@dataclass
class Columns:
    persistent_reductions_up_to: int | None = None


def add_flags(parser) -> None:
    group = parser.add_argument_group("inductor reductions")
    group.add_argument("--persistent_reductions_up_to", type=positive_int, default=None, metavar="N",
                       help="rows of up to N elements are reduced in one pass with the row held on chip (inductor's "
                            "default: 1024); needs a compile flag")


def settings(flags, run) -> Settings:
    return Settings(persistent_reductions_up_to=flags.persistent_reductions_up_to)


def check(config) -> None:
    if config.persistent_reductions_up_to is not None and not (config.compile or config.compile_vae):
        raise UsageError("--persistent_reductions_up_to changes inductor's code: it needs --compile, "
                         "--regional_compile or --compile_vae")


def columns(config) -> dict:
    return same_named(config, Columns)


def label(row) -> str | None:
    limit = row.get("persistent_reductions_up_to")
    return f"persistent reductions ≤ {int(limit)}" if limit == limit and limit is not None else None


def choices_class(limit: int):
    """An InductorChoices class whose inner (row) reductions stay persistent up to `limit` elements; everything else,
    and every other choice, is inductor's own. The class is made at module level (inductor pickles its config into
    the compile cache key) and takes the limit as a class attribute."""
    from torch._inductor.choices import InductorChoices
    from torch._inductor.runtime.hints import ReductionHint
    from torch._inductor.virtualized import V

    global WiderPersistentReductions

    class WiderPersistentReductions(InductorChoices):
        LIMIT = limit

        def should_use_persistent_reduction(self, features, cooperative_reduction) -> bool:  # inductor asks V.choices
            inner = features.get_reduction_hint() == ReductionHint.INNER
            if inner and not cooperative_reduction and torch._inductor.config.triton.persistent_reductions:
                return V.graph.sizevars.statically_known_leq(features.reduction_numel, self.LIMIT)
            return InductorChoices.should_use_persistent_reduction(features, cooperative_reduction)

        def uuid(self) -> str:  # part of the compile cache key: graphs compiled with another limit are not reused
            return f"persistent-reductions-up-to-{self.LIMIT}"

    WiderPersistentReductions.__qualname__ = "WiderPersistentReductions"
    return WiderPersistentReductions


WiderPersistentReductions = None  # the class choices_class() made last (module level, so that it pickles)


def keep_rows_on_chip_up_to(limit: int) -> None:
    """Process-wide, before the first compile: inductor reduces rows of up to `limit` elements in one pass."""
    torch._inductor.config.inductor_choices_class = choices_class(limit)


def apply(config) -> None:
    keep_rows_on_chip_up_to(config.persistent_reductions_up_to)
