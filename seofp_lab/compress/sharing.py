"""k-means weight sharing per layer (Wu et al., arXiv 1906.01078; Han et al.'s deep compression).

Each weight tensor's kept (unpruned) values are clustered in 1-D with linear initialization
between their min and max; every value becomes its cluster center. Pruned values stay +0. With an
SEOFP format the centers are rounded to powers of two (then distinct centers may merge).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from seofp_lab.compress.range import Stored
from seofp_lab.compress.seofp import SEOFPFormat, seofp_round


@torch.no_grad()
def kmeans_1d(x: Tensor, k: int, init: Tensor | None = None,
              iters: int = 50) -> tuple[Tensor, Tensor]:
    """Lloyd's algorithm in 1-D: (centers (k',) sorted, labels (n,)) with k' = min(k, distinct).

    Empty clusters are re-seeded at the value farthest from its center, so with at least ``k``
    distinct values every center is used.

    >>> c, lab = kmeans_1d(torch.tensor([0.0, 0.1, 1.0, 1.1]), 2); c
    tensor([0.0500, 1.0500])
    """
    if k < 1:
        raise ValueError(f"Expected k >= 1 clusters but got {k}")
    v = x.detach().reshape(-1).double()
    distinct = torch.unique(v)
    if distinct.numel() <= k:
        return distinct.float(), torch.bucketize(v, distinct)
    if init is not None and init.numel() == k:
        c = init.detach().double().sort().values
    else:
        c = torch.linspace(float(v.min()), float(v.max()), k, dtype=torch.float64)
    labels = torch.empty(0, dtype=torch.long)
    for _ in range(iters):
        new = torch.bucketize(v, (c[1:] + c[:-1]) / 2)  # nearest center: c is sorted
        counts = torch.bincount(new, minlength=k)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, new, v)
        c = torch.where(counts > 0, sums / counts.clamp_min(1), c)
        for j in torch.nonzero(counts == 0).reshape(-1).tolist():
            c[j] = v[(v - c[new]).abs().argmax()]  # re-seed at the worst-served value
        c = c.sort().values
        if torch.equal(new, labels) and bool((counts > 0).all()):
            break
        labels = new
    labels = torch.bucketize(v, (c[1:] + c[:-1]) / 2)
    return c.float(), labels


@torch.no_grad()
def share_weights_(targets: list[Stored], clusters: int,
                   masks: Mapping[str, Tensor] | None = None, fmt: SEOFPFormat | None = None,
                   centers: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Replace each tensor's kept values by their k-means centers, in place (θ under STE).

    Args:
        targets: weight tensors to share.
        clusters: k per tensor.
        masks: pruning masks; pruned values are neither clustered nor changed.
        fmt: round the centers to this format's powers of two.
        centers: earlier centers per tensor, to warm-start (updated in place of the returned dict).

    Returns:
        The centers used per tensor (rounded when ``fmt`` is given).
    """
    masks = masks or {}
    out: dict[str, Tensor] = {}
    for s in targets:
        raw = s.raw
        mask = masks.get(s.name)
        kept = raw[mask] if mask is not None else raw.reshape(-1)
        if kept.numel() == 0:
            continue
        init = centers.get(s.name) if centers else None
        c, labels = kmeans_1d(kept, clusters, init)
        if fmt is not None:
            c = seofp_round(c, fmt.fraction_bits, s.name)
        values = c[labels].to(raw.dtype)
        if mask is not None:
            raw[mask] = values
        else:
            raw.copy_(values.reshape(raw.shape))
        out[s.name] = c
    return out


def unique_values(t: Tensor, mask: Tensor | None = None) -> int:
    """Distinct values among the kept entries of ``t``."""
    v = t.detach()[mask] if mask is not None else t.detach().reshape(-1)
    return int(torch.unique(v).numel())
