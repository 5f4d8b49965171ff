"""The compiled Loihi CUBA LIF step equals the numpy lif_step on every register, rails included."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nirc.neuron_models.loihi_cuba_lif import (UV_MAX, V_LIMIT, lif_step, lif_step_compiled,
                                               step_constants)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 4), n=st.integers(1, 50))
def test_compiled_step_equals_lif_step(seed, batch, n):
    rng = np.random.default_rng(seed)
    params = {"du": rng.integers(0, 4096, n), "dv": rng.integers(0, 4096, n),
              "bias_mant": rng.integers(-4096, 4096, n), "bias_exp": rng.integers(-3, 7, n),
              "vth": rng.integers(0, 1 << 17, n)}
    constants = step_constants(params)
    # States anywhere in (and at) the 24-bit range, inputs large enough to wrap u.
    u = rng.integers(-UV_MAX, UV_MAX + 1, (batch, n))
    v = rng.integers(-V_LIMIT, V_LIMIT + 1, (batch, n))
    a_in = rng.integers(-(1 << 18), 1 << 18, (batch, n)) * (rng.random((batch, n)) < 0.5)
    expected = lif_step(constants, u, v, a_in)
    got = lif_step_compiled(constants, u, v, a_in)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
