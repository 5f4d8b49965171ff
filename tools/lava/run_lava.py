"""Run an emitted nirc Loihi deployment on Intel Lava's bit-accurate CPU models.

This is the Lava side of the Loihi oracle. It is executed by the Lava venv's
Python 3.10 (built by tools/lava/setup_venv.sh) and imports only numpy and
lava, never nirc: what it checks is the emitted deployment config on disk,
read independently of the compiler that wrote it.

    .venv-lava/bin/python tools/lava/run_lava.py BUILD_DIR --input IN.npz --output OUT.npz
        [--steps T] [--record states|spikes] [--synapses auto|dense|sparse]

The network becomes Lava processes run with ``Loihi2SimCfg(select_tag="fixed_pt")``:
- each input port: ``lava.proc.io.source.RingBuffer`` (column k is sent at step k);
- each neuron profile of each population (config.json's ``profiles``: the du,
  dv, vth and bias_exp its neurons share; a population without them is grouped
  by its distinct values here): one ``LIF`` process (``PyLifModelBitAcc``)
  with scalar du, dv, vth and bias_exp, as the chip's profiles and Lava's
  LIF declare them; bias_mant and v stay per-neuron Vars;
- each synapse table and each profile of its target: one ``Dense`` process
  (``PyDenseModelBitAcc``) holding the table's rows of that profile's neurons
  (each row's sum is shifted on its own, so cutting rows changes nothing), with
  the table's weight_exp, num_weight_bits and sign_mode unchanged. Its input is
  the one LIF process of the source's profile: nirc's neuron_profiles pass
  gives every table one source profile (a floor shift of a sum is not the sum
  of floor shifts, so one table cannot be read from several processes), and a
  table reading several profiles is refused. Or,
  for tables too large to hold as a dense matrix (``--synapses``), a
  ``Sparse`` process (``PySparseModelBitAcc``: the same clip, truncation,
  sum and shift, on a CSR matrix); a table with a delay of d > 1 steps
  becomes a ``DelayDense`` (``PyDelayDenseModelBitAcc``) with delays d - 1;
- one ``Monitor`` per recorded quantity (s_out, u, v) per LIF process.

Files are laid out as for `nirc emulate --record`, so the two outputs compare
array by array: IN.npz holds ``input`` (one input port) or ``input_<name>``
per port, each (T, *shape), non-zero meaning a spike; OUT.npz gets
``spikes_<population>`` for spiking populations and, with ``--record states``
(the default), ``u_<population>`` and ``v_<population>`` for every population,
each (T, *shape) int32, row k = after step k.
A one-line JSON with the timings (seconds spent building and running) goes to stdout.
Timing alignment with nirc's emulator is documented in docs/oracles.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

CONFIG_NAME = "config.json"
CONFIG_FORMAT = "nirc-deployment-config"
SCHEMA_VERSIONS = (1,)
LIF_MODEL = "loihi_cuba_lif"
# DelayDense holds delays in 6 bits (0..63) on top of the one step every Dense takes.
MAX_DELAY = 64


class DeploymentError(Exception):
    """The build directory or the input file is not something this runner can run."""


@dataclass(frozen=True)
class PopulationSpec:
    """One population of Loihi CUBA LIF neurons, every parameter an int array of shape (size,)."""

    name: str
    shape: tuple[int, ...]
    size: int
    spiking: bool
    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    v_init: np.ndarray
    profile: np.ndarray          # per neuron, its index into ``profiles``
    profiles: tuple[dict, ...]   # per profile: du, dv, vth, bias_exp shared by its neurons

    def members(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.profile == k)


@dataclass(frozen=True)
class ConnectionSpec:
    """One synapse table in Lava's Dense/Sparse units, as COO arrays of a (target size, source size) matrix."""

    source: str
    target: str
    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    weight_exp: int
    num_weight_bits: int
    sign_mode: object  # lava.utils.weightutils.SignMode
    delay: int


@dataclass(frozen=True)
class NetworkSpec:
    inputs: dict[str, tuple[int, ...]]
    populations: dict[str, PopulationSpec]
    connections: list[ConnectionSpec]


# --------------------------------------------------------------------------- reading the build


def load_network(build_dir: Path) -> NetworkSpec:
    """Read config.json and its NPZ arrays into plain numpy specs (see docs/config-format.md)."""
    config_path = build_dir / CONFIG_NAME
    try:
        return _load_network(build_dir, config_path)
    except KeyError as err:
        raise DeploymentError(f"{config_path}: missing field or array {err}")


