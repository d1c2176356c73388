#!/usr/bin/env python
"""Build the compact, real dataset shipped in ``prosumer_gym/data/``.

Usage::

    python scripts/build_data.py [--out prosumer_gym/data] [--cache .cache/wheels]

What it does (every step is documented in ``prosumer_gym/data/DATA.md``):

1. Fetches pinned *source wheels* with
   ``pip download --no-deps --no-binary :none: -d CACHE <pkg>==<version>``
   (a wheel already in CACHE is reused, nothing is installed).
2. Opens each wheel with :mod:`zipfile` and reads only the files we need.
3. Cleans them and writes deterministic ``.npz`` / ``.csv`` files plus
   ``build_stats.json`` (measured numbers quoted in DATA.md) and
   ``checksums.json`` (sha256 of every data file and of every stored array).

Determinism: ``.npz`` archives are written member by member with :mod:`zipfile`
using a fixed timestamp (1980-01-01), fixed permissions and sorted member
names; CSV/JSON are written with fixed formatting and ``\\n`` line endings.
Running the script twice produces byte-identical files (on the same
zlib / numpy / pvlib versions).

Only the PV model needs a library beyond numpy/pandas: the *installed*
``pvlib`` computes PVWatts on the TMY3 file read from the pinned pvlib wheel.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------
# Pinned sources
# --------------------------------------------------------------------------
PINS: dict[str, str] = {
    "citylearn": "2.0.0",
    "pvlib": "0.16.1",
    "tfx": "0.23.1",  # last release on PyPI whose wheel still ships the taxi example data
    "emobpy": "0.6.2",
    "ev2gym": "2.0.0",
}
CITYLEARN_DIR = "citylearn/data/citylearn_challenge_2022_phase_all/"
CITYLEARN_LOAD_COL = "Equipment Electric Power [kWh]"
CITYLEARN_PV_COL = "Solar Generation [W/kW]"
N_HOMES = 17
HOURS = 8760

TMY3_PATH = "pvlib/data/723170TYA.CSV"
TAXI_PATH = "tfx/examples/chicago_taxi_pipeline/data/simple/data.csv"
EVSPECS_PATH = "emobpy/data/evspecs.json"
DRIVING_CYCLES_PATH = "emobpy/data/driving_cycles.csv"
PRICES_PATH = "ev2gym/data/Netherlands_day-ahead-2015-2024.csv"

# Fixed zip member timestamp for reproducible archives.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# --------------------------------------------------------------------------
# PV model parameters (NREL PVWatts-like)
# --------------------------------------------------------------------------
PV_TILTS_DEG = (20.0, 30.0)
PV_AZIMUTHS_DEG = (135.0, 180.0, 225.0)  # pvlib convention: 180 = south, 90 = east
PV_ALBEDO = 0.2  # TMY3 file's albedo column is all 0 (missing); PVWatts default 0.2
PV_GAMMA_PDC = -0.0037  # 1/degC, PVWatts "standard" module temperature coefficient
PV_DC_AC_RATIO = 1.2  # PVWatts default
PV_ETA_INV_NOM = 0.96  # PVWatts default nominal inverter efficiency
PV_TEMP_MODEL = ("sapm", "open_rack_glass_polymer")

# --------------------------------------------------------------------------
# Household split: stratified by annual consumption (see DATA.md)
# --------------------------------------------------------------------------
TEST_RANKS = (1, 4, 8, 11, 15)  # 0-based ranks after sorting homes by annual kWh

# --------------------------------------------------------------------------
# Taxi cleaning thresholds
# --------------------------------------------------------------------------
TAXI_MAX_FARE_USD = 200.0
TAXI_MAX_SECONDS = 6 * 3600
TAXI_MAX_MILES = 100.0
TAXI_MAX_MPH = 80.0

# --------------------------------------------------------------------------
# EV consumption model (road-load on the WLTC class 3b cycle)
# --------------------------------------------------------------------------
EV_CYCLE = "WLTC_3b_full"
EV_G = 9.81  # m/s^2
EV_RHO_AIR = 1.2  # kg/m^3
EV_C_RR = 0.01  # rolling-resistance coefficient
EV_DRIVER_KG = 75.0
EV_ROT_MASS_FACTOR = 1.05  # equivalent rotating-mass factor on the inertial term
EV_FRONTAL_AREA_FACTOR = 0.85  # frontal area = 0.85 * width * height
EV_ETA_TRANSMISSION = 0.95  # emobpy fallback_parameters
EV_ETA_MOTOR = 0.90  # ~ emobpy motor_efficiency.csv at 5-20 % load
EV_ETA_BATT_DISCHARGE = 0.95  # emobpy fallback_parameters
EV_ETA_BATT_CHARGE = 0.90  # emobpy fallback_parameters
EV_REGEN_SHARE = 0.6  # share of braking energy routed through the motor
EV_AUX_W = 300.0  # emobpy fallback auxiliary power
EV_PLAUSIBLE_KWH_PER_KM = (0.08, 0.45)


# ==========================================================================
# Helpers
# ==========================================================================
def fetch_wheel(pkg: str, version: str, cache: Path) -> Path:
    """Return the path of ``pkg==version``'s wheel in ``cache``, downloading it if absent."""
    cache.mkdir(parents=True, exist_ok=True)

    def find() -> Path | None:
        norm = pkg.lower().replace("-", "_")
        for p in sorted(cache.glob("*.whl")):
            name, ver = p.name.split("-")[:2]
            if name.lower().replace("-", "_") == norm and ver == version:
                return p
        return None

    found = find()
    if found is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:",
               "-d", str(cache), f"{pkg}=={version}"]
        print("+", " ".join(cmd), flush=True)
        res = subprocess.run(cmd, capture_output=True, text=True)
        found = find()
        if res.returncode != 0 or found is None:
            raise RuntimeError(f"could not download {pkg}=={version}:\n{res.stdout}\n{res.stderr}")
    return found


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def array_digest(a: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (independent of zlib)."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    h.update(a.dtype.str.encode())
    h.update(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Deterministic ``.npz`` (readable by ``np.load``): sorted members, fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            if a.dtype == object:
                raise TypeError(f"{name}: object arrays are not allowed (no pickle)")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def rounded(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd))


# ==========================================================================
# 1. Households (CityLearn 2022 challenge, 17 homes)
# ==========================================================================
def build_households(wheel: Path) -> tuple[dict[str, np.ndarray], dict]:
    loads = []
    citylearn_pv_yield = []
    with zipfile.ZipFile(wheel) as zf:
        for i in range(1, N_HOMES + 1):
            df = pd.read_csv(io.BytesIO(zf.read(f"{CITYLEARN_DIR}Building_{i}.csv")))
            if len(df) != HOURS:
                raise ValueError(f"Building_{i}: {len(df)} rows, expected {HOURS}")
            month = df["Month"].to_numpy(int)
            hour = df["Hour"].to_numpy(int)
            # Rotate so the series starts on 1 January, hour 1 (00:00-01:00).
            jan1 = np.flatnonzero((month == 1) & (hour == 1) & (np.roll(month, 1) == 12))
            if len(jan1) != 1:
                raise ValueError(f"Building_{i}: cannot locate 1 January")
            shift = int(jan1[0])
            m_rolled = np.roll(month, -shift)
            expected = np.repeat(np.arange(1, 13), 24 * np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]))
            if not np.array_equal(m_rolled, expected):
                raise ValueError(f"Building_{i}: months are not a 365-day calendar after rotation")
            if not np.array_equal(np.roll(hour, -shift), np.tile(np.arange(1, 25), 365)):
                raise ValueError(f"Building_{i}: hours are not 1..24 per day")
            load = df[CITYLEARN_LOAD_COL].to_numpy(np.float64)
            if not np.all(np.isfinite(load)) or load.min() < 0:
                raise ValueError(f"Building_{i}: non-finite or negative load")
            loads.append(np.roll(load, -shift))
            citylearn_pv_yield.append(df[CITYLEARN_PV_COL].to_numpy(np.float64).sum() / 1000.0)
            if i == 1:
                jan1_row = shift
    load = np.stack(loads)  # (17, 8760) kWh per hour
    ids = np.arange(1, N_HOMES + 1, dtype=np.int64)

    annual = load.sum(axis=1)
    order = np.lexsort((ids, annual))  # ascending annual kWh, ties by id
    test_ids = np.sort(ids[order[list(TEST_RANKS)]])
    split = np.where(np.isin(ids, test_ids), "test", "train").astype("<U5")

    daily = load.reshape(N_HOMES, 365, 24).sum(axis=2)
    stats = {
        "source_first_row": "Month 7, Hour 24 (31 July, hour ending 24:00)",
        "rotation_rows": int(jan1_row),
        "train_ids": ids[split == "train"].tolist(),
        "test_ids": test_ids.tolist(),
        "annual_kwh": {int(k): rounded(v, 1) for k, v in zip(ids, annual)},
        "mean_daily_kwh": {int(k): rounded(v, 2) for k, v in zip(ids, daily.mean(axis=1))},
        "days_below_1kwh": {int(k): int(v) for k, v in zip(ids, (daily < 1.0).sum(axis=1)) if v},
        "hours_exactly_zero": {int(k): int(v) for k, v in zip(ids, (load == 0).sum(axis=1)) if v},
        "mean_daily_kwh_all_homes": rounded(daily.mean(), 2),
        "min_hourly_kwh": rounded(load.min(), 6),
        "max_hourly_kwh": rounded(load.max(), 3),
        "citylearn_pv_yield_kwh_per_kwp_unused": {int(k): rounded(v, 1) for k, v in zip(ids, citylearn_pv_yield)},
    }
    arrays = {"home_id": ids, "split": split, "load_kwh": load}
    return arrays, stats


