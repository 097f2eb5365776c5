"""pydarknet: Darknet's YOLOv2 in PyTorch, with Darknet's numbers."""

from pydarknet.errors import CfgError, DarknetError, WeightsError
from pydarknet.image import letterbox_image, load_image, resize_image
from pydarknet.api import Darknet

__all__ = ["CfgError", "Darknet", "DarknetError", "WeightsError", "letterbox_image", "load_image", "resize_image"]
__version__ = "0.1.0"
