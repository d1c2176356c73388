#!/usr/bin/env python
"""Train EUber-v0's bid (fare) model on the shipped real taxi trips and write its weights.

Usage::

    python scripts/build_fare_model.py [--out prosumer_gym/data] [--epochs 40]

Dissertation 001, Section 6.4.2: an MLP with hidden layers (132, 132, 64) and ReLU, trained
with an 80/20 train/test split, predicts a trip's fare; EUber-v0 uses it to generate the
workers' bids. We train the same architecture on ``prosumer_gym.data.taxi_trips()``
(10,442 real Chicago trips) instead of NYC 2013.

Features (8, standardised with the training set's mean/std, stored in the JSON):
``distance_km`` (trip_miles x 1.609344), ``pickup_lat``, ``pickup_lon``, ``dropoff_lat``,
``dropoff_lon``, ``hour_sin``, ``hour_cos`` (start time of day), ``weekend`` (0/1).
Trip duration is *not* a feature: the environment must also price V2G tasks, which have a
distance equivalent but no trip time. Target: ``fare_usd`` (standardised).

Split (documented, deterministic): trip ``k`` (row order of ``taxi_trips()``) is held out
when ``k % 5 == 0`` (20 %, 2,089 trips); the other 8,353 trips train the model.

Determinism: CPU, float32, one torch thread, a fixed ``torch.Generator`` seed for the
initialisation and the mini-batch order; no global seeding. Outputs:

* ``fare_model.pt``: a plain ``state_dict`` (``torch.save``; load with
  ``torch.load(path, weights_only=True)``);
* ``fare_model.json``: architecture, feature names and scaling, target scaling, the split
  rule, training hyper-parameters, held-out R^2 / MAE / RMSE and the sha256 of the weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prosumer_gym import data as pgdata  # noqa: E402
from prosumer_gym.envs.euber.market import FARE_FEATURES, fare_features_from_trips  # noqa: E402

HIDDEN = (132, 132, 64)
SEED = 20240601


def build_mlp(n_in: int, hidden: tuple[int, ...], generator: torch.Generator) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = n_in
    for h in (*hidden, 1):
        lin = nn.Linear(prev, h)
        bound = 1.0 / np.sqrt(prev)
        with torch.no_grad():  # Kaiming-uniform-like init drawn from our own generator
            lin.weight.uniform_(-np.sqrt(6.0 / prev), np.sqrt(6.0 / prev), generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
        layers += [lin, nn.ReLU()]
        prev = h
    return nn.Sequential(*layers[:-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "prosumer_gym" / "data"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    trips = pgdata.taxi_trips()
    X = fare_features_from_trips(trips).astype(np.float64)
    y = np.asarray(trips["fare_usd"], dtype=np.float64)
    idx = np.arange(len(y))
    test = idx % 5 == 0
    train = ~test
    mu, sd = X[train].mean(0), X[train].std(0)
    sd[sd == 0] = 1.0
    ymu, ysd = float(y[train].mean()), float(y[train].std())
    Xt = torch.tensor(((X - mu) / sd), dtype=torch.float32)
    yt = torch.tensor((y - ymu) / ysd, dtype=torch.float32)
    g = torch.Generator().manual_seed(SEED)
    model = build_mlp(X.shape[1], HIDDEN, g)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    tr_idx = torch.tensor(np.flatnonzero(train))
    loss_fn = nn.MSELoss()
    for epoch in range(args.epochs):
        perm = tr_idx[torch.randperm(len(tr_idx), generator=g)]
        tot = 0.0
        for k in range(0, len(perm), args.batch_size):
            b = perm[k : k + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(Xt[b]).squeeze(-1), yt[b])
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1}: train mse (standardised) {tot / len(perm):.4f}")
    model.eval()
    with torch.no_grad():
        pred = model(Xt).squeeze(-1).numpy().astype(np.float64) * ysd + ymu
    res = y[test] - pred[test]
    r2 = 1.0 - float(np.sum(res**2) / np.sum((y[test] - y[test].mean()) ** 2))
    res_tr = y[train] - pred[train]
    r2_tr = 1.0 - float(np.sum(res_tr**2) / np.sum((y[train] - y[train].mean()) ** 2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    pt_path = out / "fare_model.pt"
    tmp = pt_path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, pt_path)
    sha = hashlib.sha256(pt_path.read_bytes()).hexdigest()
    meta = {
        "description": "EUber-v0 bid model: MLP fare regressor trained on prosumer_gym.data.taxi_trips()",
        "architecture": {"type": "mlp_relu", "n_inputs": int(X.shape[1]), "hidden": list(HIDDEN), "n_outputs": 1},
        "state_dict_keys": list(state),
        "features": list(FARE_FEATURES),
        "feature_mean": [float(v) for v in mu],
        "feature_std": [float(v) for v in sd],
        "target": "fare_usd",
        "target_mean": ymu,
        "target_std": ysd,
        "split": "held out: row k of taxi_trips() with k % 5 == 0",
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "training": {"optimizer": "Adam", "lr": args.lr, "batch_size": args.batch_size, "epochs": args.epochs,
                     "seed": SEED, "torch_threads": 1, "dtype": "float32", "torch_version": torch.__version__},
        "r2_test": round(r2, 6),
        "r2_train": round(r2_tr, 6),
        "mae_test_usd": round(float(np.mean(np.abs(res))), 6),
        "rmse_test_usd": round(float(np.sqrt(np.mean(res**2))), 6),
        "weights_file": "fare_model.pt",
        "weights_sha256": sha,
        "weights_bytes": pt_path.stat().st_size,
    }
    js = out / "fare_model.json"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, js)
    print(f"held-out R^2 = {r2:.4f} (train {r2_tr:.4f}), MAE ${meta['mae_test_usd']:.2f}; wrote {pt_path} "
          f"({meta['weights_bytes']} bytes, sha256 {sha[:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