# ==========================================================================
# 2. PV: PVWatts chain on TMY3 Greensboro NC
# ==========================================================================
def build_pv(wheel: Path) -> tuple[dict[str, np.ndarray], dict]:
    import pvlib

    if pvlib.__version__ != PINS["pvlib"]:
        warnings.warn(f"installed pvlib {pvlib.__version__} != pinned {PINS['pvlib']}: "
                      "output may differ from the committed files", stacklevel=1)
    raw = read_member(wheel, TMY3_PATH)
    data, meta = pvlib.iotools.read_tmy3(io.StringIO(raw.decode("utf-8")), coerce_year=2019,
                                         map_variables=True)
    if len(data) != HOURS:
        raise ValueError(f"TMY3: {len(data)} rows, expected {HOURS}")
    lat, lon, alt = float(meta["latitude"]), float(meta["longitude"]), float(meta["altitude"])
    # TMY3 rows are hour-ending labels in local standard time (UTC-5), in file order
    # 1 Jan 01:00 ... 31 Dec 24:00. Evaluate the sun at the middle of each hour.
    tz = data.index.tz
    mid = pd.date_range("2019-01-01 00:30", periods=HOURS, freq="h", tz=tz)
    if not np.array_equal((data.index - pd.Timedelta(minutes=30)).asi8, mid.asi8):
        raise ValueError("TMY3 index is not the expected hourly sequence")

    sp = pvlib.solarposition.get_solarposition(mid, lat, lon, altitude=alt)
    dni_extra = pvlib.irradiance.get_extra_radiation(mid).to_numpy()
    airmass = pvlib.atmosphere.get_relative_airmass(sp["apparent_zenith"].to_numpy())
    ghi, dni, dhi = (data[c].to_numpy(np.float64) for c in ("ghi", "dni", "dhi"))
    temp_air = data["temp_air"].to_numpy(np.float64)
    wind = data["wind_speed"].to_numpy(np.float64)
    temp_params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS[PV_TEMP_MODEL[0]][PV_TEMP_MODEL[1]]
    loss_pct = float(pvlib.pvsystem.pvwatts_losses())  # PVWatts default loss breakdown, ~14.08 %

    pdc0 = 1000.0  # W: 1 kWp DC nameplate
    pac0 = pdc0 / PV_DC_AC_RATIO
    out, tilts, azims, yields = [], [], [], []
    for tilt in PV_TILTS_DEG:
        for az in PV_AZIMUTHS_DEG:
            poa = pvlib.irradiance.get_total_irradiance(
                tilt, az, sp["apparent_zenith"].to_numpy(), sp["azimuth"].to_numpy(),
                dni, ghi, dhi, dni_extra=dni_extra, airmass=airmass, albedo=PV_ALBEDO,
                model="perez")
            aoi = pvlib.irradiance.aoi(tilt, az, sp["apparent_zenith"].to_numpy(), sp["azimuth"].to_numpy())
            iam = pvlib.iam.physical(aoi)  # PVWatts glass cover (n=1.526, K=4, L=2 mm)
            eff = np.nan_to_num(poa["poa_direct"] * iam + poa["poa_diffuse"], nan=0.0)
            eff = np.clip(np.asarray(eff, np.float64), 0.0, None)
            poa_global = np.clip(np.nan_to_num(np.asarray(poa["poa_global"], np.float64)), 0.0, None)
            t_cell = pvlib.temperature.sapm_cell(poa_global, temp_air, wind, **temp_params)
            pdc = pvlib.pvsystem.pvwatts_dc(eff, t_cell, pdc0, PV_GAMMA_PDC)
            pdc = np.asarray(pdc, np.float64) * (1.0 - loss_pct / 100.0)
            pac = pvlib.inverter.pvwatts(pdc, pac0 / PV_ETA_INV_NOM, eta_inv_nom=PV_ETA_INV_NOM)
            e = np.clip(np.nan_to_num(np.asarray(pac, np.float64)), 0.0, None) / 1000.0  # kWh per kWp per h
            out.append(e)
            tilts.append(tilt)
            azims.append(az)
            yields.append(e.sum())
    kwh = np.stack(out)
    arrays = {
        "kwh_per_kwp": kwh,
        "tilt_deg": np.asarray(tilts, np.float64),
        "azimuth_deg": np.asarray(azims, np.float64),
        "site_lat_lon_alt": np.asarray([lat, lon, alt], np.float64),
    }
    stats = {
        "pvlib_version_used": pvlib.__version__,
        "site": f"{meta['Name'].strip(chr(34))}, {meta['State']} (USAF {meta['USAF']})",
        "latitude": lat, "longitude": lon, "altitude_m": alt, "utc_offset_h": float(meta["TZ"]),
        "system_loss_pct": rounded(loss_pct, 3),
        "annual_yield_kwh_per_kwp": [
            {"tilt_deg": t, "azimuth_deg": a, "kwh_per_kwp": rounded(y, 1)}
            for t, a, y in zip(tilts, azims, yields)
        ],
        "peak_hourly_kwh_per_kwp": rounded(kwh.max(), 4),
        "tmy3_annual_ghi_kwh_per_m2": rounded(ghi.sum() / 1000.0, 1),
    }
    return arrays, stats


