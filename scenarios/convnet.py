"""A small RepVGG-style conv net on synthetic 32x32 images, fed through a DataLoader.

What it teaches:
- BatchNorm after every conv is free to remove at inference: in eval mode BN is an affine map, so it
  folds into the conv's weight and bias, and RepVGG's parallel 3x3, 1x1 and identity branches fold
  into one 3x3 conv. Until a backend does that, eager runs three convs, three BNs and an add per block.
- ONNX Runtime does that folding on its own: its optimized graph of this model has 15 Conv and
  no BatchNormalization, Add or Relu left (the exported ONNX graph: 12 Conv, 3 BatchNormalization,
  9 Add, 6 Relu), the adds and ReLUs fused into the convs, in its own blocked (NCHWc) layout.
  Interleaved with eager at batch 32 on the 2-core dev CPU (shared, noisy), DataLoader included:
  2.05x faster per step at 1 thread (1.98 vs 4.10 ms, 840 pairs, pair-ratio IQR 59%; eager against
  itself in the same way: 1.00, IQR 15%), 1.68x at 2 threads (199 pairs, IQR 13%).
- channels_last memory format is what the fast conv kernels want (oneDNN on CPU, cuDNN on GPU):
  `--set memory_format=contiguous,channels_last` runs eager and each backend in both layouts.
- Input pipeline settings: batches come from `make_dataset` through a DataLoader, so the sweep's
  `num_workers` and `pin_memory` axes take effect and the report can show data-wait time. On a CPU
  device pin_memory=true is skipped with a reason (it only speeds host-to-device copies).

The default SWEEP (eager, batch 32, num_workers 0 and 2, pin_memory off and on) runs 2 points on a
CPU-only machine (the pin_memory points are skipped) and finishes in well under a minute.
"""

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
IMAGE_SIZE = 32
DATASET_SIZE = 512
CHANNELS = (16, 32, 64)

SWEEP = {
    "backend": ["eager"],
    "batch_size": [32],
    "num_workers": [0, 2],
    "pin_memory": [False, True],
}


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class RepVGGBlock(nn.Module):
    """Training-time block: 3x3 conv+BN, 1x1 conv+BN and (when shapes allow) identity BN, summed."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv3 = conv_bn(c_in, c_out, 3, stride)
        self.conv1 = conv_bn(c_in, c_out, 1, stride)
        self.identity = nn.BatchNorm2d(c_out) if c_in == c_out and stride == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(x) + self.conv1(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return F.relu(out)


class ConvNet(nn.Module):
    def __init__(
        self, channels: tuple[int, ...] = CHANNELS, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            blocks += [RepVGGBlock(c_in, c_out, stride=2), RepVGGBlock(c_out, c_out, stride=1)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def build_model() -> nn.Module:
    return ConvNet()


class SyntheticImages(torch.utils.data.Dataset):
    """uint8 images stored like decoded JPEGs; __getitem__ converts and normalises one, as a real
    pipeline would. Generated once from a fixed seed, so every epoch sees the same data."""

    def __init__(self, size: int = DATASET_SIZE) -> None:
        gen = torch.Generator().manual_seed(0)
        shape = (size, 3, IMAGE_SIZE, IMAGE_SIZE)
        self.images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
        self.labels = torch.randint(0, NUM_CLASSES, (size,), generator=gen)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].float().div_(255.0).sub_(0.5).div_(0.25)
        return image, self.labels[index]


def make_dataset() -> torch.utils.data.Dataset:
    return SyntheticImages()


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Same structure as a collated dataset batch: (images float32 NCHW, labels int64)."""
    images = torch.randn(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
    return images, torch.randint(0, NUM_CLASSES, (batch_size,))


def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(batch[0])


def loss_fn(logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(logits, batch[1])
