#!/usr/bin/env python3
"""paper_tables.py: small-scale reproductions of the paper's Table 3
(Transformer vs TransNormerLLM at two sizes) and Tables 5-10 (the
ablations of SPEC section 3) with `tnllm train`, on the CPU (--scale cpu,
the default) or on GPUs (--scale gpu --device cuda: larger models, context,
batch and corpus); with --figures 4,5 and --tables 12,13 also its
efficiency results (paper_efficiency.py: attention and decoding against the
length, training speed and the longest context that trains).

usage: scripts/paper_tables.py [--scale cpu|gpu] [--device cpu|cuda]
                               [--tables 3,5,6,7,8,9,10,noise,12,13]
                               [--figures 4,5] [--gpu-table FILE] [--data PATHS]
                               [--steps N] [--ctx T] [--micro-batch B] [--lr X]
                               [--lr-sweep [SIZE=]X,Y,...] [--eval-every N]
                               [--eval-windows N] [--jobs N] [--gpus N]
                               [--train-only] [--work DIR] [--results DIR]
                               [--threads N]
                               (and the --fig4-/--fig5-/--table12-/--table13-
                               settings of paper_efficiency.py; see --help)

--scale picks the model sizes and the defaults of --data, --steps, --ctx,
--micro-batch, --lr, --eval-every, --eval-windows, --work and --results
(SCALES below); a flag given overrides its default. --jobs N trains N
variants at once; with --device cuda job slot k runs its variants on GPU
k mod --gpus (CUDA_VISIBLE_DEVICES), so --jobs 4 --gpus 2 puts two runs on
each of two GPUs. --train-only trains the runs of the chosen tables and
writes no table (only the config-SIZE.json files the runs read):
scripts/device_experiments.sh trains on the device machine, where gnuplot
is missing, and the same command without it writes the tables here from
the runs' metrics.jsonl.

Each table trains its variants (same data order, seed and schedule; the
only difference is the table's switch), then writes results/table<N>.md
(the paper's loss and PPL beside ours, the exact commands) and
results/table<N>.svg (the validation-loss curves, drawn by gnuplot as
src/train/plot.c does). A variant shared by several tables (the default
model) is trained once. Runs live under --work (default runs/paper-tables)
(the model configs in results/) and are reused when their metrics.jsonl is complete, so rerunning one table
does not retrain the others. Table "noise" trains the default model at
three seeds: differences between variants smaller than its spread are not
rankings.

--lr-sweep trains every variant of the chosen tables at each peak learning
rate of the list and reports each variant at its best one (lowest final
validation loss), with the whole grid beside: a comparison of
architectures is only fair when each has its own tuned rate. The best rate
is chosen on the same validation split that is reported, which flatters
every row alike.

Our "loss" is the mean training loss of the last 10% of steps (the paper
averages its last 1k iterations); "val loss" is the final validation loss
on the held-out 5% of the corpus and "val PPL" its exponential. The paper's
PPL is on its own evaluation set, so only the rankings compare.
"""
import argparse
import concurrent.futures
import json
import math
import os
import queue
import shlex
import subprocess
import sys
import time

import paper_efficiency
import svgplot

# Per scale: the two sizes of Table 3 (D, L, H, G; the ablations use the
# small one; byte-level vocabulary, 259) and the defaults of the run flags.
# cpu: what a 2-core CPU trains in minutes (0.13M and 0.95M parameters).
# gpu: what two H200s train in about three minutes, several runs sharing
# a GPU (3.74M and 36.83M parameters, 28x and 39x the cpu sizes; the GPU
# step needs a head width of 64 or 128), on the 18.5 MB corpus of
# data/make_large_corpus.py: 1000 steps of 16K tokens, under one epoch, so
# the validation loss is still falling at the end.
SCALES = {
    "cpu": {
        "sizes": {"small": {"dim": 64, "layers": 2, "heads": 2, "glu": 192},
                  "large": {"dim": 128, "layers": 4, "heads": 4, "glu": 384}},
        "data": "data/corpus.jsonl", "steps": 500, "ctx": 64, "micro_batch": 8, "lr": 3e-3, "eval_every": 50,
        "eval_windows": 32, "work": "runs/paper-tables", "results": "results",
    },
    "gpu": {
        "sizes": {"small": {"dim": 256, "layers": 4, "heads": 4, "glu": 768},
                  "large": {"dim": 512, "layers": 10, "heads": 8, "glu": 1536}},
        "data": "data/large-corpus.jsonl", "steps": 1000, "ctx": 1024, "micro_batch": 16, "lr": 2e-3,
        "eval_every": 100, "eval_windows": 256, "work": "runs/paper-tables-gpu", "results": "results/gpu",
    },
}

