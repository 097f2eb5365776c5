"""One call of Darknet's train_network (src/network.c).

train_network splits the images into mini-batches of `net->batch` (our
`options.mini_batch`); for each, train_network_datum does
`*net->seen += net->batch` (before the forward, so the loss sees the new
count), a forward in training mode, the heads' deltas, backward, and
update_network when `(seen / net->batch) % subdivisions == 0`.  It returns
the summed cost divided by the number of images; the network's cost is the
mean of its loss layers' costs (calc_network_cost).

In a distributed job (pydarknet.train.distributed) `x` is this rank's
share: the cfg's mini-batch is global, each rank forwards `mini_batch / W`
images per step, `seen` grows by the global mini-batch, and the gradients
are summed over the ranks once per iteration, just before the update, so
the update is the one a single process with the whole batch would make.

A classifier (a net ending in [softmax] and/or [cost]) takes truth
(N, classes): one-hot, several ones when several labels match the path, or
tree-encoded (fill_hierarchy).  Its trailing loss layers each add their
delta to what flows into the first of them (softmax: `truth - output`;
cost: `scale * delta`), so darknet19-style [softmax]+[cost sse] passes
`(1 + scale) * (truth - output)` down, and the network's cost is the mean of
the softmax's cross-entropy and the cost layer's squared error.

The momentum buffers and the mixed-precision setting are the caller's
`TrainingState` (pydarknet.train.state), not the network's.  With its `amp`
set (off by default) the forward runs under autocast, the loss math on float32 copies of the heads'
inputs, and with float16 the injected gradients are loss-scaled: they stay
in `.grad` until the iteration's update, which an inf/NaN skips.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pydarknet.errors import DarknetError
from pydarknet.layers.cost import Cost
from pydarknet.layers.region import Region
from pydarknet.layers.softmax import Softmax
from pydarknet.layers.yolo import Yolo
from pydarknet.train import distributed
from pydarknet.train.amp import autocast
from pydarknet.train.policy import current_batch, learning_rate
from pydarknet.train.state import TrainingState

if TYPE_CHECKING:
    from pydarknet.network import Darknet


def train_network(net: Darknet, state: TrainingState, x: Tensor, truth: Tensor,
                  log: Callable[[str], object] | None = None) -> float:
    """Darknet's train_network on `x` (N, C, H, W) with `truth` (N, boxes, 5: x y w h class; AlexeyAB's dialect
    also takes its 6, track_id last, which its [yolo] loss does not read), or (N, classes) for a classifier.

    `state` holds the SGD buffers and precision the steps of one run share (`TrainingState(net)`).  `log`
    receives the line each detector head prints per mini-batch (`Region ... Avg IOU: ...`, AlexeyAB's
    `v3 (...)`; pydarknet.layers.loss_report).
    """
    ranks = distributed.world_size()
    mini = rank_mini_batch(net, ranks)
    if x.dim() != 4 or x.shape[0] == 0 or x.shape[0] % mini:
        raise DarknetError(f"{net.cfg_path}: a training step needs a multiple of the mini-batch ({mini} images), got {tuple(x.shape)}")
    if net.options.adam:
        raise DarknetError(f"{net.cfg_path}: adam=1 training is not supported")
    chain = loss_chain(net)
    if chain:
        outputs = chain[0].in_shapes[0][0] * chain[0].in_shapes[0][1] * chain[0].in_shapes[0][2]
        if truth.dim() != 2 or truth.shape[0] != x.shape[0] or truth.shape[1] != outputs:
            raise DarknetError(f"truth must be (N={x.shape[0]}, classes={outputs}), got {tuple(truth.shape)}")
        datum = _classifier_datum
    else:
        columns = (5, 6) if net.dialect == "alexeyab" else (5,)  # AlexeyAB's truth_size 6: x y w h class track_id
        if truth.dim() != 3 or truth.shape[0] != x.shape[0] or truth.shape[2] not in columns:
            raise DarknetError(f"truth must be (N={x.shape[0]}, boxes, {' or '.join(map(str, columns))}), got {tuple(truth.shape)}")
        heads = [net.layers[i] for i in net.output_indices]
        unsupported = [h for h in heads if not isinstance(h, (Region, Yolo))]
        if unsupported:
            raise DarknetError(f"{net.cfg_path}: training a [{unsupported[0].kind}] head is not supported ([region], [yolo], [softmax] and [cost] are)")
        datum = _train_datum
    truth = truth.to(device=x.device, dtype=x.dtype)
    was_training = net.training
    net.train()
    try:
        total = sum(datum(net, state, x[k : k + mini], truth[k : k + mini], ranks, log) for k in range(0, x.shape[0], mini))
    finally:
        net.train(was_training)
    return total / x.shape[0]


def rank_mini_batch(net: Darknet, ranks: int) -> int:
    """Images one rank forwards per step: the cfg's mini-batch (`batch/subdivisions`) split over the ranks."""
    options = net.options
    if options.mini_batch % ranks:
        raise DarknetError(
            f"{net.cfg_path}: batch={options.batch} subdivisions={options.subdivisions} does not split over {ranks} ranks "
            f"(batch must be a multiple of subdivisions x ranks = {options.subdivisions * ranks})"
        )
    return options.mini_batch // ranks


