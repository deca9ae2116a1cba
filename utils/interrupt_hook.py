"""Imported first by every script, before torch: a Ctrl-C that no handler of the script catches (above all one during
the seconds that torch, diffusers and torchao take to import) ends the run with one line on stderr instead of a
traceback through the importers. Python still ends the process by SIGINT, so the shell sees exit status 130."""

import sys


def one_line_on_interrupt(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        print("interrupted (Ctrl-C)", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, traceback)


sys.excepthook = one_line_on_interrupt