# A table: its title, the paper's rows (name, loss, PPL) and ours
# (name, size, switches); paper values from the paper's Tables 3 and 5-10
# (385M models, 100K updates, 300B-token corpus; Table 3 also at 1B).
TABLES = {
    "3": {
        "title": "Table 3: Transformer vs TransNormerLLM (paper: 385M and 1B; ours: small and large)",
        "rows": [
            ("Transformer, small (paper 385M)", "small", ["--arch", "transformer"], 2.362, 5.160),
            ("TransNormerLLM, small (paper 385M)", "small", [], 2.247, 4.765),
            ("Transformer, large (paper 1B)", "large", ["--arch", "transformer"], 2.061, 4.765),
            ("TransNormerLLM, large (paper 1B)", "large", [], 1.896, 3.728),
        ],
    },
    "5": {
        "title": "Table 5: positional encoding",
        "rows": [
            ("LRPE-d", "small", [], 2.247, 4.765),
            ("APE", "small", ["--pe", "ape", "--max-positions", "WINDOW"], 2.387, 5.253),
            ("LRPE", "small", ["--pe", "lrpe"], 2.287, 4.899),
            ("Exp-Decay", "small", ["--pe", "exp-decay"], 2.267, 4.834),
        ],
    },
    "6": {
        "title": "Table 6: decay temperature",
        "rows": [
            ("w/ temperature", "small", [], 2.247, 4.765),
            ("w/o temperature", "small", ["--decay-temperature", "off"], 2.258, 4.804),
        ],
    },
    "7": {
        "title": "Table 7: output gate",
        "rows": [
            ("w/ gate", "small", [], 2.247, 4.765),
            ("w/o gate", "small", ["--gate", "off"], 2.263, 4.820),
        ],
    },
    "8": {
        "title": "Table 8: GLA activation of q and k (the paper's model uses 1+elu, the released ones SiLU)",
        "rows": [
            ("1+elu", "small", ["--gla-act", "1+elu"], 2.247, 4.765),
            ("Swish (SiLU)", "small", [], 2.236, 4.728),
            ("No Act", "small", ["--gla-act", "none"], 2.281, 4.880),
        ],
    },
    "9": {
        "title": "Table 9: GLU activation",
        "rows": [
            ("No Act (SGLU)", "small", [], 2.247, 4.765),
            ("Swish", "small", ["--glu-act", "silu"], 2.254, 4.788),
        ],
    },
    "10": {
        "title": "Table 10: normalization",
        "rows": [
            ("SRMSNorm", "small", [], 2.247, 4.765),
            ("RMSNorm", "small", ["--norm", "rmsnorm"], 2.247, 4.766),
            ("LayerNorm", "small", ["--norm", "layernorm"], 2.247, 4.765),
        ],
    },
    "noise": {
        "title": "Run-to-run noise: the default small model with three seeds (initialisation and data order)",
        "rows": [
            ("seed 1234", "small", [], None, None),
            ("seed 1235", "small", ["--seed", "1235"], None, None),
            ("seed 1236", "small", ["--seed", "1236"], None, None),
        ],
    },
}


def config_json(shape):
    """An HF config.json of a size: byte-level vocabulary, LRPE on layer 0."""
    return {
        "architectures": ["TransnormerForCausalLM"], "model_type": "transnormer", "vocab_size": 259,
        "decoder_embed_dim": shape["dim"], "hidden_dim": shape["dim"], "decoder_layers": shape["layers"],
        "decoder_attention_heads": shape["heads"], "glu_dim": shape["glu"],
        "linear_use_lrpe_list": [1] + [0] * (shape["layers"] - 1), "no_scale_embedding": False,
        "linear_act_fun": "silu", "norm_type": "simplermsnorm", "bias": False, "init_std": 0.02,
        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True,
    }


def config_path(args, size):
    return os.path.join(args.results, f"config-{size}.json")


def write_configs(args):
    for size, shape in args.model_sizes.items():
        with open(config_path(args, size), "w") as f:
            json.dump(config_json(shape), f, indent=2)


