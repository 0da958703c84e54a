#!/usr/bin/env python3
"""paper_tables.py: small-scale reproductions of the paper's Table 3
(Transformer vs TransNormerLLM at two sizes) and Tables 5-10 (the
ablations of SPEC section 3) with `tnllm train` on the CPU; with
--figures 4,5 and --tables 12,13 also its efficiency results
(paper_efficiency.py: attention and decoding against the length, training
speed and the longest context that trains).

usage: scripts/paper_tables.py [--tables 3,5,6,7,8,9,10,noise,12,13]
                               [--figures 4,5] [--gpu-table FILE] [--data PATHS]
                               [--steps N] [--ctx T] [--micro-batch B] [--lr X]
                               [--lr-sweep X,Y,...] [--eval-every N]
                               [--work DIR] [--results DIR] [--threads N]
                               (and the --fig4-/--fig5-/--table12-/--table13-
                               settings of paper_efficiency.py; see --help)

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
import json
import math
import os
import subprocess
import sys

import paper_efficiency
import svgplot

# The two sizes of Table 3 (D, L, H, G) at the scale a 2-core CPU trains in
# minutes; the ablations use the small one. Byte-level vocabulary (259).
SIZES = {
    "small": {"dim": 64, "layers": 2, "heads": 2, "glu": 192},
    "large": {"dim": 128, "layers": 4, "heads": 4, "glu": 384},
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


def config_json(size):
    """An HF config.json of a size: byte-level vocabulary, LRPE on layer 0."""
    s = SIZES[size]
    return {
        "architectures": ["TransnormerForCausalLM"], "model_type": "transnormer", "vocab_size": 259,
        "decoder_embed_dim": s["dim"], "hidden_dim": s["dim"], "decoder_layers": s["layers"],
        "decoder_attention_heads": s["heads"], "glu_dim": s["glu"],
        "linear_use_lrpe_list": [1] + [0] * (s["layers"] - 1), "no_scale_embedding": False,
        "linear_act_fun": "silu", "norm_type": "simplermsnorm", "bias": False, "init_std": 0.02,
        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True,
    }


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


def train(args, size, switches, lr):
    """Trains one variant at peak rate lr (unless already done); returns
    (run_dir, command)."""
    run_dir = os.path.join(args.work, run_name(size, switches, lr, args.lr))
    config = os.path.join(args.results, f"config-{size}.json")
    with open(config, "w") as f:
        json.dump(config_json(size), f, indent=2)
    # APE needs a row per position of the longest forward: the trainer's
    # validation runs windows of ctx + 1 tokens (ctx scored).
    switches = [str(args.ctx + 1) if s == "WINDOW" else s for s in switches]
    command = ["./tnllm", "train", "--config", config, "--data", args.data, "--ctx", str(args.ctx),
               "--micro-batch", str(args.micro_batch), "--batch-tokens", str(args.ctx * args.micro_batch),
               "--steps", str(args.steps), "--warmup", str(args.steps // 10), "--lr", f"{lr:g}",
               "--eval-every", str(args.eval_every), "--eval-windows", "32", "--save-every", "0",
               "--log-every", str(args.steps), "-t", str(args.threads)]
    command += ([] if "--seed" in switches else ["--seed", "1234"]) + switches + ["-o", run_dir]
    if not complete(run_dir, args.steps):
        subprocess.run(["rm", "-rf", run_dir], check=True)
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return run_dir, command


def summarise(run_dir, steps):
    losses, val = read_metrics(run_dir)
    tail = [loss for step, loss in losses if step > steps - max(1, steps // 10)]
    return sum(tail) / len(tail), val[-1][1], val


def best_of_rates(args, size, switches):
    """Trains a variant at each rate of the sweep (or at --lr alone); returns
    the best run's (lr, run_dir, command, train loss, val loss, val curve)
    and the final validation loss at every rate."""
    runs = []
    for lr in args.lr_sweep or [args.lr]:
        run_dir, command = train(args, size, switches, lr)
        loss, val_loss, val = summarise(run_dir, args.steps)
        runs.append((lr, run_dir, " ".join(command), loss, val_loss, val))
    return min(runs, key=lambda r: r[4]), {r[0]: r[4] for r in runs}


def write_table(args, number, table):
    rows, curves, grid = [], [], []
    for name, size, switches, paper_loss, paper_ppl in table["rows"]:
        (lr, _, command, loss, val_loss, val), by_rate = best_of_rates(args, size, switches)
        rows.append((name, paper_loss, paper_ppl, lr, loss, val_loss, math.exp(val_loss), command))
        curves.append((f"{name}, lr {lr:g}" if args.lr_sweep else name, val))
        grid.append((name, by_rate))
    scored = [r for r in rows if r[1] is not None]
    best_paper = min(scored, key=lambda r: r[1])[0] if scored else "-"
    best_ours = min(rows, key=lambda r: r[5])[0]
    md = os.path.join(args.results, f"table{number}.md")
    rates = "peak learning rate " + (f"swept over {', '.join(f'{x:g}' for x in args.lr_sweep)}, each row at its "
                                     "best (lowest final validation loss)" if args.lr_sweep else f"{args.lr:g}")
    with open(md + ".tmp", "w") as f:
        f.write(f"# {table['title']}\n\n")
        f.write(f"Small-scale reproduction on the CPU: {args.steps} steps of {args.ctx * args.micro_batch} tokens "
                f"(context {args.ctx}), {rates}, corpus `{args.data}`, byte-level vocabulary; sizes (D, L, H, G): "
                + ", ".join(f"{k} {tuple(v.values())}" for k, v in SIZES.items())
                + ". The paper: 385M/1B parameters, 100K updates on 300B tokens.\n\n")
        f.write("| variant | paper loss | paper PPL | our lr | our train loss (last 10%) | our val loss | "
                "our val PPL |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for name, p_loss, p_ppl, lr, loss, val_loss, ppl, _ in rows:
            paper = f"{p_loss:.3f} | {p_ppl:.3f}" if p_loss is not None else "- | -"
            f.write(f"| {name} | {paper} | {lr:g} | {loss:.4f} | {val_loss:.4f} | {ppl:.3f} |\n")
        f.write(f"\nBest in the paper: {best_paper}. Best here (val loss): {best_ours}.\n")
        if args.lr_sweep:
            f.write("\nFinal validation loss at each peak learning rate (the best of each row in bold; the best "
                    "rate is chosen on the reported split, which flatters every row alike):\n\n")
            f.write("| variant | " + " | ".join(f"lr {x:g}" for x in args.lr_sweep) + " |\n")
            f.write("|---|" + "---|" * len(args.lr_sweep) + "\n")
            for name, by_rate in grid:
                best = min(by_rate.values())
                cells = [f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in by_rate.values()]
                f.write(f"| {name} | " + " | ".join(cells) + " |\n")
        f.write(f"\nValidation-loss curves: [table{number}.svg](table{number}.svg).\n\nCommands (the best rate's "
                "run; the others differ in `--lr` and `-o` only):\n\n" if args.lr_sweep else
                f"\nValidation-loss curves: [table{number}.svg](table{number}.svg).\n\nCommands:\n\n")
        for name, *_, command in rows:
            f.write(f"- {name}: `{command}`\n")
    os.replace(md + ".tmp", md)
    svgplot.plot(os.path.join(args.results, f"table{number}.svg"), table["title"].split(":")[0],
                 [{"xlabel": "step", "ylabel": "validation loss", "key": "top right", "series": curves}])
    print(f"wrote {md}: best in the paper {best_paper}, here {best_ours}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="3,5,6,7,8,9,10,noise")
    parser.add_argument("--data", default="data/corpus.jsonl")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--ctx", type=int, default=64)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lr-sweep", type=lambda text: [float(x) for x in text.split(",")], default=None,
                        help="comma-separated peak rates: each variant at its best (e.g. 1e-3,2e-3,3e-3,6e-3)")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="runs/paper-tables")
    parser.add_argument("--results", default="results")
    paper_efficiency.add_arguments(parser)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    for number in filter(None, args.tables.split(",")):
        if number in paper_efficiency.TABLES:
            paper_efficiency.TABLES[number](args)
        elif number in TABLES:
            write_table(args, number, TABLES[number])
        else:
            known = list(TABLES) + list(paper_efficiency.TABLES)
            sys.exit(f"paper_tables.py: no table '{number}' (have {', '.join(known)})")
    for number in filter(None, args.figures.split(",")):
        if number not in paper_efficiency.FIGURES:
            sys.exit(f"paper_tables.py: no figure '{number}' (have {', '.join(paper_efficiency.FIGURES)})")
        paper_efficiency.FIGURES[number](args)


if __name__ == "__main__":
    main()
