"""pydarknet: Darknet's YOLOv2 in PyTorch, with Darknet's numbers.

The names of `__all__` are imported on first use: `pydarknet.Darknet` and `pydarknet.load` come from
pydarknet/api.py, the top floor, so importing a lower floor such as `pydarknet.network` loads no detection or
training code; and `import pydarknet` alone (the CLI's `--help` and `--version`) loads neither PyTorch nor OpenCV.
The inference modules moved into `pydarknet.infer` (docs/architecture.md); their old names
(`pydarknet.detect`, `pydarknet.inference`, ...) still import, with a DeprecationWarning.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import TYPE_CHECKING

from pydarknet.errors import CfgError, DarknetError, WeightsError

if TYPE_CHECKING:
    from pydarknet.api import Darknet, load
    from pydarknet.image import letterbox_image, load_image, resize_image

__all__ = ["CfgError", "Darknet", "DarknetError", "WeightsError", "letterbox_image", "load", "load_image", "resize_image"]
__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 (PEP 562)
    if name in ("Darknet", "load"):
        return getattr(importlib.import_module("pydarknet.api"), name)
    if name in ("letterbox_image", "load_image", "resize_image"):
        return getattr(importlib.import_module("pydarknet.image"), name)
    raise AttributeError(f"module 'pydarknet' has no attribute {name!r}")


MOVED_MODULES = {"pydarknet.detect": "pydarknet.infer.detect", "pydarknet.inference": "pydarknet.infer.engine",
                 "pydarknet.prefetch": "pydarknet.infer.prefetch", "pydarknet.draw": "pydarknet.infer.draw",
                 "pydarknet.winograd": "pydarknet.infer.winograd", "pydarknet.classify": "pydarknet.infer.classify",
                 "pydarknet.hierarchy": "pydarknet.infer.hierarchy"}


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as a module that forwards every attribute to where it lives now."""

    def find_spec(self, name: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} is now {new}", DeprecationWarning, stacklevel=2)
        moved = importlib.import_module(new)
        module = types.ModuleType(spec.name, f"Moved: see {new}.")
        module.__getattr__ = lambda attribute: getattr(moved, attribute)  # PEP 562
        module.__dir__ = lambda: dir(moved)
        module.__all__ = getattr(moved, "__all__", [name for name in vars(moved) if not name.startswith("_")])  # import *
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


sys.meta_path.append(_MovedModule())