def _load_network(build_dir: Path, config_path: Path) -> NetworkSpec:
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise DeploymentError(f"{config_path}: no such file (is {build_dir} a nirc build directory?)")
    except json.JSONDecodeError as err:
        raise DeploymentError(f"{config_path}: not JSON: {err}")
    if config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT or \
            config.get("schema_version", 1) not in SCHEMA_VERSIONS:
        raise DeploymentError(f"{config_path}: format {config.get('format')!r} version "
                              f"{config.get('schema_version')!r}; this runner reads {CONFIG_FORMAT!r} "
                              f"version {', '.join(map(str, SCHEMA_VERSIONS))}")
    model = config.get("neuron_model")
    if model != LIF_MODEL:
        raise DeploymentError(f"{config_path}: neuron_model is {model!r}; Lava runs only {LIF_MODEL!r}")
    arrays = _ArrayStore(build_dir, config_path)

    inputs = {port["name"]: tuple(port["shape"]) for port in config["inputs"]}
    populations = {}
    for pop in config["populations"]:
        size = int(np.prod(pop["shape"]))
        params = {key: arrays.param(pop, key, size) for key in
                  ("du", "dv", "vth", "bias_mant", "bias_exp", "v_init")}
        profile, profiles = _profiles(pop, params, arrays, size, config_path)
        populations[pop["name"]] = PopulationSpec(name=pop["name"], shape=tuple(pop["shape"]), size=size,
                                                  spiking=bool(pop.get("spiking", True)),
                                                  profile=profile, profiles=profiles, **params)

    connections = []
    sizes = {**{name: int(np.prod(shape)) for name, shape in inputs.items()},
             **{name: p.size for name, p in populations.items()}}
    for table in config["tables"]:
        rows, cols, values = (arrays.get(table["weights"][k]).astype(np.int64) for k in ("row", "col", "value"))
        connections.append(ConnectionSpec(
            source=table["source"], target=table["target"],
            shape=(sizes[table["target"]], sizes[table["source"]]), rows=rows, cols=cols, values=values,
            weight_exp=int(table["weight_exp"]), num_weight_bits=int(table["num_weight_bits"]),
            sign_mode=_sign_mode(table["sign_mode"]), delay=int(table.get("delay", 1))))
        if not 1 <= connections[-1].delay <= MAX_DELAY:
            raise DeploymentError(
                f"{config_path}: table {table['source']}->{table['target']} has delay "
                f"{connections[-1].delay}; Lava's Dense delivers after 1 step and its DelayDense "
                f"after 1 to {MAX_DELAY}")
    return NetworkSpec(inputs=inputs, populations=populations, connections=connections)


PROFILE_PARAMS = ("du", "dv", "vth", "bias_exp")


def _profiles(pop: dict, params: dict, arrays: "_ArrayStore", size: int, config_path: Path):
    """(per-neuron profile index, profiles): the config's, checked against the per-neuron
    values, or, for a build that lists none, one profile per distinct combination."""
    keys = np.stack([params[k] for k in PROFILE_PARAMS], axis=1)
    if "profiles" not in pop:
        values, index = np.unique(keys, axis=0, return_inverse=True)
        return index.ravel(), tuple({k: int(v[i]) for i, k in enumerate(PROFILE_PARAMS)} for v in values)
    profiles = tuple(pop["profiles"])
    value = pop["profile"]
    index = np.broadcast_to(arrays.get(value) if isinstance(value, str) else np.asarray(value),
                            (size,)).astype(np.int64)
    want = np.array([[p[k] for k in PROFILE_PARAMS] for p in profiles], dtype=np.int64)[index]
    bad = np.flatnonzero(np.any(want != keys, axis=1))
    if bad.size:
        raise DeploymentError(f"{config_path}: population {pop['name']}: neuron {bad[0]}'s parameters "
                              f"differ from its profile {int(index[bad[0]])}")
    return index, profiles


class _ArrayStore:
    """Resolves the config's references to arrays in the build directory's NPZ files."""

    def __init__(self, build_dir: Path, config_path: Path):
        self.build_dir = build_dir
        self.config_path = config_path
        self._files: dict[str, np.lib.npyio.NpzFile] = {}

    def get(self, ref: str) -> np.ndarray:
        file_name, _, key = ref.partition(":")
        if file_name not in self._files:
            self._files[file_name] = np.load(self.build_dir / file_name)
        return self._files[file_name][key]

    def param(self, pop: dict, key: str, size: int) -> np.ndarray:
        value = pop["params"][key]
        array = self.get(value) if isinstance(value, str) else np.asarray(value)
        return np.broadcast_to(array, (size,)).astype(np.int64)


