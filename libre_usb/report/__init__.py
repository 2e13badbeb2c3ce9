"""``libre-dump report``: an Ambulatory Glucose Profile (AGP) page or its metrics as JSON.

:mod:`.agp` computes (consensus metrics, modal-day percentiles), :mod:`.data` gathers the
readings and markers from a dump or the archive, :mod:`.html` draws the page.
"""

from __future__ import annotations

from typing import Any

from .. import jsonsafe
from ..output.units import MG_DL, MMOL_L, UNITS
from . import agp
from .data import ReportData
from .html import render as render_html

FORMATS = ("html", "json")
JSON_FORMAT = "libre-dump-agp"
JSON_VERSION = 1


def _converter(unit: str) -> Any:
    if unit == MMOL_L:
        return lambda mg_dl: round(float(mg_dl) / 18.0, 2)
    return lambda mg_dl: round(float(mg_dl), 1)


def render(data: ReportData, *, unit: str = MG_DL, fmt: str = "html") -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    metrics = agp.compute(data.glucose, data.period)
    if fmt == "json":
        doc = {"format": JSON_FORMAT, "version": JSON_VERSION,
               "reader": {"model": data.device.model, "title": data.title,
                          "serial": data.device.serial},
               **agp.to_json(metrics, unit, _converter(unit))}
        return jsonsafe.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    return render_html(data, metrics, unit)


__all__ = ["FORMATS", "ReportData", "render"]
