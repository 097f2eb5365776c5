"""Darknet's .weights format (src/parser.c: load_weights_upto, save_weights_upto).

Header: int32 major, minor, revision, then `seen` (images trained on): a
64-bit size_t when major*10 + minor >= 2 and both are below 1000, else a
32-bit int.  Files with major or minor above 1000 store connected weights
transposed.  Then every layer's floats (`Layer.darknet_tensors`), in cfg
order, little-endian float32, no framing: so the size is checked here
against what the cfg needs (Darknet does not check, and silently misreads).

Loading reads the header and the file's last bytes, checks the sizes, then
reads the floats tensor by tensor straight into the network's tensors (no
copy of the file in memory); saving writes to a temporary file in the same folder,
syncs it and renames it over the target.

A training `.backup` may carry an appendix after the floats: the trainer's
resume state (`with_appendix`), framed by magic strings and closed by the
sha256 of every byte before it, so the weights and their state are one file
written by one rename and a changed or missing byte is noticed.  Darknet
reads a file's floats layer by layer and never looks past them
(src/parser.c:load_weights_upto), so C Darknet still loads such a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch

from pydarknet.cfg.files import file_kind
from pydarknet.errors import WeightsError

if TYPE_CHECKING:
    from pydarknet.network import Darknet


_UMASK = os.umask(0)
os.umask(_UMASK)
NEW_FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp's temporary files start at 0600

APPENDIX_START = b"\0pydarknet-app\0\0"  # 16 bytes, right after the last float
APPENDIX_END = b"\0\0pydarknet-end\0"  # 16 bytes, the file's last
CUT_SHORT = "the resume state after the weights is cut short (an incomplete copy?)"
_TRAILER = struct.Struct("<Q32s16s")  # payload length, sha256 of every byte before it, APPENDIX_END


@dataclass
class WeightsHeader:
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_bytes(self) -> int:
        wide = self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000
        return 8 if wide else 4

    @property
    def transpose(self) -> bool:
        return self.major > 1000 or self.minor > 1000

    @property
    def size(self) -> int:
        return 12 + self.seen_bytes

    def to_bytes(self) -> bytes:
        seen = np.array([self.seen], dtype="<u8" if self.seen_bytes == 8 else "<u4")
        return np.array([self.major, self.minor, self.revision], dtype="<i4").tobytes() + seen.tobytes()


def _open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading, if it is a regular file (a FIFO would block, /dev/zero never end: refused)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise WeightsError(f"{path}: weights file is not a regular file ({file_kind(mode)})")
        return open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it; unbuffered: no read-ahead
    except OSError as err:
        raise WeightsError(f"{path}: cannot read weights: {err.strerror or err}") from None


def _read_at(f: BinaryIO, offset: int, size: int, path: str | Path) -> bytes:
    """`size` bytes of `f` from `offset` (a file that shrank since its size was read: one line, not a short read)."""
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise WeightsError(f"{path}: changed while it was read (shorter than {offset + size} bytes)")
    return data


@dataclass
class WeightsLayout:
    """Where a weights file's parts are: its header, the floats from byte `start` to `stop`, and the appendix
    payload from `appendix` to `appendix_stop` (`appendix` None: there is none)."""

    header: WeightsHeader
    start: int
    stop: int
    appendix: int | None = None
    appendix_stop: int = 0

    @property
    def floats(self) -> int:
        return (self.stop - self.start) // 4


def weights_layout(f: BinaryIO, path: str | Path) -> WeightsLayout:
    """The layout of the weights file `f`, every part checked, reading only its first and last bytes (and, when it
    has an appendix, every byte once, in chunks, for the checksum)."""
    size = os.fstat(f.fileno()).st_size
    first = _read_at(f, 0, min(size, 8), path)
    for signature, kind in ((b"PK\x03\x04", "a PyTorch (zip)"), (b"\x89HDF\r\n\x1a\n", "an HDF5")):
        if first.startswith(signature):
            raise WeightsError(f"{path}: {kind} file, not Darknet weights; `pydarknet convert - {path} NAME.weights` makes one")
    stop, appendix, appendix_stop = size, None, 0
    if size >= _TRAILER.size and _read_at(f, size - len(APPENDIX_END), len(APPENDIX_END), path) == APPENDIX_END:
        length, digest, _ = _TRAILER.unpack(_read_at(f, size - _TRAILER.size, _TRAILER.size, path))
        stop = size - _TRAILER.size - length - len(APPENDIX_START)
        if stop < 0 or _read_at(f, stop, len(APPENDIX_START), path) != APPENDIX_START \
                or _sha256(f, size - len(digest) - len(APPENDIX_END), path) != digest:  # every byte before the digest
            raise WeightsError(f"{path}: damaged: its checksum does not match its contents (a changed byte or an incomplete copy)")
        appendix, appendix_stop = stop + len(APPENDIX_START), stop + len(APPENDIX_START) + length
    if stop < 16:
        raise WeightsError(f"{path}: {stop} bytes is too short for a Darknet weights header")
    major, minor, revision = struct.unpack("<3i", _read_at(f, 0, 12, path))
    header = WeightsHeader(major, minor, revision)
    body = stop - header.size
    if body < 0:
        raise WeightsError(f"{path}: {stop} bytes is too short for a version {major}.{minor} Darknet weights header ({header.size} bytes)")
    if major < 0 or minor < 0 or revision < 0 or body % 4:
        if _contains(f, APPENDIX_START, stop):
            raise WeightsError(f"{path}: {CUT_SHORT}")
        raise WeightsError(
            f"{path}: not a Darknet weights file (header {major}.{minor}.{revision}, "
            f"{body} bytes after it is not a whole number of floats)"
        )
    header.seen = int.from_bytes(_read_at(f, 12, header.seen_bytes, path), "little")
    return WeightsLayout(header, header.size, stop, appendix, appendix_stop)


_CHUNK = 2**20


def _chunks(f: BinaryIO, size: int) -> Iterator[bytes]:
    """The first `size` bytes of `f` in chunks, ending early if the file does."""
    f.seek(0)
    read = 0
    while read < size:
        chunk = f.read(min(size - read, _CHUNK))
        if not chunk:
            return
        yield chunk
        read += len(chunk)


def _sha256(f: BinaryIO, size: int, path: str | Path) -> bytes:
    """The sha256 of the first `size` bytes of `f`."""
    digest, read = hashlib.sha256(), 0
    for chunk in _chunks(f, size):
        digest.update(chunk)
        read += len(chunk)
    if read < size:
        raise WeightsError(f"{path}: changed while it was read (shorter than {size} bytes)")
    return digest.digest()


def _contains(f: BinaryIO, needle: bytes, size: int) -> bool:
    """Whether the first `size` bytes of `f` hold `needle` (chunks overlapped by its length - 1)."""
    tail = b""
    for chunk in _chunks(f, size):
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle) + 1 :]
    return False


def _read_into(f: BinaryIO, floats: np.ndarray, path: str | Path) -> np.ndarray:
    """`floats` (little-endian float32, contiguous) filled with the next bytes of the unbuffered file `f`."""
    buffer, done = memoryview(floats).cast("B"), 0
    while done < len(buffer):  # one read, but for Linux's 2 GB cap on a single read
        got = f.readinto(buffer[done:])
        if not got:
            raise WeightsError(f"{path}: changed while it was read (its floats end early)")
        done += got
    return floats


def _load_tensor(f: BinaryIO, tensor: torch.Tensor, path: str | Path) -> bool:
    """Fill `tensor` with the next floats of `f`, read straight into its memory when it is a contiguous float32
    CPU tensor on a little-endian machine (else through an array of its size); whether they are all finite."""
    target = tensor.detach()
    direct = target.device.type == "cpu" and target.dtype == torch.float32 and target.is_contiguous() \
        and sys.byteorder == "little"
    floats = _read_into(f, target.numpy().reshape(-1) if direct else np.empty(tensor.numel(), "<f4"), path)
    if direct:  # written behind torch's back: count it as an in-place write (InferenceModel caches look at it)
        torch.autograd.graph.increment_version(tensor)
    else:
        tensor.copy_(torch.from_numpy(floats).view(tensor.shape))
    return bool(np.isfinite(floats).all())


def read_weights_file(path: str | Path) -> tuple[WeightsHeader, np.ndarray]:
    """The header and the float32 body of a .weights file (one read of the floats); an appendix is checked and left out."""
    with _open_regular(path) as f:
        layout = weights_layout(f, path)
        f.seek(layout.start)
        return layout.header, _read_into(f, np.empty(layout.floats, "<f4"), path)


def with_appendix(weights: bytes, payload: bytes) -> bytes:
    """A weights file's bytes followed by the appendix holding `payload` (see the module doc)."""
    body = weights + APPENDIX_START + payload + struct.pack("<Q", len(payload))
    return body + hashlib.sha256(body).digest() + APPENDIX_END


