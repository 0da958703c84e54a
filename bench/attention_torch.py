"""PyTorch baselines for the Lightning Attention benchmark, printed beside
tnllm's kernels (the TSV that build/cuda/bench_attention writes).

Usage: python3 bench/attention_torch.py TNLLM_TSV

Same shapes, dtype (bf16), decays and FLOP/floor formulas as
bench/attention_bench.cu, measured on the same device in the same call:
  - "PyTorch naive": the paper's baseline, O = (Q K^T ⊙ M) V with
    M[s, t] = lambda^(s-t) for s >= t built inside the forward, autograd
    for the backward;
  - "PyTorch chunked": Lightning Attention-2 in plain PyTorch (blocks of 64,
    intra-block masked product, fp32 states of every block from a decay-
    weighted sum), autograd for the backward;
  - "PyTorch SDPA (softmax)": causal softmax attention through
    scaled_dot_product_attention (its FlashAttention-2 kernel on bf16), the
    counterpart of the tnllm flash (softmax) row.
TFLOP/s use each row's own FLOP count (the TSV's flops_fwdbwd; the PyTorch
rows take that of the tnllm row they mirror).
Times are medians of CUDA-event timings after a warm-up; peak extra memory
is the peak allocated during forward+backward minus the inputs and the
output/gradient tensors (which tnllm's caller owns).
"""
import math
import sys

import torch

B, H, D, CHUNK = 4, 16, 128, 64


def decays(device):
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)], device=device)
    return torch.exp(-slopes)  # SPEC section 1


def naive(q, k, v, lam):
    n = q.shape[2]
    idx = torch.arange(n, device=q.device)
    dist = (idx[:, None] - idx[None, :]).float()
    m = torch.where(dist >= 0, torch.exp(dist.clamp(min=0)[None] * torch.log(lam)[:, None, None]), 0.0)
    return ((q @ k.transpose(-1, -2)) * m.to(q.dtype)) @ v


def chunked(q, k, v, lam):
    b, h, n, d = q.shape
    c = CHUNK
    blocks = n // c
    log_lam = torch.log(lam).float()
    i = torch.arange(c, device=q.device).float()
    dist = i[:, None] - i[None, :]
    intra_mask = torch.where(dist >= 0, torch.exp(dist.clamp(min=0)[None] * log_lam[:, None, None]), 0.0)
    qb, kb, vb = (x.view(b, h, blocks, c, d) for x in (q, k, v))
    intra = ((qb @ kb.transpose(-1, -2)) * intra_mask[None, :, None].to(q.dtype)) @ vb
    k_decay = torch.exp((c - 1 - i)[None, :] * log_lam[:, None])  # [H, C]
    kv = (kb.float() * k_decay[None, :, None, :, None]).transpose(-1, -2) @ vb.float()  # [b,h,N,d,d]
    j = torch.arange(blocks, device=q.device).float()
    gap = j[:, None] - j[None, :] - 1  # state entering block s holds block t < s decayed by lambda^(C (s-t-1))
    weights = torch.where(gap >= 0, torch.exp(c * gap.clamp(min=0)[None] * log_lam[:, None, None]), 0.0)
    states = torch.einsum("hst,bhtde->bhsde", weights, kv)
    q_decay = torch.exp((i + 1)[None, :] * log_lam[:, None])  # [H, C]
    inter = (qb.float() * q_decay[None, :, None, :, None]) @ states
    return (intra.float() + inter).to(q.dtype).view(b, h, n, d)


def sdpa(q, k, v, lam):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def median_ms(fn, reps_budget_ms=300.0):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    times = []
    start.record()
    fn()
    stop.record()
    torch.cuda.synchronize()
    first = start.elapsed_time(stop)
    reps = min(25, max(3, int(reps_budget_ms / max(first, 1e-3))))
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def measure(impl, n, device):
    gen = torch.Generator(device=device).manual_seed(n)
    shape = (B, H, n, D)
    q, k, v, do = (torch.rand(shape, device=device, generator=gen, dtype=torch.float32).mul_(2).sub_(1)
                   .to(torch.bfloat16) for _ in range(4))
    for x in (q, k, v):
        x.requires_grad_(True)
    lam = decays(device)
    outputs = 4 * q.numel() * q.element_size()
    try:
        fwd = median_ms(lambda: impl(q, k, v, lam))

        def fwd_bwd():
            o = impl(q, k, v, lam)
            torch.autograd.grad(o, (q, k, v), do)

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fwd_bwd()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base - outputs) / 2**20
        fb = median_ms(fwd_bwd)
        return fwd, fb, peak
    except torch.OutOfMemoryError:
        return None
    finally:
        del q, k, v, do
        torch.cuda.empty_cache()


def main():
    rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    device = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    gen = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn((1, H, 1024, D), device=device, generator=gen, dtype=torch.float64) for _ in range(3))
    lam = decays(device).double()
    a, b = chunked(q, k, v, lam), naive(q, k, v, lam)
    print(f"PyTorch chunked vs naive in float64, n=1024: rel l2 {((a - b).norm() / b.norm()).item():.1e}")
    print("| n | implementation | fwd ms | fwd+bwd ms | peak extra MiB | fwd+bwd TFLOP/s | fwd / floor | "
          "fwd+bwd / floor | tnllm LA-2 speed-up (fwd, fwd+bwd) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sorted({int(r[col["n"]]) for r in rows}):
        ours = [r for r in rows if int(r[col["n"]]) == n]
        floor_fwd, floor_fb = float(ours[0][col["floor_fwd_ms"]]), float(ours[0][col["floor_fwdbwd_ms"]])
        la2 = next(r for r in ours if "chunked" in r[col["algorithm"]])
        la2_fwd, la2_fb = float(la2[col["fwd_ms"]]), float(la2[col["fwdbwd_ms"]])
        flops = {r[col["algorithm"]]: float(r[col["flops_fwdbwd"]]) for r in ours}
        results = [(r[col["algorithm"]], float(r[col["fwd_ms"]]), float(r[col["fwdbwd_ms"]]),
                    float(r[col["peak_mib"]]), flops[r[col["algorithm"]]]) for r in ours]
        baselines = [("PyTorch naive", naive, la2), ("PyTorch chunked", chunked, la2)]
        softmax = [r for r in ours if "softmax" in r[col["algorithm"]]]
        if softmax:
            baselines.append(("PyTorch SDPA (softmax)", sdpa, softmax[0]))
        for name, impl, mirror in baselines:
            m = measure(impl, n, device)
            results.append((name,) + m + (flops[mirror[col["algorithm"]]],) if m else (name, None, None, None, None))
        for name, fwd, fb, peak, flops_fb in results:
            if fwd is None:
                print(f"| {n} | {name} | out of memory | | | | | | |")
                continue
            print(f"| {n} | {name} | {fwd:.3f} | {fb:.3f} | {peak:.0f} | {flops_fb / (fb * 1e9):.1f} | "
                  f"{fwd / floor_fwd:.2f} | {fb / floor_fb:.2f} | {fwd / la2_fwd:.2f}x, {fb / la2_fb:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
