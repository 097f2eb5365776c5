"""CLI verbs: each module has `add_parser(subparsers)`; its parser's `run(args)` does the work."""

from pydarknet.commands import anchors, classifier, convert, demo, detect, evaluate, partial, summary, train

COMMANDS = [detect, demo, train, evaluate, anchors, convert, partial, summary, classifier]
