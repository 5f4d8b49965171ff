"""The integer reference: runs a hardware network as a whole, before any placement on cores.

It steps every population with its neuron model (nirc.neuron_models), one
table at a time, in an order where a table with delay 0 is read after its
source has stepped. The emulator, which reads the emitted files and runs core
by core, must agree with it bit for bit; any difference is a compiler bug.
Run on a float (not yet quantized) network it computes the generic discrete
neuron in float64, which reproduces the float simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import networkx as nx
import numpy as np

from nirc.errors import NircError
from nirc.hwnet import HardwareNetwork
from nirc.neuron_models import get_model


@dataclass
class RunResult:
    """Arrays are (T, B, *shape) in batch mode, else (T, *shape).

    outputs: per OutputPort (spikes as uint8, or the raw readout state);
    spikes: per spiking population; states: per population and state when recorded.
    """

    outputs: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    steps: int = 0


def check_inputs(shapes: Mapping[str, tuple[int, ...]], inputs: Mapping[str, np.ndarray],
                 batch: bool) -> tuple[int, int, dict[str, np.ndarray]]:
    """Validate input arrays; returns (T, B, {name: (T, B, size)})."""
    if set(inputs) != set(shapes):
        raise NircError(f"inputs {sorted(inputs)} do not match the network's inputs "
                        f"{sorted(shapes)}")
    steps = n_batch = None
    flat = {}
    for name in sorted(shapes):
        x = np.asarray(inputs[name])
        want = tuple(shapes[name])
        lead = 2 if batch else 1
        if x.ndim != lead + len(want) or tuple(x.shape[lead:]) != want:
            layout = "(T, B, " if batch else "(T, "
            raise NircError(f"input '{name}' has shape {list(x.shape)}, expected "
                            f"{layout}{', '.join(map(str, want))})", node=name)
        if not batch:
            x = x[:, None]
        if steps is not None and (x.shape[0] != steps or x.shape[1] != n_batch):
            raise NircError(f"input '{name}' has {list(x.shape[:2])} (steps, batch), other "
                            f"inputs {[steps, n_batch]}", node=name)
        steps, n_batch = x.shape[0], x.shape[1]
        flat[name] = x.reshape(steps, n_batch, -1)
    return steps or 0, n_batch or 1, flat


def step_order(net: HardwareNetwork) -> list[str]:
    """Populations ordered so every delay-0 table's source steps before its target."""
    g = nx.DiGraph()
    index = {name: k for k, name in enumerate(net.populations)}
    g.add_nodes_from(net.populations)
    g.add_edges_from((t.source, t.target) for t in net.tables
                     if t.delay == 0 and t.source in net.populations)
    try:
        return list(nx.lexicographical_topological_sort(g, key=index.__getitem__))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        raise NircError(f"populations {' -> '.join(a for a, _ in cycle)} form a cycle with no "
                        f"delay") from None


def run(net: HardwareNetwork, inputs: Mapping[str, np.ndarray], batch: bool = False,
        record: bool = False) -> RunResult:
    """Run ``net`` on ``inputs`` ({port: (T, *shape)}, or (T, B, *shape) with batch)."""
    model = get_model(net.neuron_model)
    own_reference = getattr(model, "run_network", None)
    if own_reference is not None:      # e.g. event-driven chips, where a step is not a sum
        return own_reference(net, inputs, batch=batch, record=record)
    steps, n_batch, x = check_inputs({k: p.shape for k, p in net.inputs.items()}, inputs, batch)
    order = step_order(net)
    tables = [(t.source, t.target, model.prepare_weights(t), model.table_attrs(t), int(t.delay))
              for t in net.tables]
    depth = max([d for *_, d in tables], default=0) + 1
    history = {name: np.zeros((depth, n_batch, size), bool if name in net.populations else
                              x[name].dtype)
               for name, size in [(n, net.size_of(n)) for n in (*net.inputs, *net.populations)]}
    params = {name: model.prepare_params({k: np.asarray(v) for k, v in p.params.items()})
              for name, p in net.populations.items()}
    state = {name: model.init_state(params[name], n_batch) for name in net.populations}
    spikes = {name: np.zeros((steps, n_batch, p.size), bool) for name, p in net.populations.items()}
    traces = {name: {s: np.zeros((steps, n_batch, p.size), model.dtype) for s in model.state_names}
              for name, p in net.populations.items()} if record else {}
    readout = {o.source for o in net.outputs.values() if o.quantity != "spikes"}
    values = {name: np.zeros((steps, n_batch, net.populations[name].size), model.dtype)
              for name in readout}
    into: dict[str, list] = {name: [] for name in net.populations}
    for t in tables:
        into[t[1]].append(t)
    for t in range(steps):
        slot = t % depth
        for name in net.inputs:
            history[name][slot] = x[name][t]
        for name in order:
            pop = net.populations[name]
            a_in = np.zeros((n_batch, pop.size), model.dtype)
            for source, _, w, attrs, delay in into[name]:
                if delay > t:
                    continue
                a_in += model.accumulate(w, attrs, history[source][(t - delay) % depth])
            z = model.step(params[name], state[name], a_in)
            history[name][slot] = z
            spikes[name][t] = z
            if name in readout:
                values[name][t] = state[name][model.readout_state]
            for s in traces.get(name, {}):
                traces[name][s][t] = state[name][s]
    return _shape_result(net, spikes, values, traces, steps, batch)


def spike_count(spikes: np.ndarray, copies: list[np.ndarray], copy_weights=()) -> np.ndarray:
    """An output's spike count per step: its population's spikes plus each copy's times the
    model's spikes it stands for (``copy_weights``; empty: one each)."""
    weighs = tuple(copy_weights) or (1,) * len(copies)
    return spikes.astype(np.uint8) + sum(c.astype(np.uint8) * np.uint8(w)
                                         for c, w in zip(copies, weighs))


def _shape_result(net, spikes, values, traces, steps, batch) -> RunResult:
    def shaped(a: np.ndarray, shape) -> np.ndarray:
        out = a.reshape(a.shape[0], a.shape[1], *shape)
        return out if batch else out[:, 0]

    outputs = {}
    for name, port in net.outputs.items():
        src = spikes[port.source] if port.quantity == "spikes" else values[port.source]
        arr = spike_count(src, [spikes[c] for c in port.copies], port.copy_weights) \
            if port.quantity == "spikes" else src
        outputs[name] = shaped(arr, port.shape or net.populations[port.source].shape)
    return RunResult(
        outputs=outputs,
        spikes={n: shaped(s, net.populations[n].shape) for n, s in spikes.items()
                if net.populations[n].spiking},
        states={n: {s: shaped(a, net.populations[n].shape) for s, a in st.items()}
                for n, st in traces.items()},
        steps=steps)
