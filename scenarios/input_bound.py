"""A tiny classifier fed by an expensive input pipeline: the step waits for data, not for math.

What it teaches: when `__getitem__` does heavy CPU work (here: "decoding" a 48x48 image from bytes,
an FFT low-pass filter, a per-row Python loop for a tone curve, and a random crop and flip), the
model's forward is a rounding error and the accelerator idles. The report's data-wait fraction and
utilisation hints should say so. The fix is in the pipeline, not the model: more DataLoader workers
(the SWEEP compares num_workers 0 and 2, this machine's core count), caching decoded samples, or
moving augmentation onto the device. No backend choice changes the step time here.
"""

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
RAW_SIZE = 48
CROP = 32
DATASET_SIZE = 256

SWEEP = {"backend": ["eager"], "batch_size": [32], "num_workers": [0, 2]}


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(CROP * CROP, 64)
        self.fc2 = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def build_model() -> nn.Module:
    return TinyClassifier()


class SlowDecodeDataset(torch.utils.data.Dataset):
    """Each item is decoded and augmented on every access, deliberately slowly (~1 ms per item)."""

    def __init__(self, size: int = DATASET_SIZE) -> None:
        gen = torch.Generator().manual_seed(0)
        self.raw = torch.randint(
            0, 256, (size, RAW_SIZE * RAW_SIZE), dtype=torch.uint8, generator=gen
        )
        self.labels = torch.randint(0, NUM_CLASSES, (size,), generator=gen)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(index)  # per-item augmentation, reproducible
        image = self.raw[index].view(RAW_SIZE, RAW_SIZE).float() / 255.0
        spectrum = torch.fft.rfft2(image)
        spectrum[8:-8, 8:] = 0  # low-pass "denoise"
        image = torch.fft.irfft2(spectrum, s=image.shape)
        for row in range(RAW_SIZE):  # per-row Python loop: the classic slow tone curve
            image[row] = image[row].clamp(0, 1) ** (0.8 + 0.01 * (row % 5))
        top, left = torch.randint(0, RAW_SIZE - CROP + 1, (2,), generator=gen).tolist()
        image = image[top : top + CROP, left : left + CROP]
        if torch.rand((), generator=gen) < 0.5:
            image = image.flip(-1)
        return ((image - 0.5) / 0.25).unsqueeze(0).contiguous(), self.labels[index]


def make_dataset() -> torch.utils.data.Dataset:
    return SlowDecodeDataset()


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Already-decoded batch with the dataset's structure: (images (B, 1, 32, 32), labels)."""
    return torch.randn(batch_size, 1, CROP, CROP), torch.randint(0, NUM_CLASSES, (batch_size,))


def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(batch[0])


def loss_fn(logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(logits, batch[1])
