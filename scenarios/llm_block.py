"""One decoder block of a Llama-style LLM plus its LM head: RMSNorm, causal attention, SwiGLU MLP
and a large-vocabulary cross-entropy loss.

What it teaches: these are the ops where eager PyTorch is furthest from the memory-bandwidth limit
and where fused (compiled or custom Triton) kernels win most (H100 numbers in docs/design.md):
- RMSNorm written as composed ops (pow, mean, rsqrt, two muls) makes ~5 passes over the activation:
  eager reaches 9% of copy bandwidth, a fused kernel 98% (11x).
- SwiGLU, silu(w1 x) * w3 x, is two elementwise passes that fuse into one (1.7x).
- Cross-entropy over a large vocabulary materialises (tokens, vocab) logits, their softmax and its
  gradient: eager 8% of bandwidth, fused 52%; a chunked kernel avoids keeping all of it.

Presets, as in gpt-fast: `cpu` (the default; dim 256, vocab 8192, sequence 64) keeps the sweep under
a minute on a 2-core CPU; `gpu` (dim 2048, vocab 32768, sequence 1024) is the shape where the
kernels matter. Change PRESET to switch. The default SWEEP times the forward (logits included);
the cross-entropy and its backward run with `--set mode=train`, left out of the default because
compiling the backward costs ~45 s of cold start on 2 cores.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelArgs:
    dim: int
    heads: int
    hidden: int  # SwiGLU inner width, ~8/3 * dim rounded
    vocab: int
    seq_len: int
    eps: float = 1e-6


PRESETS = {
    "cpu": ModelArgs(dim=256, heads=4, hidden=688, vocab=8192, seq_len=64),
    "gpu": ModelArgs(dim=2048, heads=16, hidden=5504, vocab=32768, seq_len=1024),
}
PRESET = "cpu"

SWEEP = {"backend": ["eager", "compile"], "batch_size": [4], "mode": ["infer"]}


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, as composed ops: the unfused baseline kernels replace."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.heads = args.heads
        self.wqkv = nn.Linear(args.dim, 3 * args.dim, bias=False)
        self.wo = nn.Linear(args.dim, args.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.wqkv(x).view(b, s, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(b, s, d))


class SwiGLU(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.hidden, bias=False)
        self.w3 = nn.Linear(args.dim, args.hidden, bias=False)
        self.w2 = nn.Linear(args.hidden, args.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # silu and mul: one fused pass


class Block(nn.Module):
    """Embedding -> pre-norm attention -> pre-norm SwiGLU -> final RMSNorm -> LM head (logits)."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.embed = nn.Embedding(args.vocab, args.dim)
        self.attn_norm = RMSNorm(args.dim, args.eps)
        self.attn = Attention(args)
        self.mlp_norm = RMSNorm(args.dim, args.eps)
        self.mlp = SwiGLU(args)
        self.norm = RMSNorm(args.dim, args.eps)
        self.lm_head = nn.Linear(args.dim, args.vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        x = x + self.attn(self.attn_norm(x))  # residual add + RMSNorm: fusable
        x = x + self.mlp(self.mlp_norm(x))
        return self.lm_head(self.norm(x))  # (batch, seq, vocab): the big tensor


def build_model() -> nn.Module:
    return Block(PRESETS[PRESET])


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, next-token targets), both (batch, seq_len) int64."""
    args = PRESETS[PRESET]
    tokens = torch.randint(0, args.vocab, (batch_size, args.seq_len + 1))
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return model(batch[0])


def loss_fn(logits: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), batch[1].flatten())
