"""The AGP report as one self-contained HTML page: inline SVG and CSS, no script, nothing
loaded from anywhere, laid out for A4 paper. Every text that comes from the reader or the
user (serial, model, notes...) goes through :func:`html.escape`.

Axes are fixed, never derived from the data: glucose 0-350 mg/dL (0-19.4 mmol/L; higher
readings are drawn at the top edge), the day 00:00-24:00. So drawing costs the same whatever
the values, and hostile values cannot stretch or hang it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence

from ..output.units import MG_DL, mmol_l
from .agp import HIGH, LOW, PERCENTILES, RANGES, SLOT_MINUTES, VERY_HIGH, VERY_LOW, Metrics
from .data import Day, ReportData

Y_MAX = 350
RANGE_COLOURS = {"very_low": "#8b1a1a", "low": "#e0463e", "in_range": "#2e9e48",
                 "high": "#f2b705", "very_high": "#f07c00"}
RANGE_LABELS = {"very_low": "Very low", "low": "Low", "in_range": "In range",
                "high": "High", "very_high": "Very high"}
MARKER_STYLE = {"insulin": ("#2b6cb0", "▲"), "food": ("#dd6b20", "●"),
                "note": ("#4a5568", "■"), "strip": ("#805ad5", "◆"),
                "alert": ("#c53030", "!"), "event": ("#718096", "○")}
#: marker labels listed under each day, at most
LABELS_PER_DAY = 8

_CSS = """
@page { size: A4; margin: 10mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.35 "DejaVu Sans", Arial, sans-serif; color: #1a202c; margin: 0 auto;
       max-width: 190mm; padding: 4mm; }
