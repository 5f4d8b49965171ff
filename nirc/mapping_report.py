"""The mapping report: one self-contained HTML page of pictures of a compilation.

``write_report(path, result, verification=None)`` draws, with matplotlib (and
networkx for graphs), from a :class:`nirc.driver.CompileResult`:

- the NIR graph as layers (inputs left, each node one column after its inputs;
  back edges of recurrent networks dashed);
- the cores: what each holds (neurons of every layer) and how full each of its
  named resources is;
- inter-core traffic: estimated spikes per step between cores and from inputs;
- on a system of chips: the chips (cores used on each) and the links, drawn as
  wide as the messages per step they carry;
- quantization error per layer (every ``*_error`` the neuron model reports);
- with a :class:`nirc.verify.VerifyReport`: spike rasters of the float
  simulation next to the emulator's, per spiking layer.

Images are inline base64 PNG, styles inline, no script: the page opens from
disk without network access. Elements carry stable ids (``#graph``,
``#cores``, ``#traffic``, ``#chips``, ``#quantization``, ``#rasters``) for tests.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

REPORT_NAME = "report.html"
RASTER_NEURONS = 256      # neurons drawn per raster (the first ones): beyond, dots merge
_NEURON_TYPES = {"LIF", "CubaLIF", "IF", "LI", "Integrator", "CubaLI"}
_WEIGHT_TYPES = {"Affine", "Linear", "Conv1d", "Conv2d", "Scale"}
_COLOURS = {"io": "#9ecae1", "neuron": "#fdae6b", "weights": "#a1d99b", "other": "#d9d9d9"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
figure { margin: 0.5em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.full { color: #b30000; font-weight: bold; } .note { font-size: 0.85em; color: #555; }
"""


# --- figures -----------------------------------------------------------------------------

def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _kind(node) -> str:
    name = type(node).__name__
    if name in ("Input", "Output"):
        return "io"
    if name in _NEURON_TYPES:
        return "neuron"
    if name in _WEIGHT_TYPES:
        return "weights"
    return "other"


def graph_layers(graph) -> tuple[nx.DiGraph, set[tuple[str, str]]]:
    """The flattened NIR graph with each node's ``layer`` (column), and its back edges.

    A node's layer is one more than the deepest of its inputs that come earlier in
    nirc's topological order; edges against that order close recurrent loops.
    """
    from nirc.ir.graph import flatten, infer_shapes, topological_order

    flat = flatten(graph)
    shapes = infer_shapes(flat)
    position = {name: i for i, name in enumerate(topological_order(flat))}
    g = nx.DiGraph()
    back = {(a, b) for a, b in flat.edges if position[a] >= position[b]}
    for name in sorted(flat.nodes, key=position.__getitem__):
        preds = [a for a, b in flat.edges if b == name and (a, b) not in back]
        layer = 1 + max((g.nodes[p]["layer"] for p in preds), default=-1)
        node = flat.nodes[name]
        shape = "x".join(str(d) for d in shapes[name].output) if name in shapes else "?"
        g.add_node(name, layer=layer, kind=_kind(node),
                   label=f"{name}\n{type(node).__name__}\n{shape}")
    g.add_edges_from(flat.edges)
    return g, back


