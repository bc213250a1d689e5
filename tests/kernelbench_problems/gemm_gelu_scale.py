import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A matmul, a GELU and a scale: written for perfbench's tests in KernelBench's problem format.
    """

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x):
        x = self.gemm(x)
        x = torch.nn.functional.gelu(x)
        return x * self.scale


batch_size = 16
in_features = 64
out_features = 32
scale = 0.5


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, scale]
