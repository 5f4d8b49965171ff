"""The Loihi CUBA LIF neuron and dense synapses, on hand-computed cases (Lava's bit-accurate rules)."""

import numpy as np
import pytest
import scipy.sparse as sp

from nirc.errors import TargetError
from nirc.hwnet import Population, SynapseTable
from nirc.neuron_models import get_model
from nirc.neuron_models import loihi_cuba_lif as L

MODEL = get_model("loihi_cuba_lif")


def params(n=1, du=0, dv=0, vth=10, bias_mant=0, bias_exp=0, v_init=0):
    return {k: np.full(n, v, np.int64) for k, v in
            dict(du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp,
                 v_init=v_init).items()}


def step(p, u, v, a_in):
    state = {"u": np.array([[u]], np.int64), "v": np.array([[v]], np.int64)}
    z = MODEL.step(p, state, np.array([[a_in]], np.int64))
    return int(state["u"][0, 0]), int(state["v"][0, 0]), bool(z[0, 0])


def test_input_enters_u_shifted_left_by_6_and_v_integrates_u():
    # du = 4095: u keeps nothing (decay const 4096); dv = 0: v keeps everything.
    assert step(params(du=4095, vth=100), 0, 0, 3) == (192, 192, False)


def test_current_decay_uses_du_plus_one_and_truncates_toward_zero():
    # u = 1000, du = 1: u*(4096-2)/4096 = 999.51 -> 999
    assert step(params(du=1, vth=10**5), 1000, 0, 0)[0] == 999
    # negative: -1000 * 4094 / 4096 = -999.51 -> -999 (toward zero, not floor -1000)
    assert step(params(du=1, vth=10**5), -1000, 0, 0)[0] == -999


def test_voltage_decay_uses_dv_and_truncates_negative_values_toward_zero():
    # v = -4097, dv = 4095: -4097 * 1 / 4096 = -1.0002 -> -1 (floor would give -2)
    assert step(params(dv=4095, vth=10), 0, -4097, 0)[1] == -1
    assert step(params(dv=2048, vth=10**5), 0, 1001, 0)[1] == 500


def test_u_wraps_once_above_2_to_23():
    u, _, _ = step(params(du=4095, vth=131071), 0, 0, (1 << 17))       # 2^23: stays
    assert u == 1 << 23
    u, _, _ = step(params(du=4095, vth=131071), 0, 0, (1 << 17) + 1)   # 2^23 + 64 -> wraps
    assert u == (1 << 23) + 64 - (1 << 24)


def test_u_wraps_below_minus_2_to_23_including_the_boundary():
    u, _, _ = step(params(du=4095, vth=131071), 0, 0, -(1 << 17))      # -2^23 -> +2^23
    assert u == -(1 << 23) + (1 << 24)


def test_voltage_clips_at_plus_minus_2_to_23_minus_1():
    # vth = 2^17 (one past the 17-bit range) puts the threshold above the clip, so the
    # clipped value stays visible instead of spiking.
    p = params(du=4095, vth=1 << 17)
    assert step(p, 0, (1 << 23) - 10, 1)[1] == (1 << 23) - 1
    assert step(p, 0, -(1 << 23) + 10, -1)[1] == -(1 << 23) + 1


def test_a_clipped_voltage_spikes_at_the_largest_threshold():
    assert step(params(du=4095, vth=131071), 0, (1 << 23) - 10, 1) == (64, 0, True)


def test_spike_is_strictly_above_vth_shifted_by_6_and_resets_v_not_u():
    p = params(du=4095, vth=1)            # threshold 64
    assert step(p, 0, 0, 1) == (64, 64, False)    # v == 64: no spike
    u, v, z = step(p, 0, 1, 1)                    # v = 1 + 64 = 65 > 64
    assert (u, v, z) == (64, 0, True)


def test_bias_is_mantissa_shifted_by_exponent_each_step():
    assert step(params(bias_mant=3, bias_exp=2, vth=10), 0, 0, 0)[1] == 12
    assert step(params(bias_mant=-5, bias_exp=1, vth=10), 0, 0, 0)[1] == -10


def test_dense_shifts_the_whole_sum_with_weight_exp_floor_for_negative_exponents():
    w = sp.csr_array(np.array([[3, 3, -4]]))
    spikes = np.array([[1, 1, 0], [0, 0, 1]])
    a = MODEL.accumulate(w, {"weight_exp": -1}, spikes)
    # (3 + 3) >> 1 = 3 (per-synapse shifting would give 1 + 1 = 2); -4 >> 1 = -2
    assert a.tolist() == [[3], [-2]]
    assert MODEL.accumulate(w, {"weight_exp": 2}, spikes).tolist() == [[24], [-16]]
    w_odd = sp.csr_array(np.array([[3, -3]]))
    assert MODEL.accumulate(w_odd, {"weight_exp": -1}, np.array([[0, 1]])).tolist() == [[-2]]


