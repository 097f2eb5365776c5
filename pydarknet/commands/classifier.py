"""`pydarknet classifier train|valid|predict`: Darknet's `classifier` verbs (examples/classifier.c)."""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pydarknet.infer.classify import CROPS, class_probabilities, classifier_input, top_k, validate_classifier
from pydarknet.commands import verb_parser
from pydarknet.commands.arguments import device, positive_int
from pydarknet.commands.train import add_training_arguments, training_run
from pydarknet.convert import network_with_weights
from pydarknet.data import DataFile, read_list, read_names
from pydarknet.errors import DarknetError
from pydarknet.image import load_image
from pydarknet.network import HEAD_TYPES, Darknet
from pydarknet.train.classifier import train_classifier


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = verb_parser(sub, "classifier")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    t = verbs.add_parser(
        "train", help="train from a .data file (classes, train, labels, backup) and a cfg",
        description="Darknet's train_classifier: batch/subdivisions, the cfg's policy (poly, power), crops "
        "between min_crop and max_crop, angle/aspect/hue/saturation/exposure, flips, [net] random=1 sizes; "
        "NAME_EPOCH.weights per epoch, NAME.backup every 1000 iterations, NAME.weights at the end. "
        "Resume by passing NAME.backup as WEIGHTS.",
    )
    t.add_argument("data", type=Path, help="Darknet .data file (classes, train, labels, backup)")
    t.add_argument("cfg", type=Path, help="classifier .cfg")
    t.add_argument("weights", type=Path, nargs="?", help="initial weights (e.g. darknet19.weights for the 448 fine-tune), or a .backup")
    add_training_arguments(t)
    t.set_defaults(run=run_train)

    v = verbs.add_parser("valid", help="top-1 and top-k accuracy on the valid= list (validate_classifier_single)")
    v.add_argument("data", type=Path, help="Darknet .data file (classes, valid, labels, top)")
    v.add_argument("cfg", type=Path)
    v.add_argument("weights", type=Path)
    v.add_argument("--crop", choices=CROPS[:2], default="center",
                   help="center: Darknet's center_crop_image (default); resize-min: resize_min then a centred crop")
    v.add_argument("--top", type=positive_int, help="k of top-k (default: the .data's top=, else 1)")
    v.add_argument("--batch", type=positive_int, default=8, help="images per forward (default 8)")
    v.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    v.add_argument("--json", action="store_true", help="print one JSON object with the result")
    v.add_argument("--quiet", action="store_true", help="only the final line")
    v.set_defaults(run=run_valid)

    r = verbs.add_parser("predict", help="top-k classes of images (predict_classifier: letterboxed input)",
                         usage="pydarknet classifier predict [DATA] CFG WEIGHTS IMAGE [IMAGE ...] [options]")
    r.add_argument("args", nargs="+", metavar="ARG", help="[DATA] CFG WEIGHTS IMAGE...: Darknet's form takes the .data first")
    r.add_argument("--top", type=positive_int, help="how many classes (default: the .data's top=, else 1)")
    r.add_argument("--names", type=Path, help="class names file (default: the .data's names=, else labels=)")
    r.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    r.add_argument("--json", action="store_true", help="one JSON line per image")
    r.set_defaults(run=run_predict)


def run_train(args: argparse.Namespace) -> int:
    final = train_classifier(training_run(args))
    print(f"saved {final}")
    return 0


def _load_net(cfg: Path, weights: Path, device: str) -> Darknet:
    net = network_with_weights(cfg, weights)
    head = net.layers[net.output_indices[-1]]
    if isinstance(head, HEAD_TYPES):
        raise DarknetError(f"{cfg}: a detector (its output is a [{head.kind}] layer), not a classifier; use `pydarknet detect`")
    return net.to(device).eval()


def _top(requested: int | None, data: DataFile | None, net: Darknet) -> int:
    """k of top-k: --top, else the .data's top=, else 1 (Darknet's option_find_int(options, "top", 1)), at most the outputs."""
    k = requested or (data.top if data is not None and data.top else 1)
    outputs = math.prod(net.layers[net.output_indices[-1]].out_shape)
    if not 1 <= k <= outputs:
        source = f"--top {k}" if requested else f"{data.path}: top={k}" if data is not None else f"top {k}"
        raise DarknetError(f"{source}: the network gives {outputs} classes")
    return k


def run_valid(args: argparse.Namespace) -> int:
    data = DataFile.read(args.data, need=("valid", "labels"))
    labels = data.class_labels()
    paths = read_list(data.valid)
    net = _load_net(args.cfg, args.weights, args.device)
    k = _top(args.top, data, net)
    accuracy = None
    for accuracy, chunk in validate_classifier(net, paths, labels, data.classes, k, args.crop, args.batch, args.device):
        if not args.quiet and not args.json:
            print(f"{accuracy.images - 1}: top 1: {accuracy.top1_rate:f}, top {k}: {accuracy.topk_rate:f}")
    assert accuracy is not None  # read_list refuses an empty list
    if accuracy.unlabelled:
        warnings.warn(f"{data.valid}: {accuracy.unlabelled} of {accuracy.images} image paths hold no label of {data.labels} "
                      "(counted as misses, as Darknet does)", UserWarning, stacklevel=1)
    if args.json:
        print(json.dumps({"images": accuracy.images, "top1": accuracy.top1_rate, "k": k, "topk": accuracy.topk_rate}))
    elif args.quiet:
        print(f"top 1: {accuracy.top1_rate:f}, top {k}: {accuracy.topk_rate:f} ({accuracy.images} images)")
    return 0


def _predict_inputs(args: argparse.Namespace) -> tuple[DataFile | None, Path, Path, list[Path]]:
    rest = list(args.args)
    data = DataFile.read(rest.pop(0)) if rest and rest[0].endswith(".data") else None
    if len(rest) < 3:
        raise DarknetError("classifier predict needs [DATA] CFG WEIGHTS IMAGE...")
    return data, Path(rest[0]), Path(rest[1]), [Path(p) for p in rest[2:]]


def run_predict(args: argparse.Namespace) -> int:
    data, cfg, weights, images = _predict_inputs(args)
    net = _load_net(cfg, weights, args.device)
    names_path = args.names or (data and (data.names_path or data.labels))  # Darknet: names=, else labels=
    names = read_names(names_path) if names_path else None
    k = _top(args.top, data, net)
    for path in images:
        image = classifier_input(load_image(path), net.width, net.height, "letterbox")
        start = time.perf_counter()
        probs = class_probabilities(net, torch.from_numpy(np.ascontiguousarray(image[None])).to(args.device))[0]
        seconds = time.perf_counter() - start
        best = top_k(probs[None], k)[0].tolist()
        rows = [(i, names[i] if names and i < len(names) else str(i), float(probs[i])) for i in best]
        if args.json:
            print(json.dumps({"image": str(path), "top": [{"class": i, "name": n, "prob": p} for i, n, p in rows]}))
        else:
            print(f"{path}: Predicted in {seconds:f} seconds.")  # pjreddie: "%s: Predicted in %f seconds.\n" (on stderr)
            for _, name, prob in rows:
                print(f"{prob * 100:5.2f}%: {name}")  # Darknet: printf("%5.2f%%: %s\n", ...)
    return 0
