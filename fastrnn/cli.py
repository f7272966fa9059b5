"""The ``fastrnn`` command line. It parses arguments and calls the library; nothing else."""

import sys

import click

from . import __version__
from .exceptions import FastRNNError


@click.group(context_settings=dict(help_option_names=["-h", "--help"]))
@click.version_option(__version__, "-V", "--version", prog_name="fastrnn")
def cli():
    """Train and study small vanilla RNNs with backpropagation through time."""


def main(argv=None):
    """Entry point of the installed ``fastrnn`` command."""
    try:
        cli.main(args=argv, prog_name="fastrnn", standalone_mode=True)
    except FastRNNError as exc:  # pragma: no cover - commands catch their own first
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
