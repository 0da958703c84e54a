"""svgplot.py: line plots as SVG through gnuplot, for the result scripts.

plot(svg, title, panels): one row of panels side by side; a panel is a dict
with xlabel, ylabel, series (a list of (name, [(x, y), ...])) and optional
logx, logy (log-scale axes, base logx_base (default 2) and 10), xformat
(gnuplot's format of the x tics, e.g. "%.0s%c" for 10k, 1M), key (the
legend's place, default "top left"; "below" puts it under the panel),
height (of the picture, pixels, default 500) and lines (extra gnuplot
commands, e.g. a horizontal budget line). The SVG is written to a temporary
name and renamed into place, as every output of tnllm is.
"""
import os
import subprocess


def _quote(text):
    return "'" + text.replace("'", "''") + "'"


def plot(svg, title, panels):
    data = svg + ".dat"
    blocks, script = 0, []
    with open(data, "w") as f:
        for panel in panels:
            for _, points in panel["series"]:
                for x, y in points:
                    f.write(f"{x} {y}\n")
                f.write("\n\n")
    width = 800 if len(panels) == 1 else 560 * len(panels)
    height = max(panel.get("height", 500) for panel in panels)
    script.append(f"set terminal svg size {width},{height} dynamic\nset output {_quote(svg + '.tmp')}")
    script.append(f"set multiplot layout 1,{len(panels)} title {_quote(title)}")
    for panel in panels:
        script.append("unset logscale")
        if panel.get("logx"):
            script.append(f"set logscale x {panel.get('logx_base', 2)}")
        script.append(f"set format x {_quote(panel.get('xformat', '% h'))}")
        if panel.get("logy"):
            script.append("set logscale y 10")
        script.append(f"set xlabel {_quote(panel['xlabel'])}\nset ylabel {_quote(panel['ylabel'])}")
        script.append(f"set key {panel.get('key', 'top left')}\nset grid")
        script.extend(panel.get("lines", []))
        plots = []
        for name, points in panel["series"]:
            if points:
                plots.append(f"{_quote(data)} index {blocks} with linespoints title {_quote(name)}")
            blocks += 1
        script.append("plot " + ", ".join(plots) if plots else "plot NaN notitle")
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    os.replace(svg + ".tmp", svg)
    os.remove(data)
