"""docs/flags.md is what `python -m utils.flags_doc` writes from the parsers today: a flag added, renamed or
re-documented without regenerating it fails here."""

import argparse

from tests.conftest import REPO_ROOT
from utils import flags_doc
from utils.quant import QUANTIZATIONS


def test_docs_flags_md_is_generated_from_the_parsers():
    assert (REPO_ROOT / "docs" / "flags.md").read_text() == flags_doc.render(), "run `python -m utils.flags_doc`"


def test_every_flag_and_quantization_name_is_in_it():
    text = flags_doc.render()
    image = flags_doc.importlib.import_module("inference.benchmark_image").build_parser()
    for action in image._actions:
        if not isinstance(action, argparse._HelpAction):
            assert f"`{action.option_strings[0]}`" in text, action.option_strings
    for name in QUANTIZATIONS:
        assert f"| `{name}` |" in text, name


def test_no_default_depends_on_the_machine():
    assert str(REPO_ROOT) not in flags_doc.render()
