"""CLI verbs: each module has `add_parser(subparsers)`; its parser's `run(args)` does the work."""

from pydarknet.commands import anchors, convert, evaluate, partial, summary, train

COMMANDS = [train, evaluate, anchors, convert, partial, summary]
