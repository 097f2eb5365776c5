"""pydarknet: Darknet's YOLOv2 in PyTorch, with Darknet's numbers.

`pydarknet.Darknet` (pydarknet/api.py, the top floor) is imported on first use, so that
importing a lower floor such as `pydarknet.network` loads no detection or training code.
"""

from typing import TYPE_CHECKING

from pydarknet.errors import CfgError, DarknetError, WeightsError
from pydarknet.image import letterbox_image, load_image, resize_image

if TYPE_CHECKING:
    from pydarknet.api import Darknet

__all__ = ["CfgError", "Darknet", "DarknetError", "WeightsError", "letterbox_image", "load_image", "resize_image"]
__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 (PEP 562)
    if name == "Darknet":
        from pydarknet.api import Darknet

        return Darknet
    raise AttributeError(f"module 'pydarknet' has no attribute {name!r}")
