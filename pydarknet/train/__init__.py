"""Darknet's training step: the heads' losses (in the layers), SGD, the
learning-rate policies, one train_network call, the state it keeps between calls
(momentum, optional mixed precision) and the trainer."""

from pydarknet.train.policy import current_batch, learning_rate
from pydarknet.train.sgd import DarknetSGD
from pydarknet.train.state import TrainingState
from pydarknet.train.step import train_network

__all__ = ["DarknetSGD", "TrainingState", "current_batch", "learning_rate", "train_network"]