def _sign_mode(value):
    """The SignMode member itself: Lava compares with ``==`` against members, so a bare int would not match."""
    from lava.utils.weightutils import SignMode

    if isinstance(value, str):
        return SignMode[value.upper()]
    return SignMode(int(value))


# --------------------------------------------------------------------------- building and running


def _lif_process(pop: PopulationSpec, k: int, lif_cls):
    """The LIF process of profile k: scalar du, dv, vth, bias_exp; per-neuron bias_mant and v."""
    members = pop.members(k)
    shared = pop.profiles[k]
    return lif_cls(
        shape=(members.size,), du=int(shared["du"]), dv=int(shared["dv"]), vth=int(shared["vth"]),
        bias_mant=pop.bias_mant[members].astype(np.int32), bias_exp=int(shared["bias_exp"]),
        u=0, v=pop.v_init[members].astype(np.int32), name=f"{pop.name}#{k}")


# Above this many matrix entries a table becomes a Sparse process: a Dense one holds every
# entry as int32 (a 10^6-synapse convolution unrolls to ~10^8 entries).
DENSE_MAX_ENTRIES = 1 << 22


def _connection_process(conn: ConnectionSpec, kind: str):
    """A Dense, Sparse or DelayDense process for ``conn``: the same bit-accurate arithmetic.

    A table of delay d > 1 becomes a DelayDense with every synapse's delay d - 1
    (its delay 0 arrives one step later, as Dense does); a table has one delay,
    so the weight_exp shift still applies to the table's whole sum per step.
    """
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.sparse.process import Sparse
    from scipy.sparse import csr_matrix

    options = dict(weight_exp=conn.weight_exp, num_weight_bits=conn.num_weight_bits, sign_mode=conn.sign_mode)
    if conn.delay > 1:
        weights = np.zeros(conn.shape, dtype=np.int32)
        weights[conn.rows, conn.cols] = conn.values
        return DelayDense(weights=weights, delays=conn.delay - 1, **options)
    if kind == "auto":
        kind = "sparse" if conn.shape[0] * conn.shape[1] > DENSE_MAX_ENTRIES else "dense"
    if kind == "sparse":
        weights = csr_matrix((conn.values.astype(np.int32), (conn.rows, conn.cols)), shape=conn.shape)
        return Sparse(weights=weights, **options)
    weights = np.zeros(conn.shape, dtype=np.int32)
    weights[conn.rows, conn.cols] = conn.values
    return Dense(weights=weights, **options)


def _source_of(conn: ConnectionSpec, net: NetworkSpec, senders: dict, lifs: dict):
    """The process whose spikes ``conn`` reads, and ``conn`` with its columns renumbered to
    that process's neurons: an input's RingBuffer, or the LIF process of the one source
    profile its synapses come from."""
    if conn.source in senders:
        return senders[conn.source], conn
    pop = net.populations[conn.source]
    used = np.unique(pop.profile[conn.cols])
    if used.size > 1:
        raise DeploymentError(f"table {conn.source}->{conn.target} reads spikes of {used.size} neuron "
                              f"profiles of {conn.source}; a deployable table reads one (nirc's "
                              f"neuron_profiles pass splits tables so)")
    k = int(used[0]) if used.size else 0
    members = pop.members(k)
    local = np.full(pop.size, -1, np.int64)
    local[members] = np.arange(members.size)
    return lifs[conn.source, k], replace(conn, cols=local[conn.cols], shape=(conn.shape[0], members.size))


def _rows_of(conn: ConnectionSpec, members: np.ndarray) -> ConnectionSpec:
    """``conn`` restricted to the target neurons ``members`` (rows renumbered to them)."""
    local = np.full(conn.shape[0], -1, np.int64)
    local[members] = np.arange(members.size)
    keep = local[conn.rows] >= 0
    return replace(conn, rows=local[conn.rows[keep]], cols=conn.cols[keep], values=conn.values[keep],
                   shape=(members.size, conn.shape[1]))


