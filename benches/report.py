"""Statistics, the markdown tables and the SVG plots of a benchmark run.

A result is a dict: `group`, `name`, `status` ("ok", "failed", "skipped"),
`times` (seconds, one per repetition) or a precomputed `median`/`min`/`max`,
and free-form `note`/`reason`/`extra`.
"""

import html
import json
import statistics


def summary(times):
    """median, min and max of a list of numbers (None for an empty list)."""
    if not times:
        return None
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "n": len(times)}


def stats_of(result):
    if result.get("stats"):
        return result["stats"]
    return summary(result.get("times") or [])


def ms(seconds):
    return f"{seconds * 1000:.2f}"


def fmt_range(stat, scale=1000.0, digits=2):
    """`median (min-max)` in the given unit."""
    if not stat:
        return "-"
    f = f"{{:.{digits}f}}"
    return (f"{f.format(stat['median'] * scale)} "
            f"({f.format(stat['min'] * scale)}-{f.format(stat['max'] * scale)})")


def ratio(value, reference):
    if not value or not reference:
        return "-"
    return f"{value / reference:.2f}x"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def status_text(result):
    if result["status"] == "ok":
        return result.get("note", "")
    return f"**{result['status']}**: {result.get('reason', '')}"


# --- SVG --------------------------------------------------------------------


def bar_chart(title, unit, bars, width=760):
    """A horizontal bar chart: bars are (label, median, min, max) in `unit`;
    whiskers show min-max. The x axis is logarithmic when values span more
    than two decades."""
    bars = [b for b in bars if b[1] is not None]
    row, left, right, top = 26, 300, 40, 44
    height = top + row * len(bars) + 40
    hi = max((b[3] for b in bars), default=1.0) * 1.05
    lo = min((b[2] for b in bars if b[2] > 0), default=1.0)
    use_log = hi / max(lo, 1e-12) > 100
    scale = _scale(lo, hi, use_log, width - left - right)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
           f'font-weight="bold">{html.escape(title)}</text>']
    out += _axis(scale, lo, hi, use_log, left, top, row * len(bars), unit)
    for i, (label, median, low, high) in enumerate(bars):
        y = top + i * row
        colour = "#c0392b" if label.startswith("seal") else "#5d6d7e"
        out.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 5}" width="{max(scale(median) - left, 1):.1f}" '
                   f'height="{row - 10}" fill="{colour}"/>')
        out.append(f'<line x1="{scale(low):.1f}" x2="{scale(high):.1f}" y1="{y + row / 2}" '
                   f'y2="{y + row / 2}" stroke="black"/>')
        out.append(f'<text x="{scale(high) + 4:.1f}" y="{y + 16}" font-size="10">'
                   f'{_num(median)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _scale(lo, hi, use_log, span):
    import math
    left = 300
    if use_log:
        start = 10 ** math.floor(math.log10(max(lo, 1e-9)))
        end = 10 ** math.ceil(math.log10(hi))

        def scale(v):
            v = max(v, start)
            return left + span * (math.log10(v) - math.log10(start)) / (
                math.log10(end) - math.log10(start))
        scale.domain = (start, end)
        return scale

    def scale(v):
        return left + span * v / hi
    scale.domain = (0, hi)
    return scale


def _axis(scale, lo, hi, use_log, left, top, height, unit):
    import math
    start, end = scale.domain
    if use_log:
        ticks = [10 ** e for e in range(round(math.log10(start)), round(math.log10(end)) + 1)]
    else:
        step = _nice_step(end / 5)
        ticks = [k * step for k in range(int(end / step) + 1)]
    out = []
    for tick in ticks:
        x = scale(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + height}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + height + 14}" text-anchor="middle" '
                   f'font-size="10">{_num(tick)}</text>')
    axis_name = f"{unit}{' (log scale)' if use_log else ''}; bar = median, line = min-max"
    out.append(f'<text x="{left + (scale(end) - left) / 2:.1f}" y="{top + height + 30}" '
               f'text-anchor="middle" font-size="11">{html.escape(axis_name)}</text>')
    return out


def _nice_step(raw):
    import math
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _num(v):
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.1f}"
    if v >= 0.01:
        return f"{v:.2f}"
    return f"{v:.3g}"


def dump_json(path, document):
    with open(path, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
