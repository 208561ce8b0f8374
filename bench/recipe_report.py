#!/usr/bin/env python3
"""recipe_report.py: bench/recipe.sh's table, goals and figure.

  recipe_report.py OUT

Reads OUT/<regime>-<run>-<repeat>/ (meta.json; torch.json for the anchor;
final.json and curve.txt for lm's runs), prints per regime and run the final
bits per byte of each repeat with their mean and spread, the time the recipe
takes to reach the AdamW run's final figure (on the curve tokens, repeat by
repeat, interpolated between checkpoints), the issue's goals, and draws
OUT/bpb.png with gnuplot (as scripts/plot-metrics does)."""
import glob
import json
import os
import subprocess
import sys

RUNS = ("torch", "adamw", "recipe")
NAMES = {"torch": "(a) PyTorch, AdamW", "adamw": "(b) lm, AdamW", "recipe": "(c) lm, recipe"}


def load(out):
    runs = {}
    for d in sorted(glob.glob(os.path.join(out, "*-*-*"))):
        if not os.path.exists(os.path.join(d, ".done")):
            continue
        meta = json.load(open(os.path.join(d, "meta.json")))
        if meta["run"] == "torch":
            t = json.load(open(os.path.join(d, "torch.json")))
            final, curve = t["test_bpb"], [(c["elapsed"], c["bpb"]) for c in t["curve"]]
            tokens = t["tokens"]
        else:
            final = json.loads(open(os.path.join(d, "final.json")).readline())["bpb"]
            curve = [tuple(map(float, l.split())) for l in open(os.path.join(d, "curve.txt")) if l.strip()]
            tokens = json.load(open(os.path.join(d, "run", "latest", "trainer-state.json")))["tokens_seen"]
        runs[(meta["regime"], meta["run"], meta["repeat"])] = dict(meta=meta, final=final, curve=curve,
                                                                   tokens=tokens, dir=d)
    return runs


def crossing(curve, target):
    """The first time the curve reaches target (linear between points), or None."""
    prev = None
    for t, b in curve:
        if b <= target:
            if prev is None or prev[1] == b:
                return t
            (t0, b0) = prev
            return t0 + (t - t0) * (b0 - target) / (b0 - b)
        prev = (t, b)
    return None


def spread(xs):
    m = sum(xs) / len(xs)
    return m, min(xs), max(xs)


def table(runs, regimes):
    lines, goals = [], []
    for reg in regimes:
        lines.append(f"== {reg}")
        lines.append(f"{'run':22} {'final bits/byte by repeat':36} {'mean':>7} {'spread':>7} {'tokens (mean)':>14}  load")
        means = {}
        for kind in RUNS:
            rs = [runs[k] for k in sorted(runs) if k[0] == reg and k[1] == kind]
            if not rs:
                continue
            m, lo, hi = spread([r["final"] for r in rs])
            means[kind] = m
            tok = sum(r["tokens"] for r in rs) / len(rs)
            loads = ", ".join(r["meta"]["load_before"].split()[0] + "-" + r["meta"]["load_after"].split()[0]
                              for r in rs)
            finals = " ".join(f"{r['final']:.4f}" for r in rs)
            lines.append(f"{NAMES[kind]:22} {finals:36} {m:7.4f} {hi - lo:7.4f} {tok:14,.0f}  {loads}")
        ttt = []
        for k in sorted(runs):
            if k[0] != reg or k[1] != "recipe" or (reg, "adamw", k[2]) not in runs:
                continue
            b = runs[(reg, "adamw", k[2])]
            target = b["curve"][-1][1] if b["curve"] else b["final"]
            t = crossing(runs[k]["curve"], target)
            budget = runs[k]["meta"]["seconds"]
            ttt.append((k[2], target, t, budget))
        for rep, target, t, budget in ttt:
            when = f"{t:.0f} s = {t / budget:.2f} of the budget" if t is not None else "never"
            lines.append(f"repeat {rep}: (c) reaches (b)'s final {target:.4f} (curve tokens) after {when}")
        if "adamw" in means and "recipe" in means:
            d = means["adamw"] - means["recipe"]
            goals.append(f"{reg}: (c) {d:+.4f} bits/byte below (b) (goal >= 0.05): {'met' if d >= 0.05 else 'NOT met'}")
            fr = [t / budget if t is not None else float("inf") for _, _, t, budget in ttt]
            if fr:
                worst = max(fr)
                goals.append(f"{reg}: (c) reaches (b)'s final in at most {worst:.2f} of the time over the repeats "
                             f"(goal <= 0.75): {'met' if worst <= 0.75 else 'NOT met'}")
        if "torch" in means and "recipe" in means:
            d = means["torch"] - means["recipe"]
            goals.append(f"{reg}: (c) {d:+.4f} bits/byte below (a) (goal > 0): {'met' if d > 0 else 'NOT met'}")
        lines.append("")
    return lines + ["== goals"] + goals


def plot(runs, regimes, out):
    files = {}
    for k, r in runs.items():
        path = os.path.join(out, f"curve-{k[0]}-{k[1]}-{k[2]}.dat")
        with open(path, "w") as f:
            for t, b in r["curve"]:
                f.write(f"{t / 60:.4f} {b:.6f}\n")
        files[k] = path
    colors = {"torch": "#d62728", "adamw": "#1f77b4", "recipe": "#2ca02c"}
    cmds = ["set terminal pngcairo size 1400,560", f"set output '{os.path.join(out, 'bpb.png')}'",
            f"set multiplot layout 1,{len(regimes)}", "set grid", "set key top right",
            "set xlabel 'training minutes'", "set ylabel 'bits per byte (held out)'"]
    for reg in regimes:
        series = []
        for k in sorted(files):
            if k[0] != reg:
                continue
            dt = 1 if k[2] == 1 else 2
            series.append(f"'{files[k]}' using 1:2 with linespoints lw 2 pt 7 ps 0.5 dt {dt} "
                          f"lc rgb '{colors[k[1]]}' title '{NAMES[k[1]]} #{k[2]}'")
        if series:
            cmds.append(f"set title '{reg}'")
            cmds.append("plot " + ", ".join(series))
    cmds.append("unset multiplot")
    try:
        subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, check=True)
        return os.path.join(out, "bpb.png")
    except (OSError, subprocess.CalledProcessError) as e:
        return f"(no figure: gnuplot failed: {e})"


def main():
    out = sys.argv[1]
    runs = load(out)
    regimes = [r for r in ("gutenberg", "shakespeare") if any(k[0] == r for k in runs)]
    print("\n".join(table(runs, regimes)))
    print("figure:", plot(runs, regimes, out))


if __name__ == "__main__":
    main()