def run_network(net: NetworkSpec, inputs: dict[str, np.ndarray], steps: int, record_states: bool = True,
                synapses: str = "auto") -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Run ``steps`` steps of the network on Lava; return recordings and timings.

    ``synapses``: "dense" (Dense processes), "sparse" (Sparse processes) or "auto"
    (Sparse only for tables of more than DENSE_MAX_ENTRIES matrix entries).
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    started = time.perf_counter()
    senders = {}
    for name in net.inputs:
        # Dense with binary messages reads its input as bool, so any non-zero value is one spike
        # (as in nirc's emulator); feeding it 0/1 keeps fractional values from truncating to 0.
        spikes = (inputs[name].reshape(steps, -1) != 0).astype(np.int32)
        senders[name] = RingBuffer(data=spikes.T.copy())
    lifs = {(name, k): _lif_process(pop, k, LIF) for name, pop in net.populations.items()
            for k in range(len(pop.profiles))}

    for conn in net.connections:
        source_process, conn = _source_of(conn, net, senders, lifs)
        target = net.populations[conn.target]
        for k in range(len(target.profiles)):
            synapse = _connection_process(_rows_of(conn, target.members(k)), synapses)
            source_process.s_out.connect(synapse.s_in)
            synapse.a_out.connect(lifs[conn.target, k].a_in)

    quantities = ("spikes", "u", "v") if record_states else ("spikes",)
    monitors = []
    for (name, k), lif in lifs.items():
        # A readout (spiking: false) has the maximal vth and no spikes to record; were it to
        # spike all the same, its reset would show in v.
        for quantity in quantities if net.populations[name].spiking else quantities[1:]:
            target = lif.s_out if quantity == "spikes" else getattr(lif, quantity)
            monitor = Monitor()  # a Monitor's process model records one probe only
            monitor.probe(target, steps)
            monitors.append((f"{quantity}_{name}", k, monitor, target))

    anchor = next(iter(lifs.values()))
    run_cfg = Loihi2SimCfg(select_tag="fixed_pt")
    anchor.create_runtime(run_cfg=run_cfg)
    built = time.perf_counter()
    try:
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)
        ran = time.perf_counter()
        recordings = {}
        for key, k, monitor, target in monitors:
            pop = net.populations[key.partition("_")[2]]
            whole = recordings.setdefault(key, np.zeros((steps, pop.size), np.int32))
            whole[:, pop.members(k)] = monitor.get_data()[target.process.name][target.name].reshape(steps, -1)
        recordings = {key: a.reshape((steps,) + net.populations[key.partition("_")[2]].shape)
                      for key, a in recordings.items()}
    finally:
        anchor.stop()
    return recordings, {"build_s": built - started, "run_s": ran - built, "steps": steps,
                        "lif_processes": len(lifs)}


# --------------------------------------------------------------------------- command line


def _read_inputs(path: Path, net: NetworkSpec, steps: int | None) -> tuple[dict[str, np.ndarray], int]:
    """``input`` (one port) or ``input_<name>`` per port, each (T, *shape), as `nirc emulate` reads them."""
    several = len(net.inputs) > 1
    keys = {name: f"input_{name}" if several else "input" for name in net.inputs}
    with np.load(path) as npz:
        missing = [key for key in keys.values() if key not in npz.files]
        if missing:
            raise DeploymentError(f"{path}: no array {', '.join(missing)} "
                                  f"(the file holds {', '.join(npz.files) or 'nothing'})")
        inputs = {name: npz[key] for name, key in keys.items()}
    for name, shape in net.inputs.items():
        if inputs[name].shape[1:] != shape:
            raise DeploymentError(f"{path}: array {keys[name]} has shape {inputs[name].shape}, "
                                  f"expected (T, {', '.join(map(str, shape))})")
    lengths = {a.shape[0] for a in inputs.values()}
    if len(lengths) != 1:
        raise DeploymentError(f"{path}: input arrays differ in length (time steps): {sorted(lengths)}")
    available = lengths.pop()
    steps = available if steps is None else steps
    if not 0 < steps <= available:
        raise DeploymentError(f"{path}: --steps {steps} but the inputs hold {available} steps")
    return {name: a[:steps] for name, a in inputs.items()}, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path, help="directory written by `nirc compile --target loihi2`")
    parser.add_argument("--input", type=Path, required=True,
                        help="NPZ with 'input' (T, *shape), or 'input_<name>' per input port")
    parser.add_argument("--output", type=Path, required=True, help="NPZ to write the recordings to")
    parser.add_argument("--steps", type=int, help="time steps to run (default: all the input holds)")
    parser.add_argument("--record", choices=("states", "spikes"), default="states",
                        help="record spikes, u and v of every population (default), or spikes only")
    parser.add_argument("--synapses", choices=("auto", "dense", "sparse"), default="auto",
                        help="Lava process per table: Dense, Sparse, or Sparse only for tables of more "
                             f"than {DENSE_MAX_ENTRIES} matrix entries (default)")
    args = parser.parse_args(argv)
    try:
        net = load_network(args.build_dir)
        inputs, steps = _read_inputs(args.input, net, args.steps)
        recordings, timings = run_network(net, inputs, steps, record_states=args.record == "states",
                                          synapses=args.synapses)
    except (DeploymentError, KeyError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial.npz")
    np.savez(partial, **recordings)
    partial.replace(args.output)
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
