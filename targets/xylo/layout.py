"""Fixed-fabric mapping: a float hardware network laid out on Xylo's input channels, hidden pool and readout.

Requires: a hardware network after fuse/unroll (float parameters of the generic
discrete neuron, float weight tables). Guarantees: a :class:`XyloLayout` that
gives every input port a range of input channels, every hidden population a
range of the hidden pool (in network order, so several hidden layers sit one
after another and their feed-forward tables become blocks of the recurrent
matrix) and every output population a range of readout neurons, with the
float weight blocks of W_in, W_rec and W_out, or a FitError/TargetError naming
the limit, the layer and the demand:

- at most ``input_channels`` inputs, ``hidden_neurons`` hidden and
  ``output_neurons`` readout neurons;
- readout neurons listen only to hidden neurons, and feed nothing;
- each hidden neuron has at most ``fan_out_per_neuron`` recurrent synapses
  (W_rec entries, both synapse kinds; the readout weights are a separate memory);
  a neuron with more gets alias copies in the free part of the hidden pool,
  each carrying the next ``fan_out_per_neuron`` synapses (FitError when the
  pool runs out);
- a table delay of more than one step has no Xylo equivalent.

On Xylo a spike between neurons always arrives one step later; tables that
deliver in the same step in the float network (feed-forward, delay 0) gain a
step of latency per layer. The layout records this in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from nirc.errors import FitError, TargetError
from nirc.hwnet import HardwareNetwork
from nirc.targets.xylo.device import XyloDevice
from nirc.targets.xylo.relay import is_relay, relayed


@dataclass(frozen=True)
class Placed:
    """One port or population occupying ``[start, stop)`` of a fabric section."""

    name: str
    start: int
    stop: int
    shape: tuple[int, ...]
    quantity: str = "spikes"      # outputs: "spikes" or "v"
    counts_of: str | None = None  # outputs read through a count relay: the layer it counts

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, eq=False)
class XyloLayout:
    """Index assignment and float weight blocks (before quantization)."""

    inputs: tuple[Placed, ...]
    hidden: tuple[Placed, ...]
    readout: tuple[Placed, ...]
    outputs: tuple[Placed, ...]             # output ports -> readout ranges
    w_in: np.ndarray                        # (Nin, Nhidden, 2) float
    w_rec: np.ndarray                       # (Nhidden, Nhidden, 2) float
    w_out: np.ndarray                       # (Nhidden, Nout) float
    notes: tuple[str, ...] = field(default=())
    # (neuron, its alias target) pairs; targets past the layers are copies carrying extra fan-out.
    alias_pairs: tuple[tuple[int, int], ...] = field(default=())

    @property
    def aliases(self) -> tuple[tuple[int, ...], ...]:
        """Per hidden neuron, the neurons that repeat its spikes (rockpool's ``aliases``)."""
        out = [[] for _ in range(self.n_hidden)]
        for source, target in self.alias_pairs:
            out[source].append(target)
        return tuple(tuple(a) for a in out)

    @property
    def n_copies(self) -> int:
        return len(self.alias_pairs)

    @property
    def n_inputs(self) -> int:
        return self.w_in.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.w_rec.shape[0]

    @property
    def n_readout(self) -> int:
        return self.w_out.shape[1]


def _dense(table) -> np.ndarray:
    return np.asarray(sp.csr_array(table.weights).todense(), np.float64)


def _stacked(entries) -> tuple[list[Placed], int]:
    """(name, size, shape, quantity) entries placed one after another from index 0, and their total size."""
    placed, start = [], 0
    for name, size, shape, quantity in entries:
        placed.append(Placed(name, start, start + size, tuple(shape), quantity))
        start += size
    return placed, start


def _check_section(kind: str, placed: list[Placed], total: int, capacity: int, device: XyloDevice,
                   file: str | None, field: str) -> None:
    if total > capacity:
        demand = ", ".join(f"{p.name}: {p.size}" for p in placed)
        raise FitError(f"{kind} layers need {total} neurons ({demand}), {device.name} has {capacity}",
                       file=file, node=placed[-1].name, field=field)


# The why line of every refusal about the shape of the graph (not its size).
TOPOLOGY = ("the model is valid and small enough, but Xylo's fixed wiring (input -> hidden -> "
            "readout) cannot express this graph")


def layout(net: HardwareNetwork, device: XyloDevice, file: str | None = None) -> XyloLayout:
    """Assign fabric indices to every port and population of ``net``; raise FitError when it cannot fit."""
    notes: list[str] = []
    inputs, n_in = _stacked((port.name, port.size, port.shape, "spikes")
                            for port in net.inputs.values())
    if n_in > device.input_channels:
        raise FitError(f"the network has {n_in} inputs ({', '.join(f'{p.name}: {p.size}' for p in inputs)}), "
                       f"{device.name} has {device.input_channels} input channels",
                       file=file, node=inputs[-1].name, field="input_channels")

    readout_names = []
    for out in net.outputs.values():
        if out.source not in net.populations:
            raise FitError(f"output '{out.name}' reads input port '{out.source}' directly; on Xylo "
                           f"outputs come from readout neurons", file=file, node=out.name, cause="topology",
                           why=TOPOLOGY, next="put a neuron layer between the input and the "
                           "output in the model (Xylo's readout), then export it again")
        if out.source not in readout_names:
            readout_names.append(out.source)
    for name in readout_names:
        feeds = [t.target for t in net.tables_from(name)]
        if feeds:
            raise FitError(f"population '{name}' is a network output and also feeds '{feeds[0]}'; Xylo's "
                           f"readout neurons cannot feed other neurons (add a readout layer after it)",
                           file=file, node=name, field="output_neurons", cause="topology",
                           why=TOPOLOGY, next=f"end the model in a separate readout layer after "
                           f"'{name}' that feeds nothing, then export it again")
    hidden_names = [n for n in net.populations if n not in readout_names]

    pops = net.populations
    hidden, n_hidden = _stacked((name, pops[name].size, pops[name].shape, "spikes")
                                for name in hidden_names)
    _check_section("hidden", hidden, n_hidden, device.hidden_neurons, device, file, "hidden_neurons")
    readout, n_out = _stacked((name, pops[name].size, pops[name].shape,
                               "spikes" if pops[name].spiking else "v") for name in readout_names)
    _check_section("readout", readout, n_out, device.output_neurons, device, file, "output_neurons")
    if not readout:
        raise FitError("the network has no output population; Xylo reads results from readout neurons",
                       file=file, field="output_neurons", cause="topology", why=TOPOLOGY,
                       next="end the model in a neuron layer that feeds the Output node")

    where = {p.name: ("input", p) for p in inputs}
    where.update({p.name: ("hidden", p) for p in hidden})
    where.update({p.name: ("readout", p) for p in readout})
    w_in = np.zeros((n_in, n_hidden, 2))
    w_rec = np.zeros((n_hidden, n_hidden, 2))
    w_out = np.zeros((n_hidden, n_out))
    latency_tables = []
    for table in net.tables:
        src_kind, src = where[table.source]
        dst_kind, dst = where[table.target]
        node = table.provenance[0] if table.provenance else table.target
        if table.weights is None:
            raise TargetError("table has not been unrolled (run the unroll pass before xylo_quantize)",
                              file=file, node=node)
        if table.delay > 1:
            raise FitError(f"table {table.source} -> {table.target} delays spikes by {table.delay} steps; "
                           f"Xylo delivers every spike after at most one step", file=file, node=node,
                           field="delay", cause="topology", why=TOPOLOGY,
                           next="shorten the Delay node to at most one step, or pass a larger --dt "
                           "so that it spans fewer steps")
        if dst_kind == "input":
            raise TargetError(f"table into input port '{table.target}'", file=file, node=node)
        if dst_kind == "readout" and src_kind == "input":
            raise FitError(f"readout '{table.target}' takes input straight from '{table.source}'; Xylo's "
                           f"readout neurons listen to hidden neurons only (add a hidden layer)",
                           file=file, node=node, field="output_neurons", cause="topology",
                           why=TOPOLOGY, next=f"add a hidden neuron layer between "
                           f"'{table.source}' and '{table.target}' in the model, then export it "
                           f"again")
        if src_kind == "readout":
            raise FitError(f"readout '{table.source}' feeds '{table.target}'; Xylo's readout neurons "
                           f"feed nothing", file=file, node=node, field="output_neurons",
                           cause="topology", why=TOPOLOGY,
                           next=f"make '{table.source}' a hidden layer and add a readout layer "
                           f"after the last one in the model, then export it again")
        synapse = int((table.kernel or {}).get("synapse", 0))
        if synapse >= device.synapses_per_hidden_neuron and dst_kind == "hidden":
            raise FitError(f"table uses synapse {synapse + 1}, {device.name} has "
                           f"{device.synapses_per_hidden_neuron} per hidden neuron", file=file, node=node,
                           field="synapses_per_hidden_neuron")
        block = _dense(table).T        # (source, target)
        if src_kind == "input":
            w_in[src.start:src.stop, dst.start:dst.stop, synapse] += block
            if table.delay != 0:
                notes.append(f"table {table.source} -> {table.target}: input events reach Xylo's hidden "
                             f"neurons in the same step, not after {table.delay}")
        elif dst_kind == "hidden":
            w_rec[src.start:src.stop, dst.start:dst.stop, synapse] += block
            if table.delay == 0:
                latency_tables.append(f"{table.source} -> {table.target}")
        else:
            w_out[src.start:src.stop, dst.start:dst.stop] += block
            if table.delay == 0:
                latency_tables.append(f"{table.source} -> {table.target}")
    if latency_tables:
        notes.append("Xylo delivers hidden spikes one step later; these feed-forward tables gain one step of "
                     "latency each: " + ", ".join(latency_tables))

    copies: list[tuple[int, int]] = []
    if device.fan_out_per_neuron is not None and n_hidden:
        w_in, w_rec, w_out, copies = _split_fan_out(w_in, w_rec, w_out, hidden, device, file)
        if copies:
            notes.append(f"{len(copies)} alias copies carry the synapses beyond {device.fan_out_per_neuron} "
                         f"of {len({s for s, _ in copies})} hidden neurons (Xylo's alias repeats a neuron's "
                         f"spikes in the same step)")
    receiving = np.flatnonzero(np.abs(w_in).sum(axis=(0, 2)))
    if receiving.size and receiving.max() >= device.input_targets:
        raise FitError(f"hidden neuron {receiving.max()} receives input channels; {device.name} connects "
                       f"inputs to the first {device.input_targets} hidden neurons only",
                       file=file, field="input_targets", cause="topology", why=TOPOLOGY,
                       next=f"give the layers fed by the input at most {device.input_targets} "
                       f"neurons together")
    sending = np.flatnonzero(np.abs(w_out).sum(axis=1))
    if sending.size and sending.min() < n_hidden - device.readout_sources:
        raise FitError(f"hidden neuron {sending.min()} feeds the readout; {device.name} reads out from the "
                       f"last {device.readout_sources} hidden neurons only", file=file, field="readout_sources",
                       cause="topology", why=TOPOLOGY,
                       next=f"let at most {device.readout_sources} hidden neurons (one last hidden "
                       f"layer) feed the readout")

    outputs = []
    for out in net.outputs.values():
        src = where[out.source][1]
        quantity = "spikes" if out.quantity == "spikes" else "v"
        pop = net.populations.get(out.source)
        counts_of = relayed(pop) if pop is not None and is_relay(pop) else None
        outputs.append(Placed(out.name, src.start, src.stop, tuple(out.shape) or src.shape, quantity,
                              counts_of))
    return XyloLayout(tuple(inputs), tuple(hidden), tuple(readout), tuple(outputs), w_in, w_rec, w_out,
                      tuple(notes), tuple(copies))


def _split_fan_out(w_in, w_rec, w_out, hidden, device: XyloDevice, file):
    """Move recurrent synapses beyond the fan-out limit onto alias copies of their neuron.

    A copy is a hidden neuron with no inputs and the largest threshold: it never
    fires by itself, and as the alias target of the neuron (or of the previous
    copy) it repeats that neuron's spike count in the same step, so its
    synapses deliver exactly when the original's would. Synapses keep their
    order (target, synapse kind); the first ``limit`` stay on the original.
    """
    limit = device.fan_out_per_neuron
    n = w_rec.shape[0]
    flat = w_rec.reshape(n, -1)
    fan_out = np.count_nonzero(flat, axis=1)
    over = np.flatnonzero(fan_out > limit)
    if not over.size:
        return w_in, w_rec, w_out, []
    chunks = (fan_out[over] - 1) // limit          # copies each offending neuron needs
    total = n + int(chunks.sum())
    if total > device.hidden_neurons:
        worst = int(over[np.argmax(fan_out[over])])
        pop = next(p for p in hidden if p.start <= worst < p.stop)
        raise FitError(f"neuron {worst - pop.start} of '{pop.name}' has {int(fan_out[worst])} recurrent synapses, "
                       f"{device.name} allows {limit} per hidden neuron; spreading the {len(over)} neurons over "
                       f"alias copies needs {total} hidden neurons of {device.hidden_neurons}",
                       file=file, node=pop.name, field="fan_out_per_neuron")
    new_rec = np.zeros((total, total, 2))
    new_rec[:n, :n] = w_rec
    rows = np.repeat(over, fan_out[over])
    cols = np.flatnonzero(flat[over].reshape(-1) != 0) % flat.shape[1]     # row-major: per source in order
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(fan_out[over]) - fan_out[over], fan_out[over])
    chunk = rank // limit
    first_copy = n + np.cumsum(chunks) - chunks                                # copy index of chunk 1
    owner = np.where(chunk == 0, rows, np.repeat(first_copy, fan_out[over]) + chunk - 1)
    moved = chunk > 0
    tgt, kind = np.divmod(cols[moved], 2)
    new_rec[owner[moved], tgt, kind] = flat[rows[moved], cols[moved]]
    new_rec[rows[moved], tgt, kind] = 0.0
    copies = []
    for source, count, start in zip(over.tolist(), chunks.tolist(), first_copy.tolist()):
        chain = [source] + list(range(start, start + count))
        copies += list(zip(chain[:-1], chain[1:]))
    new_in = np.zeros((w_in.shape[0], total, 2))
    new_in[:, :n] = w_in
    new_out = np.zeros((total, w_out.shape[1]))
    new_out[:n] = w_out
    return new_in, new_rec, new_out, copies