def read_appendix(path: str | Path) -> bytes | None:
    """The appendix payload of a weights file (a pydarknet .backup's resume state), or None."""
    with _open_regular(path) as f:
        layout = weights_layout(f, path)
        if layout.appendix is None:
            return None
        return _read_at(f, layout.appendix, layout.appendix_stop - layout.appendix, path)


def layer_float_counts(net: "Darknet", cutoff: int | None, transpose: bool, loading: bool) -> list[tuple[int, int]]:
    """(layer index, floats) of every layer stored in the file, up to cutoff."""
    stop = len(net.layers) if cutoff is None else min(cutoff, len(net.layers))
    counts = []
    for layer in list(net.layers)[:stop]:
        if (layer.dontload if loading else layer.dontsave):
            continue
        n = sum(t.numel() for t in layer.darknet_tensors(transpose, loading))
        if n:
            counts.append((layer.index, n))
    return counts


def load_weights(net: "Darknet", path: str | Path, cutoff: int | None = None, partial: bool = False) -> int:
    """Load a .weights file into `net`; returns the number of layers filled.

    The file must hold exactly the floats the cfg needs (up to `cutoff`
    layers, Darknet's `partial`; extra floats after the cutoff are allowed).
    With `partial=True` a file that ends on a layer boundary fills the layers
    it has, the way Darknet starts a detector from `darknet19_448.conv.23`.
    The floats are read tensor by tensor into the network (as Darknet's
    load_weights_upto reads them): no second copy of the file in memory.
    """
    with _open_regular(path) as f:
        layout = weights_layout(f, path)
        header = layout.header
        counts = layer_float_counts(net, cutoff, header.transpose, loading=True)
        need = sum(n for _, n in counts)
        have = layout.floats
        if have < need:
            boundaries = np.cumsum([0] + [n for _, n in counts])
            if not (partial and have in boundaries):
                raise WeightsError(
                    f"{path}: too short for {net.cfg_path}: expected {need} floats, found {have} "
                    f"(header {header.major}.{header.minor}.{header.revision}; is this the right cfg?)"
                )
            counts = counts[: int(np.searchsorted(boundaries, have))]
        elif have > need and cutoff is None:
            after = layout.start + 4 * need
            if _read_at(f, after, min(len(APPENDIX_START), layout.stop - after), path) == APPENDIX_START:
                raise WeightsError(f"{path}: {CUT_SHORT}")
            raise WeightsError(
                f"{path}: too long for {net.cfg_path}: expected {need} floats, found {have} "
                f"(header {header.major}.{header.minor}.{header.revision}; is this the right cfg?)"
            )
        f.seek(layout.start)
        finite = True
        with torch.no_grad():
            for index, _ in counts:
                for tensor in net.layers[index].darknet_tensors(header.transpose, loading=True):
                    finite = _load_tensor(f, tensor, path) and finite
    if not finite:
        check_finite(net, path)  # names the layer
    net.seen = header.seen
    net.header = WeightsHeader(header.major, header.minor, header.revision, header.seen)
    return len(counts)


