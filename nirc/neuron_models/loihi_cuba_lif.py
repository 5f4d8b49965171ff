"""Loihi's current-based LIF neuron and bit-accurate dense synapses, as Lava defines them.

Bit-exact with Lava's ``PyLifModelBitAcc`` (lava/proc/lif/models.py) and
``PyDenseModelBitAcc`` (lava/proc/dense/models.py, lava/utils/weightutils.py).
Per neuron: du, dv (12-bit unsigned decays), vth (17-bit unsigned, compared
as vth << 6), bias_mant (13-bit signed) with bias_exp, and the initial voltage
v_init. Per table: weights (8-bit mantissa), weight_exp, num_weight_bits,
sign_mode (Lava's SignMode values: 1 mixed, 2 excitatory, 3 inhibitory).

One step, in Lava's order (states u, v are 24-bit values held in int64 here):

1. a_in = sum over tables of shift(W @ s, weight_exp) — each table shifts its
   own sum (left for weight_exp > 0, arithmetic right otherwise); spikes are
   binary (Lava casts them to bool).
2. u = trunc0(u * (4096 - (du + 1)) / 4096) + (a_in << 6), then one wrap into
   24 bits exactly as Lava does (> 2^23 subtracts 2^24, <= -2^23 adds 2^24).
3. v = clip(trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp),
   -(2^23 - 1), 2^23 - 1).
4. spike where v > vth << 6 (strict); v = 0 there; u is not reset.

Tables deliver one step late (Lava's Dense buffers its output), so
``min_delay`` is 1.

Quantization maps the generic discrete neuron of
:mod:`nirc.neuron_models.float_reference` onto these registers; see
:meth:`LoihiCubaLIF.quantize` for what is exact and what is approximated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from nirc.errors import TargetError
from nirc.hwnet import BIAS_SOURCE, Population, SynapseTable, per_neuron
from nirc.jit import njit
from nirc import spike_copies
from nirc.neuron_models.base import NeuronModel

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT          # 4096
DS_OFFSET = 1                            # Loihi adds 1 to du (current decay) ...
DM_OFFSET = 0                            # ... and 0 to dv
ACT_SHIFT = 6                            # a_in << 6 before entering u
VTH_SHIFT = 6                            # threshold compared as vth << 6
UV_BITS = 24
UV_MAX = 1 << (UV_BITS - 1)              # 2^23
V_LIMIT = UV_MAX - 1
VTH_MAX = (1 << 17) - 1
BIAS_MANT_MIN, BIAS_MANT_MAX = -(1 << 12), (1 << 12) - 1
BIAS_EXP_MAX = 7
DECAY_MAX = (1 << 12) - 1

SIGN_MIXED, SIGN_EXCITATORY, SIGN_INHIBITORY = 1, 2, 3
# A membrane held in u (quantize's choice "membrane_peak") keeps this factor above its peak.
MEMBRANE_ROOM = 1.5
# Tables up to this many entries, at least this full, are kept dense for the emulator.
DENSE_MAX_ENTRIES = 1 << 20
DENSE_MIN_FILL = 0.05
SIGN_NAMES = {SIGN_MIXED: "mixed", SIGN_EXCITATORY: "excitatory", SIGN_INHIBITORY: "inhibitory"}


# --- the arithmetic (module-level pure functions; the model object wraps them) -------------


def trunc_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """int64 x / 2^shift rounded toward zero (Lava: sign(x) * (|x| >> shift))."""
    # The arithmetic shift floors; adding 2^shift - 1 to negative values first makes it
    # round them toward zero instead (same result, fewer whole-array operations).
    return (x + ((x >> 63) & ((1 << shift) - 1))) >> shift


def decay(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """trunc0(x * keep / 4096), product in int64; keep = 4096 - (decay constant + offset)."""
    return trunc_shift(np.asarray(x, np.int64) * keep, DECAY_SHIFT)


def wrap_u(x: np.ndarray) -> np.ndarray:
    """Lava's single conditional wrap of the current into 24 bits."""
    if x.size == 0 or (x.max() <= UV_MAX and x.min() > -UV_MAX):
        return x
    wrapped = np.where(x > UV_MAX, x - 2 * UV_MAX, x)
    return np.where(wrapped <= -UV_MAX, x + 2 * UV_MAX, wrapped)


def effective_bias(bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
    mant = np.asarray(bias_mant, np.int64)
    exp = np.asarray(bias_exp, np.int64)
    if exp.size and exp.min() >= 0:
        return mant << exp
    return np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0))


