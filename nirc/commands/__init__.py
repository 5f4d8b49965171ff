"""The `nirc` subcommands, one module each (registered in nirc.cli.COMMANDS)."""

import argparse


def count(minimum: int):
    """An argparse type: an integer >= ``minimum`` (argparse prints the usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse
