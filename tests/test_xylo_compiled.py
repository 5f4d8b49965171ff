"""The compiled Xylo fabric (XyloFabric.run, run_fabric) against the numpy step (run_stepwise).

Random fabrics with saturating currents, aliases, non-positive thresholds,
biases and leaks of every shift, in batches and resumed from a state; xylosim
itself is compared with ``run`` in tests/test_xylo_vs_xylosim.py.
"""

import dataclasses

import numpy as np
import pytest

from nirc.neuron_models.xylo_lif import XyloFabric

from test_xylo_vs_xylosim import RECORDINGS, random_events, random_spec

FIELDS = [*RECORDINGS, "synaptic_events", "saturated_currents"]


def assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def with_aliases(spec, rng):
    nh = spec.n_hidden
    aliases = [tuple(int(t) for t in rng.choice(nh, size=rng.integers(0, 3), replace=False)
                     if t != i) if rng.random() < 0.2 else () for i in range(nh)]
    return dataclasses.replace(spec, aliases=tuple(aliases))


@pytest.mark.parametrize("seed", range(6))
def test_compiled_run_equals_the_numpy_step_on_random_fabrics(seed):
    rng = np.random.default_rng(seed)
    spec = random_spec(seed, nh=int(rng.integers(8, 80)), density=0.2,
                       threshold=(100, 800) if seed % 2 else (2000, 8000), shifts=(4, 3, 3))
    if seed % 3 == 0:
        spec = with_aliases(spec, rng)
    if seed % 3 == 1:
        threshold = spec.threshold.copy()
        threshold[rng.random(threshold.size) < 0.2] = rng.integers(-50, 1)
        dash_mem = spec.dash_mem.copy()
        dash_mem[:3] = 0
        spec = dataclasses.replace(spec, threshold=threshold, dash_mem=dash_mem)
    fabric = XyloFabric.build(spec)
    counts = np.stack([random_events(seed * 10 + b, 60, spec.n_inputs, rate=0.4, max_count=20)
                       for b in range(3)])
    ours, state = fabric.run(counts)
    ref, ref_state = fabric.run_stepwise(counts)
    assert_same(ours, ref)
    assert ref.saturated_currents > 0 or seed % 2 == 0
    more = random_events(seed + 99, 20, spec.n_inputs, rate=0.4, max_count=3)[None].repeat(3, 0)
    assert_same(fabric.run(more, state)[0], fabric.run_stepwise(more, ref_state)[0])
