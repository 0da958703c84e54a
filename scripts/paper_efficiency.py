"""paper_efficiency.py: the paper's efficiency results at CPU scale, for
scripts/paper_tables.py (--figures 4,5 and --tables 12,13):

- Fig. 4: attention speed and memory against the sequence length
  (build/bench/attention_cpu: the naive n x n form, tnllm's parallel form,
  chunked Lightning Attention-2; with --gpu-table also the table
  build/cuda/bench_attention printed on a GPU).
- Fig. 5: time and memory per decoded token against the context
  (build/bench/decode: our recurrent state against a KV-cache softmax
  baseline of the same shape).
- Table 12: training tokens/s of TransNormerLLM and the Transformer
  baseline at three sizes (`tnllm train`, a few steps).
- Table 13: the longest context whose training memory fits a budget, from
  the arenas the trainer allocates (`tnllm info --budget-gib`), checked
  against the peak resident memory of real steps, and tokens/s against the
  context.

Each writes results/<name>.md (the paper's numbers beside ours, the exact
commands) and results/<name>.svg. Timings on a shared CPU are noisy: the
benchmarks keep the fastest of repeated calls, the training tables the
fastest of three steps after a first one.
"""
import json
import os
import re
import subprocess

import svgplot

# Sizes of Tables 12-13 at CPU scale: the development sizes of tnllm
# (model/config.c) with the byte-level vocabulary of the bundled corpus.
SIZES = {"tiny": (64, 2, 4, 192), "15M": (256, 4, 4, 768), "45M": (512, 6, 8, 1536)}
ARCHS = {"TransNormerLLM": [], "Transformer": ["--arch", "transformer"]}

PAPER_TABLE12 = [  # model size, Transformer tokens/s/GPU and memory, TransNormerLLM's (A100 80G, ctx 2048)
    ("7B", 3362.7, 72.5, 4081.0, 71.9), ("13B", 1735.6, 70.6, 2104.3, 73.8),
    ("65B", 318.2, 73.2, 406.9, 69.4), ("175B", 106.2, 69.5, 136.6, 70.3)]
PAPER_TABLE13 = [  # model size, Transformer context and memory, TransNormerLLM's context, relative speed, memory
    ("7B", "37K", 71.1, "48K", 1.21, 65.8), ("13B", "24K", 68.0, "35K", 1.23, 61.0),
    ("65B", "19K", 73.3, "23K", 1.29, 68.2), ("175B", "10K", 66.9, "12K", 1.35, 63.5)]


def run(command, log=None):
    """Runs command, echoing it; returns its standard output."""
    print(" ".join(command), flush=True)
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    if log:
        with open(log, "w") as f:
            f.write(out)
    return out


def threads(args):
    return f"{args.bench_threads} thread" + ("s" if args.bench_threads > 1 else "")


