"""The scripts' argument parser: one line on stderr and exit code 2 for bad input, and help that shows the defaults
worth reading. Imports nothing beyond the standard library, so that tools that do not need torch stay light."""

import argparse
import sys


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" only where there is a default worth reading: not None (such helps say what happens
    without the flag), an off switch or an empty list."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line on stderr (no usage dump) and exits with code 2."""

    def __init__(self, **kwargs):
        super().__init__(formatter_class=DefaultsFormatter, **kwargs)

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None):
        # Every argument lands in the row's command column, written as UTF-8: refuse now what could not be written.
        for arg in sys.argv[1:] if args is None else args:
            try:
                str(arg).encode("utf-8")
            except UnicodeEncodeError:
                self.error(f"argument {arg.encode('utf-8', 'replace').decode()!r} is not valid UTF-8")
        return super().parse_known_args(args, namespace)