def figure_graph(graph) -> str:
    g, back = graph_layers(graph)
    pos = nx.multipartite_layout(g, subset_key="layer")
    columns = 1 + max(nx.get_node_attributes(g, "layer").values())
    rows = max(np.bincount(list(nx.get_node_attributes(g, "layer").values())))
    # At most 14 inches wide: the page shows it ~11 inches wide, labels stay legible.
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 1.9 * columns)), max(2.5, 1.3 * rows)))
    forward = [e for e in g.edges if e not in back]
    nx.draw_networkx_edges(g, pos, edgelist=forward, ax=ax, arrows=True, node_size=2600,
                           arrowsize=14, edge_color="#555")
    nx.draw_networkx_edges(g, pos, edgelist=sorted(back), ax=ax, arrows=True, node_size=2600,
                           style="dashed", edge_color="#c0392b", arrowsize=14,
                           connectionstyle="arc3,rad=0.5")
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=2600, node_shape="s",
                           node_color=[_COLOURS[g.nodes[n]["kind"]] for n in g.nodes])
    nx.draw_networkx_labels(g, pos, labels=nx.get_node_attributes(g, "label"), ax=ax,
                            font_size=7)
    handles = [plt.Line2D([], [], marker="s", linestyle="", markersize=10, color=c, label=k)
               for k, c in _COLOURS.items()]
    if back:
        handles.append(plt.Line2D([], [], linestyle="--", color="#c0392b",
                                  label="recurrent (back) edge"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=5,
              fontsize=8, frameon=False)
    ax.margins(0.12)
    ax.set_axis_off()
    return _png(fig)


def core_contents(placement) -> dict[int, dict[str, int]]:
    """Neurons of each population on each core."""
    held: dict[int, dict[str, int]] = {}
    for block in placement.blocks:
        per_core = held.setdefault(block.core, {})
        per_core[block.population] = per_core.get(block.population, 0) + block.size
    return dict(sorted(held.items()))


def figure_cores(placement, populations: list[str]) -> str:
    held = core_contents(placement)
    cores = list(held)
    utilisation = placement.utilisation
    resources = sorted({r for uses in utilisation.values() for r, u in uses.items()
                        if u.capacity})
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(7.0, 0.12 * len(cores) + 5), 6.5),
                                      gridspec_kw={"height_ratios": [1.2, 1]})
    colours = plt.get_cmap("tab20")
    base = np.zeros(len(cores))
    for k, pop in enumerate(populations):
        counts = np.array([held[c].get(pop, 0) for c in cores], dtype=float)
        if counts.any():
            top.bar(range(len(cores)), counts, bottom=base, color=colours(k % 20),
                    label=f"layer {pop}", width=0.85)
            base += counts
    top.set_ylabel("neurons held")
    top.set_title("what each core holds")
    top.set_xticks(range(len(cores)), [str(c) for c in cores] if len(cores) <= 40 else
                   [""] * len(cores))
    top.legend(fontsize=8, ncol=min(6, max(1, len(populations))), loc="upper right")
    if resources:
        fill = np.array([[utilisation[c][r].fraction if r in utilisation[c] and
                          utilisation[c][r].capacity else np.nan for c in cores]
                         for r in resources], dtype=float)
        image = bottom.imshow(fill, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                              interpolation="nearest")
        bottom.set_yticks(range(len(resources)), resources, fontsize=8)
        bottom.set_xticks(range(len(cores)), [str(c) for c in cores] if len(cores) <= 40 else
                          [""] * len(cores))
        if len(cores) <= 24:
            for i in range(len(resources)):
                for j in range(len(cores)):
                    if not np.isnan(fill[i, j]):
                        bottom.text(j, i, f"{100 * fill[i, j]:.0f}%", ha="center", va="center",
                                    fontsize=7, color="white" if fill[i, j] < 0.6 else "black")
        fig.colorbar(image, ax=bottom, label="fraction of capacity used")
    bottom.set_xlabel("core")
    bottom.set_title("how full each resource is")
    fig.tight_layout()
    return _png(fig)