def check_finite(net: "Darknet", source: str | Path) -> None:
    """A WeightsError naming the first layer whose stored values hold a NaN or an infinity.

    Darknet loads such a file (a diverged training run's checkpoint) and
    prints nothing, or NaN losses; here it is refused before it is used.
    """
    for layer in net.layers:
        if not all(np.isfinite(t.detach().cpu().numpy()).all() for t in layer.darknet_tensors()):  # numpy's is 15x torch's speed
            raise WeightsError(f"{source}: layer {layer.index} [{layer.kind}] holds NaN or infinite values (a diverged training run?)")


def header_to_save(net: "Darknet") -> WeightsHeader:
    """The header `net` was loaded with (version as read, or pjreddie's 0.2.0) and its current `seen`."""
    version = net.header or WeightsHeader()
    return WeightsHeader(version.major, version.minor, version.revision, net.seen)


def weights_bytes(net: "Darknet", cutoff: int | None = None, header: WeightsHeader | None = None) -> bytes:
    """The bytes of a .weights file for `net` (header version as loaded, or 0.2.0)."""
    header = header or header_to_save(net)
    parts = [header.to_bytes()]
    for index, _ in layer_float_counts(net, cutoff, header.transpose, loading=False):
        for tensor in net.layers[index].darknet_tensors(header.transpose, loading=False):
            parts.append(tensor.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes())
    return b"".join(parts)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, sync it, rename it over `path` and sync the folder.

    A kill at any moment leaves either the old file or the new one, and at
    worst a `.NAME.*.tmp` file (the trainer removes its own on start).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.fchmod(fd, NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None  # a full disk names the file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash (where the file system can sync a folder)
        folder = os.open(path.parent or ".", os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def save_weights(net: "Darknet", path: str | Path, cutoff: int | None = None, header: WeightsHeader | None = None) -> None:
    """Save `net` as a Darknet .weights file, atomically."""
    try:
        write_atomic(path, weights_bytes(net, cutoff, header))
    except OSError as err:
        raise WeightsError(f"{path}: cannot write weights: {err.strerror or err}") from None
