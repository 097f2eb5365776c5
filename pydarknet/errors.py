"""Errors pydarknet raises for bad input: each one prints as a single line.

The CLI catches `DarknetError` and prints `pydarknet: <message>` with exit
status 1, so every message must name the file (and line, field) at fault.
"""

import math


class DarknetError(Exception):
    """Bad user input (a file, an option, an argument): one clear line."""


class CfgError(DarknetError):
    """A cfg or .data file that cannot be parsed or built.

    The message starts with `file:line:column:` where the position is known.
    """


class WeightsError(DarknetError):
    """A .weights (or converted) file that does not fit the network."""


class StopRequested(KeyboardInterrupt):
    """A training run stopped by a signal after saving its backup (pydarknet.train.signals); `signum` says which.

    None when another rank of a torchrun job received it.
    """

    def __init__(self, signum: int | None, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class CfgWarning(UserWarning):
    """An option Darknet would ignore (its "Unused field" message)."""


class TrainingOptionWarning(CfgWarning):
    """A training option `pydarknet train` refuses (pydarknet.train.options), in a network built for inference:
    no effect there.  The training options it implements pass in silence."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most `limit` characters ("" for an empty message)."""
    return (str(err).splitlines() or [""])[0][:limit]


def finite_float(text: str) -> float | None:
    """`text` as a finite float, or None for the caller to report (Darknet's atof takes "nan" or junk silently)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
