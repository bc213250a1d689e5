"""perfbench: where a PyTorch workload spends its time, and what fusion buys. See README.md."""

__version__ = "0.1.0"
