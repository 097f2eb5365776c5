"""`darknet classifier train` (examples/classifier.c:train_classifier, pjreddie HEAD).

Per iteration: `batch` images (the cfg's batch; Darknet's `imgs =
net->batch * net->subdivisions`) drawn with replacement from `train=`,
augmented as load_data_augment (pydarknet.data.classification) into
width x width crops, truth from the `labels=` strings in each path (with
the softmax's `tree`, fill_hierarchy), then train_network.  `[net]
random=1` changes the size every 40 iterations to 128..448
(`classifier_multiscale_size`), the crop range following as
`min_ratio * size .. max_ratio * size`.

Files (NAME = the cfg's stem): `NAME_E.weights` whenever the epoch
`seen / N` (N = images in the train list) grows, `NAME.backup` every 1000
iterations, `NAME.weights` at the end.  Progress:
`i, epoch: loss, avg avg, rate rate, seconds seconds, seen images`.
The loop, logging, Ctrl-C and exact resume are the detector's
(pydarknet.train.trainer).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from pydarknet.data import BatchLoader, ClassificationAugmentation, DataFile, read_list
from pydarknet.errors import DarknetError
from pydarknet.layers.softmax import Softmax
from pydarknet.network import Darknet
from pydarknet.train import distributed
from pydarknet.train.multiscale import classifier_multiscale_size, classifier_resize_lines
from pydarknet.train.policy import current_batch
from pydarknet.train.step import loss_chain, rank_mini_batch
from pydarknet.train.trainer import LoopPlan, TrainRun, learning_rate_line, run_length, start_network, train_loop

BACKUP_EVERY = 1000  # Darknet: get_current_batch(net) % 1000 == 0


def classifier_checkpoint_names(base: str, iteration: int, seen: int, images_per_batch: int, train_images: int) -> list[str]:
    """The files train_classifier saves after `iteration` with `seen` images done.

    Darknet: `if(*net->seen/N > epoch) { epoch = *net->seen/N; save NAME_epoch }`
    (epoch starts at seen/N, so this is "seen/N grew in this iteration"),
    then `NAME.backup` every 1000 iterations.
    """
    names = []
    epoch = seen // train_images
    if epoch > (seen - images_per_batch) // train_images:
        names.append(f"{base}_{epoch}.weights")
    if iteration % BACKUP_EVERY == 0:
        names.append(f"{base}.backup")
    return names


def classification_truth_size(net: Darknet) -> int:
    """The number of network outputs a classifier's truth covers (the loss chain's inputs)."""
    chain = loss_chain(net)
    if not chain:
        raise DarknetError(f"{net.cfg_path}: the last layer is [{net.layers[-1].kind}]; classifier training needs [softmax] and/or [cost] at the end")
    c, h, w = chain[0].in_shapes[0]
    return c * h * w


def train_classifier(run: TrainRun) -> Path:
    """Train as `darknet classifier train` does, alone or as one rank of a torchrun job; returns the path of `NAME.weights`."""
    with distributed.process_group(run.device, run.timeout) as ranks:
        return _train(run, ranks)


def _train(run: TrainRun, ranks: distributed.Ranks) -> Path:
    data = DataFile.read(run.data, need=("train", "labels"))
    paths = read_list(data.train)
    labels = data.class_labels()
    net, state = start_network(run, ranks.device, detector=False)
    opt = net.options
    outputs = classification_truth_size(net)
    if data.classes != outputs:
        raise DarknetError(f"{run.data}: classes={data.classes} but {run.cfg} outputs {outputs} values")
    if opt.width != opt.height:
        raise DarknetError(f"{run.cfg}: classifier crops are square (size = width); width={opt.width} height={opt.height}")
    softmaxes = [layer for layer in loss_chain(net) if isinstance(layer, Softmax)]
    tree = softmaxes[0].tree if softmaxes else None  # Darknet: net->hierarchy, the softmax's tree
    aug = ClassificationAugmentation(
        tuple(labels), data.classes, opt.min_ratio, opt.max_ratio, opt.angle, opt.aspect,
        opt.hue, opt.saturation, opt.exposure, tree,
    )
    size_for_batch = partial(classifier_multiscale_size, seed=run.seed, cfg_size=(opt.width, opt.height), random=bool(opt.random))
    rank_mini_batch(net, ranks.world_size)  # the batch must split over the ranks
    if ranks.world_size > 1:
        distributed.broadcast_model(net)
        distributed.synchronize_batchnorm(net, run.sync_bn)
    start = current_batch(net.seen, opt)
    loader = BatchLoader(paths, size_for_batch, opt.batch // ranks.world_size, aug, run.workers, run.seed,
                         start_batch=start, rank=ranks.rank)
    base = run.cfg.stem
    count = len(paths)
    plan = LoopPlan(
        base=base,
        backup_dir=run.backup or data.backup,
        max_batches=run_length(run, net, ranks)[0],
        images_per_batch=opt.batch,
        checkpoint_names=lambda i, seen: classifier_checkpoint_names(base, i, seen, opt.batch, count),
        progress_line=lambda i, loss, avg, rate, secs: (
            f"{i}, {net.seen / count:.3f}: {loss:f}, {avg:f} avg, {rate:f} rate, {secs:f} seconds, {net.seen} images"
        ),
        final_name=f"{base}.weights",
        resume_name=f"{base}.backup",
        header=[base, str(ranks.world_size), learning_rate_line(opt), str(count)],  # its printf of ngpus, of the images
        resize_lines=partial(classifier_resize_lines, size_for_batch, opt.min_ratio, opt.max_ratio, start)
        if opt.random else None,
    )
    return train_loop(run, net, state, loader, plan, ranks)
