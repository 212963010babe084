"""Compatibility names: the registry's domain records moved to :mod:`sohoa.domain` (the shared core) and its
narrow interface to :mod:`sohoa.registry`. Import from there in new code."""

from __future__ import annotations

from sohoa.domain import (
    CHANNELS,
    DIMENSIONS,
    RULES,
    DigitizedRules,
    DossierRecord,
    Flags,
    GroupRow,
    ImportResult,
    Line,
    Period,
    Report,
    component_key,
    compute_flags,
    is_digitized,
    missing_view,
    parse_period,
    period_bounds,
    roll_up,
    scope_keys,
    scope_values,
    unit_key,
)

__all__ = [
    "CHANNELS", "DIMENSIONS", "RULES", "DigitizedRules", "DossierRecord", "Flags", "GroupRow", "ImportResult",
    "Line", "Period", "Report", "component_key", "compute_flags", "is_digitized", "missing_view", "parse_period",
    "period_bounds", "roll_up", "scope_keys", "scope_values", "unit_key",
]  # fmt: skip
