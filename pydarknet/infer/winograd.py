"""Winograd F(4x4, 3x3) convolution, for the inference mode's heavy 3x3 layers.

Darknet computes every convolution as im2col + GEMM; oneDNN's direct
convolutions (what PyTorch runs on the CPU) are fast at high resolution but
slow on YOLOv2's 13x13 layers with 512-1280 channels, which hold half of
yolov2's FLOPs.  Winograd's minimal filtering (Lavin & Gray, arXiv
1509.09308) computes each 4x4 output tile of a 3x3, stride-1 convolution
from a 6x6 input tile with 36 multiplies per (input, output) channel pair
instead of 144:

    Y = A^T [ (G g G^T) * (B^T d B) ] A

where the 36 element-wise products summed over input channels are 36
matrix products (one batched GEMM).  Here the tile transforms are GEMMs too
(with the Kronecker products of B^T and A^T), so every step runs in BLAS.

The interpolation points 0, +-1, +-2 keep float32 errors at the level of a
direct convolution's summation-order noise (relative L2 about 2e-6 per
layer, measured against float64), far inside the golden tolerances.  The
cost of the transforms grows with the channels only linearly, so the
algorithm pays where both channel counts are large (`suits`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Lavin & Gray's F(4x4, 3x3) matrices (points 0, 1, -1, 2, -2, infinity).
_B_T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_A_T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]

TILE = 4  # output tile side
WINDOW = TILE + 2  # input tile side (a 3x3 kernel)

# Both channel counts at least this: the transforms' cost (linear in the
# channels) is then small beside the GEMM's (their product).  Measured on
# yolov2's layers at 416, batch 1, 2 threads (tools/BENCHMARKS.md): 128->256
# at 52x52 1.5x faster than oneDNN, the 13x13 layers 1.9-3.6x; 64->128 at
# 104x104 no faster, 32->64 at 208x208 1.7x slower.
MIN_CHANNELS = 128


def computable(conv: nn.Conv2d) -> bool:
    """Whether `conv` is a 3x3, stride-1, zero-padded-by-1 dense convolution (what F(4x4, 3x3) computes)."""
    return (
        conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
        and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
    )


def suits(conv: nn.Conv2d) -> bool:
    """Whether Winograd computes `conv` and has enough channels to be faster than a direct convolution."""
    return computable(conv) and min(conv.in_channels, conv.out_channels) >= MIN_CHANNELS


class WinogradConv2d(nn.Module):
    """`conv`'s forward (weights and bias copied, frozen) computed with F(4x4, 3x3).

    Takes and returns (N, C, H, W) tensors; the result is channels_last in
    memory (the layout the inference mode runs in).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not computable(conv):
            raise ValueError("WinogradConv2d needs a 3x3, stride-1, padding-1, ungrouped convolution")
        weight = conv.weight.detach()
        kw = {"dtype": torch.float64, "device": weight.device}
        g = torch.tensor(_G, **kw)
        b_t = torch.tensor(_B_T, **kw)
        a_t = torch.tensor(_A_T, **kw)
        # U = G g G^T for every (in, out) pair: one GEMM with the Kronecker product G (x) G, as 36
        # matrices (in, out) (contiguous: at batch 8 the GEMMs run up to 1.4x faster than on transposed views)
        kernel = torch.kron(g, g).to(weight.dtype)
        u = (kernel @ weight.transpose(0, 1).reshape(-1, 9).T).view(WINDOW * WINDOW, conv.in_channels, conv.out_channels)
        self.register_buffer("u", u)
        self.register_buffer("input_transform", torch.kron(b_t, b_t).to(weight.dtype))
        self.register_buffer("output_transform", torch.kron(a_t, a_t).to(weight.dtype))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=weight.dtype, device=weight.device)
        self.register_buffer("bias", bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        rows, cols = -(-h // TILE), -(-w // TILE)
        # (N, H, W, C), zero-padded by 1 on the top/left and up to whole tiles on the bottom/right
        padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, cols * TILE + 1 - w, 1, rows * TILE + 1 - h))
        tiles = padded.unfold(1, WINDOW, TILE).unfold(2, WINDOW, TILE)  # (N, rows, cols, C, 6, 6), overlapping
        d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(WINDOW * WINDOW, -1)  # (36, N*rows*cols*C)
        v = (self.input_transform @ d).view(WINDOW * WINDOW, n * rows * cols, c)  # B^T d B
        m = torch.bmm(v, self.u)  # (36, tiles, out): the channel sums
        k = m.shape[2]
        y = (self.output_transform @ m.view(WINDOW * WINDOW, -1)).view(TILE, TILE, n, rows, cols, k)  # A^T m A
        y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, rows * TILE, cols * TILE, k)[:, :h, :w] + self.bias
        return y.permute(0, 3, 1, 2)