def figure_traffic(placement) -> str:
    pairs = placement.messages_by_pair
    cores = sorted({b.core for b in placement.blocks})
    if len(cores) <= 32:
        g = nx.DiGraph()
        g.add_node("inputs")
        g.add_nodes_from(cores)
        input_cores = _input_cores(placement)
        for c in input_cores:
            g.add_edge("inputs", c, weight=placement.input_messages / max(1, len(input_cores)))
        for (a, b), m in pairs.items():
            g.add_edge(a, b, weight=m)
        pos = nx.circular_layout(cores) if len(cores) > 1 else {cores[0]: np.array([0.0, 0.0])}
        pos["inputs"] = np.array([-1.6, 0.0])
        weights = np.array([g.edges[e]["weight"] for e in g.edges], dtype=float)
        widths = 0.5 + 5 * weights / weights.max() if len(weights) and weights.max() > 0 else 1
        fig, ax = plt.subplots(figsize=(6.5, 5) if len(cores) > 2 else (6.5, 2.2))
        nx.draw_networkx(g, pos, ax=ax, node_color=["#9ecae1" if n == "inputs" else "#fdae6b"
                                                    for n in g.nodes],
                         node_size=700, font_size=8, width=widths, edge_color="#555",
                         arrows=True, connectionstyle="arc3,rad=0.15")
        nx.draw_networkx_edge_labels(g, pos, ax=ax, font_size=7, edge_labels={
            e: f"{g.edges[e]['weight']:.1f}" for e in g.edges
            if e[0] == "inputs" or g.edges[e]["weight"] > 0})
        ax.set_title("spikes per step between cores (edge labels), inputs on the left")
        ax.margins(0.15)
        ax.set_axis_off()
        return _png(fig)
    index = {c: i for i, c in enumerate(cores)}
    matrix = np.zeros((len(cores), len(cores)))
    for (a, b), m in pairs.items():
        matrix[index[a], index[b]] = m
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(matrix, cmap="magma_r", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="spikes per step")
    ax.set_xlabel("destination core")
    ax.set_ylabel("source core")
    ax.set_title(f"spikes per step between {len(cores)} cores")
    return _png(fig)


def figure_chips(system: dict[str, Any], mesh: list[int] | None = None) -> str:
    """A system's chips (cores used on each) and its links, drawn as wide as their traffic.

    Chips sit on their mesh grid (row-major numbering) or on a circle; a link's
    label is its estimated messages per step, red where it exceeds the link's
    capacity.
    """
    chips = int(system["chips"])
    used = {row["chip"]: row["cores_used"] for row in system.get("chip_rows", [])}
    g = nx.Graph()
    g.add_nodes_from(range(chips))
    for a, b, m in system["links"]:
        g.add_edge(a, b, weight=m)
    if mesh and len(mesh) == 2:
        pos = {c: np.array([c % mesh[1], -(c // mesh[1])], dtype=float) for c in range(chips)}
    elif mesh and len(mesh) == 1:
        pos = {c: np.array([c, 0.0]) for c in range(chips)}
    else:
        pos = nx.circular_layout(range(chips))
    weights = np.array([g.edges[e]["weight"] for e in g.edges], dtype=float)
    top = weights.max() if len(weights) and weights.max() > 0 else 1.0
    capacity = system.get("link_capacity")
    over = {(min(a, b), max(a, b)) for a, b, _ in system.get("link_overloads", [])}
    colours = ["#b30000" if (min(e), max(e)) in over else ("#555" if g.edges[e]["weight"] else "#ccc")
               for e in g.edges]
    side = max(4.0, min(14.0, 1.3 * (mesh[1] if mesh and len(mesh) == 2 else chips ** 0.5 * 2)))
    fig, ax = plt.subplots(figsize=(side, side * 0.75))
    nx.draw_networkx_edges(g, pos, ax=ax, width=0.8 + 6 * weights / top, edge_color=colours)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=900, node_shape="s",
                           node_color=["#fdae6b" if c in used else "#eeeeee" for c in g.nodes])
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7, labels={
        c: f"chip {c}\n{used[c]} cores" if c in used else f"chip {c}" for c in g.nodes})
    nx.draw_networkx_edge_labels(g, pos, ax=ax, font_size=7, edge_labels={
        e: f"{g.edges[e]['weight']:.0f}" for e in g.edges if g.edges[e]["weight"] > 0})
    cap = f", capacity {capacity}/step" if capacity else ""
    ax.set_title(f"{system['chips_used']} of {chips} chips used (lower bound "
                 f"{system['chip_lower_bound']}); messages per step on each link{cap}")
    ax.margins(0.1)
    ax.set_axis_off()
    return _png(fig)


def _input_cores(placement) -> list[int]:
    """Cores of the first placed population: where input spikes are drawn as arriving."""
    if not placement.blocks:
        return []
    first = placement.blocks[0].population
    return sorted({b.core for b in placement.blocks if b.population == first})


def quantization_errors(rows: Iterable[dict[str, Any]]) -> tuple[list[str], dict[str, list]]:
    """Populations and, per ``*_error`` measure any row reports, its value per population."""
    rows = list(rows)
    names = [str(r.get("population", "?")) for r in rows]
    measures = sorted({k for r in rows for k, v in r.items()
                       if k.endswith("_error") and isinstance(v, (int, float))})
    return names, {m: [r.get(m) for r in rows] for m in measures}


def figure_quantization(rows: list[dict[str, Any]]) -> str | None:
    names, measures = quantization_errors(rows)
    if not names or not measures:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(names) * max(1, len(measures)) / 2), 3.8))
    width = 0.8 / len(measures)
    for k, (measure, values) in enumerate(measures.items()):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(np.arange(len(names)) + k * width, heights, width, label=measure)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, [f"layer {n}" for n in names])
    ax.set_ylabel("error (relative, or absolute for *_abs_error)")
    ax.set_title("quantization error per layer")
    ax.legend(fontsize=8)
    return _png(fig)


