"""EUber-v0 fare model: the shipped MLP that prices a trip from its distance, place and time.

Dissertation ``001``, Section 6.4.2: an MLP predicts a trip's fare; the behavioural
workers bid the fare of the distance with their markup. ``scripts/build_fare_model.py``
trains it on the shipped real taxi trips; it is evaluated here in numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources

import numpy as np

from prosumer_gym.core.validation import check_choice

__all__ = ["FARE_FEATURES", "FARE_PRECISIONS", "KM_PER_MILE", "FareModel", "load_fare_model", "fare_features",
           "fare_features_from_trips"]

FARE_FEATURES = ("distance_km", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon", "hour_sin", "hour_cos",
                 "weekend")
KM_PER_MILE = 1.609344
#: ``FareModel.predict(precision=...)``: float32 layers (default) or float64 (releases before 2026-12-04)
FARE_PRECISIONS = ("float32", "float64")


def fare_features(dist_km, plat, plon, dlat, dlon, hour, weekend) -> np.ndarray:
    """The 8 features (``FARE_FEATURES``, last axis) of trips given by their parts (broadcast)."""
    ang = 2.0 * np.pi * np.asarray(hour, dtype=np.float64) / 24.0
    cols = (dist_km, plat, plon, dlat, dlon, np.sin(ang), np.cos(ang), weekend)
    shapes = [np.shape(c) for c in cols]
    # the common case (1-D pair columns and scalars) without np.broadcast_shapes (~25 us a call)
    lead = shapes[0] if all(sh == shapes[0] or sh == () for sh in shapes) else np.broadcast_shapes(*shapes)
    out = np.empty(lead + (len(cols),))
    for k, c in enumerate(cols):  # each column broadcast into place (scalars such as the hour once)
        out[..., k] = c
    return out


def fare_features_from_trips(trips: dict[str, np.ndarray]) -> np.ndarray:
    """The fare model's 8 features (``FARE_FEATURES``) for real trips (n, 8)."""
    hour = (np.asarray(trips["start_slot_15min"]) + 0.5) / 4.0
    weekend = np.isin(np.asarray(trips["day_of_week"]), (5, 6))
    return fare_features(np.asarray(trips["trip_miles"]) * KM_PER_MILE, trips["pickup_lat"], trips["pickup_lon"],
                     trips["dropoff_lat"], trips["dropoff_lon"], hour, weekend)


@dataclass(frozen=True)
class FareModel:
    """The shipped MLP (ReLU) as numpy arrays; :meth:`predict` maps features (..., 8) to $.

    ``weights``/``biases`` are float32, the precision the model was trained in (torch). By
    default the layers run in float32 (about 2x faster than float64 for a slot's few hundred
    rows; fares within ~5e-7 relative of a float64 pass), the standardisation and the output
    in float64. ``precision="float64"`` runs the layers on the exactly upcast weights, the
    pass of earlier releases, bit for bit.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    meta: dict = field(compare=False, repr=False)

    @cached_property
    def _layers64(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        return tuple((w.astype(np.float64), b.astype(np.float64)) for w, b in zip(self.weights, self.biases))

    def predict(self, x: np.ndarray, precision: str = "float32") -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != len(FARE_FEATURES):
            raise ValueError(f"fare features must have last dimension {len(FARE_FEATURES)}, got {x.shape}")
        if precision not in FARE_PRECISIONS:
            check_choice("precision", precision, FARE_PRECISIONS)
        h = ((x - self.x_mean) / self.x_std).reshape(-1, x.shape[-1])
        if precision == "float32":
            h = h.astype(np.float32)
            layers = tuple(zip(self.weights, self.biases))
        else:
            layers = self._layers64
        # A slot prices a few hundred pairs through 132-wide layers: a multi-threaded BLAS costs
        # more than it saves at that size (measured 2.9 ms one thread vs 8.7 ms two on a loaded
        # 2-core machine, benchmarks/bench_euber.py), so the pass runs on one BLAS thread.
        # The limit is set and restored directly on threadpoolctl's BLAS controllers (two ctypes
        # calls each) rather than through ``ThreadpoolController.limit``, which re-reads every
        # library's info on entry and exit (~0.15 ms a call).
        libs = _blas_libs()
        before = [lib.get_num_threads() for lib in libs]
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(1)
        try:
            for k, (w, b) in enumerate(layers):
                h = h @ w.T + b
                if k < len(layers) - 1:
                    np.maximum(h, 0.0, out=h)
        finally:
            for lib, n in zip(libs, before):
                if n != 1:
                    lib.set_num_threads(n)
        return (h[:, 0].astype(np.float64) * self.y_std + self.y_mean).reshape(x.shape[:-1])


@lru_cache(maxsize=1)
def _blas_libs() -> tuple:
    """threadpoolctl's controllers of the BLAS that NumPy's matmul calls (inspected once, reused
    by every forward pass): the one NumPy's wheel bundles (``numpy.libs``) when it is loaded,
    else every loaded BLAS (e.g. one shared system library). SciPy's own bundled copy is left
    alone: toggling it cost as much as NumPy's and served nothing here."""
    import os

    from threadpoolctl import ThreadpoolController

    libs = tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
    wheel_dirs = ("numpy.libs", ".libs", ".dylibs")  # where NumPy's wheels put their OpenBLAS
    own = tuple(lib for lib in libs
                if os.path.basename(os.path.dirname(lib.filepath)) in wheel_dirs and "numpy" in lib.filepath)
    return own or libs


@lru_cache(maxsize=1)
def load_fare_model() -> FareModel:
    """Load ``prosumer_gym/data/fare_model.pt`` (``torch.load(weights_only=True)``, float32) + its JSON."""
    import hashlib

    import torch

    root = resources.files("prosumer_gym.data")
    meta = json.loads((root / "fare_model.json").read_text())
    raw = (root / "fare_model.pt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != meta["weights_sha256"]:
        raise RuntimeError("fare_model.pt does not match the sha256 in fare_model.json; rebuild it with "
                           "scripts/build_fare_model.py")
    with resources.as_file(root / "fare_model.pt") as p:
        state = torch.load(p, weights_only=True, map_location="cpu")
    keys = meta["state_dict_keys"]
    ws = tuple(state[k].float().numpy().copy() for k in keys if k.endswith("weight"))
    bs = tuple(state[k].float().numpy().copy() for k in keys if k.endswith("bias"))
    return FareModel(ws, bs, np.asarray(meta["feature_mean"]), np.asarray(meta["feature_std"]),
                     float(meta["target_mean"]), float(meta["target_std"]), meta)

