"""CLI verbs: each module has `add_parser(subparsers)`; its parser's `run(args)` does the work."""

from pydarknet.commands import detect, summary

COMMANDS = [summary, detect]