def load_average():
    """The machine's 1-minute load average: timings on a shared machine
    are only as good as it was quiet."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def write_md(path, text, load_at_start):
    text += (f"\nLoad average of the machine (1 minute, {os.cpu_count()} cores) when the measurements started: "
             f"{load_at_start:.1f}; when they ended: {load_average():.1f}.\n")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}", flush=True)


def config_file(args, size):
    """An HF config.json of a size with the byte-level vocabulary (259)."""
    dim, layers, heads, glu = SIZES[size]
    path = os.path.join(args.work, f"config-{size}.json")
    config = {"architectures": ["TransnormerForCausalLM"], "model_type": "transnormer", "vocab_size": 259,
              "decoder_embed_dim": dim, "hidden_dim": dim, "decoder_layers": layers,
              "decoder_attention_heads": heads, "glu_dim": glu, "linear_use_lrpe_list": [1] + [0] * (layers - 1),
              "no_scale_embedding": False, "linear_act_fun": "silu", "norm_type": "simplermsnorm", "bias": False,
              "init_std": 0.02, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True}
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path


# ---------------------------------------------------------------- Fig. 4

def read_tsv(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f]


def parse_gpu_table(path):
    """Series {name: [(n, fwd ms, fwd+bwd ms, MiB)]} from the markdown rows
    that build/cuda/bench_attention and bench/attention_torch.py print
    ("| B=4 H=16 n=2048 dk=128 dv=128 | tnllm LA-2 (chunked) | fwd | f+b |
    MiB | ..." or "| 2048 | PyTorch naive | ..."); rows without a
    forward+backward time (decode steps, out of memory) are left out, and
    so is a series of one point."""
    series = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 5 or not re.fullmatch(r"[\d.]+", cells[3] or "x"):
                continue
            match = re.search(r"\bn=(\d+)", cells[0])
            if match:
                n, shape = int(match.group(1)), re.sub(r"\s*\bn=\d+", "", cells[0])
            elif cells[0].isdigit():
                n, shape = int(cells[0]), ""
            else:
                continue
            memory = float(cells[4]) if re.fullmatch(r"[\d.]+", cells[4]) else float("nan")
            series.setdefault((cells[1], shape), []).append((n, float(cells[2]), float(cells[3]), memory))
    series = {key: sorted(points) for key, points in series.items() if len(points) > 1}
    # the shape goes into the name only when the series do not all share one
    shared = len({shape for _, shape in series if shape}) <= 1
    return {f"GPU {name}" + ("" if shared or not shape else f" [{shape}]"): points
            for (name, shape), points in series.items()}


def figure4(args):
    load = load_average()
    tsv, log = os.path.join(args.work, "fig4.tsv"), os.path.join(args.work, "fig4.log")
    command = [os.path.join(args.bench, "attention_cpu"), "--lengths", args.fig4_lengths, "--heads", "2",
               "--head-dim", "64", "--tsv", tsv, "-t", str(args.bench_threads)]
    printed = run(command, log)
    rows = read_tsv(tsv)
    forms = list(dict.fromkeys(r["form"] for r in rows))
    cpu = {form: [r for r in rows if r["form"] == form] for form in forms}
    gpu = parse_gpu_table(args.gpu_table) if args.gpu_table else {}

    def number(text):
        return float(text) if text not in ("", "nan") else None

    time_series = [(f"CPU {f}", [(int(r["n"]), float(r["fwdbwd_ms"])) for r in cpu[f] if r["fwdbwd_ms"]])
                   for f in forms]
    memory_series = [(f"CPU {f}", [(int(r["n"]), max(float(r["fwdbwd_mib"]), 1e-3)) for r in cpu[f]]) for f in forms]
    for name, points in gpu.items():
        time_series.append((name, [(n, fb) for n, _, fb, _ in points]))
        memory_series.append((name, [(n, max(mib, 1e-3)) for n, _, _, mib in points if mib == mib]))
    svgplot.plot(os.path.join(args.results, "fig4.svg"), "Fig. 4: attention forward+backward, time and memory",
                 [{"xlabel": "sequence length n", "ylabel": "forward+backward ms", "logx": True, "logy": True,
                   "key": "below", "height": 650, "series": time_series},
                  {"xlabel": "sequence length n", "ylabel": "extra memory of forward+backward, MiB",
                   "logx": True, "logy": True, "key": "below", "height": 650, "series": memory_series}])

    def ratio(a, b):
        return f"{a / b:.1f}x" if a and b else "-"

    def ms(text):
        value = float(text)
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"

    by_n = {}
    for r in rows:
        by_n.setdefault(int(r["n"]), {})[r["form"]] = r
    lines = ["# Fig. 4: attention speed and memory against the sequence length", "",
             "**Paper** (Fig. 4, A100, feature dimension 2048, its Lightning Attention against the PyTorch "
             "implementation of NormAttention): forward+backward at least 2x faster at every length 512..8192, "
             "memory growing linearly instead of quadratically, up to 4x less at n = 8192.", "",
             f"**Ours, CPU** ({threads(args)}, fp32, B=1 H=2 dk=dv=64, tiles and chunks of 64; the fastest of the "
             "calls made in 1 s, at least one; "
             "a form is stopped at the lengths after one whose forward+backward took over 20 s, or skipped "
             "when it would request over 6 GiB): "
             "*naive* is Eq. 10 with the whole masked n x n matrix per head, kept for the backward pass as PyTorch's "
             "autograd keeps it (the paper's baseline); *parallel* is tnllm's blockwise Alg. 1-2 (the paper's "
             "Lightning Attention: tiles of 64 x 64 scores, O(n^2) time, nothing n x n stored); *chunked* is Lightning "
             "Attention-2, linear in n. Memory is what each form allocates beyond the inputs and outputs all "
             "share (forward and backward scratch), and in brackets the growth of the process's peak resident "
             "set measured during the call.", "",
             "| n | naive fwd ms | naive fwd+bwd ms | naive MiB | parallel fwd ms | parallel fwd+bwd ms | "
             "parallel MiB | chunked fwd ms | chunked fwd+bwd ms | chunked MiB | fwd+bwd: naive / parallel | "
             "fwd+bwd: naive / chunked | worst rel l2 vs naive |", "|" + "---|" * 13]
    for n in sorted(by_n):
        cells, worst = [str(n)], "-"
        for form in ("naive", "parallel", "chunked"):
            r = by_n[n].get(form, {})
            if r.get("fwdbwd_ms"):
                cells += [ms(r["fwd_ms"]), ms(r["fwdbwd_ms"]),
                          f"{float(r['fwdbwd_mib']):.2f} ({r['measured_fwdbwd_mib']})"]
            else:
                cells += ["not run", "not run", f"{float(r.get('fwdbwd_mib', 'nan')):.2f} (not run)"]
            if form != "naive" and r.get("rel_l2") not in (None, "", "nan"):
                worst = r["rel_l2"] if worst == "-" else max(worst, r["rel_l2"], key=float)
        naive = number(by_n[n].get("naive", {}).get("fwdbwd_ms", ""))
        cells += [ratio(naive, number(by_n[n].get(form, {}).get("fwdbwd_ms", ""))) for form in ("parallel", "chunked")]
        cells.append(worst)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Plot: [fig4.svg](fig4.svg) (log-log; CPU series, and GPU ones when a table is given).", ""]
    if gpu:
        lines += [f"**GPU** (`--gpu-table {args.gpu_table}`; the shape is the table's): forward+backward ms and "
                  "peak extra MiB by series.",
                  "", "| series | n | fwd ms | fwd+bwd ms | MiB |", "|---|---|---|---|---|"]
        for name, points in gpu.items():
            for n, fwd, fb, mib in points:
                lines.append(f"| {name} | {n} | {fwd} | {fb} | {mib:g} |")
        lines.append("")
    lines += ["Command: `" + " ".join(command) + "`", "", "Its output:", "", "```", printed.rstrip(), "```", ""]
    write_md(os.path.join(args.results, "fig4.md"), "\n".join(lines), load)


# ---------------------------------------------------------------- Fig. 5

def figure5(args):
    load = load_average()
    command = [os.path.join(args.bench, "decode"), "--size", "tiny", "--ctx-size", "15M", "--contexts",
               args.fig5_contexts, "--stream-mib", "256", "-t", str(args.bench_threads)]
    printed = run(command, os.path.join(args.work, "fig5.log"))
    rows = []
    for line in printed.splitlines():
        match = re.match(r"\s*(\d+) \|\s*([\d.]+)\s+([\d.]+) \|\s*([\d.]+)\s+([\d.]+) \|", line)
        if match:
            rows.append(tuple(float(x) for x in match.groups()))
    flat = next((line.strip() for line in printed.splitlines() if line.startswith("ours: slowest/fastest")), "")
    start = float(re.search(r"resident at start .*: ([\d.]+) MiB", printed).group(1))
    svgplot.plot(os.path.join(args.results, "fig5.svg"),
                 "Fig. 5: one decoded token against the context (15M shape, CPU)",
                 [{"xlabel": "context (tokens)", "ylabel": "ms per token", "logx": True, "logy": True,
                   "series": [("TransNormerLLM (recurrent state)", [(r[0], r[1]) for r in rows]),
                              ("Transformer (KV cache)", [(r[0], r[3]) for r in rows])]},
                  {"xlabel": "context (tokens)", "ylabel": "resident memory above the program's, MiB", "logx": True,
                   "logy": True, "series": [("TransNormerLLM (recurrent state)", [(r[0], r[2] - start) for r in rows]),
                                            ("Transformer (KV cache)", [(r[0], r[4] - start) for r in rows])]}])
    lines = ["# Fig. 5: inference time and memory against the context", "",
             "**Paper** (Fig. 5, 256..32K tokens): the Transformer's time and memory per step grow with the "
             "sequence length; TransNormerLLM's stay constant.", "",
             f"**Ours, CPU** ({threads(args)}, fp32, random weights of the 15M shape: D=256 L=4 H=4 G=768 "
             "V=8192): the time of one decoded token (the fastest of 9, ours also the fastest of 11 interleaved "
             "rounds) after a context of n tokens, and the process's resident memory then. TransNormerLLM decodes "
             "with the recurrent state of Alg. 4; the Transformer is a KV-cache softmax attention of the same "
             "shape (the same matrix products, written in bench/decode.c), its cache filled as a prefill of n "
             "tokens leaves it.", "",
             f"Memory: the resident set above the {start:.0f} MiB the process holds before the benchmark "
             "allocates anything (the program and its libraries: OpenBLAS, cuBLAS and NCCL in a CUDA build), and "
             "in brackets the whole resident set.", "",
             "| context | TransNormerLLM ms/token | TransNormerLLM MiB | Transformer ms/token | "
             "Transformer MiB | time ratio | memory ratio |", "|---|---|---|---|---|---|---|"]
    for n, ours, ours_rss, kv, kv_rss in rows:
        lines.append(f"| {int(n)} | {ours:.3f} | {ours_rss - start:.1f} ({ours_rss:.1f}) | {kv:.3f} | "
                     f"{kv_rss - start:.1f} ({kv_rss:.1f}) | {kv / ours:.1f}x | "
                     f"{(kv_rss - start) / (ours_rss - start):.1f}x |")
    lines += ["", flat, "", "Plot: [fig5.svg](fig5.svg).", "", "Command: `" + " ".join(command) + "`", "",
              "Its output:", "", "```", printed.rstrip(), "```", ""]
    write_md(os.path.join(args.results, "fig5.md"), "\n".join(lines), load)


# ------------------------------------------------------- Tables 12 and 13

def peak_rss_mib(command, log_path):
    """Runs command with its output to log_path; returns the peak resident
    set of that process alone, MiB (from wait4, not the shell's)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"paper_efficiency.py: {' '.join(command)} failed (see {log_path})")
    return usage.ru_maxrss / 1024.0


def train_measured(args, size, arch, ctx, micro_batch):
    """Four training steps of micro_batch x ctx tokens; returns (command,
    seconds of the fastest step after the first (which touches every page),
    peak resident MiB of the process, MiB that `tnllm info` predicts)."""
    config = config_file(args, size)
    out = os.path.join(args.work, f"train-{size}-{arch}-{ctx}x{micro_batch}")
    subprocess.run(["rm", "-rf", out], check=True)
    command = ["./tnllm", "train", "--config", config, "--data", args.data, "--ctx", str(ctx), "--micro-batch",
               str(micro_batch), "--batch-tokens", str(ctx * micro_batch), "--steps", "4", "--warmup", "1",
               "--eval-every", "0", "--eval-windows", "1", "--save-every", "0", "--log-every", "1",
               "-t", str(args.bench_threads)] + ARCHS[arch] + ["-o", out]
    print(" ".join(command), flush=True)
    rss = peak_rss_mib(command, out + ".log")
    elapsed = []
    with open(os.path.join(out, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "elapsed_s" in record:
                elapsed.append(record["elapsed_s"])
    step = min(later - earlier for earlier, later in zip(elapsed, elapsed[1:]))
    return " ".join(command), step, rss, info_memory(args, size, arch, ctx, micro_batch)[0]


def train_archs(args, size, ctx, micro_batch, commands):
    """train_measured for each architecture; appends the commands to
    commands; returns {arch: (tokens/s, peak resident MiB, predicted MiB)}."""
    measured = {}
    for arch in ARCHS:
        command, step, rss, predicted = train_measured(args, size, arch, ctx, micro_batch)
        measured[arch] = (ctx * micro_batch / step, rss, predicted)
        commands.append(command)
    return measured


def info_memory(args, size, arch, ctx, micro_batch, budget_gib=None):
    """(training MiB, longest context for the budget or None) from
    `tnllm info` for the configuration the trainer runs."""
    command = ["./tnllm", "info", "--config", config_file(args, size), "--ctx", str(ctx), "--batch",
               str(micro_batch), "-t", str(args.bench_threads)] + ARCHS[arch]
    if budget_gib:
        command += ["--budget-gib", str(budget_gib)]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    match = re.search(r"CPU training .*?: ([\d.]+) (KiB|MiB|GiB)", out)
    mib = float(match.group(1)) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[match.group(2)]
    longest = re.search(r"longest context that trains in .*: (\d+) tokens", out)
    return mib, int(longest.group(1)) if longest else None


def count_parameters(config, switches=()):
    """The parameter count `tnllm info` gives a config.json with switches."""
    out = subprocess.run(["./tnllm", "info", "--config", config] + list(switches), check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return int(re.search(r"^total\s+(\d+)", out, re.M).group(1))


def parameters(args, size, arch):
    return count_parameters(config_file(args, size), ARCHS[arch])


def table12(args):
    load = load_average()
    ctx, micro_batch = args.table12_ctx, args.table12_micro_batch
    rows, commands = [], []
    for size in args.sizes:
        measured = train_archs(args, size, ctx, micro_batch, commands)
        rows.append((size, {arch: m + (parameters(args, size, arch),) for arch, m in measured.items()}))
    lines = ["# Table 12: training speed against model size", "",
             "**Paper** (A100 80G, context 2048, the largest batch that fits; tokens/s/GPU and allocated "
             "memory/GPU): TransNormerLLM is faster at every size, by 21-28%.", "",
             "| size | Transformer tokens/s | Transformer memory | TransNormerLLM tokens/s | TransNormerLLM memory "
             "| TransNormerLLM / Transformer |", "|---|---|---|---|---|---|"]
    for size, t, t_mem, n, n_mem in PAPER_TABLE12:
        lines.append(f"| {size} | {t} | {t_mem} GB | {n} | {n_mem} GB | {n / t:.2f}x |")
    lines += ["", f"**Ours, CPU** ({threads(args)}, fp32, context {ctx}, micro-batch {micro_batch}: "
              f"{ctx * micro_batch} tokens per step; byte-level vocabulary; tokens/s of the fastest of three steps "
              "after a first one: "
              "forward, backward, clipping and AdamW). Memory: what the trainer allocates (`tnllm info`: weights, "
              "gradients, AdamW moments and the activation arenas) and, in brackets, the measured peak resident "
              "set of the whole process, which adds about 200 MiB of its own (the libraries: OpenBLAS's buffers, "
              "cuBLAS and NCCL in a CUDA build; the corpus; tnllm's start-up alone peaks near that): Table 13 "
              "checks the prediction against the growth of the measured peak with the context. The Transformer's "
              "CPU attention is the naive O(n^2) form that recomputes the softmax in the backward pass, not a "
              "FlashAttention kernel.", "",
              "| size (D, L, H, G) | parameters (TNL / Transformer) | Transformer tokens/s | Transformer MiB | "
              "TransNormerLLM tokens/s | TransNormerLLM MiB | TransNormerLLM / Transformer |",
              "|---|---|---|---|---|---|---|"]
    for size, m in rows:
        t, n = m["Transformer"], m["TransNormerLLM"]
        lines.append(f"| {size} {SIZES[size]} | {n[3] / 1e6:.2f}M / {t[3] / 1e6:.2f}M | {t[0]:.0f} | "
                     f"{t[2]:.1f} ({t[1]:.1f}) | {n[0]:.0f} | {n[2]:.1f} ({n[1]:.1f}) | {n[0] / t[0]:.2f}x |")
    lines += ["", "Plot: [table12.svg](table12.svg).", "", "Commands:", ""] + [f"- `{c}`" for c in commands] + [""]
    write_md(os.path.join(args.results, "table12.md"), "\n".join(lines), load)
    svgplot.plot(os.path.join(args.results, "table12.svg"), f"Table 12: training tokens/s, CPU, context {ctx}",
                 [{"xlabel": "parameters", "ylabel": "tokens/s", "logx": True, "logx_base": 10, "xformat": "%.0s%c",
                   "logy": True, "key": "top right",
                   "series": [(arch, [(m[arch][3], m[arch][0]) for _, m in rows]) for arch in ARCHS]}])


def table13(args):
    load = load_average()
    budget = args.table13_budget_gib
    longest = {(size, arch): info_memory(args, size, arch, 2048, 1, budget)[1] for size in args.sizes for arch in ARCHS}
    speed, commands = [], []
    for ctx in args.table13_contexts:
        speed.append((ctx, train_archs(args, args.table13_size, ctx, 1, commands)))
    lines = ["# Table 13: the longest context that trains", "",
             "**Paper** (64 A100 80G, batch 1): TransNormerLLM trains 1.2-1.5x longer contexts than the Transformer "
             "(with FlashAttention) at every size, 1.21-1.35x faster.", "",
             "| size | Transformer context | Transformer memory | TransNormerLLM context | relative speed | "
             "TransNormerLLM memory |", "|---|---|---|---|---|---|"]
    for size, t_ctx, t_mem, n_ctx, rel, n_mem in PAPER_TABLE13:
        lines.append(f"| {size} | {t_ctx} | {t_mem} GB | {n_ctx} | {rel} | {n_mem} GB |")
    lines += ["", f"**Ours, CPU**: the longest context whose training memory (batch 1, {threads(args)}; "
              "weights, gradients, AdamW moments and the activation arenas the trainer allocates, as "
              f"`tnllm info --budget-gib {budget:g}` computes them) fits in {budget:g} GiB. Computed, not run: a "
              "step at these lengths would take hours on this CPU for the Transformer.", "",
              "| size (D, L, H, G) | Transformer context | TransNormerLLM context | TransNormerLLM / Transformer |",
              "|---|---|---|---|"]
    for size in args.sizes:
        t, n = longest[(size, "Transformer")], longest[(size, "TransNormerLLM")]
        lines.append(f"| {size} {SIZES[size]} | {t} | {n} | {n / t:.2f}x |")
    lines += ["", f"Real steps of the {args.table13_size} size at batch 1: tokens/s of the fastest of three steps "
              "after a first one, "
              "and the memory `tnllm info` predicts against the measured peak resident set of the process. The "
              "process holds about 200 MiB of its own (libraries, BLAS buffers, the corpus), so the check is the "
              f"growth from the shortest context ({args.table13_contexts[0]}): predicted -> measured.", "",
              "| context | Transformer tokens/s | TransNormerLLM tokens/s | relative speed (TNL / Transformer) | "
              "Transformer MiB: predicted, peak RSS | growth: predicted -> measured | TransNormerLLM MiB: "
              "predicted, peak RSS | growth: predicted -> measured |", "|---|---|---|---|---|---|---|---|"]
    first = speed[0][1]
    for ctx, m in speed:
        t, n = m["Transformer"], m["TransNormerLLM"]
        cells = [str(ctx), f"{t[0]:.0f}", f"{n[0]:.0f}", f"{n[0] / t[0]:.2f}x"]
        for arch in ("Transformer", "TransNormerLLM"):
            rate, rss, predicted = m[arch]
            growth = f"{predicted - first[arch][2]:+.1f} -> {rss - first[arch][1]:+.1f}"
            cells += [f"{predicted:.1f}, {rss:.1f}", growth if ctx != speed[0][0] else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Plot: [table13.svg](table13.svg) (training memory against the context, the budget as a line).", "",
              "Commands:", "", f"- `./tnllm info --config CONFIG --ctx 2048 --batch 1 -t {args.bench_threads} "
              f"--budget-gib {budget:g}` (+ `--arch transformer`) for each size's config (the sizes above, "
              "vocabulary 259)"] + [f"- `{c}`" for c in commands] + [""]
    write_md(os.path.join(args.results, "table13.md"), "\n".join(lines), load)
    contexts = [1 << k for k in range(10, 19)]
    series = [(f"{arch} {size}", [(c, info_memory(args, size, arch, c, 1)[0] / 1024) for c in contexts])
              for size in args.sizes for arch in ARCHS]
    svgplot.plot(os.path.join(args.results, "table13.svg"), "Table 13: CPU training memory, batch 1",
                 [{"xlabel": "context (tokens)", "ylabel": "GiB", "logx": True, "logy": True, "series": series,
                   "key": "bottom right",
                   "lines": [f"set arrow from graph 0, first {budget} to graph 1, first {budget} nohead dt 2",
                             f"set label 'budget {budget:g} GiB' at graph 0.02, first {budget * 1.15}"]}])


FIGURES = {"4": figure4, "5": figure5}
TABLES = {"12": table12, "13": table13}


def add_arguments(parser):
    parser.add_argument("--figures", default="", help="comma-separated: 4 (attention), 5 (decoding)")
    parser.add_argument("--gpu-table", default=None,
                        help="Fig. 4: a table printed by build/cuda/bench_attention (and bench/attention_torch.py)")
    parser.add_argument("--fig4-lengths", default="256,512,1K,2K,4K,8K,16K,32K")
    parser.add_argument("--fig5-contexts", default="256,1K,4K,16K,64K,256K")
    parser.add_argument("--sizes", type=lambda text: text.split(","), default=list(SIZES),
                        help=f"Tables 12-13: sizes among {', '.join(SIZES)}")
    parser.add_argument("--table12-ctx", type=int, default=512)
    parser.add_argument("--table12-micro-batch", type=int, default=2)
    parser.add_argument("--table13-budget-gib", type=float, default=16)
    parser.add_argument("--table13-size", default="15M", choices=list(SIZES))
    parser.add_argument("--table13-contexts", type=lambda text: [int(x) for x in text.split(",")],
                        default=[512, 1024, 2048])
    parser.add_argument("--bench", default="build/bench", help="where `make` put the benchmarks")
    parser.add_argument("--bench-threads", type=int, default=1,
                        help="threads of every timed run of the figures and Tables 12-13 (default 1: on a shared "
                             "machine a second thread stalls the first at every OpenMP barrier when descheduled)")
