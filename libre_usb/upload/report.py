"""Render a :class:`~.diff.DiffResult` as ``text``, ``json`` or ``html``.

``json`` is the stable, documented structure (``docs/privacy.md``)::

    {"format": "libre-dump-diff", "version": 1, "identical": bool,
     "settings": {...}, "reader": {...}, "uploads": [...], "duplicates_merged": int,
     "time_shift": null | {"seconds", "entries", "changed", "zone"},
     "summary": {kind: {"matched", "changed", "reader_only", "upload_only", "not_expected"}},
     "kinds": {kind: {"title", "matched": [pair], "changed": [pair],
                      "reader_only": [reader item], "upload_only": [upload item],
                      "not_expected": [reader item]}},
     "privacy": [{"path", "category", "what", "value", "count", "uploads"}],
     "unexplained": [{"path", "what", "example", "count", "uploads"}],
     "warnings": [str]}

``html`` is one self-contained file: inline CSS and an inline SVG chart, no scripts, no
fonts, no links to anything outside the file.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from .. import jsonsafe
from .diff import KINDS, DiffResult, KindResult, Pair, ReaderItem, UploadItem

REPORT_FORMAT = "libre-dump-diff"
REPORT_VERSION = 1
FORMATS = ("text", "json", "html")
#: difference rows shown per category in the text report
TEXT_LIMIT = 50
#: difference rows shown per category in the HTML report
HTML_LIMIT = 1000


def render(result: DiffResult, fmt: str) -> str:
    if fmt == "text":
        return render_text(result)
    if fmt == "json":
        return render_json(result)
    if fmt == "html":
        return render_html(result)
    raise ValueError(f"unknown report format {fmt!r}")


# -- JSON ---------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat(timespec="seconds")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def reader_dict(item: ReaderItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": item.kind,
        "record_id": item.record_number,
        "local_time": _jsonable(item.local),
        "utc": _jsonable(item.utc),
        "values": _jsonable(item.values),
    }
    if item.note:
        out["note"] = item.note
    return out


def upload_dict(item: UploadItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "recordNumber": item.record_number,
        "local_time": _jsonable(item.local),
        "utc": _jsonable(item.utc),
        "values": _jsonable(item.values),
        "first_after_time_change": item.first_after_time_change,
        "carriers": list(item.carriers),
        "paths": [[index, path] for index, path in item.paths],
    }


def pair_dict(pair: Pair) -> dict[str, Any]:
    return {
        "reader": reader_dict(pair.reader),
        "upload": upload_dict(pair.upload),
        "by": pair.by,
        "time_delta_s": pair.time_delta,
        "differences": [{"field": d.field, "reader": _jsonable(d.reader),
                         "upload": _jsonable(d.upload)} for d in pair.differences],
    }


def report_dict(result: DiffResult) -> dict[str, Any]:
    """The ``json`` report as a dict."""
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "identical": result.identical,
        "settings": _jsonable(result.settings),
        "reader": _jsonable(result.reader),
        "uploads": [_jsonable({
            "index": u.index, "label": u.label, "container": u.container, "file": u.file,
            "method": u.method, "url": u.url, "host": u.host,
            "server_address": u.server_address, "time": u.time, "encoding": u.encoding,
            "size": u.size, "entries": u.entries,
        }) for u in result.uploads],
        "duplicates_merged": result.duplicates,
        "time_shift": result.time_shift,
        "summary": result.counts(),
        "kinds": {
            kind: {
                "title": KINDS[kind],
                "matched": [pair_dict(p) for p in res.matched],
                "changed": [pair_dict(p) for p in res.changed],
                "reader_only": [reader_dict(r) for r in res.reader_only],
                "upload_only": [upload_dict(u) for u in res.upload_only],
                "not_expected": [reader_dict(r) for r in res.not_expected],
            }
            for kind, res in result.kinds.items()
        },
        "privacy": [{"path": p.path, "category": p.category, "what": p.what, "value": p.value,
                     "count": p.count, "uploads": p.uploads} for p in result.privacy],
        "unexplained": [{"path": u.path, "what": u.what, "example": u.example,
                         "count": u.count, "uploads": u.uploads} for u in result.unexplained],
        "warnings": list(result.warnings),
    }


def render_json(result: DiffResult) -> str:
    return jsonsafe.dumps(report_dict(result), ensure_ascii=False, indent=1) + "\n"


# -- shared wording -----------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str:
    return "no time" if value is None else value.isoformat(sep=" ", timespec="seconds")


def _value_text(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if value is None or key == "fields":
            continue
        if isinstance(value, Decimal):
            value = float(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        label = {"mg_dl": "mg/dL", "mmol_l": "mmol/L", "carbs_g": "g", "units": "U"}.get(key)
        if label:
            parts.append(f"{value} {label}")
        elif key in ("insulin_type", "trend", "range", "type"):
            parts.append(str(value))
        else:
            parts.append(f"{key} {value!r}" if key != "text" else repr(value))
    if values.get("fields"):
        parts.append("fields " + ",".join(values["fields"]))
    return ", ".join(parts)


def describe_reader(item: ReaderItem) -> str:
    text = f"record {item.record_number} at {_time(item.local)}"
    values = _value_text(item.values)
    return f"{text}: {values}" if values else text


def describe_upload(item: UploadItem) -> str:
    carriers = ",".join(f"#{i}" for i in item.carriers)
    text = f"recordNumber {item.record_number} at {_time(item.local)} (upload {carriers})"
    values = _value_text(item.values)
    return f"{text}: {values}" if values else text


def describe_differences(pair: Pair) -> str:
    return "; ".join(f"{d.field}: reader {_show(d.reader)}, upload {_show(d.upload)}"
                     for d in pair.differences)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _zone_text(settings: dict[str, Any]) -> str:
    zone = settings.get("timezone")
    if not zone:
        return "from the upload"
    source = settings.get("timezone_source")
    return f"{zone} (from {source})" if source else str(zone)


def _duration(seconds: int) -> str:
    sign = "+" if seconds > 0 else "-"
    size = abs(seconds)
    if size % 3600 == 0:
        return f"{sign}{size // 3600} h"
    if size % 60 == 0:
        return f"{sign}{size // 60} min"
    return f"{sign}{size} s"


def describe_time_shift(result: DiffResult) -> str | None:
    """"1,133 entries differ only by +1 h: ..." when one constant shift dominates."""
    shift = result.time_shift
    if not shift:
        return None
    zone = shift.get("zone") or "ZONE"
    return (f"{shift['entries']:,} of {shift['changed']:,} changed entries differ only by "
            f"{_duration(int(shift['seconds']))}: the upload was made in another zone or "
            f"with another clock; try --tz {zone}")


def _verdict(result: DiffResult) -> str:
    if result.identical:
        return "the uploads hold exactly the reader's records"
    return "the uploads and the reader DIFFER"


def _upload_line(result: DiffResult, index: int) -> str:
    u = result.uploads[index]
    bits = [f"#{u.index} {u.label}"]
    if u.method or u.url:
        bits.append(" ".join(x for x in (u.method, u.url) if x))
    if u.time is not None:
        bits.append("sent " + u.time.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"))
    if u.encoding:
        bits.append(u.encoding)
    bits.append(f"{u.size} bytes, {sum(u.entries.values())} entries")
    return ", ".join(bits)


def _not_expected_reasons(res: KindResult) -> list[tuple[str, int]]:
    return Counter(item.note or "not expected" for item in res.not_expected).most_common()


# -- text -----------------------------------------------------------------------------------------


def render_text(result: DiffResult) -> str:
    out: list[str] = []
    add = out.append
    add(f"libre-dump diff: {_verdict(result)}")
    shift = describe_time_shift(result)
    if shift:
        add(shift)
    add("")
    reader = result.reader
    add(f"Reader:  {reader['model']}, serial {reader['serial'] or '?'}, software "
        f"{reader['software_version'] or '?'}, {reader['records']} records")
    add("Uploads:")
    for index in range(len(result.uploads)):
        add("  " + _upload_line(result, index))
    settings = result.settings
    add(f"Matching: times within {settings['time_tolerance_s']:g} s, values within "
        f"{settings['value_tolerance']:g} (ketone {settings['ketone_tolerance_mmol_l']:g} "
        f"mmol/L), time zone {_zone_text(settings)}; "
        f"{result.duplicates} duplicate entries merged")
    add("")
    add("Summary")
    header = f"  {'kind':30} {'matched':>8} {'changed':>8} {'reader only':>12} " \
             f"{'upload only':>12} {'not expected':>13}"
    add(header)
    for kind, res in result.kinds.items():
        c = res.counts()
        add(f"  {KINDS[kind]:30} {c['matched']:>8} {c['changed']:>8} {c['reader_only']:>12} "
            f"{c['upload_only']:>12} {c['not_expected']:>13}")
    differing = [res for res in result.kinds.values() if res.differs]
    if differing:
        add("")
        add("Differences")
    for res in differing:
        title = KINDS[res.kind]
        _text_list(out, f"{title}: matched with a different value or time", res.changed,
                   lambda p: f"{describe_reader(p.reader)}\n        <-> "
                             f"{describe_upload(p.upload)}\n        "
                             f"{describe_differences(p)}")
        _text_list(out, f"{title}: on the reader, not uploaded", res.reader_only,
                   lambda r: describe_reader(r) + (f" ({r.note})" if r.note else ""))
        _text_list(out, f"{title}: uploaded, not on the reader", res.upload_only,
                   describe_upload)
    expected_notes = [(res, _not_expected_reasons(res)) for res in result.kinds.values()
                      if res.not_expected]
    if expected_notes:
        add("")
        add("Reader records no upload is expected to hold (not counted as differences)")
        for res, reasons in expected_notes:
            for reason, times in reasons:
                add(f"  {KINDS[res.kind]}: {times} x {reason}")
    add("")
    add("Privacy: what the uploads reveal")
    if not result.privacy:
        add("  nothing identifying found")
    for item in result.privacy:
        value = "(not shown)" if item.value is None else item.value
        repeat = f" x{item.count}" if item.count > 1 else ""
        add(f"  [{item.category}] {item.path} = {value}{repeat}")
        add(f"      {item.what} (upload {', '.join(f'#{i}' for i in item.uploads)})")
    add("")
    add("Fields no reader record explains")
    if not result.unexplained:
        add("  none")
    for field in result.unexplained:
        example = f" e.g. {field.example}" if field.example is not None else ""
        add(f"  {field.path} (x{field.count}){example}")
        add(f"      {field.what}")
    if result.warnings:
        add("")
        add("Warnings")
        for warning in result.warnings:
            add(f"  {warning}")
    return "\n".join(out) + "\n"


def _text_list(out: list[str], title: str, items: Sequence[Any], show: Any) -> None:
    if not items:
        return
    out.append(f"  {title} ({len(items)})")
    for item in items[:TEXT_LIMIT]:
        out.append("    " + show(item))
    if len(items) > TEXT_LIMIT:
        out.append(f"    ... {len(items) - TEXT_LIMIT} more (see --format json or html)")


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1b1b;
background:#fff;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#ccc;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.verdict{font-weight:600;padding:8px 12px;border-radius:4px;display:inline-block}
.same{background:#e3f4e1;color:#17561a}.differ{background:#fde2e1;color:#8a1c17}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d4d4d4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.bad{background:#fde2e1}tr.differs td:first-child{font-weight:600}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.muted{color:#666}.cat{font-weight:600;text-transform:uppercase;font-size:11px}
svg{border:1px solid #ddd;background:#fcfcfc}
"""

