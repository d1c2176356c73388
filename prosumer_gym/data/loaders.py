"""Loaders for the real data shipped with prosumer_gym (see ``DATA.md`` beside this file).

Everything is read from package files (``importlib.resources``); nothing is downloaded at
run time. Loaded arrays are cached and returned **read-only**; sampling functions return
fresh, writable arrays. All randomness goes through the ``numpy.random.Generator`` passed
in by the caller (normally the episode's seeded generator).

Time conventions
----------------
* Hourly series have 8760 entries, index ``h = 24 * day + hour`` where ``day = 0`` is
  1 January and ``hour = 0`` is the interval 00:00-01:00 (local clock time of the source).
* ``daily_sum`` turns ``(..., 8760)`` into ``(..., 365)``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import numbers
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Sequence

import numpy as np

from prosumer_gym.core.validation import check_floats

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

N_DAYS: int = 365
HOURS_PER_DAY: int = 24
HOURS_PER_YEAR: int = N_DAYS * HOURS_PER_DAY  # 8760
SPLITS: tuple[str, ...] = ("train", "test", "all")

_PACKAGE = __name__.rpartition(".")[0]  # "prosumer_gym.data"
_MAX_DAY_OFFSET = N_DAYS - 1  # offsets are drawn from 1..364


# --------------------------------------------------------------------------
# File access
# --------------------------------------------------------------------------
def data_file_path(name: str):
    """Traversable pointing at the packaged data file ``name`` (e.g. ``"pv.npz"``)."""
    return resources.files(_PACKAGE).joinpath(name)


def _read_bytes(name: str) -> bytes:
    return data_file_path(name).read_bytes()


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=None)
def _npz(name: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(_read_bytes(name)), allow_pickle=False) as z:
        return {k: _readonly(np.array(z[k])) for k in z.files}


def verify_checksums() -> list[str]:
    """Compare packaged data files with ``checksums.json``.

    Returns a list of human-readable problems (empty when every file matches).
    """
    recorded = json.loads(_read_bytes("checksums.json"))["files"]
    problems = []
    for name, digest in sorted(recorded.items()):
        try:
            actual = hashlib.sha256(_read_bytes(name)).hexdigest()
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        if actual != digest:
            problems.append(f"{name}: sha256 {actual} != recorded {digest}")
    return problems


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------
def _check_split(split: str) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    return rng


def _check_scale_range(scale_range) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in scale_range)
    except (TypeError, ValueError):
        raise ValueError(f"scale_range must be a pair (low, high) with 0 < low <= high, "
                         f"got {scale_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 < lo <= hi):
        raise ValueError(f"scale_range must be a pair (low, high) with 0 < low <= high, "
                         f"got {scale_range!r}")
    return lo, hi


def _check_pv_kw(pv_kw) -> np.ndarray:
    """A finite number >= 0 (kWp) or a non-empty sequence of them."""
    if isinstance(pv_kw, np.ndarray) and pv_kw.ndim == 0:
        pv_kw = pv_kw.item()
    return check_floats("pv_kw", pv_kw, 0.0, scalar_ok=True)


# --------------------------------------------------------------------------
# Households (CityLearn 2022, 17 homes)
# --------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _split_mask(split: str) -> np.ndarray:
    z = _npz("households.npz")
    if split == "all":
        return np.ones(len(z["home_id"]), dtype=bool)
    return z["split"] == split


@lru_cache(maxsize=None)
def _household_ids(split: str) -> np.ndarray:
    return _readonly(_npz("households.npz")["home_id"][_split_mask(split)].astype(np.int64))


@lru_cache(maxsize=None)
def _household_load(split: str) -> np.ndarray:
    return _readonly(np.array(_npz("households.npz")["load_kwh"][_split_mask(split)], dtype=np.float64))


def household_ids(split: str = "all") -> np.ndarray:
    """CityLearn home ids (int, 1..17) in ``split`` (``"train"``, ``"test"`` or ``"all"``), ascending.

    Read-only. The fixed split is listed in DATA.md (train: 12 homes, test: 5 homes).
    """
    return _household_ids(_check_split(split))


def household_hourly_load_kwh(split: str = "all") -> np.ndarray:
    """Hourly household load, kWh per hour, shape ``(n_homes, 8760)`` float64, read-only.

    Rows are ordered as :func:`household_ids` ``(split)``. Column 0 is 1 January 00:00-01:00.
    """
    return _household_load(_check_split(split))


# --------------------------------------------------------------------------
# PV (PVWatts on TMY3 Greensboro NC)
# --------------------------------------------------------------------------
def pv_hourly_kwh_per_kwp() -> np.ndarray:
    """AC energy per installed DC kWp, kWh per hour, shape ``(n_orient, 8760)``, read-only.

    Row ``k`` corresponds to ``pv_orientations()[k]``.
    """
    return _npz("pv.npz")["kwh_per_kwp"]


def pv_orientations() -> list[dict]:
    """Orientation of each PV profile: ``[{"tilt_deg": .., "azimuth_deg": ..}, ...]``.

    Azimuth in degrees clockwise from north (180 = south). A fresh list each call.
    """
    z = _npz("pv.npz")
    return [{"tilt_deg": float(t), "azimuth_deg": float(a)} for t, a in zip(z["tilt_deg"], z["azimuth_deg"])]


# --------------------------------------------------------------------------
# Series helpers
# --------------------------------------------------------------------------
def daily_sum(hourly: np.ndarray) -> np.ndarray:
    """Sum consecutive 24-hour blocks along the last axis: ``(..., 8760) -> (..., 365)``.

    Units are preserved (kWh per hour -> kWh per day). Any last-axis length that is a
    multiple of 24 is accepted.
    """
    a = np.asarray(hourly, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] == 0 or a.shape[-1] % HOURS_PER_DAY:
        raise ValueError(f"hourly must have a last axis that is a positive multiple of 24 "
                         f"(e.g. 8760), got shape {a.shape}")
    return a.reshape(*a.shape[:-1], a.shape[-1] // HOURS_PER_DAY, HOURS_PER_DAY).sum(axis=-1)


def ewma_forecast(series: np.ndarray, alpha: float = 0.5, axis: int = -1) -> np.ndarray:
    """One-step-ahead EWMA forecast (the dissertation's day-ahead forecast with ``alpha=0.5``).

    ``f[0] = x[0]`` (warm start: the first value is taken as known) and
    ``f[t] = alpha * x[t-1] + (1 - alpha) * f[t-1]`` for ``t >= 1``, along ``axis``.
    So ``f[t]`` uses only observations before ``t``, except the warm start ``f[0]``.

    Parameters
    ----------
    series : array, any shape, finite values (same units as the result).
    alpha : smoothing weight in ``(0, 1]``; ``alpha=1`` gives the persistence forecast.
    axis : time axis.

    Returns
    -------
    float64 array of the same shape as ``series``.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (0.0 < float(alpha) <= 1.0):
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("series must have at least one dimension")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be in [{-x.ndim}, {x.ndim - 1}] for a series of shape {x.shape}, got {axis}")
    if x.shape[axis] == 0:
        raise ValueError(f"series must have at least one value along axis {axis}")
    if not np.all(np.isfinite(x)):
        raise ValueError("series must contain only finite values (no NaN/inf)")
    a = float(alpha)
    xt = np.moveaxis(x, axis, 0)
    f = np.empty_like(xt)
    f[0] = xt[0]
    for t in range(1, xt.shape[0]):
        f[t] = a * xt[t - 1] + (1.0 - a) * f[t - 1]
    return np.moveaxis(f, 0, axis)


# --------------------------------------------------------------------------
# Household sampling with augmentation
# --------------------------------------------------------------------------
def _check_hours(hours: np.ndarray) -> np.ndarray:
    h = np.asarray(hours)
    if h.ndim != 1 or h.dtype.kind not in "iu" or (h.size and (h.min() < 0 or h.max() >= HOURS_PER_YEAR)):
        raise ValueError(f"hours must be a 1-D integer array of hours of the year in [0, {HOURS_PER_YEAR - 1}], "
                         f"got {hours!r:.80}")
    return h.astype(np.int64, copy=False)


@dataclass(frozen=True)
class HouseholdSample:
    """``n`` household load series drawn from the CityLearn homes.

    Attributes
    ----------
    hourly_load_kwh : (n, 8760) float64, kWh per hour (``(n, len(hours))`` when drawn with ``hours``).
    source_home : (n,) int, CityLearn home id used for each household.
    scale : (n,) float, multiplicative scale applied to the source series (1.0 = unscaled).
    day_offset : (n,) int, circular shift in whole days: household day ``d`` is source day
        ``(d + day_offset) % 365`` (0 = unshifted).
    """

    hourly_load_kwh: np.ndarray
    source_home: np.ndarray
    scale: np.ndarray
    day_offset: np.ndarray


def sample_households(rng: np.random.Generator, n: int, split: str = "train",
                      scale_range: Sequence[float] = (0.8, 1.2), hours: np.ndarray | None = None) -> HouseholdSample:
    """Draw ``n`` distinct household load series from the homes of ``split``, reproducibly.

    Rule (documented in DATA.md):

    1. The first ``min(n, H)`` households (``H`` = homes in ``split``) are the real homes
       in a random order (``rng.permutation``), unscaled (``scale=1``) and unshifted
       (``day_offset=0``).
    2. Each further household is an augmented copy: homes are assigned by successive
       random permutations of the ``H`` homes (so copies are spread evenly), each copy gets
       ``scale ~ U(scale_range)`` and a day offset in ``1..364``; the offsets of one home's
       copies are drawn without replacement (while fewer than 365 copies of it exist), so
       every series differs from the others.

    Only homes of ``split`` are used: ``"train"`` samples never contain a ``"test"`` home.
    All randomness comes from ``rng``. ``hours`` (hours of the year, 0..8759): only those
    columns of the series are built (the same draws and numbers as slicing the full series,
    at a fraction of the cost when an env needs a few days).
    """
    _check_rng(rng)
    n = _check_n(n)
    _check_split(split)
    lo, hi = _check_scale_range(scale_range)
    ids = household_ids(split)
    loads = household_hourly_load_kwh(split)
    n_homes = len(ids)

    first = min(n, n_homes)
    idx = np.empty(n, dtype=np.int64)
    scale = np.ones(n, dtype=np.float64)
    offset = np.zeros(n, dtype=np.int64)
    idx[:first] = rng.permutation(n_homes)[:first]
    extra = n - first
    if extra:
        reps = -(-extra // n_homes)
        idx[first:] = np.concatenate([rng.permutation(n_homes) for _ in range(reps)])[:extra]
        scale[first:] = rng.uniform(lo, hi, size=extra)
        for h in range(n_homes):
            pos = first + np.flatnonzero(idx[first:] == h)
            k = len(pos)
            if k:
                blocks = -(-k // _MAX_DAY_OFFSET)
                offset[pos] = np.concatenate([rng.permutation(_MAX_DAY_OFFSET) + 1
                                              for _ in range(blocks)])[:k]
    hrs = np.arange(HOURS_PER_YEAR) if hours is None else _check_hours(hours)
    cols = (hrs[None, :] + HOURS_PER_DAY * offset[:, None]) % HOURS_PER_YEAR
    hourly = loads[idx[:, None], cols] * scale[:, None]
    return HouseholdSample(hourly_load_kwh=hourly, source_home=ids[idx].copy(), scale=scale, day_offset=offset)


@dataclass(frozen=True)
class ProsumerSample:
    """``n`` prosumers: household load plus a rooftop PV system.

    Attributes (energies in kWh per hour, shape (n, 8760) unless noted)
    ----------
    load_kwh : household consumption.
    pv_kw : (n,) installed PV size, kWp (DC).
    orientation : (n,) int index into :func:`pv_orientations`.
    pv_kwh : AC PV generation = ``pv_kw * pv_hourly_kwh_per_kwp()[orientation]``.
    surplus_kwh : hourly excess generation ``max(0, pv_kwh - load_kwh)``.
    net_demand_kwh : hourly residual demand ``max(0, load_kwh - pv_kwh)``.
    source_home, scale, day_offset : (n,) provenance of the load, as in :class:`HouseholdSample`.
    """

    load_kwh: np.ndarray
    pv_kw: np.ndarray
    orientation: np.ndarray
    pv_kwh: np.ndarray
    surplus_kwh: np.ndarray
    net_demand_kwh: np.ndarray
    source_home: np.ndarray
    scale: np.ndarray
    day_offset: np.ndarray


def sample_prosumers(rng: np.random.Generator, n: int, pv_kw: float | Sequence[float] = 4.0,
                     split: str = "train", scale_range: Sequence[float] = (0.8, 1.2),
                     hours: np.ndarray | None = None) -> ProsumerSample:
    """Draw ``n`` prosumers: loads from :func:`sample_households` plus PV systems.

    ``pv_kw`` (kWp, >= 0) is a scalar or a sequence cycled over the prosumers
    (``(8.0, 4.0)`` gives 8, 4, 8, 4, ... kWp; ``0`` gives a pure consumer). Each prosumer
    gets an orientation drawn uniformly from :func:`pv_orientations`, after the household draw.
    ``hours``: only those hours of the year are built, as in :func:`sample_households`.
    """
    _check_rng(rng)
    n = _check_n(n)
    pv = _check_pv_kw(pv_kw)
    hh = sample_households(rng, n, split=split, scale_range=scale_range, hours=hours)
    table = pv_hourly_kwh_per_kwp()
    if hours is not None:
        table = table[:, _check_hours(hours)]
    orientation = rng.integers(0, table.shape[0], size=n)
    pv_n = np.resize(pv, n)
    pv_kwh = pv_n[:, None] * table[orientation]
    load = hh.hourly_load_kwh
    return ProsumerSample(
        load_kwh=load,
        pv_kw=pv_n,
        orientation=orientation.astype(np.int64),
        pv_kwh=pv_kwh,
        surplus_kwh=np.maximum(pv_kwh - load, 0.0),
        net_demand_kwh=np.maximum(load - pv_kwh, 0.0),
        source_home=hh.source_home,
        scale=hh.scale,
        day_offset=hh.day_offset,
    )


# --------------------------------------------------------------------------
# Taxi trips (Chicago, TFX example data)
# --------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _taxi() -> dict[str, np.ndarray]:
    z = {k: (_readonly(v.astype(np.int64)) if v.dtype.kind == "i" else v)
         for k, v in _npz("taxi_trips.npz").items()}  # integers stored compactly, served as int64
    lat1, lon1, lat2, lon2 = (np.radians(z[k]) for k in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"))
    hav = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    z["centroid_distance_km"] = _readonly(2.0 * 6371.0088 * np.arcsin(np.sqrt(hav)))
    return z


def taxi_trips() -> dict[str, np.ndarray]:
    """Cleaned Chicago taxi trips (10,442 rows, sorted by start time), read-only arrays.

    Keys: ``start_timestamp`` (datetime64[s], Chicago wall-clock time),
    ``start_slot_15min`` (0..95 within the day), ``day_of_week`` (1 = Sunday .. 7 = Saturday),
    ``month`` (1..12), ``pickup_lat``/``pickup_lon``/``dropoff_lat``/``dropoff_lon``
    (degrees, community-area centroids), ``fare_usd``, ``trip_miles``, ``trip_seconds``,
    ``centroid_distance_km`` (great-circle pickup->dropoff centroid distance, 0 within an
    area), ``source_row`` (0-based row in the source CSV). A fresh dict each call.
    """
    return dict(_taxi())


# --------------------------------------------------------------------------
# EV specifications (emobpy)
# --------------------------------------------------------------------------
_EV_STR = ("model", "brand")
_EV_INT = ("year",)


@lru_cache(maxsize=None)
def _ev_all() -> dict[str, np.ndarray]:
    text = _read_bytes("ev_specs.csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    out: dict[str, np.ndarray] = {}
    for col in rows[0].keys():
        vals = [r[col] for r in rows]
        if col in _EV_STR:
            out[col] = np.asarray(vals, dtype=str)
        elif col in _EV_INT:
            out[col] = np.asarray([int(v) for v in vals], dtype=np.int64)
        else:
            out[col] = np.asarray([float(v) for v in vals], dtype=np.float64)
    return {k: _readonly(v) for k, v in out.items()}


@lru_cache(maxsize=None)
def _ev_latest() -> dict[str, np.ndarray]:
    z = _ev_all()
    keep = {}
    for i, (m, y) in enumerate(zip(z["model"], z["year"])):
        if m not in keep or y > z["year"][keep[m]]:
            keep[m] = i
    idx = np.asarray(sorted(keep.values()))
    return {k: _readonly(v[idx]) for k, v in z.items()}


def ev_specs(latest_per_model: bool = False) -> dict[str, np.ndarray]:
    """Battery-electric vehicle table from emobpy (one row per model-year variant).

    Keys: ``model`` (str, "Brand Model"), ``brand`` (str), ``year`` (int),
    ``battery_kwh``, ``consumption_kwh_per_km`` (derived, WLTC class 3b road-load model),
    ``range_km`` (= battery_kwh / consumption), ``curb_weight_kg``, ``drag_coeff``,
    ``frontal_area_m2``, ``power_kw``. With ``latest_per_model=True`` only the newest
    model year of each model is kept (one row per model). A fresh dict each call.
    """
    return dict(_ev_latest() if latest_per_model else _ev_all())


# --------------------------------------------------------------------------
# Day-ahead prices (Netherlands, ENTSO-E via ev2gym)
# --------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _prices() -> dict[str, np.ndarray]:
    z = _npz("day_ahead_prices_nl.npz")
    n = len(z["price_eur_cents_per_mwh"])
    ts = z["start_hour_utc"][0].astype("datetime64[h]") + np.arange(n).astype("timedelta64[h]")
    return {
        "timestamp": _readonly(ts),
        "price_eur_per_mwh": _readonly(z["price_eur_cents_per_mwh"].astype(np.float64) / 100.0),
        "filled": z["filled"],
    }


def day_ahead_prices(year: int | None = None) -> dict[str, np.ndarray]:
    """Hourly Dutch day-ahead prices 2015-2024, read-only arrays.

    Keys: ``timestamp`` (datetime64[h], UTC, start of the delivery hour),
    ``price_eur_per_mwh`` (float64, EUR/MWh, may be negative), ``filled`` (bool, True for
    the 2 hours missing in the source and filled by linear interpolation).
    ``year`` (2015..2024) selects one calendar year (UTC); ``None`` returns all years.
    """
    d = _prices()
    if year is None:
        return dict(d)
    years = d["timestamp"].astype("datetime64[Y]").astype(np.int64) + 1970
    valid = range(int(years[0]), int(years[-1]) + 1)
    if isinstance(year, bool) or not isinstance(year, numbers.Integral) or int(year) not in valid:
        raise ValueError(f"year must be an integer in [{valid.start}, {valid.stop - 1}] or None, got {year!r}")
    mask = years == int(year)
    return {k: _readonly(v[mask]) for k, v in d.items()}
