"""EnergyCollective-v0 data: the community's players drawn from the shipped data, the retail
prices, and synthetic random communities (tests, benchmarks).

Players from CityLearn loads and pvlib PV (``prosumer_gym.data``), Dutch day-ahead prices
(the slides used Australian wholesale prices); see ``docs/energy_collective.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from prosumer_gym import data as pgdata
from prosumer_gym.core.validation import check_float, check_floats, check_int, check_range, check_size
from prosumer_gym.envs.energy_collective.players import MIN_FLEX_KWH, Community

__all__ = ["retail_prices", "Population", "sample_population", "random_community"]


def retail_prices(
    year: int, import_markup: float, export_markup: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Hourly (8760,) wholesale, import and export prices (EUR/kWh) of ``year`` on the local
    clock of the other data (CET = UTC+1, no daylight saving; see docs).

    Import = wholesale + ``import_markup``; export = wholesale - ``export_markup``
    (Dutch ENTSO-E day-ahead prices shipped by ``prosumer_gym.data``; the slides used
    Australian wholesale prices).
    """
    allp = pgdata.day_ahead_prices()
    ts = allp["timestamp"]
    price = allp["price_eur_per_mwh"] / 1000.0
    start = np.datetime64(f"{int(year)}-01-01T00", "h") - np.timedelta64(1, "h")  # 00:00 CET
    idx = int((start - ts[0]).astype(np.int64))
    take = np.clip(np.arange(idx, idx + pgdata.HOURS_PER_YEAR), 0, len(price) - 1)
    w = price[take].copy()
    return w, w + float(import_markup), w - float(export_markup)


