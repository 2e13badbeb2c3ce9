"""Glucose units. Readers store glucose in mg/dL whatever their display unit (protocol.md 4);
every record keeps that value. ``--unit mmol/L`` *adds* converted values on output.

Conversion: mmol/L = mg/dL / 18.0, rounded to one decimal, halves away from zero
(``ROUND_HALF_UP``), computed in decimal arithmetic so 99 mg/dL is exactly 5.5 mmol/L and
not 5.4999... The factor 18.0 is the one glucometerutils uses for glucose and the readers use
for ketones (protocol.md 4.2, 6); the molar mass of glucose (180.16 g/mol) would give 18.016,
which changes no value below 600 mg/dL by more than 0.1 mmol/L after rounding.
Ketone values are mmol/L already (raw / 18, two decimals, protocol.md 4.2).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MG_DL = "mg/dL"
MMOL_L = "mmol/L"
UNITS = (MG_DL, MMOL_L)
#: mg/dL per mmol/L of glucose
MG_DL_PER_MMOL_L = Decimal("18.0")
_ONE_DECIMAL = Decimal("0.1")


def mmol_l(mg_dl: int) -> Decimal:
    """A glucose value in mmol/L, one decimal, ROUND_HALF_UP."""
    return (Decimal(mg_dl) / MG_DL_PER_MMOL_L).quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)