def _train_datum(net: Darknet, state: TrainingState, x: Tensor, truth: Tensor, ranks: int,
                 log: Callable[[str], object] | None) -> float:
    """Darknet's train_network_datum: one mini-batch (this rank's share); returns the network's cost."""
    net.seen += x.shape[0] * ranks  # Darknet: before the forward; the global mini-batch
    with autocast(state.amp, x.device.type):
        outputs = net.forward_layers(x, state.carried)
    raws, grads, costs = [], [], []
    for head in (net.layers[i] for i in net.output_indices):
        raw = (x if head.sources[0] < 0 else outputs[head.sources[0]]).float()  # the loss math in float32 under amp
        if isinstance(head, Region):
            output, delta, cost = head.delta(raw.detach(), truth, net.seen, log)
        else:
            output, delta, cost = head.delta(raw.detach(), truth, (net.width, net.height), log, state.box_counts)
        if raw.requires_grad:
            raws.append(raw)
            grads.append(-head.input_delta(output, delta))  # Darknet's deltas are -dL/d(output)
        costs.append(float(cost))
    del outputs
    if log is not None and state.box_counts.total:  # AlexeyAB's train_network_datum (only its [yolo] counts)
        log(state.box_counts.line())
    return _backward_and_update(net, state, raws, grads, ranks, sum(costs) / len(costs))


def loss_chain(net: Darknet) -> list[Softmax | Cost]:
    """The trailing [softmax]/[cost] layers of a classifier (empty for a detector)."""
    chain: list[Softmax | Cost] = []
    for layer in reversed(net.layers):
        if not isinstance(layer, (Softmax, Cost)) or layer.sources != (layer.index - 1,):
            break
        chain.insert(0, layer)
    return chain if chain and chain[0].index > 0 else []


def _classifier_datum(net: Darknet, state: TrainingState, x: Tensor, truth: Tensor, ranks: int,
                      log: Callable[[str], object] | None) -> float:
    """train_network_datum for a classifier: the loss chain's deltas go into its input."""
    net.seen += x.shape[0] * ranks  # Darknet: before the forward; the global mini-batch
    with autocast(state.amp, x.device.type):
        outputs = net.forward_layers(x, state.carried)
    chain = loss_chain(net)
    raw = outputs[chain[0].index - 1].float()  # the loss math in float32 under amp
    value = raw.detach()
    delta = torch.zeros_like(value)
    costs = []
    for layer in chain:
        if isinstance(layer, Softmax):
            value, own, cost = layer.loss(value, truth)
            delta = delta + own  # Darknet: backward_softmax_layer passes its delta on unchanged
        else:
            own, cost = layer.loss(value, truth)
            delta = delta + layer.scale * own  # Darknet: backward_cost_layer, axpy with l.scale
        costs.append(float(cost))
    del outputs
    raws, grads = ([raw], [-delta]) if raw.requires_grad else ([], [])  # Darknet's deltas are -dL/d(output)
    return _backward_and_update(net, state, raws, grads, ranks, sum(costs) / len(costs))


def _backward_and_update(net: Darknet, state: TrainingState, raws: list[Tensor], grads: list[Tensor], ranks: int, cost: float) -> float:
    """Backward from the loss layers' inputs, then update_network every `subdivisions` mini-batches; returns `cost`.

    Several ranks, or a loss scale, keep the gradients in param.grad until the
    update: one all-reduce, one unscale and inf/NaN check per iteration.
    """
    sgd, scaler = state.sgd, state.scaler
    if raws:
        torch.autograd.backward(raws, grads if scaler is None else scaler.scaled(grads))
    options = net.options
    update = (net.seen // options.mini_batch) % options.subdivisions == 0
    if ranks > 1 or scaler is not None:
        if not update:
            return cost  # the gradients add up in param.grad until the update
        params = [slot.param for slot in sgd.slots.values()]
        if ranks > 1:
            distributed.sum_gradients(params)
        if scaler is not None and not scaler.unscale_and_update(params):
            sgd.discard()  # an inf/NaN gradient (the same on every rank after the sum): no update this iteration
            return cost
    sgd.accumulate()
    if update:
        rate = learning_rate(options, current_batch(net.seen, options), net.dialect)
        sgd.update(rate, options.momentum, options.decay, options.mini_batch * options.subdivisions)
        if state.ema is not None:  # AlexeyAB's train_network_waitkey, after update_network
            state.ema.after_update(current_batch(net.seen, options), options.max_batches)
    return cost
