"""One BERT-base-shaped encoder layer (hidden 768, 12 heads, intermediate 3072), built locally.

What it teaches: in a transformer layer the matmuls are not the whole story. Between them sit
memory-bound ops that eager PyTorch runs one kernel each: bias + GELU, softmax, residual add +
LayerNorm. Each reads and writes the whole activation, so at short sequences they take a large share
of the step; torch.compile fuses them (bias + GELU 2.5x, softmax 1.7x, layer_norm 1.6x on an H100,
see docs/design.md). Attention is written out (matmul, scale, mask, softmax, matmul) so the fusion is
visible in the profile; swap in F.scaled_dot_product_attention to compare with a fused kernel.

Shapes: batch of (batch, SEQ_LEN, 768) hidden states; post-LayerNorm like BERT. The default SWEEP
(sequence 64, batch 4, infer, eager and compile) finishes in under a minute on a 2-core CPU.
Training works too (`--set mode=infer,train`), but compiling the backward adds 20-45 s of cold
start on 2 cores, which is why it is not in the default. On a GPU sweep `--set batch_size=32,128`,
both modes, and raise SEQ_LEN to 512.

Train mode regresses onto a target carried in the batch (MSE), like distilling a teacher layer.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072
    dropout: float = 0.1
    eps: float = 1e-12


SEQ_LEN = 64
SWEEP = {"backend": ["eager", "compile"], "batch_size": [4], "mode": ["infer"]}


class SelfAttention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.heads = args.heads
        self.qkv = nn.Linear(args.hidden, 3 * args.hidden)
        self.out = nn.Linear(args.hidden, args.hidden)
        self.dropout = nn.Dropout(args.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (b, heads, s, head_dim)
        # scores are (b, heads, s, s): written, softmaxed and read again in eager -- memory-bound
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        probs = self.dropout(scores.softmax(dim=-1))
        ctx = (probs @ v).transpose(1, 2).reshape(b, s, d)
        return self.out(ctx)


class EncoderLayer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attn = SelfAttention(args)
        self.norm1 = nn.LayerNorm(args.hidden, eps=args.eps)
        self.up = nn.Linear(args.hidden, args.intermediate)
        self.down = nn.Linear(args.intermediate, args.hidden)
        self.norm2 = nn.LayerNorm(args.hidden, eps=args.eps)
        self.dropout = nn.Dropout(args.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attn(x)))  # residual add + LayerNorm: fusable
        h = F.gelu(self.up(x))  # bias + GELU: fusable into one pass
        return self.norm2(x + self.dropout(self.down(h)))


def build_model() -> nn.Module:
    return EncoderLayer(ModelArgs())


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states, regression target), both (batch, SEQ_LEN, hidden)."""
    hidden = ModelArgs().hidden
    return torch.randn(batch_size, SEQ_LEN, hidden), torch.randn(batch_size, SEQ_LEN, hidden)


def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(batch[0])


def loss_fn(output: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.mse_loss(output, batch[1])


def FLOPS(batch_size: int) -> int:
    """Forward matmul FLOPs: QKV, output projection, the two MLP matmuls and the two attention bmms."""
    a = ModelArgs()
    tokens = batch_size * SEQ_LEN
    linear = 2 * tokens * (4 * a.hidden * a.hidden + 2 * a.hidden * a.intermediate)
    attention = 2 * 2 * batch_size * SEQ_LEN * SEQ_LEN * a.hidden
    return linear + attention
