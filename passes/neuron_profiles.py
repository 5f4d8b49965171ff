"""neuron_profiles: group every population's neurons into profiles the chip can hold.

A Loihi core does not store du, dv, vth and the bias exponent per neuron: it
holds a few neuron profiles, each shared by the neurons that use it (Lava's LIF
process likewise takes one du, dv and vth per process). This pass groups each
population's neurons by the values of the neuron model's ``profile_params``
(one profile per distinct combination). Where a population has more distinct
combinations than a core can hold (``cores.limits.neuron_profiles``), neurons
share quantized values instead: the combinations are clustered (k-means,
seeded) into that many profiles, each taking its members' rounded mean, and
the change is reported.

A table whose source population has several profiles is split into one table
per source profile (the same weights, exponent and delay; columns of the other
profiles empty), so every table reads the spikes of one profile — what a
deployment with one process per profile can wire. On Loihi each table shifts
its own sum (weight_exp), so the split tables' floor shifts are the hardware's
arithmetic from here on; the emulator, the integer reference and Lava compute
the split network alike.

Requires: a quantized hardware network (after quantize and balance_delays).
Guarantees: every population has ``profile`` (per-neuron index) and
``profiles`` (per profile, the value of each profile parameter), and every
neuron's parameters equal its profile's; at most the per-core profile limit of
profiles per population; every table's non-zero columns lie in one profile of
its source. ``ctx.report["neuron_profiles"]`` lists per population its
profiles, neurons per profile, and any values changed by sharing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable, per_neuron
from nirc.passes.context import PassContext


def profile_limit(ctx: PassContext) -> int | None:
    """The fewest profiles any core holds (``cores.limits.neuron_profiles``), or None."""
    target = ctx.target
    if target is None:
        return None
    limits = [target.limits_of(c).get("neuron_profiles") for c in range(target.core_count)]
    limits = [v for v in limits if v is not None]
    return min(limits) if limits else None


def _share(keys: np.ndarray, limit: int) -> np.ndarray:
    """``keys`` (n, params) with at most ``limit`` distinct rows: k-means on the distinct rows
    (weighted by how many neurons use each), every row replaced by its cluster's rounded mean."""
    from scipy.cluster.vq import kmeans2

    distinct, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    scale = np.maximum(distinct.max(axis=0) - distinct.min(axis=0), 1).astype(np.float64)
    points = np.repeat(distinct / scale, counts, axis=0)
    _, label = kmeans2(points, limit, seed=0, minit="++", missing="raise")
    label_of_distinct = label[np.cumsum(counts) - 1]
    shared = np.empty_like(distinct)
    for k in np.unique(label_of_distinct):
        members = label_of_distinct == k
        shared[members] = np.rint(np.average(distinct[members], axis=0,
                                             weights=counts[members])).astype(distinct.dtype)
    return shared[inverse.ravel()]


def _group(pop: Population, names: tuple[str, ...], limit: int | None
           ) -> tuple[Population, dict]:
    keys = np.stack([per_neuron(pop.params[k], pop.size, np.int64) for k in names], axis=1)
    row: dict = {"population": pop.name}
    # Most layers share one value of every profile parameter: no sort (np.unique over rows
    # costs more than the rest of the pass on a 10^5-node chain).
    uniform = pop.size > 0 and bool((keys == keys[0]).all())
    distinct = 1 if uniform else len(np.unique(keys, axis=0))
    if limit is not None and distinct > limit:
        shared = _share(keys, limit)
        changed = np.any(shared != keys, axis=1)
        row["shared"] = {"distinct_before": distinct, "neurons_changed": int(changed.sum()),
                         "max_change": {k: int(np.max(np.abs(shared[:, i] - keys[:, i])))
                                        for i, k in enumerate(names)}}
        keys = shared
    if uniform:
        values, profile = keys[:1], np.zeros(pop.size, np.int64)
    else:
        values, profile = np.unique(keys, axis=0, return_inverse=True)
        profile = profile.ravel().astype(np.int64)
    params = dict(pop.params)
    for i, k in enumerate(names):
        params[k] = keys[:, i].copy()
    profiles = tuple({k: int(v[i]) for i, k in enumerate(names)} for v in values)
    row["profiles"] = [dict(p, neurons=int(np.count_nonzero(profile == j)))
                       for j, p in enumerate(profiles)]
    return pop.with_(params=params, profile=profile, profiles=profiles), row


def _split_by_source_profile(table: SynapseTable, profile: np.ndarray) -> list[SynapseTable]:
    w = sp.csr_array(table.weights)
    # Profiles met by the columns (a count, not a sort: tables hold up to 10^8 synapses).
    used = np.flatnonzero(np.bincount(profile[w.indices])) if w.nnz else np.zeros(0, np.int64)
    if used.size <= 1:
        return [table]
    out = []
    for p in used:
        part = w.copy()
        part.data = np.where(profile[w.indices] == p, w.data, 0)
        part.eliminate_zeros()
        out.append(table.with_(weights=part))
    return out


def neuron_profiles(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Group neurons into profiles and give every table one source profile."""
    names = tuple(ctx.model.profile_params)
    if not names:
        return net
    limit = profile_limit(ctx)
    populations, rows = {}, []
    for name, pop in net.populations.items():
        populations[name], row = _group(pop, names, limit)
        rows.append(row)
    tables: list[SynapseTable] = []
    split = []
    delays = ctx.report.get("table_delays")
    new_delays = []
    for k, t in enumerate(net.tables):
        source = populations.get(t.source)
        parts = [t] if source is None or len(source.profiles) <= 1 else \
            _split_by_source_profile(t, source.profile)
        if len(parts) > 1:
            split.append({"table": k, "source": t.source, "target": t.target,
                          "into": len(parts)})
        tables.extend(parts)
        if delays is not None and len(delays) == len(net.tables):
            new_delays.extend([delays[k]] * len(parts))
    if delays is not None and len(delays) == len(net.tables):
        ctx.report["table_delays"] = new_delays
    ctx.report["neuron_profiles"] = {"limit_per_core": limit, "profile_params": list(names),
                                     "populations": rows, "split_tables": split}
    return net.with_(populations=populations, tables=tuple(tables))
