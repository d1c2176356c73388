"""Tests for the shipped real data (prosumer_gym/data) and its loaders."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import prosumer_gym.data as D
from prosumer_gym.data import loaders

DATA_DIR = Path(D.__file__).resolve().parent
EXPECTED_TEST_IDS = [3, 6, 10, 13, 14]  # fixed held-out split, listed in DATA.md
EXPECTED_TRAIN_IDS = [1, 2, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17]


# ---------------------------------------------------------------- checksums
def _checksums() -> dict:
    return json.loads((DATA_DIR / "checksums.json").read_text(encoding="utf-8"))


def test_recorded_checksums_match_files():
    rec = _checksums()
    assert rec["algorithm"] == "sha256"
    for name, digest in rec["files"].items():
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == digest, name


def test_every_data_file_is_checksummed():
    data_files = {p.name for p in DATA_DIR.iterdir()
                  if p.suffix in {".npz", ".csv"} or p.name == "build_stats.json"}
    assert data_files == set(_checksums()["files"])
    assert {"households.npz", "pv.npz", "taxi_trips.npz", "day_ahead_prices_nl.npz",
            "ev_specs.csv"} <= data_files


def test_recorded_array_digests_match_contents():
    for fname, arrays in _checksums()["arrays"].items():
        with np.load(DATA_DIR / fname, allow_pickle=False) as z:
            assert sorted(z.files) == sorted(arrays)
            for key, digest in arrays.items():
                a = np.ascontiguousarray(z[key])
                h = hashlib.sha256()
                h.update(a.dtype.str.encode())
                h.update(repr(a.shape).encode())
                h.update(a.tobytes())
                assert h.hexdigest() == digest, f"{fname}:{key}"


def test_verify_checksums_clean_and_detects_tampering(monkeypatch):
    assert D.verify_checksums() == []
    real = loaders._read_bytes

    def tampered(name):
        blob = real(name)
        return blob + b"x" if name == "pv.npz" else blob

    monkeypatch.setattr(loaders, "_read_bytes", tampered)
    problems = D.verify_checksums()
    assert len(problems) == 1 and problems[0].startswith("pv.npz")


# ---------------------------------------------------------------- households
def test_household_split_is_fixed_and_disjoint():
    assert D.household_ids("test").tolist() == EXPECTED_TEST_IDS
    assert D.household_ids("train").tolist() == EXPECTED_TRAIN_IDS
    assert D.household_ids("all").tolist() == list(range(1, 18))
    assert D.household_ids().tolist() == list(range(1, 18))


def test_household_loads_invariants():
    load = D.household_hourly_load_kwh("all")
    assert load.shape == (17, 8760) and load.dtype == np.float64
    assert np.all(np.isfinite(load)) and load.min() >= 0.0
    assert load.max() < 20.0  # kWh in one hour for a single-family home
    daily_mean = D.daily_sum(load).mean(axis=1)
    assert np.all((daily_mean > 3.0) & (daily_mean < 80.0)), daily_mean
    for split in ("train", "test"):
        sub = D.household_hourly_load_kwh(split)
        ids = D.household_ids(split)
        assert sub.shape == (len(ids), 8760)
        np.testing.assert_array_equal(sub, load[ids - 1])


def test_loaded_arrays_are_read_only():
    for a in (D.household_hourly_load_kwh(), D.household_ids("train"), D.pv_hourly_kwh_per_kwp(),
              D.taxi_trips()["fare_usd"], D.ev_specs()["battery_kwh"], D.day_ahead_prices()["price_eur_per_mwh"]):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 0


def test_returned_containers_are_fresh():
    d = D.taxi_trips()
    d["fare_usd"] = None
    assert D.taxi_trips()["fare_usd"] is not None
    o = D.pv_orientations()
    o[0]["tilt_deg"] = -1.0
    assert D.pv_orientations()[0]["tilt_deg"] == 20.0


# ---------------------------------------------------------------- PV
def test_pv_invariants():
    pv = D.pv_hourly_kwh_per_kwp()
    orient = D.pv_orientations()
    assert pv.shape == (len(orient), 8760) == (6, 8760)
    assert np.all(np.isfinite(pv)) and pv.min() >= 0.0
    # AC clipping at 1 / (DC/AC ratio 1.2) kW per kWp.
    assert pv.max() <= 1.0 / 1.2 + 1e-9
    annual = pv.sum(axis=1)
    assert np.all((annual > 1200.0) & (annual < 1600.0)), annual
    # Nights are dark: 00:00-04:00 local standard time produce nothing.
    hours = pv.reshape(6, 365, 24)
    assert hours[:, :, 0:4].sum() == 0.0
    # South-facing beats east/west at the same tilt; June days beat December days.
    by = {(o["tilt_deg"], o["azimuth_deg"]): annual[i] for i, o in enumerate(orient)}
    for tilt in (20.0, 30.0):
        assert by[(tilt, 180.0)] > by[(tilt, 135.0)] and by[(tilt, 180.0)] > by[(tilt, 225.0)]
    daily = D.daily_sum(pv)
    assert np.all(daily[:, 151:181].mean(axis=1) > daily[:, 334:365].mean(axis=1))
    assert {tuple(sorted(o)) for o in orient} == {("azimuth_deg", "tilt_deg")}


# ---------------------------------------------------------------- helpers
def test_daily_sum():
    x = np.arange(2 * 48, dtype=float).reshape(2, 48)
    np.testing.assert_allclose(D.daily_sum(x), [[276.0, 852.0], [1428.0, 2004.0]])
    assert D.daily_sum(np.ones(8760)).shape == (365,)
    with pytest.raises(ValueError, match="hourly"):
        D.daily_sum(np.ones(25))


def test_ewma_hand_example():
    f = D.ewma_forecast(np.array([1.0, 2.0, 3.0, 4.0]), alpha=0.5)
    np.testing.assert_allclose(f, [1.0, 1.0, 1.5, 2.25])
    f = D.ewma_forecast([4.0, 0.0, 8.0], alpha=0.25)
    np.testing.assert_allclose(f, [4.0, 4.0, 3.0])
    # alpha = 1 is the persistence forecast f[t] = x[t-1]
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    np.testing.assert_allclose(D.ewma_forecast(x, alpha=1.0), [3.0, 3.0, 1.0, 4.0, 1.0])


def test_ewma_recursion_along_any_axis():
    rng = np.random.default_rng(7)
    x = rng.random((5, 30))
    for alpha in (0.5, 0.3):
        f = D.ewma_forecast(x, alpha=alpha, axis=1)
        assert f.shape == x.shape
        np.testing.assert_allclose(f[:, 0], x[:, 0])
        np.testing.assert_allclose(f[:, 1:], alpha * x[:, :-1] + (1 - alpha) * f[:, :-1])
        np.testing.assert_allclose(D.ewma_forecast(x.T, alpha=alpha, axis=0), f.T)
    np.testing.assert_allclose(D.ewma_forecast(x), D.ewma_forecast(x, 0.5, -1))


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, float("nan"), True])
def test_ewma_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        D.ewma_forecast(np.ones(3), alpha=alpha)


def test_ewma_rejects_non_finite_series():
    with pytest.raises(ValueError, match="finite"):
        D.ewma_forecast(np.array([1.0, np.nan]))


# ---------------------------------------------------------------- sampling
def test_sample_households_reproducible():
    a = D.sample_households(np.random.default_rng(123), 40)
    b = D.sample_households(np.random.default_rng(123), 40)
    c = D.sample_households(np.random.default_rng(124), 40)
    for f in ("hourly_load_kwh", "source_home", "scale", "day_offset"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.hourly_load_kwh, c.hourly_load_kwh)


def test_sample_households_150_distinct_and_consistent():
    s = D.sample_households(np.random.default_rng(0), 150, split="train", scale_range=(0.8, 1.2))
    assert s.hourly_load_kwh.shape == (150, 8760)
    assert len(np.unique(s.hourly_load_kwh, axis=0)) == 150
    assert set(s.source_home.tolist()) == set(EXPECTED_TRAIN_IDS)
    counts = np.bincount(s.source_home)[EXPECTED_TRAIN_IDS]
    assert counts.max() - counts.min() <= 1  # copies spread evenly over homes
    all_load = D.household_hourly_load_kwh("all")
    # First 12 draws are the real homes, unscaled and unshifted; the rest are copies.
    assert sorted(s.source_home[:12].tolist()) == EXPECTED_TRAIN_IDS
    assert np.all(s.scale[:12] == 1.0) and np.all(s.day_offset[:12] == 0)
    assert np.all((s.scale[12:] >= 0.8) & (s.scale[12:] <= 1.2))
    assert np.all((s.day_offset[12:] >= 1) & (s.day_offset[12:] <= 364))
    for i in range(150):
        src = all_load[s.source_home[i] - 1]
        expected = s.scale[i] * np.roll(src, -24 * int(s.day_offset[i]))
        np.testing.assert_allclose(s.hourly_load_kwh[i], expected, rtol=0, atol=1e-12)
    # Day d of household i is source day (d + offset) % 365.
    i = 20
    d = (10 + s.day_offset[i]) % 365
    np.testing.assert_allclose(s.hourly_load_kwh[i, 240:264],
                               s.scale[i] * all_load[s.source_home[i] - 1, 24 * d:24 * d + 24])


def test_sample_households_small_n_is_real_homes():
    s = D.sample_households(np.random.default_rng(5), 3, split="test")
    assert len(set(s.source_home.tolist())) == 3
    assert set(s.source_home.tolist()) <= set(EXPECTED_TEST_IDS)
    np.testing.assert_array_equal(s.hourly_load_kwh, D.household_hourly_load_kwh("all")[s.source_home - 1])


@pytest.mark.parametrize("seed", range(5))
def test_train_samples_never_contain_test_homes(seed):
    s = D.sample_households(np.random.default_rng(seed), 60, split="train")
    assert not set(s.source_home.tolist()) & set(EXPECTED_TEST_IDS)
    t = D.sample_households(np.random.default_rng(seed), 60, split="test")
    assert set(t.source_home.tolist()) == set(EXPECTED_TEST_IDS)


def test_sample_prosumers_identities():
    p = D.sample_prosumers(np.random.default_rng(3), 30, pv_kw=(8.0, 4.0))
    np.testing.assert_array_equal(p.pv_kw, [8.0, 4.0] * 15)
    table = D.pv_hourly_kwh_per_kwp()
    assert p.orientation.min() >= 0 and p.orientation.max() < table.shape[0]
    np.testing.assert_allclose(p.pv_kwh, p.pv_kw[:, None] * table[p.orientation])
    np.testing.assert_array_equal(p.surplus_kwh, np.maximum(0.0, p.pv_kwh - p.load_kwh))
    np.testing.assert_array_equal(p.net_demand_kwh, np.maximum(0.0, p.load_kwh - p.pv_kwh))
    np.testing.assert_allclose(p.surplus_kwh - p.net_demand_kwh, p.pv_kwh - p.load_kwh)
    assert np.all(p.surplus_kwh * p.net_demand_kwh == 0.0)
    assert p.surplus_kwh.sum() > 0  # 8 kWp systems do export at midday
    h = D.sample_households(np.random.default_rng(3), 30)
    np.testing.assert_array_equal(p.load_kwh, h.hourly_load_kwh)  # households drawn first
    q = D.sample_prosumers(np.random.default_rng(3), 30, pv_kw=(8.0, 4.0))
    np.testing.assert_array_equal(p.orientation, q.orientation)


def test_sample_prosumers_zero_pv_is_consumer():
    p = D.sample_prosumers(np.random.default_rng(1), 4, pv_kw=0.0)
    assert np.all(p.surplus_kwh == 0.0)
    np.testing.assert_array_equal(p.net_demand_kwh, p.load_kwh)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=5, split="validation"), "split"),
    (dict(n=0), "n"),
    (dict(n=-2), "n"),
    (dict(n=2.5), "n"),
    (dict(n=5, scale_range=(1.2, 0.8)), "scale_range"),
    (dict(n=5, scale_range=(0.0, 1.0)), "scale_range"),
    (dict(n=5, scale_range=(0.8,)), "scale_range"),
])
def test_sample_households_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        D.sample_households(np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("pv_kw", [-1.0, (4.0, -0.5), (), float("nan"), "4"])
def test_sample_prosumers_bad_pv(pv_kw):
    with pytest.raises(ValueError, match="pv_kw"):
        D.sample_prosumers(np.random.default_rng(0), 4, pv_kw=pv_kw)


def test_bad_rng_and_split():
    with pytest.raises(ValueError, match="rng"):
        D.sample_households(42, 5)
    with pytest.raises(ValueError, match="split"):
        D.household_ids("validation")
    with pytest.raises(ValueError, match="split"):
        D.household_hourly_load_kwh("held_out")


# ---------------------------------------------------------------- taxi
def test_taxi_trips():
    t = D.taxi_trips()
    keys = {"start_timestamp", "start_slot_15min", "pickup_lat", "pickup_lon", "dropoff_lat",
            "dropoff_lon", "fare_usd", "trip_miles", "trip_seconds", "centroid_distance_km"}
    assert keys <= set(t)
    n = len(t["fare_usd"])
    assert n == 10442 and all(len(v) == n for v in t.values())
    assert t["start_timestamp"].dtype == np.dtype("datetime64[s]")
    assert np.all(np.diff(t["start_timestamp"].astype(np.int64)) >= 0)
    minutes = (t["start_timestamp"].astype(np.int64) // 60) % (24 * 60)
    np.testing.assert_array_equal(t["start_slot_15min"], minutes // 15)
    assert t["start_slot_15min"].min() >= 0 and t["start_slot_15min"].max() <= 95
    for k in ("fare_usd", "trip_miles", "trip_seconds"):
        assert np.all(np.isfinite(t[k])) and np.all(t[k] > 0), k
    assert t["fare_usd"].max() <= 200 and t["trip_miles"].max() <= 100
    for k in ("pickup_lat", "dropoff_lat"):
        assert np.all((t[k] > 41.6) & (t[k] < 42.1)), k
    for k in ("pickup_lon", "dropoff_lon"):
        assert np.all((t[k] > -88.0) & (t[k] < -87.5)), k
    assert np.all(t["centroid_distance_km"] >= 0) and np.all(t["centroid_distance_km"] < 50)
    assert np.all((t["day_of_week"] >= 1) & (t["day_of_week"] <= 7))
    assert len(np.unique(t["source_row"])) == n


# ---------------------------------------------------------------- EV
def test_ev_specs():
    ev = D.ev_specs()
    n = len(ev["model"])
    assert n >= 100 and all(len(v) == n for v in ev.values())
    assert ev["model"].dtype.kind == "U"
    assert np.all((ev["battery_kwh"] >= 10) & (ev["battery_kwh"] <= 120))
    assert np.all((ev["consumption_kwh_per_km"] >= 0.10) & (ev["consumption_kwh_per_km"] <= 0.30))
    np.testing.assert_allclose(ev["range_km"], ev["battery_kwh"] / ev["consumption_kwh_per_km"], atol=0.06)
    # heavier cars with similar aerodynamics use more energy per km
    corr = np.corrcoef(ev["curb_weight_kg"], ev["consumption_kwh_per_km"])[0, 1]
    assert corr > 0.5
    assert len(set(zip(ev["model"].tolist(), ev["year"].tolist()))) == n
    latest = D.ev_specs(latest_per_model=True)
    assert len(set(latest["model"].tolist())) == len(latest["model"]) == len(set(ev["model"].tolist()))


# ---------------------------------------------------------------- prices
def test_day_ahead_prices():
    p = D.day_ahead_prices()
    ts, price = p["timestamp"], p["price_eur_per_mwh"]
    assert ts.dtype == np.dtype("datetime64[h]") and len(ts) == len(price) == 87672
    assert ts[0] == np.datetime64("2015-01-01T00") and ts[-1] == np.datetime64("2024-12-31T23")
    assert np.all(np.diff(ts).astype(np.int64) == 1)  # contiguous, no duplicates
    assert np.all(np.isfinite(price)) and price.min() >= -500 and price.max() < 1000
    assert price[0] == 34.94 and price[1] == 32.19  # first rows of the source file
    assert int(p["filled"].sum()) == 2
    assert len(D.day_ahead_prices(2016)["timestamp"]) == 8784
    assert len(D.day_ahead_prices(2023)["timestamp"]) == 8760  # duplicated 2023 rows dropped
    assert 200 < D.day_ahead_prices(2022)["price_eur_per_mwh"].mean() < 300  # 2022 energy crisis
    for bad in (2014, 2025, "2020", 2020.0):
        with pytest.raises(ValueError, match="year"):
            D.day_ahead_prices(bad)