def step_constants(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What lif_step derives from the parameters, for computing it once per run: the kept
    fractions of u and v (4096 - decay - offset), the effective bias, the shifted threshold."""
    return {
        "keep_u": DECAY_UNITY - (np.asarray(params["du"], np.int64) + DS_OFFSET),
        "keep_v": DECAY_UNITY - (np.asarray(params["dv"], np.int64) + DM_OFFSET),
        "bias": effective_bias(params["bias_mant"], params["bias_exp"]),
        "threshold": np.asarray(params["vth"], np.int64) << VTH_SHIFT,
    }


def lif_step(constants: Mapping[str, np.ndarray], u: np.ndarray, v: np.ndarray,
             a_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Lava bit-accurate CUBA LIF step (``constants`` from step_constants); returns
    (u, v, spikes) as new arrays."""
    u_new = decay(u, constants["keep_u"]) + (np.asarray(a_in, np.int64) << ACT_SHIFT)
    u_new = wrap_u(u_new)
    v_new = decay(v, constants["keep_v"]) + u_new
    v_new += constants["bias"]
    np.minimum(np.maximum(v_new, -V_LIMIT, out=v_new), V_LIMIT, out=v_new)
    spikes = v_new > constants["threshold"]
    v_new[spikes] = 0
    return u_new, v_new, spikes


@njit(nogil=True)
def _lif_step_rows(keep_u, keep_v, bias, threshold, u, v, a_in, u_out, v_out, spikes):
    # lif_step element by element over (B, N) rows with per-neuron (N,) constants: the same
    # integer operations in one pass (numpy's version makes ~15 passes, each a call).
    mask = (1 << DECAY_SHIFT) - 1
    for b in range(u.shape[0]):
        for n in range(u.shape[1]):
            p = u[b, n] * keep_u[n]
            x = ((p + ((p >> 63) & mask)) >> DECAY_SHIFT) + (a_in[b, n] << ACT_SHIFT)
            wrapped = x - 2 * UV_MAX if x > UV_MAX else x
            x = x + 2 * UV_MAX if wrapped <= -UV_MAX else wrapped
            u_out[b, n] = x
            p = v[b, n] * keep_v[n]
            y = ((p + ((p >> 63) & mask)) >> DECAY_SHIFT) + x + bias[n]
            y = min(max(y, -V_LIMIT), V_LIMIT)
            fired = y > threshold[n]
            spikes[b, n] = fired
            v_out[b, n] = 0 if fired else y


def lif_step_compiled(constants: Mapping[str, np.ndarray], u: np.ndarray, v: np.ndarray,
                      a_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lif_step` compiled, for (B, N) states and per-neuron (N,) constants."""
    u_out, v_out = np.empty(u.shape, np.int64), np.empty(v.shape, np.int64)
    spikes = np.empty(u.shape, np.bool_)
    _lif_step_rows(constants["keep_u"], constants["keep_v"], constants["bias"],
                   constants["threshold"], np.ascontiguousarray(u, dtype=np.int64),
                   np.ascontiguousarray(v, dtype=np.int64),
                   np.ascontiguousarray(a_in, dtype=np.int64), u_out, v_out, spikes)
    return u_out, v_out, spikes


def _compiled_fits(constants, u, v, a_in) -> bool:
    n = u.shape[-1] if u.ndim == 2 else -1
    return (u.ndim == 2 and v.shape == u.shape and np.shape(a_in) == u.shape
            and all(np.ndim(constants[k]) == 1 and np.shape(constants[k])[0] == n
                    and np.asarray(constants[k]).dtype == np.int64
                    for k in ("keep_u", "keep_v", "bias", "threshold")))


def truncation_bits(num_weight_bits: int, sign_mode: int) -> int:
    return 8 - int(num_weight_bits) + int(sign_mode == SIGN_MIXED)


def stored_weights(weights: np.ndarray, num_weight_bits: int, sign_mode: int) -> np.ndarray:
    """Lava's clip_weights(…, 8) then truncate_weights(…, num_weight_bits) on weight values."""
    w = weights.astype(np.int64)
    if sign_mode == SIGN_INHIBITORY:
        w = -w
    low = -256 if sign_mode == SIGN_MIXED else 0
    w = np.clip(w, low, 255)
    k = truncation_bits(num_weight_bits, sign_mode)
    w = (w >> k) << k
    return -w if sign_mode == SIGN_INHIBITORY else w


def shift_activation(a: np.ndarray, weight_exp: int) -> np.ndarray:
    return a << weight_exp if weight_exp > 0 else a >> -weight_exp


def sign_mode_of(values: np.ndarray) -> int:
    """Lava's determine_sign_mode on the stored values (empty counts as excitatory)."""
    if values.size == 0 or values.min() >= 0:
        return SIGN_EXCITATORY
    if values.max() <= 0:
        return SIGN_INHIBITORY
    return SIGN_MIXED


@dataclass(frozen=True)
class PreparedWeights:
    """A table as the emulator multiplies it: CSR (n_target, n_source), optional dense transpose."""

    csr: sp.csr_array
    dense_t: np.ndarray | None


# --- quantization helpers -------------------------------------------------------------------


def quantize_decay(keep: np.ndarray, offset: int) -> np.ndarray:
    """Fraction kept per step -> 12-bit register value (decay const = value + offset)."""
    return np.clip(np.rint(DECAY_UNITY * (1.0 - keep)) - offset, 0, DECAY_MAX).astype(np.int64)


def kept_fraction(register: np.ndarray, offset: int) -> np.ndarray:
    return (DECAY_UNITY - (register + offset)) / DECAY_UNITY


def quantize_bias(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron bias in v units -> (bias_mant, bias_exp): one exponent for the population (the
    smallest that fits its largest bias), as a neuron profile holds one bias exponent; smaller
    biases keep 13-bit mantissas at that exponent (the error shows in bias_rel_error)."""
    mag = np.abs(bias)
    need = np.where(mag > BIAS_MANT_MAX, np.ceil(np.log2(np.maximum(mag, 1) / BIAS_MANT_MAX)), 0)
    shared = int(np.max(need)) if need.size else 0
    exp = np.full(np.shape(bias), min(max(shared, 0), BIAS_EXP_MAX), np.int64)
    mant = np.clip(np.rint(bias / (2.0 ** exp)), BIAS_MANT_MIN, BIAS_MANT_MAX).astype(np.int64)
    return mant, exp


def quantize_table_weights(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                           shape: tuple[int, int], exp_min: int, exp_max: int
                           ) -> tuple[sp.csr_array, int, int, dict]:
    """Float weights in activation units, the parts of a CSR matrix (a matrix made only to
    be taken apart here cost a tenth of quantizing a small population) -> (8-bit mantissas,
    weight_exp, sign_mode, counts).

    ``counts["mantissas"]`` holds the mantissas aligned with ``data`` (before zeros are
    dropped from the returned matrix).

    The exponent is the smallest that fits the largest magnitude into the mantissa;
    mixed-sign tables use Lava's 8-bit mixed mode (even values in [-256, 254]).
    """
    sign_mode = sign_mode_of(data)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    limit = 254.0 if sign_mode == SIGN_MIXED else 255.0
    exp = 0 if peak == 0 else int(math.ceil(math.log2(peak / limit)))
    exp = min(max(exp, exp_min), exp_max)
    scaled = data / (2.0 ** exp)
    if sign_mode == SIGN_MIXED:
        mant = 2 * np.clip(np.rint(scaled / 2.0), -128, 127)
    elif sign_mode == SIGN_EXCITATORY:
        mant = np.clip(np.rint(scaled), 0, 255)
    else:
        mant = np.clip(np.rint(scaled), -255, 0)
    counts = {"clipped": int(np.count_nonzero(np.abs(scaled) > limit + 1)),
              "zeroed": int(np.count_nonzero((mant == 0) & (data != 0))),
              "mantissas": mant}
    out = sp.csr_array((mant.astype(np.int64), indices.copy(), indptr.copy()), shape=shape)
    out.eliminate_zeros()
    return out, exp, sign_mode, counts


def _bias_tables(current_bias: np.ndarray, pop: Population) -> list[SynapseTable]:
    """Float tables from the always-on neuron (one source neuron) carrying ``current_bias``
    into u: the positive and the negative part apart, so each keeps full 8-bit mantissas
    (quantize adds exponent-0 tables for what they round away)."""
    n = current_bias.shape[0]
    out = []
    for part in (np.maximum(current_bias, 0.0), np.minimum(current_bias, 0.0)):
        rows = np.flatnonzero(part)
        if rows.size:
            w = sp.csr_array((part[rows], (rows, np.zeros(rows.size, np.int64))), shape=(n, 1))
            out.append(SynapseTable(source=BIAS_SOURCE, target=pop.name, weights=w, delay=0,
                                    provenance=pop.provenance))
    return out


class LoihiCubaLIF(NeuronModel):
    """Loihi CUBA LIF with bit-accurate dense synapses (Lava PyLifModelBitAcc + PyDenseModelBitAcc)."""

    name = "loihi_cuba_lif"
    param_names = ("du", "dv", "vth", "bias_mant", "bias_exp", "v_init")
    state_names = ("u", "v")
    table_fields = ("weight_exp", "num_weight_bits", "sign_mode")
    readout_state = "v"
    profile_params = ("du", "dv", "vth", "bias_exp")
    min_delay = 1
    spike_delivery = ("Loihi's synapses buffer one step: every table delivers a spike one step "
                      "after it is sent")

    def firing_rules(self, pop, readout=False):
        # Lava's LIF: spike where v > vth << 6, then v = 0 (v_reset is folded into v's offset).
        # A population lowered with a subtracting reset (quantize's reset choice) says so.
        return {"reset": "zero", "spikes": "single", "max_spikes": 1, "threshold_test": ">",
                "per": "step", **(pop.firing or {})}

    def input_notice(self, values):
        # Lava's Dense (num_message_bits = 0) reads any non-zero input as one spike.
        if np.any((values != 0) & (values != 1)):
            return ("holds values other than 0 and 1; the chip's inputs are binary spikes "
                    "(non-zero counts as one spike)")
        return None

    def relay(self):
        # du = dv = 4095: u is this step's input alone (u * 0 / 4096 + a_in << 6) and v keeps
        # v / 4096, which truncates to 0 as v is only ever 0 or reset; one spike (weight 1,
        # exponent 0) makes v = 64 > vth << 6 = 0, no spike leaves v = 0.
        params = {"du": DECAY_MAX, "dv": DECAY_MAX, "vth": 0, "bias_mant": 0, "bias_exp": 0,
                  "v_init": 0}
        return params, 1, {"weight_exp": 0, "num_weight_bits": 8, "sign_mode": SIGN_EXCITATORY}

    def always_on(self):
        # No input, bias 1 > vth << 6 = 0: v = 1 fires in every step and resets to 0.
        return {"du": DECAY_MAX, "dv": DECAY_MAX, "vth": 0, "bias_mant": 1, "bias_exp": 0,
                "v_init": 0}

    def init_state(self, params, batch):
        size = params["vth"].shape[0]
        v0 = np.broadcast_to(params["v_init"].astype(np.int64), (batch, size)).copy()
        return {"u": np.zeros((batch, size), np.int64), "v": v0}

    def prepare_weights(self, table):
        """The stored weights as float64 CSR (exact: sums of 9-bit integers stay far below
        2^53), plus a dense transposed copy when the table is small and full enough for a
        matrix-vector product to win on single samples."""
        attrs = self.table_attrs(table)
        w = sp.csr_array(table.weights)
        data = stored_weights(w.data, attrs.get("num_weight_bits", 8),
                              attrs.get("sign_mode", sign_mode_of(w.data)))
        stored = sp.csr_array((data.astype(np.float64), w.indices, w.indptr), shape=w.shape)
        size = w.shape[0] * w.shape[1]
        dense = None
        if size and size <= DENSE_MAX_ENTRIES and w.nnz >= DENSE_MIN_FILL * size:
            dense = np.ascontiguousarray(stored.toarray().T)
        return PreparedWeights(stored, dense)

    def accumulate(self, weights, attrs, spikes):
        # Lava's Dense (num_message_bits = 0) treats any non-zero input as one spike.
        s = (np.asarray(spikes) != 0).astype(np.float64)
        if not isinstance(weights, PreparedWeights):
            weights = PreparedWeights(sp.csr_array(weights, dtype=np.float64), None)
        if weights.dense_t is not None and s.shape[0] == 1:
            # One sample: a BLAS matrix-vector product. (Batches stay sparse: a threaded
            # matrix-matrix product stalls on a loaded machine.)
            summed = s @ weights.dense_t
        else:
            summed = np.asarray(weights.csr @ s.T).T
        a = np.rint(summed).astype(np.int64)
        return shift_activation(a, int(attrs.get("weight_exp", 0)))

    def prepare_params(self, params):
        return {**params, **step_constants(params)}

    def step(self, params, state, a_in):
        constants = params if "keep_u" in params else step_constants(params)
        step = lif_step_compiled if _compiled_fits(constants, state["u"], state["v"], a_in) \
            else lif_step
        u, v, spikes = step(constants, state["u"], state["v"], a_in)
        state["u"] = u
        state["v"] = v
        return spikes

    # Per-population choices quantize() takes (``choice``), tried by the quantize pass's
    # fidelity search on calibration input (nirc.fidelity.search_factors); the first is the
    # default (quantize() alone defaults to "8-bit" and "zero").
    # precision: "8-bit" weights (one table each, Lava's own exponent rule: the smallest that
    # fits, so small weights get negative exponents whose shifts floor each step's sum), or
    # "16-bit" (exponents >= 0, so no table floors its sum, and each weight table followed by
    # tables of what its 8-bit mantissas rounded away), with "xK": the threshold's register
    # value times K (integer steps K times finer against the threshold; less room before u
    # wraps). Measured on the skip and residual graphs of benchmarks/bench_delay_balance.py,
    # "16-bit x4" everywhere beats 8-bit and the search's per-layer picks on a 4-sample
    # calibration, so it is the default the search starts from.
    # "8-bit rounded": one table per weight table as "8-bit", at exponents >= 0 as "16-bit"
    # (no table floors its sum; large weights keep 8 significant bits) without the refinement
    # tables, for populations whose inputs are multiplied already (copies' taps).
    PRECISION = {"16-bit x4": (True, 4), "8-bit": (False, 1), "16-bit": (True, 1),
                 "16-bit x16": (True, 16), "8-bit rounded": ("rounded", 1)}
    choices = {"precision": tuple(k for k in PRECISION if k != "8-bit rounded")}
    # reset: how a neuron trained to subtract its threshold is lowered. Lava's LIF resets v to
    # zero; a neuron without a synaptic current can hold its membrane in u instead (u is never
    # reset): du from the voltage decay, v = u each step (dv = 4095), and a table from the
    # neuron to itself subtracts the threshold one step after a spike, which is the model's
    # subtraction exactly: late as snnTorch's ("subtract late": the threshold), or in the step
    # it fires ("subtract": the threshold times the decay, which u applies to it first).
    RESETS = ("subtract", "subtract late", "zero")
    # spikes: how many spikes per step a population trained to fire several (and subtract)
    # may fire: "1" (Lava's LIF), or "c" by c copies with thresholds theta .. c * theta
    # sharing one membrane in u (nirc.spike_copies). Measured on
    # Rockpool's LIFTorch digits (float model, hidden layer limited to c spikes per step):
    # 1: 19 %, 4: 53 %, 8: 75 %, 16: 78 % (31 as trained: 76 %). Choices that would take
    # the network past spike_copies.MAX_SYNAPSES are not built (the search scores them
    # -1: a recurrent population's copies grow with c^2). "L/c": c copies standing for spike
    # levels up to L (spike_copies.LEVELS: one spike apart at first, then wider; the count
    # rounds to the nearest level and the membrane keeps the rest; an output counts each
    # copy's spikes times its level step). Same winner with Rockpool on the test digits,
    # float, readout as trained: hidden 8 uniform 86.1 %, 16: 94.7 %, "20/9" 95.7 %, "28/10"
    # 97.2 %, "31/11" 96.5 %; readout 16 with the hidden layer as trained 94.7 %, 24: 99.5 %;
    # readout "31/11" with the hidden layer at "20/9" 96.2 % (31 uniform: 95.7 %, at 3.5x the
    # synapses into it). A readout is offered the model's bound first (the copies it costs
    # are the tables into it alone): "31/11", then uniform copies.
    SPIKES = ("1", "4", "8", "16", "20/9", "28/10", "31/11")
    READOUT_SPIKES = ("1", "31/11", "31", "24", "16", "8", "4")
    # Copies multiply a population's synapses (c times out of it, c times the taps into it):
    # the search takes them only when they gain this much calibration agreement over none
    # (more copies than the first choice need the usual margin). Measured on
    # the digits models on loihi2: Rockpool LIFTorch gains 0.44 (chip 17.1 % -> 72.5 %),
    # Sinabs' IAF CNN 0.04 and nothing on the test digits (85.4 % -> 85.1 %, same winner
    # 96.7 % both, 4x the synapses).
    choice_margins = {"spikes": 0.05}
    # u_range: where a rewrite holds a membrane in u (nirc.spike_copies: copies, or a current
    # as taps), "peak" shrinks the threshold's register until the largest membrane the source
    # model reached on the calibration input fits u's 24 bits (``membrane_peak``; u wraps
    # where Lava clips v), "x1" keeps the precision's scale: a smaller threshold makes the
    # floor of every table with a negative weight exponent (Lava shifts each step's sum right)
    # weigh more against it. Measured on the digits models, loihi2 calibration agreement
    # (peak / x1): snnTorch RSynaptic, taps in the hidden layer 0.94 / 0.58 (its membrane
    # reaches 223 thresholds, u holds 64); Rockpool LIFTorch, copies 8 and 16: 0.73 / 0.81,
    # and offered both, the search's path locks "peak" in on one copy by noise (0.805): it is
    # offered where the model fires one spike per step (without the knob: "x1").
    U_RANGES = ("peak", "x1")
    TooCostly = spike_copies.TooCostly

    def choice_options(self, pop: Population, convention=None,
                       max_delay: int | None = None, readout: bool = False
                       ) -> dict[str, tuple]:
        """The choices worth trying for ``pop`` under the trained ``convention``: ``choices``,
        and a subtracting reset first where the model subtracts and ``pop`` can hold it; only
        the defaults where the model subtracts and ``pop`` cannot; a subtracting reset after
        the chip's own where ``pop`` has a synaptic current that at most ``max_delay`` taps
        can hold (nirc.spike_copies with one copy); and ``spikes`` (copies) where the model
        fires several spikes per step, subtracts, and ``pop`` can share its membrane between
        copies (an output read from it counts all their spikes: ``readout`` offers uniform
        copies only, up to the model's bound)."""
        options = dict(self.choices)
        if convention is None or convention.reset != "subtract":
            return options
        subtract = "subtract late" if convention.reset_delay else "subtract"
        multi = {}
        held = spike_copies.eligible(pop, max_delay) is None
        if convention.spikes == "multi" and not convention.reset_delay and held:
            bound = convention.spike_limit
            multi = {"spikes": tuple(
                c for c in (self.READOUT_SPIKES if readout else self.SPIKES)
                if bound is None or spike_copies.levels(c)[-1] <= bound)}
        if self.subtract_eligible(pop) is None:
            options["reset"] = (subtract, "zero")
            return {**options, **multi}
        # The chip resets to zero where the model subtracts: its agreement then measures that
        # gap, not the rounding, and a precision chosen by it fits the calibration set's noise
        # (measured on snnTorch RSynaptic digits, same winner with snnTorch on the test digits:
        # 8-bit 75.8 %, 16-bit 76.3 %, 16-bit x4 71.5 %): Lava's own rule. A current held as
        # taps (one copy: nirc.spike_copies) subtracts as trained, first where the taps hold the
        # current to spike_copies.TAIL, after the chip's own rule where the target's delays cut
        # them short (then it must gain its margin, choice_margins_of). Measured on the same
        # model, loihi2 (44 taps, synapses 5.3k -> 234k): same winner 95.0 % with the hidden
        # layer subtracting, 96.5 % with both (the output layer's calibration agreement is
        # 0.0014 lower subtracting: noise, below the search's margin).
        reset = {}
        if held and np.any(np.asarray(pop.params["i_decay"]) != 0):
            reset = {"reset": (subtract, "zero") if self._taps_hold(pop, max_delay)
                     else ("zero", subtract), **({} if multi else {"u_range": self.U_RANGES})}
        # Copies multiply the tables into a population (c copies of each tap), and every 8-bit
        # table with a negative exponent floors its step's sum: summed over them the floors
        # bias the membrane down (Rockpool's digits, hidden layer at 9 copies x 7 taps: 0.88x
        # the model's spikes at 8 bits, 0.98x at 16 bits, whose exponents are >= 0). Without
        # the floors a smaller threshold register costs only resolution, and u must hold the
        # membrane the model reached (Rockpool's hidden layer: -215 thresholds on the test
        # digits, readout -286; u holds 64 at the default scale and wraps beyond): where
        # copies are offered, "8-bit rounded" (exponents >= 0 without 16 bits' refinement
        # tables, which took SpiNNaker-2 past its synapse memory) and "peak" come first.
        # Test digits, copies 28/10 and 31/11 at the population's scale, same winner: 8-bit
        # rounded 93.5 %, 16-bit 94.7 % (copies 20/9 and 31 at their own scales: 8-bit
        # 87.4 %, 16-bit 90.9 %, 16-bit with "peak" 93.5 %).
        if multi:
            return {"precision": ("8-bit rounded", "16-bit", "8-bit"), **reset, **multi,
                    "u_range": self.U_RANGES}
        return {"precision": ("8-bit",), **reset, **multi}

    @staticmethod
    def _taps_hold(pop: Population, max_delay: int | None) -> bool:
        """Whether taps within ``max_delay`` hold ``pop``'s current to spike_copies.TAIL."""
        a = spike_copies.current_decay(pop)
        needed = spike_copies.taps_needed(a)
        return needed is not None and spike_copies.taps(a, max_delay) >= needed

    def choice_margins_of(self, pop: Population, options: Mapping[str, tuple]
                          ) -> dict[str, float]:
        """``choice_margins`` for ``pop`` offered ``options``: leaving a zero reset for taps
        costs synapses (its input tables times the taps), as copies do."""
        if options.get("reset", ("",))[0] == "zero" and pop.spiking \
                and np.any(np.asarray(pop.params["i_decay"]) != 0):
            return {**self.choice_margins, "reset": self.choice_margins["spikes"]}
        return dict(self.choice_margins)

    @staticmethod
    def subtract_cost(pop: Population, max_delay: int | None = None) -> str:
        """What a subtracting reset costs ``pop`` beyond its table onto itself (for a note):
        its current's taps and their tail, or nothing."""
        if not np.any(np.asarray(pop.params["i_decay"]) != 0):
            return ""
        a = spike_copies.current_decay(pop)
        d = spike_copies.taps(a, max_delay)
        return (f"; its current as {d} taps of every input table, "
                f"{100 * spike_copies.tail(a, d):.2g} % of it at the last one")

    def choice_notes(self, pop: Population, convention=None,
                     max_delay: int | None = None) -> list[str]:
        """Why a subtracting reset the model was trained with is not offered for ``pop``
        (report rows' notes), where the reason is the target's (its delays)."""
        if convention is None or convention.reset != "subtract" or not pop.spiking \
                or self.subtract_eligible(pop) is None \
                or not np.any(np.asarray(pop.params["i_decay"]) != 0):
            return []
        why = spike_copies.eligible(pop, max_delay)
        return [] if why is None else [f"the reset stays zero where the model subtracts: {why}"]

    def expand(self, net, choices: Mapping[str, Mapping], max_delay: int | None = None):
        """The float network with the populations whose ``spikes`` choice is above 1 fired by
        copies, and those with a synaptic current whose ``reset`` subtracts holding their
        membrane in u with one copy (nirc.spike_copies; the current as at most ``max_delay``
        taps), and the choices every population is quantized with: the membrane in u, reset
        by the tables ``expand`` adds (``current_taps``: the taps' count, their tail and the
        synapses into the population before and after, for the report). Returns (network,
        choices, {population: its copies, itself first})."""
        counts, late = {}, set()
        for name, c in choices.items():
            pop = net.populations.get(name)
            k = c.get("spikes", "1")
            reset = c.get("reset", "zero")
            if pop is not None and (len(spike_copies.levels(k)) > 1 or (
                    reset != "zero" and pop.spiking and np.any(
                        np.asarray(pop.params["i_decay"]) != 0))):
                counts[name] = k
                if reset == "subtract late":
                    late.add(name)
        if not counts:
            return net, dict(choices), {}
        expanded, groups = spike_copies.expand(net, counts, spike_copies.MAX_SYNAPSES,
                                               late=late, max_taps=max_delay)
        out = dict(choices)
        for name, members in groups.items():
            pop = net.populations[name]
            a = spike_copies.current_decay(pop)
            d = spike_copies.taps(a, max_delay)
            taps = {"taps": d, "taps_needed": spike_copies.taps_needed(a),
                    "tail": round(spike_copies.tail(a, d), 6),
                    "synapses_in": [sum(t.nnz for t in net.tables if t.target == name),
                                    sum(t.nnz for t in expanded.tables if t.target in members)]}
            weighs = spike_copies.weights(counts[name])
            at = spike_copies.thresholds(counts[name])
            for j, member in enumerate(members, start=1):
                out[member] = {**choices[name], "copy_weight": weighs[j - 1],
                               "threshold_factor": at[j - 1], "threshold_factor_top": at[-1],
                               "reset": "subtract late" if name in late else "subtract",
                               "reset_tables": "given", "copy": j,
                               "spikes": str(choices[name].get("spikes", "1")),
                               **({"current_taps": taps} if a != 0 and j == 1 else {})}
        return expanded, out, groups

    @staticmethod
    def subtract_eligible(pop: Population) -> str | None:
        """None when ``pop`` can hold a subtracting reset (membrane in u), else why not."""
        p = pop.params
        if not pop.spiking:
            return "it does not spike"
        if np.any(np.asarray(p["i_decay"]) != 0):
            return "it has a synaptic current (u holds it)"
        if np.any(np.asarray(p.get("v_direct", 0.0)) != 0) or np.any(np.asarray(p["v_reset"]) != 0):
            return "its reset voltage is not 0"
        if np.any(np.asarray(p["v_decay"]) <= 0):
            return "its voltage does not persist from one step to the next"
        return None

    def quantize(self, pop, tables, formats, granularity, choice=None):
        """Generic discrete neuron (float) -> Loihi registers.

        Exact: v_leak (a bias), v_reset != 0 (voltages are shifted so the reset is
        0: threshold - v_reset, initial v = -v_reset, readouts add v_reset back),
        r and w_in (folded into weights before this), IF (dv = 0), LIF without
        synaptic current (du = 4095 makes u this step's input). Approximated and
        reported: decays not a multiple of 1/4096, weights to 8-bit mantissas
        with one exponent per table, threshold and bias rounding, voltage decay to
        zero in one step (dv max 4095). A constant input current into a neuron with
        a synaptic current must ramp up with that current: it is returned as extra
        tables (after the given ones) from :data:`~nirc.hwnet.BIAS_SOURCE`, the
        always-on neuron's one spike per step weighted by the bias, rounded to
        8-bit mantissas like any table (``current_bias_rel_error``).

        ``choice`` (keys of :attr:`choices`): at 16 bits, every weight table is followed
        by up to two refinement tables (one per sign, kernel ``refines``: the index of the
        table in ``tables`` they refine, returned after the given tables and before the
        constant-current ones) holding what its mantissas rounded away, at the exponent that
        fits it; "xK" multiplies the threshold's register value by K (and so every weight and
        state: the integer steps shrink against the threshold; u and v come closer to 24 bits).
        """
        choice = dict(choice or {})
        if choice.get("precision", "8-bit") not in self.PRECISION:
            raise ValueError(f"precision must be one of {', '.join(self.PRECISION)}")
        refine, state_scale = self.PRECISION[choice.get("precision", "8-bit")]
        unfloored = bool(refine)        # (exponents >= 0: no table floors its sum)
        refine = refine is True
        reset = choice.get("reset", "zero")
        levels = spike_copies.levels(choice.get("spikes", "1"))
        copies = len(levels)
        if copies > 1 and choice.get("reset_tables") != "given":
            raise ValueError(f"population '{pop.name}': spikes {copies} needs the network "
                             f"expanded into copies first (LoihiCubaLIF.expand)")
        if reset not in self.RESETS:
            raise ValueError(f"reset must be one of {', '.join(self.RESETS)}")
        if reset != "zero":
            why = self.subtract_eligible(pop)
            if why is not None:
                raise ValueError(f"population '{pop.name}' cannot subtract its threshold on "
                                 f"Loihi: {why}")
            # The membrane moves to the current: i = v_decay * i + a + biases, v = i.
            p = {**pop.params, "i_decay": pop.params["v_decay"],
                 "v_decay": np.zeros(np.shape(pop.params["v_decay"])),
                 "i_bias": np.asarray(pop.params["i_bias"]) + np.asarray(pop.params["v_bias"]),
                 "v_bias": np.zeros(np.shape(pop.params["v_bias"]))}
            pop = pop.with_(params=p)
        notes: list[str] = []
        p = pop.params
        n = pop.size
        i_decay = per_neuron(p["i_decay"], n)
        v_decay = per_neuron(p["v_decay"], n)
        v_bias = per_neuron(p["v_bias"], n)
        i_bias = per_neuron(p["i_bias"], n)
        threshold = per_neuron(p["threshold"], n)
        v_reset = per_neuron(p["v_reset"], n)
        where = pop.provenance[-1] if pop.provenance else pop.name
        headroom = int(formats.get("headroom_bits", 6))
        exp_bits = int(formats.get("weight_exponent_bits") or 4)
        exp_min = int(formats.get("weight_exp_min", -(1 << (exp_bits - 1))))
        exp_max = int(formats.get("weight_exp_max", (1 << (exp_bits - 1)) - 1))
        vth_target = min(float(1 << (17 - headroom)) * state_scale, float(VTH_MAX))
        # Copies (nirc.spike_copies) hold one membrane in u each: all of them share the scale
        # of the population's own threshold (a copy's is ``threshold_factor`` times it, the
        # highest ``threshold_factor_top``), so a high copy's membrane is as fine as the first
        # one's (scaled by its own threshold, copy 11 of Rockpool's readout held the
        # threshold in 13 units under a peak-sized u) and its register still fits.
        factor = float(choice.get("threshold_factor", 1.0))
        top = float(choice.get("threshold_factor_top", factor))
        vth_target = min(vth_target, float(VTH_MAX) / top)
        peak = choice.get("membrane_peak")
        if peak and choice.get("reset_tables") == "given" and pop.spiking \
                and choice.get("u_range") == "peak":
            # A membrane held in u by the rewrite (nirc.spike_copies) wraps at 24 bits where
            # Lava clips v: its threshold shrinks until the largest membrane the source model
            # reached on the calibration input (``membrane_peak``, in thresholds) fits with
            # MEMBRANE_ROOM to spare (snnTorch's late reset lets it reach 70 thresholds).
            fits = UV_MAX / ((1 << ACT_SHIFT) * max(float(peak), top) * MEMBRANE_ROOM)
            if fits < vth_target:
                vth_target = max(fits, 1.0)
                notes.append(f"threshold register scaled to {int(vth_target)} so that the "
                             f"membrane held in u reaches {float(peak):.3g} thresholds (the "
                             f"source model's largest on the calibration input) without "
                             f"wrapping")

        if np.any(np.broadcast_to(p.get("v_direct", 0.0), (n,)) != 0):
            notes.append("the direct input-to-voltage term of the exact discretisation of a "
                         "current-based neuron is dropped (Loihi's input reaches v only "
                         "through u)")
        # A constant input into a neuron without a synaptic current is a voltage bias (u is
        # this step's input alone). Into a synaptic current it must ramp up as u does, which a
        # voltage bias (Loihi's only bias) cannot: it arrives as synapses from an always-on
        # neuron instead (current_bias, quantized with the tables below). The part that
        # reaches v directly (v_direct) is constant either way: a voltage bias.
        current_bias = np.where(i_decay != 0, i_bias, 0.0)
        v_bias = v_bias + np.where(i_decay == 0, i_bias, 0.0) \
            + np.broadcast_to(p.get("v_direct", 0.0), (n,)) * i_bias

        if pop.spiking:
            theta = threshold - v_reset
            if np.any(theta <= 0):
                raise TargetError(f"threshold {threshold[theta <= 0][0]:g} is not above the "
                                  f"reset voltage {v_reset[theta <= 0][0]:g}; Loihi cannot fire "
                                  f"from reset", node=where, field="v_threshold")
            v_bias = v_bias - (1.0 - v_decay) * v_reset
            v_offset = v_reset.copy()
            reference = theta / factor
        else:
            v_offset = np.zeros(n)
            # Non-spiking readouts scale by the largest one-step input so v stays far from
            # the (maximal, unreachable) threshold.
            row_abs = np.abs(i_bias) + np.abs(v_bias)
            for t in tables:
                row_abs = row_abs + np.asarray(abs(t.weights).sum(axis=1)).ravel()
            reference = np.where(row_abs > 0, row_abs, 1.0)
        if granularity == "channel":
            s = vth_target / reference
        else:
            s = np.full(n, vth_target / float(np.max(reference)))

        vth = np.full(n, VTH_MAX, np.int64)
        thr_err = 0.0
        if pop.spiking:
            vth = np.clip(np.rint(s * theta), 0, VTH_MAX).astype(np.int64)
            thr_err = float(np.max(np.abs(vth / s - theta) / theta))

        du = quantize_decay(i_decay, DS_OFFSET)
        dv = quantize_decay(v_decay, DM_OFFSET)
        if copies > 1 and int(choice.get("copy", 1)) == 1:
            if levels[-1] == copies:
                notes.append(f"fired by {copies} copies with thresholds 1 to {copies} times its "
                             f"own (up to {copies} spikes per step; the others are named "
                             f"'{pop.name}.spike<j>'), sharing the membrane in u; a synaptic "
                             f"current arrives as delayed copies of the input tables")
            else:
                notes.append(f"fired by {copies} copies standing for spike levels "
                             f"{', '.join(map(str, levels))} per step (copy j's spike weighs "
                             f"T_j - T_(j-1) spikes in every table out of it and in its reset; "
                             f"the others are named '{pop.name}.spike<j>'): counts between "
                             f"levels go out as the nearest level and the membrane in u keeps "
                             f"the rest; a synaptic current arrives as delayed copies of the "
                             f"input tables")
        if reset != "zero":
            notes.append(f"reset by subtraction ({reset}): the membrane is held in u (du from "
                         f"the voltage decay), v copies it (dv = 4095), a table from the "
                         f"population to itself subtracts the threshold a step after a spike")
        current_taps = choice.get("current_taps")
        if current_taps:
            notes.append(
                f"its synaptic current arrives as {current_taps['taps']} delayed copies of each "
                f"input table (synapses into it {current_taps['synapses_in'][0]} -> "
                f"{current_taps['synapses_in'][1]}); {100 * current_taps['tail']:.2g} % of the "
                f"current's impulse response arrives at the last tap instead of later"
                + ("" if current_taps["taps_needed"] is None or current_taps["taps"]
                   >= current_taps["taps_needed"] else
                   f" (the target's delays hold {current_taps['taps']} taps, "
                   f"{current_taps['taps_needed']} would leave {100 * spike_copies.TAIL:.0f} %)"))
        elif np.any(v_decay < kept_fraction(np.full(n, DECAY_MAX), DM_OFFSET) - 1e-12):
            notes.append("voltage decays faster than Loihi's fastest (dv = 4095 keeps 1/4096)")
        v_scale = s * (1 << ACT_SHIFT)
        bias_mant, bias_exp = quantize_bias(v_scale * v_bias)
        bias_q = effective_bias(bias_mant, bias_exp) / v_scale
        v_init = np.rint(-v_offset * v_scale).astype(np.int64)
        if np.any(np.abs(v_init) > V_LIMIT):
            raise TargetError(f"initial voltage {-v_offset.max():g} does not fit Loihi's 24-bit "
                              f"voltage at this scale", node=where, field="v_reset")

        new_tables: list[SynapseTable] = []
        err_num = err_den = 0.0
        clipped = zeroed = 0
        worst_input = np.zeros(n)
        bias_tables = _bias_tables(current_bias, pop)
        bias_err = np.zeros(n)
        reset_tables = []
        if reset != "zero" and choice.get("reset_tables") != "given":
            # -threshold (late) or -threshold * decay (in the step): see RESETS.
            amount = threshold * (1.0 if reset == "subtract late" else i_decay)
            reset_tables.append(SynapseTable(
                source=pop.name, target=pop.name, delay=1, provenance=pop.provenance,
                weights=sp.csr_array(sp.diags(-amount).tocsr()), kernel={"self_reset": True}))
        work = [*tables, *reset_tables, *bias_tables]
        refined: list[SynapseTable] = []
        final_diff: dict[int, np.ndarray] = {}      # per weight table: what all its parts miss
        given: dict[int, tuple[np.ndarray, np.ndarray]] = {}     # its float data, row scales
        for position, t in enumerate(work):
            is_bias = t.source == BIAS_SOURCE
            refines = (t.kernel or {}).get("refines")
            is_reset = bool((t.kernel or {}).get("self_reset"))
            w = sp.csr_array(t.weights, dtype=np.float64)
            w.sort_indices()
            row_scale = np.repeat(s, np.diff(w.indptr))
            # A bias table carries one spike: a negative exponent would floor its mantissa
            # away, so its finest step is one unit of a_in (exponent 0).
            mant, exp, sign_mode, counts = quantize_table_weights(
                w.data * row_scale, w.indices, w.indptr, w.shape,
                max(exp_min, 0) if is_bias or unfloored else exp_min, exp_max)
            clipped += counts["clipped"]
            diff = counts.pop("mantissas") * 2.0 ** exp / row_scale - w.data
            if is_bias:
                rows = np.repeat(np.arange(n), np.diff(w.indptr))
                residual = bool((t.kernel or {}).get("residual"))
                # (a residual table's error is what both tables together still miss)
                bias_err[rows] = diff if residual else bias_err[rows] + diff
                if exp > 0 and not residual:
                    # What the 8-bit mantissa at this exponent missed (under 2^(exp-1) units)
                    # comes in exponent-0 tables of its own, one per sign: one unit of a_in.
                    for part in (np.maximum(-diff, 0.0), np.minimum(-diff, 0.0)):
                        keep = np.abs(part * row_scale) >= 0.5
                        if keep.any():
                            work.append(t.with_(
                                weights=sp.csr_array((part[keep], (rows[keep],
                                                      np.zeros(keep.sum(), np.int64))),
                                                     shape=w.shape),
                                kernel={"residual": True}))
            elif is_reset:
                pass        # not a weight of the model: its error is not the weights'
            elif refines is not None:
                # (same sparsity as the table it refines: its error shrinks by this part)
                final_diff[refines] = final_diff[refines] + diff + w.data
            else:
                final_diff[position] = diff
                given[position] = (w.data, row_scale)
                err_den += float(np.sum(w.data ** 2))
                if refine:
                    # The rounding error in target units, each sign in a table of its own (8-bit
                    # magnitudes at the exponent that fits it), on the table's own sparsity.
                    for part in (np.maximum(-diff, 0.0), np.minimum(-diff, 0.0)):
                        if np.any(np.abs(part * row_scale) >= 0.5 * 2.0 ** max(exp_min, 0)):
                            work.append(t.with_(
                                weights=sp.csr_array((part, w.indices, w.indptr), shape=w.shape),
                                kernel={**(t.kernel or {}), "refines": position}))
            # Row sums of the mantissas' magnitudes (integers: exact in float64), without
            # building a sparse |mant| (a tenth of quantize on many small populations).
            worst_input += np.bincount(np.repeat(np.arange(n), np.diff(mant.indptr)),
                                       weights=np.abs(mant.data), minlength=n) * 2.0 ** exp
            kernel = dict(t.kernel or {})
            kernel.pop("ops", None)
            kernel.pop("residual", None)
            if not is_reset:
                kernel.pop("self_reset", None)
            kernel.update(weight_exp=int(exp), num_weight_bits=8, sign_mode=int(sign_mode))
            # A tap of a current held as delayed copies of a table (nirc.spike_copies) keeps
            # its delay after the first tap's.
            tap = int(kernel.pop("tap", 0))
            quantized = t.with_(weights=mant, exponent=int(exp), kernel=kernel,
                                delay=max(int(t.delay) - tap, self.min_delay) + tap)
            (refined if refines is not None else new_tables).append(quantized)
        for position, diff in final_diff.items():
            err_num += float(np.sum(diff ** 2))
            data, scale_rows = given[position]
            # A weight is lost when what all its tables deliver rounds to nothing.
            zeroed += int(np.count_nonzero((data != 0) & (np.abs((diff + data) * scale_rows)
                                                            < 2.0 ** (exp_min - 1))))
        # Weight tables, then their refinements (kernel "refines": index among the given
        # tables), then the constant-current tables (quantize passes tell them by source).
        n_given = len(tables)
        new_tables = [*new_tables[:n_given], *refined, *new_tables[n_given:]]
        if clipped:
            notes.append(f"{clipped} weights clipped at the largest weight exponent {exp_max}")
        if zeroed:
            notes.append(f"{zeroed} non-zero weights rounded to 0 by the 8-bit mantissa")
        worst_u = worst_input * (1 << ACT_SHIFT) / np.maximum(1.0 - i_decay, 1.0 / DECAY_UNITY)
        if np.any(worst_u > UV_MAX):
            notes.append(f"the current u can wrap at 24 bits if enough inputs spike together "
                         f"(worst case {worst_u.max() / UV_MAX:.3g} x 2^23)")
        if np.any(worst_input >= 1 << 15):
            notes.append(f"worst-case input per step {int(worst_input.max())} exceeds 16 bits "
                         f"(Lava's activation port)")
        if np.any(np.abs(effective_bias(bias_mant, bias_exp) - v_scale * v_bias)
                  > 2.0 ** bias_exp):
            notes.append("bias clipped to 13-bit mantissa with exponent 7")

        params = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant,
                  "bias_exp": bias_exp, "v_init": v_init}
        new_pop = Population(name=pop.name, shape=pop.shape, params=params, spiking=pop.spiking,
                             provenance=pop.provenance, v_scale=v_scale, v_offset=v_offset,
                             firing={"reset": "subtract", "reset_delay": reset == "subtract late",
                                     **({"spikes": "multi", "max_spikes": levels[-1]}
                                        if copies > 1 else {}),
                                     **({"spike_levels": list(levels)}
                                        if levels[-1] != copies else {})}
                             if reset != "zero" else None)
        bias_ref = np.maximum(np.abs(v_bias), 1e-300)
        current_ref = np.maximum(np.abs(current_bias), 1e-300)
        report = {
            "population": pop.name,
            "nodes": list(pop.provenance),
            "granularity": granularity,
            "v_scale": float(np.min(v_scale)),
            "weight_rel_error": math.sqrt(err_num / err_den) if err_den > 0 else 0.0,
            "weights_clipped": clipped,
            "weights_zeroed": zeroed,
            "threshold_rel_error": thr_err,
            "i_decay_abs_error": float(np.max(np.abs(kept_fraction(du, DS_OFFSET) - i_decay))),
            "v_decay_abs_error": float(np.max(np.abs(kept_fraction(dv, DM_OFFSET) - v_decay))),
            "bias_rel_error": float(np.max(np.where(v_bias != 0,
                                                    np.abs(bias_q - v_bias) / bias_ref, 0.0),
                                           initial=0.0)),
            # Constant input currents delivered by the always-on neuron's synapses.
            "current_bias_neurons": int(np.count_nonzero(current_bias)),
            "current_bias_rel_error": float(np.max(np.where(
                current_bias != 0, np.abs(bias_err) / current_ref, 0.0), initial=0.0)),
            "notes": notes,
            **({"current_taps": dict(current_taps)} if current_taps else {}),
        }
        return new_pop, new_tables, report


MODEL = LoihiCubaLIF()