@dataclass(frozen=True)
class Population:
    """A sampled community population (the players, independent of the day).

    Hourly series ``load_kwh`` and ``pv_kwh`` are ``(N, H)`` for the ``H`` hours of the
    days covered (``first_day`` ... ), kWh per hour; generator and consumer parameters are
    per player. :meth:`community` builds the :class:`Community` of one day.
    """

    names: tuple[str, ...]
    kind: NDArray[np.str_]
    first_day: int
    load_kwh: NDArray[np.float64]
    pv_kwh: NDArray[np.float64]
    value_mult: NDArray[np.float64]
    gen_capacity_kw: NDArray[np.float64]
    gen_min_kw: NDArray[np.float64]
    gen_a: NDArray[np.float64]
    gen_b: NDArray[np.float64]
    position_km: NDArray[np.float64]
    flexibility: float
    source_home: NDArray[np.int64]
    pv_kw: NDArray[np.float64]

    @property
    def n_players(self) -> int:
        return len(self.names)

    def community(
        self,
        day: int,
        wholesale: NDArray[np.float64],
        import_price: NDArray[np.float64],
        export_price: NDArray[np.float64],
        slot_minutes: int = 60,
        g_kind: str = "market",
        autonomy_weight: float = 0.0,
        import_capacity: float = np.inf,
        export_capacity: float = np.inf,
    ) -> Community:
        """The community of day ``day`` (``first_day <= day < first_day + n_days``; days past
        364 continue into the data year's start, ``day % 365``), with hourly ``(8760,)``
        price series and ``slot_minutes`` in {15, 30, 60}: a sub-hourly slot gets its
        hour's energy divided evenly and its hour's prices."""
        k = 60 // slot_minutes
        h = slot_minutes / 60.0
        off = (day - self.first_day) * pgdata.HOURS_PER_DAY
        if off < 0 or off + pgdata.HOURS_PER_DAY > self.load_kwh.shape[1]:
            raise ValueError(f"day {day} is not covered by this population (days {self.first_day}..)")
        hrs = slice(off, off + pgdata.HOURS_PER_DAY)
        L = np.repeat(self.load_kwh[:, hrs].T, k, axis=0) / k  # (T, N) kWh per slot
        S = np.repeat(self.pv_kwh[:, hrs].T, k, axis=0) / k
        dd = day % pgdata.N_DAYS
        ph = slice(dd * pgdata.HOURS_PER_DAY, (dd + 1) * pgdata.HOURS_PER_DAY)
        imp = np.repeat(import_price[ph], k)
        exp_ = np.repeat(export_price[ph], k)
        whole = np.repeat(wholesale[ph], k)
        T, N = L.shape
        kind = self.kind
        phi = self.flexibility
        value = np.maximum(self.value_mult[None, :] * float(np.mean(imp)), 0.01) * np.ones((T, 1))
        a = np.zeros((T, N))
        m = np.zeros((T, N))
        r = np.zeros((T, N))
        lo = np.zeros((T, N))
        hi = np.zeros((T, N))
        cons = np.isin(kind, ("prosumer", "flexible", "inflexible"))
        r[:, cons] = S[:, cons] - L[:, cons]
        flex = np.isin(kind, ("prosumer", "flexible"))[None, :] & (phi * L >= MIN_FLEX_KWH)
        band = phi * L
        lo[:, cons] = r[:, cons]
        hi[:, cons] = r[:, cons]
        lo = np.where(flex, r - band, lo)
        hi = np.where(flex, r + band, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(flex, value / np.where(flex, band, 1.0), a)
        m = np.where(flex, value, m)
        gen = np.isin(kind, ("chp", "peak"))
        lo[:, gen] = self.gen_min_kw[gen] * h
        hi[:, gen] = self.gen_capacity_kw[gen] * h
        a[:, gen] = self.gen_a[gen] / h
        m[:, gen] = self.gen_b[gen]
        # r = 0 for generators; a minimum output makes the reference the minimum output
        r[:, gen] = lo[:, gen]
        m[:, gen] = self.gen_b[gen] + self.gen_a[gen] * self.gen_min_kw[gen]
        return Community(
            names=self.names, kind=kind, a=a, m=m, r=r, lo=lo, hi=hi, import_price=imp, export_price=exp_,
            g_kind=g_kind, autonomy_weight=autonomy_weight, import_capacity=import_capacity,
            export_capacity=export_capacity, position_km=self.position_km, slot_hours=h, wholesale_price=whole,
        )


def _pair(name: str, v: Sequence[float], lo: float = 0.0) -> tuple[float, float]:
    return check_range(name, v, lo)


def footprint_bytes(n_players: int, n_households: int, n_days: int, p2p: bool = False) -> float:
    """Estimate (bytes) of the largest arrays of a community, checked against
    :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is allocated: the
    households' sampled hourly year (~4 float64 series of 8760 h each; measured ~0.22 MB per
    player at reset), the players' (N, 24 x days) load and PV series, ~12 (slots, N)
    arrays of the day's community (15-minute slots: 96 a day), ~1 kB of Python objects per
    player and, for the P2P market, ~16 (N, N) bilateral-trade arrays."""
    N, H = n_players, 24 * n_days
    pair = 16.0 * N * N if p2p else 0.0
    return 8.0 * (4 * 8760 * n_households + 2 * H * N + H + 12 * 96 * N + pair) + 1024.0 * N


def sample_population(
    rng: np.random.Generator,
    first_day: int,
    n_days: int,
    n_prosumers: int = 100,
    n_flexible: int = 100,
    n_inflexible: int = 100,
    n_chp: int = 10,
    n_peak: int = 5,
    pv_kw: float | Sequence[float] = 4.0,
    flexibility: float = 0.2,
    value_range: tuple[float, float] = (0.8, 1.2),
    chp_capacity_kw: float = 10.0,
    chp_min_kw: float = 0.0,
    chp_cost_a: tuple[float, float] = (0.002, 0.004),
    chp_cost_b: tuple[float, float] = (0.07, 0.10),
    peak_capacity_kw: float = 5.0,
    peak_min_kw: float = 0.0,
    peak_cost_a: tuple[float, float] = (0.01, 0.02),
    peak_cost_b: tuple[float, float] = (0.16, 0.22),
    area_radius_km: float = 1.0,
    split: str = "train",
) -> Population:
    """Draw the players of a community from the shipped data (all randomness from ``rng``).

    Order of draws (fixed): prosumers (``data.sample_prosumers``: loads then PV
    orientations), consumers (``data.sample_households``, flexible first), consumers'
    value multipliers, generator cost coefficients (CHP then peak), positions.
    Generator costs ``a_P`` are EUR/kW^2/h, ``b`` EUR/kWh.
    """
    counts = {"prosumer": n_prosumers, "flexible": n_flexible, "inflexible": n_inflexible, "chp": n_chp, "peak": n_peak}
    for k, v in counts.items():
        check_int(f"n_{k if k != 'prosumer' else 'prosumers'}", v, 0)
    if sum(counts.values()) < 1:
        raise ValueError("the community needs at least one player (n_prosumers + n_flexible + n_inflexible + n_chp "
                         "+ n_peak >= 1)")
    check_size("EnergyCollective-v0", ", ".join(f"n_{k if k != 'prosumer' else 'prosumers'}={v}"
                                                for k, v in counts.items()) + f", {n_days} days",
               footprint_bytes(sum(counts.values()), n_prosumers + n_flexible + n_inflexible, n_days))
    flexibility = check_float("flexibility (a share of the household load; >= 1 would let a consumer produce)",
                              flexibility, 0.0, 1.0, hi_open=True)
    check_floats("pv_kw", pv_kw, 0.0, scalar_ok=True)  # also checked by data.sample_prosumers (if n_prosumers)
    vr = _pair("value_range", value_range, 0.0)
    for name, cap, pmin in (("chp", chp_capacity_kw, chp_min_kw), ("peak", peak_capacity_kw, peak_min_kw)):
        check_float(f"{name}_capacity_kw", cap, 0.0, lo_open=True)
        check_float(f"{name}_min_kw", pmin, 0.0)
        if pmin > cap:
            raise ValueError(f"infeasible generator bounds: {name}_min_kw = {pmin} > {name}_capacity_kw = {cap}")
    ca, cb = _pair("chp_cost_a", chp_cost_a), _pair("chp_cost_b", chp_cost_b)
    pa, pb = _pair("peak_cost_a", peak_cost_a), _pair("peak_cost_b", peak_cost_b)
    check_float("area_radius_km", area_radius_km, 0.0)
    check_int("first_day", first_day, 0)
    check_int("n_days", n_days, 1)
    cols = np.arange(first_day * pgdata.HOURS_PER_DAY, (first_day + n_days) * pgdata.HOURS_PER_DAY) % pgdata.HOURS_PER_YEAR
    loads, pvs, homes, pvk = [], [], [], []
    if n_prosumers:
        pro = pgdata.sample_prosumers(rng, n_prosumers, pv_kw=pv_kw, split=split, hours=cols)
        loads.append(pro.load_kwh)
        pvs.append(pro.pv_kwh)
        homes.append(pro.source_home)
        pvk.append(pro.pv_kw)
    n_cons = n_flexible + n_inflexible
    if n_cons:
        hh = pgdata.sample_households(rng, n_cons, split=split, hours=cols)
        loads.append(hh.hourly_load_kwh)
        pvs.append(np.zeros((n_cons, len(cols))))
        homes.append(hh.source_home)
        pvk.append(np.zeros(n_cons))
    n_gen = n_chp + n_peak
    H = len(cols)
    loads.append(np.zeros((n_gen, H)))
    pvs.append(np.zeros((n_gen, H)))
    homes.append(np.zeros(n_gen, dtype=np.int64))
    pvk.append(np.zeros(n_gen))
    kind = np.array(sum(([k] * v for k, v in counts.items()), []), dtype=str)
    names = tuple(f"{k}_{j}" for k, v in counts.items() for j in range(v))
    N = len(names)
    n_hh = n_prosumers + n_cons
    value_mult = np.zeros(N)
    value_mult[:n_hh] = rng.uniform(*vr, size=n_hh)
    cap = np.zeros(N)
    pmin = np.zeros(N)
    ga = np.zeros(N)
    gb = np.zeros(N)
    sl_chp = slice(n_hh, n_hh + n_chp)
    sl_peak = slice(n_hh + n_chp, N)
    cap[sl_chp], pmin[sl_chp] = chp_capacity_kw, chp_min_kw
    cap[sl_peak], pmin[sl_peak] = peak_capacity_kw, peak_min_kw
    ga[sl_chp] = rng.uniform(*ca, size=n_chp)
    gb[sl_chp] = rng.uniform(*cb, size=n_chp)
    ga[sl_peak] = rng.uniform(*pa, size=n_peak)
    gb[sl_peak] = rng.uniform(*pb, size=n_peak)
    rad = area_radius_km * np.sqrt(rng.uniform(size=N))
    ang = rng.uniform(0, 2 * np.pi, size=N)
    pos = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    return Population(
        names=names, kind=kind, first_day=int(first_day), load_kwh=np.concatenate(loads), pv_kwh=np.concatenate(pvs),
        value_mult=value_mult, gen_capacity_kw=cap, gen_min_kw=pmin, gen_a=ga, gen_b=gb, position_km=pos,
        flexibility=float(flexibility), source_home=np.concatenate(homes).astype(np.int64),
        pv_kw=np.concatenate(pvk),
    )


def random_community(
    rng: np.random.Generator, n_players: int, n_slots: int = 1, g_kind: str = "market", autonomy_weight: float = 0.0,
    capacity: float = np.inf,
) -> Community:
    """A synthetic community with random quadratic players (for tests and benchmarks):
    a third generators, a third flexible consumers, the rest prosumers or fixed loads."""
    N, T = n_players, n_slots
    kind = rng.choice(np.array(["chp", "flexible", "prosumer", "inflexible"]), size=N, p=[0.25, 0.35, 0.3, 0.1])
    a = rng.uniform(0.01, 2.0, size=(T, N))
    m = rng.uniform(0.02, 0.3, size=(T, N))
    load = rng.uniform(0.1, 3.0, size=(T, N))
    pv = rng.uniform(0.0, 4.0, size=(T, N))
    cap = rng.uniform(2.0, 10.0, size=(T, N))
    r = np.where(kind == "chp", 0.0, np.where(kind == "prosumer", pv - load, -load))
    band = 0.3 * load
    lo = np.where(kind == "chp", 0.0, r - band)
    hi = np.where(kind == "chp", cap, r + band)
    fixed = kind == "inflexible"
    lo = np.where(fixed, r, lo)
    hi = np.where(fixed, r, hi)
    a = np.where(fixed, 0.0, a)
    m = np.where(fixed, 0.0, m)
    w = rng.uniform(-0.05, 0.2, size=T)
    imp = w + rng.uniform(0.0, 0.15, size=T)
    names = tuple(f"{k}_{i}" for i, k in enumerate(kind))
    return Community(names=names, kind=kind, a=a, m=m, r=r, lo=lo, hi=hi, import_price=imp, export_price=w,
                     g_kind=g_kind, autonomy_weight=autonomy_weight, import_capacity=capacity,
                     export_capacity=capacity, position_km=rng.uniform(-1, 1, size=(N, 2)), wholesale_price=w)
