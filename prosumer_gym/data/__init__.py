"""Real data shipped with prosumer_gym, and its loaders.

Provenance, licences and every cleaning step are in ``DATA.md`` beside this file;
``checksums.json`` records the sha256 of every data file. The files are built by
``scripts/build_data.py``; nothing is downloaded at run time.
"""
from __future__ import annotations

from .loaders import (
    HOURS_PER_DAY,
    HOURS_PER_YEAR,
    N_DAYS,
    SPLITS,
    HouseholdSample,
    ProsumerSample,
    daily_sum,
    data_file_path,
    day_ahead_prices,
    ev_specs,
    ewma_forecast,
    household_hourly_load_kwh,
    household_ids,
    pv_hourly_kwh_per_kwp,
    pv_orientations,
    sample_households,
    sample_prosumers,
    taxi_trips,
    verify_checksums,
)

__all__ = [
    "N_DAYS",
    "HOURS_PER_DAY",
    "HOURS_PER_YEAR",
    "SPLITS",
    "household_ids",
    "household_hourly_load_kwh",
    "pv_hourly_kwh_per_kwp",
    "pv_orientations",
    "daily_sum",
    "ewma_forecast",
    "HouseholdSample",
    "sample_households",
    "ProsumerSample",
    "sample_prosumers",
    "taxi_trips",
    "ev_specs",
    "day_ahead_prices",
    "data_file_path",
    "verify_checksums",
]
