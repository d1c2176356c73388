"""Rationing helpers: split a total among claimants with caps (water-filling).

Market-independent: used by StorageSharing-v0 to spread an oversupply ("burden") over the
RUs that offered storage, and usable by any market that must ration a surplus or a
shortage among participants with individual caps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["capped_weighted_split"]


def capped_weighted_split(total: float, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` as ``s_i = min(cap_i, mu * w_i)`` with ``sum(s) = total`` (water-filling).

    ``weights`` (>= 0) set the proportions (all ones: an equal split; a claimant whose
    equal share would exceed its cap gets its cap and the rest is re-split among the
    others); ``caps`` (>= 0) bound every share. Claimants with weight 0 only receive
    something when the positive-weight claimants are all capped; the remainder is then
    split equally (capped) among them. If ``total >= sum(caps)`` every share is its cap.

    Returns a float64 array with ``0 <= s_i <= cap_i`` and ``sum(s) = min(total, sum(caps))``
    up to rounding.
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.asarray(caps, dtype=np.float64)
    if w.shape != c.shape or w.ndim != 1:
        raise ValueError(f"weights and caps must be 1-D arrays of the same shape, got {w.shape} and {c.shape}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(c))) or np.any(w < 0) or np.any(c < 0):
        raise ValueError("weights and caps must be finite and >= 0")
    total = float(total)
    if not np.isfinite(total):
        raise ValueError(f"total must be finite, got {total}")
    out = np.zeros_like(c)
    if total <= 0.0:
        return out
    if total >= c.sum():
        return c.copy()
    pos = (w > 0) & (c > 0)
    cap_pos = float(c[pos].sum())
    if total >= cap_pos:
        out[pos] = c[pos]
        rest = total - cap_pos
        zero = (~pos) & (c > 0)
        if rest > 0 and np.any(zero):
            out[zero] = capped_weighted_split(rest, np.ones(int(zero.sum())), c[zero])
        return out
    wp, cp = w[pos], c[pos]
    thr = cp / wp  # mu at which each claimant hits its cap
    order = np.argsort(thr, kind="stable")
    thr_s, cap_s, w_s = thr[order], cp[order], wp[order]
    capped_before = np.concatenate(([0.0], np.cumsum(cap_s)[:-1]))  # caps of claimants below k
    weight_from = np.cumsum(w_s[::-1])[::-1]  # weights of claimants k..end
    mu_k = (total - capped_before) / weight_from
    # the first k whose candidate mu does not exceed its own threshold is the solution
    k = int(np.argmax(mu_k <= thr_s + 1e-15 * np.maximum(1.0, thr_s)))
    mu = mu_k[k]
    out[pos] = np.minimum(cp, mu * wp)
    return out
