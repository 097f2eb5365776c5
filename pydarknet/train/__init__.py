"""Darknet's training step: the heads' losses (in the layers), SGD, the
learning-rate policies and one train_network call."""

from pydarknet.train.policy import current_batch, learning_rate
from pydarknet.train.sgd import DarknetSGD
from pydarknet.train.step import sgd_state, train_network

__all__ = ["DarknetSGD", "current_batch", "learning_rate", "sgd_state", "train_network"]
