"""Darknet's training step: the heads' losses (in the layers), SGD, the
learning-rate policies, one train_network call and its optional mixed precision."""

from pydarknet.train.amp import enable_amp
from pydarknet.train.policy import current_batch, learning_rate
from pydarknet.train.sgd import DarknetSGD
from pydarknet.train.step import sgd_state, train_network

__all__ = ["DarknetSGD", "current_batch", "enable_amp", "learning_rate", "sgd_state", "train_network"]
