"""Imported first by every script in inference/ and training/, before torch: a Ctrl-C that no handler of the script
catches (above all one during the seconds that torch, diffusers and torchao take to import) ends the run with one line
on stderr instead of a traceback through the importers. Python still ends the process by SIGINT, so the shell sees
exit status 130. Every other exception goes to the hook that was there before."""

import sys

previous_hook = sys.excepthook


def one_line_on_interrupt(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        print("interrupted (Ctrl-C)", file=sys.stderr)
    else:
        previous_hook(kind, value, traceback)


if sys.excepthook is not one_line_on_interrupt:
    sys.excepthook = one_line_on_interrupt