def run_name(size, switches, lr, default_lr):
    """The run directory's name; the default rate adds nothing, so sweeps
    reuse the runs of the plain tables."""
    parts = [size] + [s.lstrip("-").replace("+", "p") for s in switches]
    return "-".join(parts + ([] if lr == default_lr else [f"lr{lr:g}"]))


def read_metrics(run_dir):
    losses, val = [], []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                losses.append((record["step"], record["loss"]))
            if "val_loss" in record:
                val.append((record["step"], record["val_loss"]))
    return losses, val


def complete(run_dir, steps):
    try:
        losses, val = read_metrics(run_dir)
    except (OSError, ValueError):
        return False
    return bool(losses) and losses[-1][0] >= steps and bool(val) and val[-1][0] >= steps


def train_command(args, size, switches, lr):
    """The run directory and `tnllm train` command of one variant at peak
    rate lr."""
    run_dir = os.path.join(args.work, run_name(size, switches, lr, args.lr))
    # APE needs a row per position of the longest forward: the trainer's
    # validation runs windows of ctx + 1 tokens (ctx scored).
    switches = [str(args.ctx + 1) if s == "WINDOW" else s for s in switches]
    command = ["./tnllm", "train", "--config", config_path(args, size), "--data", args.data, "--ctx", str(args.ctx),
               "--micro-batch", str(args.micro_batch), "--batch-tokens", str(args.ctx * args.micro_batch),
               "--steps", str(args.steps), "--warmup", str(args.steps // 10), "--lr", f"{lr:g}",
               "--eval-every", str(args.eval_every), "--eval-windows", str(args.eval_windows), "--save-every", "0",
               "--log-every", str(args.steps), "-t", str(args.threads)]
    command += [] if args.device == "cpu" else ["--device", args.device]
    command += ([] if "--seed" in switches else ["--seed", "1234"]) + switches + ["-o", run_dir]
    return run_dir, command


def rates(args, number, size):
    """The peak learning rates a row of a size is trained at in a table."""
    if number not in args.sweep_tables:
        return [args.lr]
    return args.lr_sweep.get(size) or args.lr_sweep.get(None) or [args.lr]


def table_runs(args, number):
    """[(row name, size, [(lr, run_dir, command), ...])] of a table."""
    return [(name, size, [(lr,) + train_command(args, size, switches, lr) for lr in rates(args, number, size)])
            for name, size, switches, *_ in TABLES[number]["rows"]]


def train_all(args, numbers):
    """Trains every run of the tables that is not complete yet, --jobs at a
    time, the largest models first (the last to finish bound the wall
    time); each run's output goes to RUN_DIR.log. Returns the number of
    runs that failed."""
    runs = {}
    for number in numbers:
        for _, size, by_rate in table_runs(args, number):
            for _, run_dir, command in by_rate:
                runs[run_dir] = (size, command)
    shape = args.model_sizes
    todo = sorted(((size, run_dir, command) for run_dir, (size, command) in runs.items()
                   if not complete(run_dir, args.steps)),
                  key=lambda run: -shape[run[0]]["dim"] ** 2 * shape[run[0]]["layers"])
    print(f"{len(runs)} runs, {len(todo)} to train, {args.jobs} at a time", flush=True)
    gpus = queue.Queue()
    for job in range(args.jobs):
        gpus.put(job % args.gpus)
    start = time.monotonic()

    def train(run_dir, command):
        gpu = gpus.get()
        try:
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(gpu)) if args.device == "cuda" else None
            subprocess.run(["rm", "-rf", run_dir], check=True)
            began = time.monotonic()
            with open(run_dir + ".log", "w") as log:
                status = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            where = f" on GPU {gpu}" if env else ""
            print(f"[{time.monotonic() - start:6.1f} s] {'done' if status == 0 else 'FAILED'}{where} in "
                  f"{time.monotonic() - began:.1f} s: {' '.join(command)}", flush=True)
            if status != 0:
                with open(run_dir + ".log") as log:
                    print(log.read()[-2000:], flush=True)
            return status
        finally:
            gpus.put(gpu)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        statuses = list(pool.map(lambda run: train(run[1], run[2]), todo))
    return sum(status != 0 for status in statuses)


