import os
import signal
import time
import weakref

import pytest
import torch

from utils.paths import REPO_ROOT  # noqa: F401  (tests import it from here)
from utils.pipelines import build_pipeline

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network

TINY = "tiny-flux"


@pytest.fixture(scope="session")
def tiny_pipe():
    """A tiny random-weight Flux pipeline; tests that mutate it must build their own."""
    return build_pipeline(TINY, "random", "cpu", torch.bfloat16, seed=0)


@pytest.fixture
def run_args(tmp_path):
    """Arguments for one fast tiny-flux benchmark run writing only under tmp_path."""
    return ["--ckpt_id", TINY, "--device", "cpu", "--warmup", "1", "--runs", "2",
            "--csv", str(tmp_path / "results.csv"), "--reference_dir", str(tmp_path / "references")]


def expect_exit_2(main, argv, message, capsys):
    """`main(argv)` must stop with exit code 2 and one line on stderr that contains `message`."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def markdown_tables(markdown: str) -> list[list[dict[str, str]]]:
    """Every table of a rendered report after its campaigns table, as rows of {header: cell} (cells stripped)."""
    body = markdown.split("\n## ", 1)[1] if "\n## " in markdown else markdown
    tables, current, header = [], [], None
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.split("|")[1:-1]]
            if header is None:
                header = cells
            elif not set("".join(cells)) <= set(":-"):
                current.append(dict(zip(header, cells)))
        elif header is not None:
            tables.append(current)
            current, header = [], None
    return tables


def signal_swallowed_by_a_weakref_callback(signum=signal.SIGINT):
    """The stop handler raises inside a weakref callback, where Python prints "Exception ignored" and goes on (as
    when Ctrl-C lands in torch.compile's weak-key dictionaries)."""
    class Thing:
        pass

    def callback(_):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises before this ends, into the callback

    thing = Thing()
    reference = weakref.ref(thing, callback)
    del thing
    assert reference() is None


def lose_a_stop_in_call(monkeypatch, module, number: int) -> list:
    """Patch `module.time_call_s` so that its `number`-th call first loses a Ctrl-C in a weakref callback; returns
    the list that counts the calls."""
    real, calls = module.time_call_s, []

    def timed(call, device):
        calls.append(1)
        if len(calls) == number:
            signal_swallowed_by_a_weakref_callback()
        return real(call, device)

    monkeypatch.setattr(module, "time_call_s", timed)
    return calls