h1 { font-size: 15pt; margin: 0 0 1mm; }
h2 { font-size: 11pt; margin: 4mm 0 1.5mm; border-bottom: 1px solid #cbd5e0; }
.sub { color: #4a5568; margin: 0 0 2mm; }
.warning { border: 1.5px solid #c05621; background: #fffaf0; padding: 2mm 3mm; margin: 2mm 0; }
.top { display: flex; gap: 6mm; align-items: flex-start; }
table { border-collapse: collapse; }
td, th { padding: 0.6mm 2mm; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#ranges td { white-space: nowrap; }
#ranges td.target { color: #4a5568; font-size: 8pt; }
.note { color: #4a5568; font-size: 8pt; margin: 1mm 0 0; }
.days { display: grid; grid-template-columns: 1fr 1fr; gap: 3mm 5mm; }
.day { break-inside: avoid; page-break-inside: avoid; }
.day h3 { font-size: 9pt; margin: 0; }
.day ul { margin: 0; padding-left: 4mm; font-size: 7.5pt; color: #2d3748; }
svg { display: block; }
svg text { font: 8px "DejaVu Sans", Arial, sans-serif; fill: #4a5568; }
.legend span { margin-right: 4mm; white-space: nowrap; }
footer { margin-top: 4mm; font-size: 8pt; color: #718096; }
section { break-inside: avoid; page-break-inside: avoid; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Units:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def value(self, mg_dl: float) -> str:
        if self.unit == MG_DL:
            return f"{mg_dl:.0f}"
        return str(mmol_l(round(mg_dl)))

    def label(self, mg_dl: float) -> str:
        return f"{self.value(mg_dl)} {self.unit}"


def _y(mg_dl: float, top: float, bottom: float) -> float:
    clamped = min(max(mg_dl, 0.0), float(Y_MAX))
    return bottom - (bottom - top) * clamped / Y_MAX


def _x(minute: float, left: float, right: float) -> float:
    return left + (right - left) * min(max(minute, 0.0), 1440.0) / 1440


def _tir_bar(metrics: Metrics) -> str:
    width, height = 34, 150
    parts = [f'<svg id="tir-bar" width="{width}" height="{height}" viewBox="0 0 {width} '
             f'{height}" role="img" aria-label="time in ranges">']
    y = 0.0
    for name, _, _ in reversed(RANGES):
        share = metrics.ranges[name] / 100 * height
        if share > 0:
            parts.append(f'<rect x="0" y="{y:.2f}" width="{width}" height="{share:.2f}" '
                         f'fill="{RANGE_COLOURS[name]}"><title>{_e(RANGE_LABELS[name])} '
                         f'{metrics.ranges[name]:.1f} %</title></rect>')
        y += share
    parts.append("</svg>")
    return "".join(parts)


def _range_rows(metrics: Metrics, units: _Units) -> str:
    bounds = {
        "very_low": f"&lt;{units.value(VERY_LOW)}",
        "low": f"{units.value(VERY_LOW)}–{units.value(LOW - 1)}",
        "in_range": f"{units.value(LOW)}–{units.value(HIGH)}",
        "high": f"{units.value(HIGH + 1)}–{units.value(VERY_HIGH)}",
        "very_high": f"&gt;{units.value(VERY_HIGH)}",
    }
    targets = {"very_low": "&lt;1 %", "low": "&lt;4 %*", "in_range": "&gt;70 %",
               "high": "&lt;25 %*", "very_high": "&lt;5 %"}
    rows = []
    for name, _, _ in reversed(RANGES):
        rows.append(f'<tr id="range-{name}"><td><span style="color:{RANGE_COLOURS[name]}">■'
                    f'</span> {RANGE_LABELS[name]}</td><td>{bounds[name]} {_e(units.unit)}</td>'
                    f'<td class="num">{metrics.ranges[name]:.1f} %</td>'
                    f'<td class="target">target {targets[name]}</td></tr>')
    return "".join(rows)


def _summary(metrics: Metrics, units: _Units) -> str:
    def cell(value: float | None, fmt: Callable[[float], str]) -> str:
        return "–" if value is None else fmt(value)

    rows = [
        ("period", "Period (reader clock)", _period_text(metrics)),
        ("days", "Days", f"{metrics.days:.1f}"),
        ("active", "Sensor time captured", f"{metrics.active_percent:.1f} %"),
        ("readings", "Sensor readings", f"{metrics.readings} (every "
                                        f"{metrics.interval_minutes:g} min)"),
        ("mean", "Mean glucose", cell(metrics.mean, units.label)),
        ("gmi", "Glucose management indicator (GMI)", cell(metrics.gmi, lambda v: f"{v:.1f} %")),
        ("cv", "Glucose variability (CV)",
         cell(metrics.cv, lambda v: f"{v:.1f} % (target ≤ 36 %)")),
        ("sd", "Standard deviation", cell(metrics.sd, units.label)),
    ]
    body = "".join(f'<tr id="metric-{key}"><th>{label}</th><td class="num">{_e(value)}</td></tr>'
                   for key, label, value in rows)
    return f'<table id="metrics">{body}</table>'


def _period_text(metrics: Metrics) -> str:
    if metrics.start is None or metrics.end is None:
        return "no readings"
    last = metrics.end - dt.timedelta(seconds=1)
    return f"{metrics.start:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"


def _y_axis(units: _Units, left: float, right: float, top: float, bottom: float,
            ticks: Sequence[int]) -> str:
    out = []
    for tick in ticks:
        y = _y(tick, top, bottom)
        dash = ' stroke-dasharray="3 2"' if tick in (LOW, HIGH) else ""
        colour = "#2e9e48" if tick in (LOW, HIGH) else "#e2e8f0"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                   f'stroke="{colour}"{dash}/>'
                   f'<text x="{left - 3}" y="{y + 3:.1f}" text-anchor="end">'
                   f'{units.value(tick)}</text>')
    return "".join(out)


def _x_axis(left: float, right: float, top: float, bottom: float, every_hours: int) -> str:
    out = []
    for hour in range(0, 25, every_hours):
        x = _x(hour * 60, left, right)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#edf2f7"/>'
                   f'<text x="{x:.1f}" y="{bottom + 10}" text-anchor="middle">'
                   f'{hour:02d}:00</text>')
    return "".join(out)


def _modal_day(metrics: Metrics, units: _Units) -> str:
    width, height = 700, 250
    left, right, top, bottom = 40.0, 690.0, 10.0, 225.0
    out = [f'<svg id="agp" width="100%" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="modal day percentiles">',
           _x_axis(left, right, top, bottom, 3),
           _y_axis(units, left, right, top, bottom, (0, VERY_LOW, LOW, HIGH, VERY_HIGH, Y_MAX))]
    # runs of consecutive slots with data; a slot without data breaks the bands
    runs: list[list[tuple[float, tuple[float, ...]]]] = [[]]
    for minute, bands in metrics.modal_day:
        if bands is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((_x(minute + SLOT_MINUTES / 2, left, right), bands))
    outer, inner = (0, 4), (1, 3)
    for run in (r for r in runs if r):
        for (low, high), colour, name in ((outer, "#bee3f8", "band-5-95"),
                                          (inner, "#63b3ed", "band-25-75")):
            upper = " ".join(f"{x:.1f},{_y(b[high], top, bottom):.1f}" for x, b in run)
            lower = " ".join(f"{x:.1f},{_y(b[low], top, bottom):.1f}"
                             for x, b in reversed(run))
            out.append(f'<polygon class="{name}" points="{upper} {lower}" fill="{colour}"/>')
        median = " ".join(f"{x:.1f},{_y(b[2], top, bottom):.1f}" for x, b in run)
        out.append(f'<polyline class="median" points="{median}" fill="none" '
                   'stroke="#1a365d" stroke-width="2"/>')
    out.append(f'<text x="{left}" y="{height - 1}">{_e(units.unit)}; percentiles '
               f'{", ".join(str(p) for p in PERCENTILES)} of each {SLOT_MINUTES}-minute slot; '
               'dashed lines: target range</text></svg>')
    return "".join(out)


def _day(day: Day, units: _Units, gap_minutes: float) -> str:
    width, height = 330, 132
    left, right, top, bottom = 26.0, 316.0, 6.0, 96.0
    out = [f'<div class="day" id="day-{day.day.isoformat()}"><h3>{day.day:%A %Y-%m-%d}</h3>'
           f'<svg width="100%" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="glucose on {day.day.isoformat()}">',
           f'<rect x="{left}" y="{_y(HIGH, top, bottom):.1f}" width="{right - left}" '
           f'height="{_y(LOW, top, bottom) - _y(HIGH, top, bottom):.1f}" fill="#f0fff4"/>',
           _x_axis(left, right, top, bottom, 6),
           _y_axis(units, left, right, top, bottom, (LOW, HIGH, Y_MAX))]
    line: list[str] = []
    previous: int | None = None
    for minute, value in day.points:
        if previous is not None and minute - previous > gap_minutes and line:
            out.append(f'<polyline class="glucose" points="{" ".join(line)}" fill="none" '
                       'stroke="#1a365d" stroke-width="1.3"/>')
            line = []
        line.append(f"{_x(minute, left, right):.1f},{_y(value, top, bottom):.1f}")
        previous = minute
    if line:
        out.append(f'<polyline class="glucose" points="{" ".join(line)}" fill="none" '
                   'stroke="#1a365d" stroke-width="1.3"/>')
    rows = {"insulin": 0, "food": 1, "strip": 1, "note": 2, "alert": 2, "event": 2}
    for item in day.markers:
        colour, symbol = MARKER_STYLE[item.kind]
        x = _x(item.minute, left, right)
        y = bottom + 19 + rows[item.kind] * 7
        out.append(f'<text class="marker marker-{item.kind}" x="{x:.1f}" y="{y:.1f}" '
                   f'text-anchor="middle" style="fill:{colour}">{symbol}'
                   f'<title>{item.minute // 60:02d}:{item.minute % 60:02d} '
                   f'{_e(item.label)}</title></text>')
    out.append("</svg>")
    if day.markers:
        shown = day.markers[:LABELS_PER_DAY]
        items = "".join(f'<li>{m.minute // 60:02d}:{m.minute % 60:02d} '
                        f'<span style="color:{MARKER_STYLE[m.kind][0]}">'
                        f'{MARKER_STYLE[m.kind][1]}</span> {_e(m.label[:80])}</li>'
                        for m in shown)
        more = len(day.markers) - len(shown)
        if more:
            items += f"<li>and {more} more</li>"
        out.append(f"<ul>{items}</ul>")
    out.append("</div>")
    return "".join(out)


def render(data: ReportData, metrics: Metrics, unit: str) -> str:
    units = _Units(unit)
    device = data.device
    who = f"{data.title}, serial {device.serial or 'unknown'}"
    warnings = "".join(f'<p class="warning" id="sufficiency">Data sufficiency: {_e(w)}</p>'
                       for w in metrics.warnings())
    legend = "".join(f'<span style="color:{colour}">{symbol}</span><span>{_e(kind)}</span>'
                     for kind, (colour, symbol) in MARKER_STYLE.items())
    days = "".join(_day(day, units, 2 * metrics.interval_minutes + 1) for day in data.days)
    shown = (f"the last {len(data.days)} days of the period" if data.days
             else "no days with data")
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>AGP report, {_e(who)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Ambulatory Glucose Profile</h1><p class=\"sub\">{_e(who)}</p>",
        warnings,
        '<section><h2>Glucose statistics and targets</h2><div class="top">',
        _summary(metrics, units),
        f'<div>{_tir_bar(metrics)}</div><div><table id="ranges">{_range_rows(metrics, units)}'
        '</table><p class="note">Consensus targets for most adults with type 1 or 2 diabetes; '
        "* low and high include very low and very high.</p></div></div></section>",
        f"<section><h2>Ambulatory glucose profile (modal day)</h2>{_modal_day(metrics, units)}"
        "</section>",
        f'<h2>Daily glucose profiles: {shown}</h2><p class="legend">{legend}</p>',
        f'<div class="days">{days}</div>',
        "<footer>Written by libre-dump from the reader's own records, on this computer. "
        "Metrics after the international consensus on time in range (Battelino et al., "
        "Diabetes Care 2019) and the GMI of Bergenstal et al. (Diabetes Care 2018); sensor "
        "history only (scans and strip tests are not CGM data). Not a medical device; "
        "discuss treatment with your care team.</footer></body></html>\n",
    ])
