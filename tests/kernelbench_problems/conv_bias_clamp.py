import torch
import torch.nn as nn


class Model(nn.Module):
    """
    A 3x3 convolution, a bias and a clamp whose bound is a forward argument (a non-tensor input):
    written for perfbench's tests in KernelBench's problem format.
    """

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)

    def forward(self, x, bound):
        x = self.conv(x) + self.bias
        return torch.clamp(x, min=-bound, max=bound)


batch_size = 8
in_channels = 3
out_channels = 8
height = width = 12
kernel_size = 3
bound = 0.75


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width), bound]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
