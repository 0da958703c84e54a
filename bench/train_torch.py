"""PyTorch baselines for the GPU training benchmark, printed in the columns
of build/cuda/bench_train so the two tables sit side by side (issue 8's
comparison: the official code is PyTorch with AMP, and a LLaMA-shape
Transformer through SDPA).

Usage: python3 bench/train_torch.py [SIZE:BATCH:T[:ARCH] ...]
(default 385M:8:2048 1B:4:2048 and the same two as transformer)

Both models are written here in plain PyTorch, eager, as a user of the
official code would run them: bf16 autocast over fp32 parameters, fused
AdamW (torch.optim.AdamW(fused=True)), global-norm clipping at 1.0, T = 2048
tokens per sequence of random ids, 3 warm-up and 10 timed steps (each step
synchronised), the same D, L, H, G and V = 64000 as tnllm's Table 1 presets
(model/config.c) and the tied output projection.
  - "torch transnormer": SPEC section 1's block (SRMSNorm, W_qkvu, SiLU q/k,
    the decay rates of the released checkpoints, the output norm and gate,
    SGLU), attention by Lightning Attention-2 in plain PyTorch
    (bench/attention_torch.py's chunked(), blocks of 64, fp32 states);
    LRPE left out (it only makes the baseline faster);
  - "torch transformer": RMSNorm, q/k/v projections, rotary positions,
    causal scaled_dot_product_attention (FlashAttention-2 on bf16), SwiGLU
    with the same G.
Peak memory is torch.cuda.max_memory_allocated over the timed steps (what
the caching allocator handed out; the device's own use is higher). MFU uses
bench_train's formula (SPEC section 5).
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

from attention_torch import chunked

SIZES = {"125M": (768, 12, 12, 2048), "385M": (1024, 24, 8, 2816), "1B": (2048, 16, 16, 5632)}
VOCAB = 64000
PEAK_FLOPS = 989e12
WARMUP, TIMED = 3, 10


def srms_norm(x, eps=1e-6):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def head_slopes(n_heads):
    """SPEC section 1: 2^(-8 (h+1) / H) for H a power of two, else the ALiBi rule."""
    power = 2 ** int(math.log2(n_heads))
    slopes = lambda n: [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]
    return slopes(power) if power == n_heads else slopes(power) + slopes(2 * power)[0::2][: n_heads - power]


def decay_rates(n_heads, n_layers, layer):
    """SPEC section 1: the head slopes scaled by (1 - l/(L-1) + 1e-5)."""
    factor = 1 - layer / (n_layers - 1) + 1e-5 if n_layers > 1 else 1 + 1e-5
    return torch.exp(torch.tensor([-slope * factor for slope in head_slopes(n_heads)]))


class Layer(torch.nn.Module):
    """The projections both blocks have: q|k|v(|u) (rows x d of them), the output, W1|W2 and W3."""

    def __init__(self, d, h, g, rows):
        super().__init__()
        self.h = h
        self.qkv = torch.nn.Linear(d, rows * d, bias=False)
        self.out = torch.nn.Linear(d, d, bias=False)
        self.w12 = torch.nn.Linear(d, 2 * g, bias=False)
        self.w3 = torch.nn.Linear(g, d, bias=False)


class TransNormerLayer(Layer):
    def __init__(self, d, h, g, layer, n_layers):
        super().__init__(d, h, g, 4)
        self.register_buffer("lam", decay_rates(h, n_layers, layer))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v, u = self.qkv(srms_norm(x)).chunk(4, dim=-1)
        heads = lambda t: t.view(b, n, self.h, d // self.h).transpose(1, 2)
        o = chunked(heads(F.silu(q)), heads(F.silu(k)), heads(v), self.lam)
        o = o.transpose(1, 2).reshape(b, n, d)
        x = x + self.out(u * srms_norm(o))
        a, c = self.w12(srms_norm(x)).chunk(2, dim=-1)
        return x + self.w3(a * c)


class TransformerLayer(Layer):
    def __init__(self, d, h, g):
        super().__init__(d, h, g, 3)
        self.norm1, self.norm2 = torch.nn.RMSNorm(d), torch.nn.RMSNorm(d)

    def forward(self, x, cos, sin):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.h, d // self.h).transpose(1, 2) for t in self.qkv(self.norm1(x)).chunk(3, -1))

        def rotate(t):
            t1, t2 = t.chunk(2, dim=-1)
            return t * cos + torch.cat((-t2, t1), dim=-1) * sin

        o = F.scaled_dot_product_attention(rotate(q), rotate(k), v, is_causal=True)
        x = x + self.out(o.transpose(1, 2).reshape(b, n, d))
        a, c = self.w12(self.norm2(x)).chunk(2, dim=-1)
        return x + self.w3(F.silu(a) * c)


class Model(torch.nn.Module):
    def __init__(self, arch, d, n_layers, h, g):
        super().__init__()
        self.arch, self.d, self.h = arch, d, h
        self.embed = torch.nn.Embedding(VOCAB, d)
        if arch == "transnormer":
            self.layers = torch.nn.ModuleList(TransNormerLayer(d, h, g, l, n_layers) for l in range(n_layers))
        else:
            self.layers = torch.nn.ModuleList(TransformerLayer(d, h, g) for _ in range(n_layers))
            self.final_norm = torch.nn.RMSNorm(d)
        for p in self.parameters():  # the HF models' initializer_range (norm gains stay 1)
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids, targets):
        x = self.embed(ids) * math.sqrt(self.d)
        if self.arch == "transnormer":
            for layer in self.layers:
                x = layer(x)
            x = srms_norm(x)
        else:
            half = self.d // self.h // 2
            inv = 10000.0 ** (-torch.arange(half, device=ids.device).float() / half)
            angles = torch.arange(ids.shape[1], device=ids.device).float()[:, None] * inv[None]
            cos, sin = (torch.cat((f(angles), f(angles)), -1).to(x.dtype) for f in (torch.cos, torch.sin))
            for layer in self.layers:
                x = layer(x, cos, sin)
            x = self.final_norm(x)
        logits = x @ self.embed.weight.t()
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1), ignore_index=-100)


def flops_per_token(arch, d, n_layers, h, g, t):
    rows = 4 * d if arch == "transnormer" else 3 * d
    matmul = n_layers * (rows * d + d * d + 3 * d * g) + VOCAB * d
    attention = n_layers * (12 * h * (d // h) ** 2 if arch == "transnormer" else 6 * d * t)
    return 6 * matmul + attention


def bench(spec):
    size, batch, t, *rest = spec.split(":")
    arch = rest[0] if rest else "transnormer"
    batch, t = int(batch), int(t)
    d, n_layers, h, g = SIZES[size]
    torch.manual_seed(1)
    model = Model(arch, d, n_layers, h, g).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                                  fused=True)
    ids = torch.randint(0, VOCAB, (batch, t), device="cuda")
    targets = torch.cat((ids[:, 1:], torch.full((batch, 1), -100, device="cuda")), dim=1)
    params = sum(p.numel() for p in model.parameters())
    loss = None
    for step in range(WARMUP + TIMED):
        if step == WARMUP:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss = loss.item()  # synchronises, as tnllm's step does
    elapsed = (time.perf_counter() - start) / TIMED
    tokens_per_s = batch * t / elapsed
    mfu = flops_per_token(arch, d, n_layers, h, g, t) * tokens_per_s / PEAK_FLOPS
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"| torch {arch:<11} | {size:<5} | {params / 1e6:6.1f}M | {batch:5d} | {t:5d} | {1e3 * elapsed:9.1f} | "
          f"{tokens_per_s:11.0f} | {peak:10.2f} | {100 * mfu:5.1f}% | {loss:7.3f} |", flush=True)
    del model, optimizer
    torch.cuda.empty_cache()


def main():
    specs = sys.argv[1:] or ["385M:8:2048", "1B:4:2048", "385M:8:2048:transformer", "1B:4:2048:transformer"]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| implementation          | size  | params  | batch |     T | step (ms) |    tokens/s | peak GiB   |"
          "    MFU | loss    |")
    print("|-------------------------|-------|---------|-------|-------|-----------|-------------|------------|"
          "--------|---------|")
    for spec in specs:
        try:
            bench(spec)
        except torch.cuda.OutOfMemoryError:
            print(f"| torch {spec}: out of memory |")
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