def test_dense_treats_graded_inputs_as_single_spikes():
    w = sp.csr_array(np.array([[5]]))
    assert MODEL.accumulate(w, {"weight_exp": 0}, np.array([[3]])).tolist() == [[5]]


def test_stored_weights_follow_lavas_clip_and_truncation_by_sign_mode():
    vals = np.array([-300, -3, 3, 255, 300])
    assert L.stored_weights(vals, 8, L.SIGN_MIXED).tolist() == [-256, -4, 2, 254, 254]
    assert L.stored_weights(np.array([3, 300]), 8, L.SIGN_EXCITATORY).tolist() == [3, 255]
    assert L.stored_weights(np.array([-3, -300]), 8, L.SIGN_INHIBITORY).tolist() == [-3, -255]
    assert L.stored_weights(np.array([7, 12]), 6, L.SIGN_EXCITATORY).tolist() == [4, 12]


def test_sign_mode_follows_lava():
    assert L.sign_mode_of(np.array([0, 2])) == L.SIGN_EXCITATORY
    assert L.sign_mode_of(np.array([0, -2])) == L.SIGN_INHIBITORY
    assert L.sign_mode_of(np.array([1, -2])) == L.SIGN_MIXED


def _float_pop(n=2, threshold=1.0, v_reset=0.0, i_decay=0.0, v_decay=0.9, v_bias=0.0,
               i_bias=0.0, spiking=True):
    p = {k: np.full(n, float(v)) for k, v in dict(
        i_decay=i_decay, v_decay=v_decay, v_direct=0.0, v_bias=v_bias, i_bias=i_bias,
        threshold=threshold if spiking else np.inf, v_reset=v_reset).items()}
    return Population("p", (n,), p, spiking=spiking, provenance=("lif",))


def _table(w):
    return SynapseTable("in", "p", sp.csr_array(np.asarray(w, float)), delay=0)


def test_quantize_maps_threshold_to_vth_target_and_weights_to_mantissas():
    pop, (t,), row = MODEL.quantize(_float_pop(), [_table([[0.5, -0.25], [0.1, 0.0]])],
                                    {"weight_exponent_bits": 4}, "layer")
    # headroom 6 bits: vth = 2^11; s = 2048 activation units per volt
    assert pop.params["vth"].tolist() == [2048, 2048]
    assert pop.params["du"].tolist() == [4095, 4095]          # no synaptic current
    assert pop.params["dv"].tolist() == [410, 410]            # round(4096 * 0.1)
    # s*w = [1024, -512, 204.8]: mixed -> exponent 3 (1024/8 = 128 > 127 would clip at 2)
    assert t.kernel["sign_mode"] == L.SIGN_MIXED and t.delay == 1
    eff = t.weights.toarray() * 2.0 ** t.kernel["weight_exp"]
    assert np.allclose(eff / 2048, [[0.5, -0.25], [0.1, 0.0]], atol=0.01)
    assert row["weights_clipped"] == 0 and row["weight_rel_error"] < 0.02


def test_quantize_shifts_voltages_so_reset_is_zero():
    pop, _, row = MODEL.quantize(_float_pop(threshold=1.0, v_reset=-0.5, v_decay=1.0), [],
                                 {}, "layer")
    # theta = 1.5 -> vth 2048, s = 2048/1.5; v starts at +0.5 relative to reset
    assert pop.params["vth"].tolist() == [2048, 2048]
    assert pop.params["v_init"].tolist() == [round(0.5 * 2048 / 1.5 * 64)] * 2
    assert np.allclose(pop.v_offset, -0.5)


def test_quantize_rejects_a_threshold_at_or_below_the_reset():
    with pytest.raises(TargetError, match="not above the reset") as err:
        MODEL.quantize(_float_pop(threshold=0.0, v_reset=0.0), [], {}, "layer")
    assert "node 'lif'" in str(err.value)


def test_quantize_delivers_a_constant_current_into_a_synaptic_current_through_synapses():
    # (tests/test_current_bias.py follows it through the chip)
    q, tables, row = MODEL.quantize(_float_pop(i_decay=0.5, i_bias=0.1), [], {}, "layer")
    assert len(tables) == 1 and not q.params["bias_mant"].any() and not row["notes"]
    q, tables, row = MODEL.quantize(_float_pop(i_decay=0.0, i_bias=0.1), [], {}, "layer")
    assert tables == [] and q.params["bias_mant"].all() and not row["notes"]


def test_quantize_per_channel_gives_every_neuron_the_full_threshold():
    pop = _float_pop()
    pop.params["threshold"][:] = [1.0, 4.0]
    q, _, _ = MODEL.quantize(pop, [_table([[1.0, 0.0], [0.0, 1.0]])], {}, "channel")
    assert q.params["vth"].tolist() == [2048, 2048]
    q, _, _ = MODEL.quantize(pop, [_table([[1.0, 0.0], [0.0, 1.0]])], {}, "layer")
    assert q.params["vth"].tolist() == [512, 2048]