def figure_raster(name: str, float_spikes: np.ndarray, chip_spikes: np.ndarray) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
    shown = min(RASTER_NEURONS, float_spikes.shape[1])
    for ax, spikes, title in ((axes[0], float_spikes, "float simulation"),
                              (axes[1], chip_spikes, "emulator (chip)")):
        t, n = np.nonzero(spikes[:, :shown])
        ax.scatter(t, n, s=4, marker="|", color="#222")
        ax.set_title(f"layer {name}: {title}, {int(spikes.sum())} spikes", fontsize=9)
        ax.set_xlabel("time step")
        ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
    axes[0].set_ylabel(f"neuron (first {shown})")
    axes[0].set_ylim(-0.5, shown - 0.5)
    return _png(fig)


# --- page --------------------------------------------------------------------------------

def _figure(png: str, alt: str, caption: str, element_id: str) -> str:
    return (f'<figure id="{element_id}-figure"><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{png}"><figcaption>{html.escape(caption)}'
            f"</figcaption></figure>")


def _table(header: list[str], rows: list[list[Any]], element_id: str,
           text_columns: int = 1) -> str:
    def cell(tag, value, k):
        cls = ' class="text"' if k < text_columns else ""
        return f"<{tag}{cls}>{value}</{tag}>"

    head = "".join(cell("th", html.escape(h), k) for k, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", v, k) for k, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f'<table id="{element_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _percent(use) -> str:
    if not use.capacity:
        return f"{use.used} (unbounded)"
    fraction = use.used / use.capacity
    text = f"{use.used} / {use.capacity} ({100 * fraction:.0f}%)"
    return f'<span class="full">{text}</span>' if fraction > 0.95 else text


def render(result, verification=None) -> str:
    """The report page for a CompileResult (and optionally the VerifyReport made from it)."""
    report, placement = result.report, result.placement
    esc = html.escape
    title = f"nirc mapping report: {report.get('model') or 'model'} on {report['target']}"
    summary = [
        ["model", esc(str(report.get("model")))], ["target", esc(report["target"])],
        ["neuron model", esc(str(report.get("neuron_model")))],
        ["time step", f"{report['dt']:g} s ({esc(str(report.get('dt_source')))})"],
        ["neurons / synapses", f"{report['neurons']} / {report['synapses']}"],
        ["cores used (lower bound)",
         f"{report['cores_used']} ({report['lower_bound']}, {esc(report['lower_bound_resource'])})"],
        ["solver", esc(str(report.get("solver_status")))],
        ["inter-core spikes per step", f"{report['traffic']['inter_core_messages_per_step']:.2f}"],
    ]
    for name, use in getattr(placement, "chip_utilisation", {}).items():
        summary.append([f"chip: {esc(name)}", _percent(use)])
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             _table(["", ""], summary, "summary")]

    parts.append('<h2 id="graph">NIR graph, as layers</h2>')
    parts.append(_figure(figure_graph(result.graph), "NIR graph drawn in layers",
                         "Each column is one step further from the inputs; node: name, type, "
                         "output shape.", "graph"))

    populations = list(result.network.populations)
    parts.append('<h2 id="cores">Cores: what each holds, how full it is</h2>')
    parts.append(_figure(figure_cores(placement, populations), "cores and their resources",
                         "Top: neurons of every layer on each core. Bottom: used / capacity "
                         "of each bounded resource.", "cores"))
    held = core_contents(placement)
    resources = sorted({r for uses in placement.utilisation.values() for r in uses})
    rows = [[str(core), esc(", ".join(f"{p}: {n}" for p, n in held.get(core, {}).items()))]
            + [_percent(placement.utilisation[core][r]) if r in placement.utilisation[core]
               else "" for r in resources]
            for core in sorted(placement.utilisation)]
    parts.append(_table(["core", "layers (neurons)"] + resources, rows, "core-table", 2))

    parts.append('<h2 id="traffic">Inter-core traffic</h2>')
    parts.append(f'<p class="note">{esc(report["traffic"]["estimated_from"])}; '
                 f'{report["traffic"]["input_messages_per_step"]:.1f} input spikes per step.</p>')
    parts.append(_figure(figure_traffic(placement), "spike traffic between cores",
                         "Estimated spikes per step from one core to another (one per spike "
                         "and destination core).", "traffic"))

    system = getattr(placement, "system", None)
    if system is not None:
        parts.append('<h2 id="chips">Chips and links</h2>')
        parts.append(f'<p class="note">{system["inter_chip_messages"]:.1f} messages per step '
                     f'between chips, {system["link_messages"]:.1f} counted on every link they '
                     f'cross; link latency {system["link_latency_steps"]} step(s) per hop.</p>')
        parts.append(_figure(figure_chips(system, system.get("mesh")),
                             "chips of the system and the traffic on its links",
                             "Chips (cores used on each) and links, drawn as wide as their "
                             "estimated messages per step.", "chips"))
        rows = [[str(r["chip"]), str(r["cores_used"]), str(r["lower_bound"]), str(r["neurons"])]
                for r in system.get("chip_rows", [])]
        parts.append(_table(["chip", "cores used", "core lower bound", "neurons"], rows,
                            "chip-table"))

    parts.append('<h2 id="quantization">Quantization error per layer</h2>')
    rows_q = report.get("quantization", [])
    png = figure_quantization(rows_q)
    if png:
        parts.append(_figure(png, "quantization error per layer",
                             "Relative error of each quantity after conversion to the chip's "
                             "integer formats.", "quantization"))
    names, measures = quantization_errors(rows_q)
    parts.append(_table(["layer"] + list(measures) + ["notes"],
                        [[esc(n)] + ["-" if v[i] is None else f"{v[i]:.4g}"
                                     for v in measures.values()]
                         + [esc("; ".join(rows_q[i].get("notes", [])))]
                         for i, n in enumerate(names)], "quantization-table"))

    if verification is not None:
        parts.append('<h2 id="rasters">Spike rasters: float simulation vs emulator</h2>')
        verdict = "bit-exact" if verification.bit_exact else "DIFFERS"
        parts.append(f'<p id="verdict">Emulator vs integer reference: <b>{verdict}</b> '
                     f"({verification.steps} steps x {verification.samples} samples; rasters "
                     f"show sample 0).</p>")
        for note in verification.notes:
            parts.append(f'<p class="note">{esc(note)}</p>')
        for name, (float_spikes, chip_spikes) in verification.rasters.items():
            parts.append(_figure(figure_raster(name, float_spikes, chip_spikes),
                                 f"spike raster of layer {name}",
                                 f"Layer {name}: float simulation (left) and emulator (right).",
                                 f"raster-{name}"))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: str | Path, result, verification=None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, verification), encoding="utf-8")
    return path