def summarise(run_dir, steps):
    losses, val = read_metrics(run_dir)
    tail = [loss for step, loss in losses if step > steps - max(1, steps // 10)]
    return sum(tail) / len(tail), val[-1][1], val


def describe_scale(args, number, sizes):
    """The paragraph under a table's title: where, how long, the sizes."""
    swept = number in args.sweep_tables and args.lr_sweep
    if swept:
        lists = [(size, rates(args, number, size)) for size in sizes]
        if len({tuple(r) for _, r in lists}) == 1:
            text = ", ".join(f"{x:g}" for x in lists[0][1])
        else:
            text = "; ".join(f"{size} " + ", ".join(f"{x:g}" for x in r) for size, r in lists)
        rate = f"peak learning rate swept over {text}, each row at its best (lowest final validation loss)"
    else:
        rate = f"peak learning rate {args.lr:g}"
    where = "on the CPU" if args.device == "cpu" else f"on GPUs (`--device {args.device}`, each run on one GPU)"
    shapes = ", ".join(f"{size} {tuple(args.model_sizes[size].values())} with "
                       f"{paper_efficiency.count_parameters(config_path(args, size)) / 1e6:.2f}M parameters"
                       for size in sizes)
    invocation = " ".join(shlex.quote(a) for a in ["python3", "scripts/paper_tables.py"] + sys.argv[1:])
    trained = ("" if args.device == "cpu" else " The runs were trained on the device machine by "
               "`scripts/device_experiments.sh` (this command with `--train-only`, several runs at once).")
    return (f"Small-scale reproduction {where}: {args.steps} steps of {args.ctx * args.micro_batch} tokens "
            f"(context {args.ctx}, {args.micro_batch} windows; {args.steps * args.ctx * args.micro_batch / 1e6:.3g}M "
            f"tokens in all), {rate}, {args.steps // 10} warmup steps, cosine decay, corpus `{args.data}`, byte-level "
            f"vocabulary; validation on {args.eval_windows} windows of the held-out 5%; TransNormerLLM sizes "
            f"(D, L, H, G): {shapes}. The paper: 385M/1B parameters, 100K updates on 300B tokens.\n\n"
            f"Made by `{invocation}`.{trained}\n\n")


def write_table(args, number, table):
    rows, curves, grid = [], [], []
    swept = number in args.sweep_tables and args.lr_sweep
    for (name, size, by_rate), (*_, paper_loss, paper_ppl) in zip(table_runs(args, number), table["rows"]):
        results = [(lr, command) + summarise(run_dir, args.steps) for lr, run_dir, command in by_rate]
        lr, command, loss, val_loss, val = min(results, key=lambda r: r[3])
        rows.append((name, paper_loss, paper_ppl, lr, loss, val_loss, math.exp(val_loss), " ".join(command)))
        curves.append((f"{name}, lr {lr:g}" if swept else name, val))
        grid.append((name, {r[0]: r[3] for r in results}))
    scored = [r for r in rows if r[1] is not None]
    best_paper = min(scored, key=lambda r: r[1])[0] if scored else "-"
    best_ours = min(rows, key=lambda r: r[5])[0]
    md = os.path.join(args.results, f"table{number}.md")
    sizes = list(dict.fromkeys(size for _, size, *_ in table["rows"]))
    with open(md + ".tmp", "w") as f:
        f.write(f"# {table['title']}\n\n")
        f.write(describe_scale(args, number, sizes))
        f.write("| variant | paper loss | paper PPL | our lr | our train loss (last 10%) | our val loss | "
                "our val PPL |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for name, p_loss, p_ppl, lr, loss, val_loss, ppl, _ in rows:
            paper = f"{p_loss:.3f} | {p_ppl:.3f}" if p_loss is not None else "- | -"
            f.write(f"| {name} | {paper} | {lr:g} | {loss:.4f} | {val_loss:.4f} | {ppl:.3f} |\n")
        f.write(f"\nBest in the paper: {best_paper}. Best here (val loss): {best_ours}.\n")
        if swept:
            columns = sorted({lr for _, by_rate in grid for lr in by_rate})
            f.write("\nFinal validation loss at each peak learning rate (the best of each row in bold; the best "
                    "rate is chosen on the reported split, which flatters every row alike):\n\n")
            f.write("| variant | " + " | ".join(f"lr {x:g}" for x in columns) + " |\n")
            f.write("|---|" + "---|" * len(columns) + "\n")
            for name, by_rate in grid:
                best = min(by_rate.values())
                cells = ["-" if x not in by_rate else f"**{by_rate[x]:.4f}**" if by_rate[x] == best
                         else f"{by_rate[x]:.4f}" for x in columns]
                f.write(f"| {name} | " + " | ".join(cells) + " |\n")
        f.write(f"\nValidation-loss curves: [table{number}.svg](table{number}.svg).\n\nCommands (the best rate's "
                "run; the others differ in `--lr` and `-o` only):\n\n" if swept else
                f"\nValidation-loss curves: [table{number}.svg](table{number}.svg).\n\nCommands:\n\n")
        for name, *_, command in rows:
            f.write(f"- {name}: `{command}`\n")
    os.replace(md + ".tmp", md)
    svgplot.plot(os.path.join(args.results, f"table{number}.svg"), table["title"].split(":")[0],
                 [{"xlabel": "step", "ylabel": "validation loss", "key": "top right", "series": curves}])
    print(f"wrote {md}: best in the paper {best_paper}, here {best_ours}", flush=True)


def parse_sweeps(texts):
    """--lr-sweep values, "X,Y,..." (every size) or "SIZE=X,Y,...", as
    {size or None: [rates]}."""
    sweeps = {}
    for text in texts or []:
        size, _, rates_text = text.rpartition("=")
        sweeps[size or None] = [float(x) for x in rates_text.split(",")]
    return sweeps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=list(SCALES), default="cpu",
                        help="model sizes and the defaults of the flags below marked (scale)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where every run trains")
    parser.add_argument("--tables", default="3,5,6,7,8,9,10,noise")
    parser.add_argument("--data", help="(scale) training corpus")
    parser.add_argument("--steps", type=int, help="(scale)")
    parser.add_argument("--ctx", type=int, help="(scale)")
    parser.add_argument("--micro-batch", type=int, help="(scale) windows per step")
    parser.add_argument("--lr", type=float, help="(scale) peak rate of the runs outside a sweep")
    parser.add_argument("--lr-sweep", action="append",
                        help="comma-separated peak rates: each variant at its best (e.g. 1e-3,2e-3,3e-3,6e-3); "
                             "SIZE=X,Y,... for one size (repeat the flag for each)")
    parser.add_argument("--sweep-tables", default=None,
                        help="comma-separated tables the sweep applies to (default: every chosen table)")
    parser.add_argument("--eval-every", type=int, help="(scale)")
    parser.add_argument("--eval-windows", type=int, help="(scale) validation windows per evaluation")
    parser.add_argument("--threads", type=int, default=2, help="threads of each run")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--gpus", type=int, default=1, help="with --device cuda: GPUs the jobs spread over")
    parser.add_argument("--train-only", action="store_true", help="train the tables' runs, write no table")
    parser.add_argument("--work", help="(scale) run directories")
    parser.add_argument("--results", help="(scale) where the tables go")
    paper_efficiency.add_arguments(parser)
    args = parser.parse_args()
    scale = SCALES[args.scale]
    for key, value in scale.items():
        if key != "sizes" and getattr(args, key) is None:
            setattr(args, key, value)
    args.model_sizes = scale["sizes"]
    args.lr_sweep = parse_sweeps(args.lr_sweep)
    numbers = list(filter(None, args.tables.split(",")))
    args.sweep_tables = numbers if args.sweep_tables is None else args.sweep_tables.split(",")
    known = list(TABLES) + list(paper_efficiency.TABLES)
    for number in numbers:
        if number not in known:
            sys.exit(f"paper_tables.py: no table '{number}' (have {', '.join(known)})")
    for number in filter(None, args.figures.split(",")):
        if number not in paper_efficiency.FIGURES:
            sys.exit(f"paper_tables.py: no figure '{number}' (have {', '.join(paper_efficiency.FIGURES)})")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    write_configs(args)
    quality = [number for number in numbers if number in TABLES]
    failed = train_all(args, quality)
    if args.train_only:
        sys.exit(f"paper_tables.py: {failed} runs failed" if failed else 0)
    for number in numbers:
        if number in paper_efficiency.TABLES:
            paper_efficiency.TABLES[number](args)
        elif all(complete(run_dir, args.steps) for *_, by_rate in table_runs(args, number) for _, run_dir, _ in by_rate):
            write_table(args, number, TABLES[number])
        else:
            print(f"paper_tables.py: table {number} not written: some of its runs failed", flush=True)
    for number in filter(None, args.figures.split(",")):
        paper_efficiency.FIGURES[number](args)
    if failed:
        sys.exit(f"paper_tables.py: {failed} runs failed")


if __name__ == "__main__":
    main()