_DIFF_KEYS = ("changed", "reader_only", "upload_only")

_COLOURS = {
    "reader": "#1f5fbf",
    "upload": "#e07b00",
    "changed": "#d11a1a",
    "reader_only": "#7b2cbf",
    "upload_only": "#d11a1a",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_html(result: DiffResult) -> str:
    parts: list[str] = []
    add = parts.append
    verdict_class = "same" if result.identical else "differ"
    add("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
    add("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    add("<title>libre-dump upload diff</title>")
    add(f"<style>{_CSS}</style></head><body>")
    add("<h1>libre-dump: reader vs. upload</h1>")
    add(f"<p class=\"verdict {verdict_class}\" id=\"verdict\">{_e(_verdict(result))}</p>")
    shift = describe_time_shift(result)
    if shift:
        add(f"<p class=\"verdict differ\" id=\"time-shift\">{_e(shift)}</p>")
    reader = result.reader
    add(f"<p>Reader: <b>{_e(reader['model'])}</b>, serial <code>{_e(reader['serial'])}</code>, "
        f"software {_e(reader['software_version'])}, {_e(reader['records'])} records.</p>")
    settings = result.settings
    add(f"<p class=\"muted\">Times match within {settings['time_tolerance_s']:g} s, values "
        f"within {settings['value_tolerance']:g} (ketones {settings['ketone_tolerance_mmol_l']:g}"
        f" mmol/L); time zone {_e(_zone_text(settings))}; "
        f"{result.duplicates} duplicate entries merged.</p>")

    add("<h2>Summary</h2>")
    add("<table id=\"summary\" class=\"summary\"><thead><tr><th>Kind</th><th>Matched</th>"
        "<th>Different value or time</th><th>On reader, not uploaded</th>"
        "<th>Uploaded, not on reader</th><th>Not expected in an upload</th></tr></thead><tbody>")
    for kind, res in result.kinds.items():
        c = res.counts()
        row = " class=\"differs\"" if res.differs else ""
        cells = "".join(
            f"<td class=\"n{' bad' if c[key] and key in _DIFF_KEYS else ''}\">{c[key]}</td>"
            for key in ("matched", "changed", "reader_only", "upload_only", "not_expected"))
        add(f"<tr{row}><td>{_e(KINDS[kind])}</td>{cells}</tr>")
    add("</tbody></table>")

    add("<h2>Timeline</h2>")
    add(_svg_timeline(result))

    add("<h2>Uploads</h2><table id=\"uploads\"><thead><tr><th>#</th><th>Source</th>"
        "<th>Request</th><th>Host / server</th><th>Sent (UTC)</th><th>Encoding</th>"
        "<th>Bytes</th><th>Entries</th></tr></thead><tbody>")
    for u in result.uploads:
        sent = u.time.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if u.time else ""
        entries = ", ".join(f"{name}: {count}" for name, count in sorted(u.entries.items()))
        add(f"<tr><td class=\"n\">{u.index}</td><td>{_e(u.label)}</td>"
            f"<td class=\"mono\">{_e(' '.join(x for x in (u.method, u.url) if x))}</td>"
            f"<td>{_e(u.host)}<br><span class=\"muted\">{_e(u.server_address)}</span></td>"
            f"<td>{_e(sent)}</td><td>{_e(u.encoding or 'none')}</td><td class=\"n\">{u.size}"
            f"</td><td class=\"muted\">{_e(entries)}</td></tr>")
    add("</tbody></table>")

    add("<h2>Differences</h2>")
    if result.identical:
        add("<p>None: every reader record that belongs in an upload was uploaded, unchanged, "
            "and nothing else was.</p>")
    for res in result.kinds.values():
        if not res.differs:
            continue
        add(f"<h3>{_e(KINDS[res.kind])}</h3>")
        if res.changed:
            add(_html_table(
                f"Matched with a different value or time ({len(res.changed)})",
                ("Reader", "Upload", "Difference", "Matched by"),
                ([describe_reader(p.reader), describe_upload(p.upload),
                  describe_differences(p), p.by] for p in res.changed[:HTML_LIMIT]),
                len(res.changed)))
        if res.reader_only:
            add(_html_table(
                f"On the reader, not uploaded ({len(res.reader_only)})", ("Reader", "Note"),
                ([describe_reader(r), r.note] for r in res.reader_only[:HTML_LIMIT]),
                len(res.reader_only)))
        if res.upload_only:
            add(_html_table(
                f"Uploaded, not on the reader ({len(res.upload_only)})", ("Upload", "Path"),
                ([describe_upload(u), f"#{u.paths[0][0]} {u.paths[0][1]}"]
                 for u in res.upload_only[:HTML_LIMIT]), len(res.upload_only)))
    reasons = [(res, _not_expected_reasons(res)) for res in result.kinds.values()
               if res.not_expected]
    if reasons:
        add("<h3>Reader records no upload is expected to hold</h3>")
        add(_html_table("", ("Kind", "Count", "Why"),
                        ([KINDS[res.kind], str(count), reason]
                         for res, items in reasons for reason, count in items), None))

    add("<h2>Privacy: what the uploads reveal</h2>")
    add("<table id=\"privacy\"><thead><tr><th>Category</th><th>Field</th><th>Value sent</th>"
        "<th>What it identifies</th><th>Count</th><th>Uploads</th></tr></thead><tbody>")
    for item in result.privacy:
        value = "(not shown)" if item.value is None else item.value
        add(f"<tr><td class=\"cat\">{_e(item.category)}</td><td class=\"mono\">{_e(item.path)}"
            f"</td><td class=\"mono\">{_e(value)}</td><td>{_e(item.what)}</td>"
            f"<td class=\"n\">{item.count}</td>"
            f"<td>{_e(', '.join(f'#{i}' for i in item.uploads))}</td></tr>")
    add("</tbody></table>")

    add("<h2>Fields no reader record explains</h2>")
    if result.unexplained:
        add(_html_table("", ("Field", "Count", "Example", "What it is"),
                        ([u.path, str(u.count), u.example or "", u.what]
                         for u in result.unexplained), None, table_id="unexplained"))
    else:
        add("<p>None.</p>")
    if result.warnings:
        add("<h2>Warnings</h2><ul>")
        for warning in result.warnings:
            add(f"<li>{_e(warning)}</li>")
        add("</ul>")
    add("<p class=\"muted\">Made by libre-dump. This file loads nothing from the network.</p>")
    add("</body></html>\n")
    return "\n".join(parts)


def _html_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[str]],
                total: int | None, table_id: str | None = None) -> str:
    out = []
    if title:
        out.append(f"<p><b>{_e(title)}</b></p>")
    ident = f" id=\"{_e(table_id)}\"" if table_id else ""
    out.append(f"<table{ident}><thead><tr>"
               + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    if total is not None and total > HTML_LIMIT:
        out.append(f"<p class=\"muted\">... {total - HTML_LIMIT} more rows in the json "
                   "report.</p>")
    return "\n".join(out)


# -- the SVG timeline ----------------------------------------------------------------------------

_W, _H = 1120, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 84
_GAP = dt.timedelta(minutes=45)
#: the highest glucose the chart's axis goes to (mg/dL); higher values sit on the top edge
_AXIS_MAX = 1000


def _mg(values: dict[str, Any]) -> float | None:
    value = values.get("mg_dl")
    if value is None:
        rng = values.get("range")
        return 40.0 if rng == "LO" else 500.0 if rng == "HI" else None
    return float(value)


def _svg_timeline(result: DiffResult) -> str:
    reader_line: list[tuple[dt.datetime, float]] = []
    upload_line: list[tuple[dt.datetime, float]] = []
    reader_dots: list[tuple[dt.datetime, float]] = []
    upload_dots: list[tuple[dt.datetime, float]] = []
    marks: list[tuple[str, dt.datetime, float, float | None, str]] = []

    def point(time: dt.datetime | None, values: dict[str, Any]
              ) -> tuple[dt.datetime, float] | None:
        value = _mg(values)
        return None if time is None or value is None else (time, value)

    for kind in ("history", "scan", "glucose"):
        res = result.kinds[kind]
        line = kind == "history"
        for pair in (*res.matched, *res.changed):
            r = point(pair.reader.local, pair.reader.values)
            u = point(pair.upload.local, pair.upload.values)
            if r:
                (reader_line if line else reader_dots).append(r)
            if u:
                (upload_line if line else upload_dots).append(u)
        for pair in res.changed:
            r = point(pair.reader.local, pair.reader.values)
            u = point(pair.upload.local, pair.upload.values)
            if r or u:
                anchor = u or r
                assert anchor is not None
                marks.append(("changed", anchor[0], anchor[1], r[1] if r and u else None,
                              f"{KINDS[kind]}: {describe_differences(pair)}"))
        for item in res.reader_only:
            r = point(item.local, item.values)
            if r:
                (reader_line if line else reader_dots).append(r)
                marks.append(("reader_only", r[0], r[1], None,
                              f"{KINDS[kind]}: not uploaded: {describe_reader(item)}"))
        for upload in res.upload_only:
            u = point(upload.local, upload.values)
            if u:
                marks.append(("upload_only", u[0], u[1], None,
                              f"{KINDS[kind]}: not on the reader: {describe_upload(upload)}"))
    everything = [*reader_line, *upload_line, *reader_dots, *upload_dots,
                  *((m[1], m[2]) for m in marks)]
    label = "Glucose over time: reader values and uploaded values, differences marked"
    head = (f"<svg id=\"timeline\" width=\"100%\" "
            f"viewBox=\"0 0 {_W} {_H}\" role=\"img\" aria-label=\"{_e(label)}\">"
            f"<title>{_e(label)}</title>")
    if not everything:
        return (head + f"<text x=\"{_W / 2}\" y=\"{_H / 2}\" text-anchor=\"middle\" "
                "fill=\"#666\">no glucose values on either side</text></svg>")
    start = min(t for t, _ in everything)
    end = max(t for t, _ in everything)
    if end <= start:
        try:
            end = start + dt.timedelta(hours=1)
        except OverflowError:  # a time at the end of the calendar (year 9999)
            start = end - dt.timedelta(hours=1)
    # The axis is clamped: a value past the top (an absurd 1e12 in an upload) is drawn at
    # the top edge, so the number of ticks never depends on the data
    highest = max(v for _, v in everything)
    top_value = 400.0 if highest <= 400 else float(
        min(_AXIS_MAX, math.ceil(min(highest, _AXIS_MAX) / 100) * 100))
    span = (end - start).total_seconds()
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM

    def x(time: dt.datetime) -> float:
        return _LEFT + (time - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return _TOP + plot_h - max(0.0, min(value, top_value)) / top_value * plot_h

    out = [head]
    # grid and axes: at most _AXIS_MAX / 100 + 1 ticks
    for tick in range(0, int(top_value) + 1, 100):
        ty = y(tick)
        out.append(f"<line x1=\"{_LEFT}\" y1=\"{ty:.1f}\" x2=\"{_W - _RIGHT}\" y2=\"{ty:.1f}\" "
                   "stroke=\"#e4e4e4\"/>")
        out.append(f"<text x=\"{_LEFT - 6}\" y=\"{ty + 4:.1f}\" text-anchor=\"end\" "
                   f"font-size=\"11\" fill=\"#555\">{tick}</text>")
    for band, colour in ((70, "#d9f2d9"), (180, "#d9f2d9")):
        out.append(f"<line x1=\"{_LEFT}\" y1=\"{y(band):.1f}\" x2=\"{_W - _RIGHT}\" "
                   f"y2=\"{y(band):.1f}\" stroke=\"{colour}\" stroke-width=\"2\"/>")
    ticks = 8
    for index in range(ticks + 1):
        moment = start + (end - start) * index / ticks
        tx = x(moment)
        out.append(f"<line x1=\"{tx:.1f}\" y1=\"{_TOP}\" x2=\"{tx:.1f}\" "
                   f"y2=\"{_TOP + plot_h}\" stroke=\"#f0f0f0\"/>")
        align = "start" if index == 0 else "end" if index == ticks else "middle"
        out.append(f"<text x=\"{tx:.1f}\" y=\"{_TOP + plot_h + 16}\" text-anchor=\"{align}\" "
                   f"font-size=\"11\" fill=\"#555\">{moment:%Y-%m-%d}</text>")
    out.append(f"<text x=\"14\" y=\"{_TOP + plot_h / 2:.0f}\" font-size=\"11\" fill=\"#555\" "
               f"transform=\"rotate(-90 14 {_TOP + plot_h / 2:.0f})\" text-anchor=\"middle\">"
               "mg/dL</text>")
    # series
    out.extend(_polylines(reader_line, x, y, _COLOURS["reader"], 2.2, None, "reader-history"))
    out.extend(_polylines(upload_line, x, y, _COLOURS["upload"], 1.0, "4 3", "upload-history"))
    out.append("<g class=\"reader-dots\">")
    out.extend(f"<circle cx=\"{x(t):.1f}\" cy=\"{y(v):.1f}\" r=\"2.6\" fill=\"none\" "
               f"stroke=\"{_COLOURS['reader']}\"/>" for t, v in reader_dots)
    out.append("</g><g class=\"upload-dots\">")
    out.extend(f"<circle cx=\"{x(t):.1f}\" cy=\"{y(v):.1f}\" r=\"1.4\" "
               f"fill=\"{_COLOURS['upload']}\"/>" for t, v in upload_dots)
    out.append("</g><g class=\"differences\">")
    for mark, time, value, other, title in marks:
        cx, cy = x(time), y(value)
        colour = _COLOURS[mark]
        tip = f"<title>{_e(title)}</title>"
        if mark == "changed":
            if other is not None:
                out.append(f"<line x1=\"{cx:.1f}\" y1=\"{y(other):.1f}\" x2=\"{cx:.1f}\" "
                           f"y2=\"{cy:.1f}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>")
            out.append(f"<circle class=\"mark-changed\" cx=\"{cx:.1f}\" cy=\"{cy:.1f}\" r=\"5\" "
                       f"fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\">{tip}</circle>")
        elif mark == "reader_only":
            out.append(f"<path class=\"mark-reader-only\" d=\"M{cx - 5:.1f},{cy - 8:.1f} "
                       f"L{cx + 5:.1f},{cy - 8:.1f} L{cx:.1f},{cy - 1:.1f} Z\" "
                       f"fill=\"{colour}\">{tip}</path>")
        else:
            out.append(f"<rect class=\"mark-upload-only\" x=\"{cx - 4:.1f}\" y=\"{cy - 4:.1f}\" "
                       f"width=\"8\" height=\"8\" fill=\"none\" stroke=\"{colour}\" "
                       f"stroke-width=\"2\">{tip}</rect>")
    out.append("</g>")
    # legend
    legend = (("reader", "line", "reader history"), ("upload", "dash", "uploaded history"),
              ("reader", "ring", "reader scan / strip"), ("upload", "dot", "uploaded scan / strip"),
              ("changed", "ring", "different value or time"),
              ("reader_only", "tri", "on reader, not uploaded"),
              ("upload_only", "box", "uploaded, not on reader"))
    lx, ly = _LEFT, _H - 30
    for colour_key, shape, text in legend:
        if lx + 22 + 6 * len(text) > _W - _RIGHT:
            lx, ly = _LEFT, ly + 18
        colour = _COLOURS[colour_key]
        if shape in ("line", "dash"):
            dash = " stroke-dasharray=\"4 3\"" if shape == "dash" else ""
            out.append(f"<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx + 18}\" y2=\"{ly}\" "
                       f"stroke=\"{colour}\" stroke-width=\"2\"{dash}/>")
        elif shape == "ring":
            out.append(f"<circle cx=\"{lx + 9}\" cy=\"{ly}\" r=\"4\" fill=\"none\" "
                       f"stroke=\"{colour}\" stroke-width=\"2\"/>")
        elif shape == "dot":
            out.append(f"<circle cx=\"{lx + 9}\" cy=\"{ly}\" r=\"3\" fill=\"{colour}\"/>")
        elif shape == "tri":
            out.append(f"<path d=\"M{lx + 4},{ly - 4} L{lx + 14},{ly - 4} L{lx + 9},{ly + 3} Z\" "
                       f"fill=\"{colour}\"/>")
        else:
            out.append(f"<rect x=\"{lx + 5}\" y=\"{ly - 4}\" width=\"8\" height=\"8\" "
                       f"fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>")
        out.append(f"<text x=\"{lx + 22}\" y=\"{ly + 4}\" font-size=\"11\" fill=\"#333\">"
                   f"{_e(text)}</text>")
        lx += 22 + 6 * len(text) + 18
    out.append("</svg>")
    return "\n".join(out)


def _polylines(points: list[tuple[dt.datetime, float]], x: Any, y: Any, colour: str,
               width: float, dash: str | None, css: str) -> list[str]:
    """One polyline per run of points without a gap longer than 45 minutes."""
    if not points:
        return []
    points = sorted(points)
    runs: list[list[tuple[dt.datetime, float]]] = [[points[0]]]
    for previous, current in itertools.pairwise(points):
        if current[0] - previous[0] > _GAP:
            runs.append([])
        runs[-1].append(current)
    dash_attr = f" stroke-dasharray=\"{dash}\"" if dash else ""
    out = [f"<g class=\"{css}\">"]
    for run in runs:
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
        out.append(f"<polyline points=\"{coords}\" fill=\"none\" stroke=\"{colour}\" "
                   f"stroke-width=\"{width}\"{dash_attr}/>")
    out.append("</g>")
    return out