# ==========================================================================
# 3. Chicago taxi trips (TFX example data)
# ==========================================================================
def build_taxi(wheel: Path) -> tuple[dict[str, np.ndarray], dict]:
    df = pd.read_csv(io.BytesIO(read_member(wheel, TAXI_PATH)))
    df["source_row"] = np.arange(len(df), dtype=np.int64)
    counts = {"rows_in_source": int(len(df))}
    coords = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]

    steps = [
        ("missing pickup or dropoff coordinates", df[coords].notna().all(axis=1)),
        ("fare <= 0 or fare > 200 USD", (df["fare"] > 0) & (df["fare"] <= TAXI_MAX_FARE_USD)),
        ("trip_seconds missing, <= 0 or > 6 h",
         df["trip_seconds"].notna() & (df["trip_seconds"] > 0) & (df["trip_seconds"] <= TAXI_MAX_SECONDS)),
        ("trip_miles <= 0 (distance not recorded) or > 100",
         (df["trip_miles"] > 0) & (df["trip_miles"] <= TAXI_MAX_MILES)),
    ]
    keep = pd.Series(True, index=df.index)
    dropped = {}
    for label, ok in steps:
        newly = keep & ~ok.fillna(False)
        dropped[label] = int(newly.sum())
        keep &= ok.fillna(False)
    mph = df["trip_miles"] / (df["trip_seconds"] / 3600.0)
    too_fast = keep & ~(mph <= TAXI_MAX_MPH)
    dropped["implied mean speed > 80 mph"] = int(too_fast.sum())
    keep &= mph <= TAXI_MAX_MPH
    d = df[keep].copy()

    ts = pd.to_datetime(d["trip_start_timestamp"], unit="s")
    # The epoch seconds encode Chicago *wall-clock* time (hour matches trip_start_hour).
    if not (ts.dt.hour.to_numpy() == d["trip_start_hour"].to_numpy()).all():
        raise ValueError("taxi: trip_start_timestamp hour does not match trip_start_hour")
    if not (ts.dt.minute.isin([0, 15, 30, 45]).all() and (ts.dt.second == 0).all()):
        raise ValueError("taxi: timestamps are not on 15-minute boundaries")
    d["start_timestamp"] = ts.to_numpy().astype("datetime64[s]")
    d = d.sort_values(["start_timestamp", "source_row"], kind="mergesort")
    ts = pd.to_datetime(d["start_timestamp"])

    lat1, lon1, lat2, lon2 = (np.radians(d[c].to_numpy(np.float64)) for c in coords)
    hav = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    centroid_km = 2 * 6371.0088 * np.arcsin(np.sqrt(hav))  # stats only; the loader recomputes it

    arrays = {
        "start_timestamp": d["start_timestamp"].to_numpy().astype("datetime64[s]"),
        "start_slot_15min": (ts.dt.hour * 4 + ts.dt.minute // 15).to_numpy(np.int16),
        "day_of_week": d["trip_start_day"].to_numpy(np.int8),  # 1 = Sunday ... 7 = Saturday
        "month": d["trip_start_month"].to_numpy(np.int8),
        "pickup_lat": d["pickup_latitude"].to_numpy(np.float64),
        "pickup_lon": d["pickup_longitude"].to_numpy(np.float64),
        "dropoff_lat": d["dropoff_latitude"].to_numpy(np.float64),
        "dropoff_lon": d["dropoff_longitude"].to_numpy(np.float64),
        "fare_usd": d["fare"].to_numpy(np.float64),
        "trip_miles": d["trip_miles"].to_numpy(np.float64),
        "trip_seconds": d["trip_seconds"].to_numpy(np.float64),
        "source_row": d["source_row"].to_numpy(np.int32),
    }
    counts["dropped"] = dropped
    counts["rows_kept"] = int(len(d))
    counts["first_start"] = str(ts.min())
    counts["last_start"] = str(ts.max())
    counts["fare_usd_median"] = rounded(d["fare"].median(), 2)
    counts["trip_miles_median"] = rounded(d["trip_miles"].median(), 2)
    counts["trip_seconds_median"] = rounded(d["trip_seconds"].median(), 1)
    counts["trips_with_same_pickup_dropoff_centroid"] = int((centroid_km == 0).sum())
    counts["centroid_distance_km_median"] = rounded(np.median(centroid_km), 3)
    return arrays, counts


# ==========================================================================
# 4. EV specs (emobpy) + derived consumption
# ==========================================================================
def ev_cycle_consumption(curb_kg: float, cd: float, area_m2: float, v_ms: np.ndarray) -> float:
    """Battery-side energy per km (kWh/km) over a 1 Hz speed trace ``v_ms`` (m/s)."""
    m = curb_kg + EV_DRIVER_KG
    a = np.diff(v_ms)  # m/s^2 over each 1 s step
    v = 0.5 * (v_ms[1:] + v_ms[:-1])  # mean speed in the step
    moving = v > 0
    f = (EV_ROT_MASS_FACTOR * m * a + np.where(moving, m * EV_G * EV_C_RR, 0.0)
         + 0.5 * EV_RHO_AIR * cd * area_m2 * v ** 2)
    p_wheel = f * v  # W
    eta_out = EV_ETA_TRANSMISSION * EV_ETA_MOTOR * EV_ETA_BATT_DISCHARGE
    eta_in = EV_ETA_TRANSMISSION * EV_ETA_MOTOR * EV_ETA_BATT_CHARGE * EV_REGEN_SHARE
    p_batt = np.where(p_wheel > 0, p_wheel / eta_out, p_wheel * eta_in) + EV_AUX_W
    energy_kwh = p_batt.sum() / 3.6e6  # 1 s steps: J -> kWh
    dist_km = v.sum() / 1000.0
    return float(energy_kwh / dist_km)


def build_ev(wheel: Path) -> tuple[pd.DataFrame, dict]:
    specs = json.loads(read_member(wheel, EVSPECS_PATH))
    cycles = pd.read_csv(io.BytesIO(read_member(wheel, DRIVING_CYCLES_PATH)))
    v_kmh = cycles[EV_CYCLE].dropna().to_numpy(np.float64)
    v_ms = v_kmh / 3.6
    rows, skipped = [], []
    for brand in sorted(specs):
        if brand == "fallback_parameters":
            continue
        for model in sorted(specs[brand]):
            for year in sorted(specs[brand][model]):
                s = specs[brand][model][year]

                def val(k):
                    v = s.get(k, {})
                    return v.get("value") if isinstance(v, dict) else None

                need = {k: val(k) for k in ("battery_cap", "curb_weight", "drag_coeff", "width", "height", "power")}
                if any(v is None for v in need.values()):
                    skipped.append(f"{brand} {model} ({year}): missing "
                                   + ", ".join(k for k, v in need.items() if v is None))
                    continue
                area = EV_FRONTAL_AREA_FACTOR * float(need["width"]) * float(need["height"])
                cons = ev_cycle_consumption(float(need["curb_weight"]), float(need["drag_coeff"]), area, v_ms)
                lo, hi = EV_PLAUSIBLE_KWH_PER_KM
                if not lo <= cons <= hi:
                    raise ValueError(f"{brand} {model} {year}: implausible consumption {cons:.3f} kWh/km")
                cons = round(cons, 4)  # kWh/km as stored; range_km is derived from the stored value
                rows.append({
                    "model": f"{brand} {model}",
                    "brand": brand,
                    "year": int(year),
                    "battery_kwh": float(need["battery_cap"]),
                    "consumption_kwh_per_km": cons,
                    "range_km": round(float(need["battery_cap"]) / cons, 1),
                    "curb_weight_kg": float(need["curb_weight"]),
                    "drag_coeff": float(need["drag_coeff"]),
                    "frontal_area_m2": round(area, 4),
                    "power_kw": float(need["power"]),
                })
    df = pd.DataFrame(rows)
    stats = {
        "variants_in_source": len(rows) + len(skipped),
        "distinct_models_in_source": len({(b, m) for b in specs if b != "fallback_parameters" for m in specs[b]}),
        "skipped": skipped,
        "rows_kept": len(df),
        "distinct_models_kept": int(df["model"].nunique()),
        "cycle": EV_CYCLE,
        "cycle_km": rounded(0.5 * (v_ms[1:] + v_ms[:-1]).sum() / 1000.0, 3),
        "cycle_s": int(len(v_ms) - 1),
        "battery_kwh_min_median_max": [rounded(df.battery_kwh.min(), 1), rounded(df.battery_kwh.median(), 1),
                                       rounded(df.battery_kwh.max(), 1)],
        "consumption_kwh_per_km_min_median_max": [rounded(df.consumption_kwh_per_km.min(), 4),
                                                  rounded(df.consumption_kwh_per_km.median(), 4),
                                                  rounded(df.consumption_kwh_per_km.max(), 4)],
    }
    return df, stats


# ==========================================================================
# 5. Day-ahead prices, Netherlands (ev2gym, ENTSO-E)
# ==========================================================================
def build_prices(wheel: Path) -> tuple[dict[str, np.ndarray], dict]:
    df = pd.read_csv(io.BytesIO(read_member(wheel, PRICES_PATH)))
    stats = {"rows_in_source": int(len(df))}
    blank = df["Datetime (UTC)"].isna()
    stats["blank_rows_dropped"] = int(blank.sum())
    df = df[~blank].copy()
    s = df["Datetime (UTC)"].astype(str)
    iso = s.str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    dmy = s.str.match(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$")
    if not (iso | dmy).all():
        raise ValueError("prices: unknown date format")
    stats["rows_iso_format"] = int(iso.sum())
    stats["rows_dd_mm_yyyy_format"] = int(dmy.sum())
    t = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    t[iso] = pd.to_datetime(s[iso], format="%Y-%m-%d %H:%M:%S")
    t[dmy] = pd.to_datetime(s[dmy], format="%d/%m/%Y %H:%M")
    df["t"] = t.to_numpy().astype("datetime64[h]")
    price = df["Price (EUR/MWhe)"].astype(np.float64)
    if price.isna().any():
        raise ValueError("prices: missing price values")
    dup = df.duplicated("t", keep="first")
    conflicting = df[df.duplicated("t", keep=False)].groupby("t")["Price (EUR/MWhe)"].nunique().gt(1).sum()
    if conflicting:
        raise ValueError(f"prices: {conflicting} duplicated hours disagree")
    stats["duplicate_rows_dropped"] = int(dup.sum())
    stats["duplicate_range"] = [str(df.loc[dup, "t"].min()), str(df.loc[dup, "t"].max())]
    df = df[~dup].sort_values("t")

    first_year, last_year = 2015, 2024  # complete calendar years (UTC) in the source
    full = np.arange(np.datetime64(f"{first_year}-01-01T00", "h"), np.datetime64(f"{last_year + 1}-01-01T00", "h"))
    ser = pd.Series(df["Price (EUR/MWhe)"].to_numpy(np.float64), index=df["t"].to_numpy())
    stats["rows_after_last_full_year_dropped"] = int((ser.index >= full[-1] + 1).sum())
    ser = ser.reindex(full)
    missing = ser.isna().to_numpy()
    stats["missing_hours_filled"] = [str(x) for x in full[missing]]
    ser = ser.interpolate(method="linear", limit_area="inside")
    if ser.isna().any():
        raise ValueError("prices: could not fill gaps")
    # Source prices have at most 2 decimals: store exact integer cents (filled hours are
    # the linear interpolation rounded to the cent).
    cents = np.round(ser.to_numpy() * 100.0)
    if not np.allclose(cents[~missing] / 100.0, ser.to_numpy()[~missing], rtol=0.0, atol=1e-9):
        raise ValueError("prices: source has more than 2 decimals")
    # Hours are contiguous, so only the first one is stored: timestamp[k] = start + k hours.
    arrays = {
        "start_hour_utc": full[:1],
        "price_eur_cents_per_mwh": cents.astype(np.int32),
        "filled": missing,
    }
    yearly = pd.Series(cents / 100.0, index=pd.DatetimeIndex(full)).groupby(lambda x: x.year)
    stats["years"] = [first_year, last_year]
    stats["hours_kept"] = int(len(full))
    stats["mean_eur_per_mwh_by_year"] = {int(y): rounded(v, 2) for y, v in yearly.mean().items()}
    stats["min_max_eur_per_mwh"] = [rounded(cents.min() / 100.0, 2), rounded(cents.max() / 100.0, 2)]
    stats["negative_price_hours"] = int((cents < 0).sum())
    return arrays, stats


# ==========================================================================
# Main
# ==========================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "prosumer_gym" / "data",
                    help="output folder (default: prosumer_gym/data)")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "wheels",
                    help="wheel cache; wheels already there are reused (default: .cache/wheels)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    wheels = {pkg: fetch_wheel(pkg, ver, args.cache) for pkg, ver in PINS.items()}
    sources = {pkg: {"version": PINS[pkg], "wheel": w.name, "wheel_sha256": sha256_bytes(w.read_bytes())}
               for pkg, w in wheels.items()}

    files: dict[str, bytes] = {}
    arrays_by_file: dict[str, dict[str, np.ndarray]] = {}
    stats: dict = {"sources": sources}

    arr, st = build_households(wheels["citylearn"])
    arrays_by_file["households.npz"] = arr
    stats["households"] = st

    arr, st = build_pv(wheels["pvlib"])
    arrays_by_file["pv.npz"] = arr
    stats["pv"] = st

    arr, st = build_taxi(wheels["tfx"])
    arrays_by_file["taxi_trips.npz"] = arr
    stats["taxi"] = st

    arr, st = build_prices(wheels["ev2gym"])
    arrays_by_file["day_ahead_prices_nl.npz"] = arr
    stats["prices"] = st

    ev_df, st = build_ev(wheels["emobpy"])
    files["ev_specs.csv"] = ev_df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    stats["ev"] = st

    for name, arr in arrays_by_file.items():
        files[name] = npz_bytes(arr)
    files["build_stats.json"] = (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode("utf-8")

    for name, blob in sorted(files.items()):
        (out / name).write_bytes(blob)
    checksums = {
        "algorithm": "sha256",
        "files": {name: sha256_bytes(blob) for name, blob in sorted(files.items())},
        "arrays": {name: {k: array_digest(v) for k, v in sorted(arr.items())}
                   for name, arr in sorted(arrays_by_file.items())},
        "sources": sources,
    }
    (out / "checksums.json").write_text(json.dumps(checksums, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    for name, blob in sorted(files.items()):
        print(f"{name:28s} {len(blob):>9d} B  sha256={sha256_bytes(blob)[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
