"""nirc's NIR reader and writer agree with each other and with the reference nir 1.0.8,
in both directions, for every node type, with and without compression, nested graphs and
(nested) metadata."""

from __future__ import annotations

import warnings
from dataclasses import fields
from pathlib import Path

import h5py
import numpy as np
import pytest

from nirc.errors import ModelError
from nirc.ir.nodes import NODE_TYPES, NIRGraph, pair
from nirc.nirio import FORMAT_VERSION, read, write
from nir_reference import run_reference
from nirio_graphs import assert_same_graph, assert_same_value, every_node_type

GRAPHS = every_node_type()
REFERENCE_SCRIPT = Path(__file__).with_name("reference_nir_io.py")
# nir.read's type check assumes weight.shape[1] input channels, wrong for grouped convs.
NO_TYPE_CHECK = {"Conv2d_grouped"}


def test_the_graphs_cover_every_node_type():
    used: set[str] = set()

    def collect(graph: NIRGraph) -> None:
        for node in graph.nodes.values():
            used.add(node.nir_type)
            if isinstance(node, NIRGraph):
                collect(node)

    for graph in GRAPHS.values():
        collect(graph)
    assert used == set(NODE_TYPES)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_nirc_reads_back_exactly_what_it_wrote(tmp_path, name, compress):
    path = tmp_path / f"{name}.nir"
    write(path, GRAPHS[name], compress=compress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file gives no warning
        assert_same_graph(GRAPHS[name], read(path), name)


def test_write_compresses_arrays_only_when_asked(tmp_path):
    graph = GRAPHS["LIF"]
    write(tmp_path / "z.nir", graph, compress=True)
    write(tmp_path / "p.nir", graph, compress=False)
    with h5py.File(tmp_path / "z.nir") as z, h5py.File(tmp_path / "p.nir") as p:
        assert z["node/nodes/node/tau"].compression == "gzip"
        assert p["node/nodes/node/tau"].compression is None
        assert z["version"][()] == FORMAT_VERSION.encode()
        assert z["node/type"][()] == b"NIRGraph"
        assert z["node/edges"].shape == (2, 2)


def test_write_fills_parameters_nir_requires_with_nir_defaults(tmp_path):
    lif = GRAPHS["LIF"].nodes["node"]
    bare = NIRGraph(nodes={**GRAPHS["LIF"].nodes, "node": type(lif)(
        tau=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=lif.v_threshold)},
        edges=GRAPHS["LIF"].edges)
    write(tmp_path / "bare.nir", bare)
    with h5py.File(tmp_path / "bare.nir") as f:
        assert np.array_equal(f["node/nodes/node/v_reset"][()], np.zeros(4))


def test_unstorable_metadata_is_refused_and_leaves_no_file(tmp_path):
    graph = NIRGraph(nodes=GRAPHS["LIF"].nodes, edges=GRAPHS["LIF"].edges,
                     metadata={"callback": object()})
    target = tmp_path / "out.nir"
    with pytest.raises(ModelError) as err:
        write(target, graph)
    assert str(err.value) == (f"{target}: parameter 'metadata.callback': cannot be stored in "
                              f"HDF5 (object)")
    assert list(tmp_path.iterdir()) == []


# --- against the reference nir 1.0.8 ---------------------------------------------------


@pytest.fixture(scope="module")
def reference_round_trip(tmp_path_factory):
    """nirc writes every graph (gzip and plain); nir 1.0.8 reads each, dumps what it holds,
    and writes it back with nir.write (gzip and uncompressed). One child process in all."""
    root = tmp_path_factory.mktemp("reference")
    jobs = []
    for name, graph in GRAPHS.items():
        for compress in (True, False):
            src = root / f"{name}-nirc-{'gzip' if compress else 'plain'}.nir"
            write(src, graph, compress=compress)
            jobs.append({"read": str(src), "write": str(root / f"{src.stem}-nir.nir"),
                         "compression": "gzip" if compress else None,
                         "type_check": name not in NO_TYPE_CHECK})
    dumps = run_reference(REFERENCE_SCRIPT, jobs)
    return root, dumps


def _unwrap(value):
    if isinstance(value, dict) and set(value) == {"array", "dtype"}:
        return np.asarray(value["array"], dtype=value["dtype"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _assert_matches_dump(graph: NIRGraph, dump: dict, where: str) -> None:
    assert dump["type"] == "NIRGraph", where
    assert sorted(dump["nodes"]) == sorted(graph.nodes), where
    assert sorted(map(tuple, dump["edges"])) == sorted(graph.edges), where
    assert_same_value(dict(graph.metadata), _unwrap(dump["metadata"]), f"{where}.metadata")
    for name, node in graph.nodes.items():
        held = dump["nodes"][name]
        assert held["type"] == node.nir_type, f"{where}.{name}"
        if isinstance(node, NIRGraph):
            _assert_matches_dump(node, held, f"{where}.{name}")
            continue
        assert_same_value(dict(node.metadata), _unwrap(held["metadata"]),
                          f"{where}.{name}.metadata")
        for f in fields(node):
            kind, value = f.metadata.get("nir"), getattr(node, f.name)
            if kind is None:
                continue
            theirs = _unwrap(held["params"][f.name])
            if kind == "ints":  # nir widens a scalar stride to one value per axis, or not
                n = np.size(theirs)
                assert pair(value, n, f.name) == tuple(np.ravel(theirs)), f"{where}.{name}.{f.name}"
            elif kind == "padding" and isinstance(value, str):
                assert theirs == value, f"{where}.{name}.{f.name}"
            else:
                mine = np.atleast_1d(value) if kind == "spatial" else np.asarray(value)
                assert_same_value(mine, np.atleast_1d(theirs) if kind == "spatial" else theirs,
                                  f"{where}.{name}.{f.name}")


@pytest.mark.parametrize("compress", ["gzip", "plain"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_reference_nir_reads_every_file_nirc_writes(reference_round_trip, name, compress):
    root, dumps = reference_round_trip
    _assert_matches_dump(GRAPHS[name], dumps[str(root / f"{name}-nirc-{compress}.nir")], name)


@pytest.mark.parametrize("compress", ["gzip", "plain"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_nirc_reads_every_file_reference_nir_writes(reference_round_trip, name, compress):
    root, _ = reference_round_trip
    path = root / f"{name}-nirc-{compress}-nir.nir"
    with h5py.File(path) as f:  # really written by nir, as asked
        assert f["version"][()] == b"1.0.8"
        assert f["node/nodes/input/shape"].compression == (None if compress == "plain"
                                                            else "gzip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_graph(GRAPHS[name], read(path), name)


# --- property: any valid chain with any metadata survives write -> read ---------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nirc.ir.nodes import LIF, Affine, Input, Output  # noqa: E402

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
_leaf = st.one_of(st.integers(-2**62, 2**62), st.floats(allow_nan=False),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
                          max_size=12),
                  st.booleans())
_metadata = st.recursive(st.dictionaries(_names, _leaf, max_size=3),
                         lambda inner: st.dictionaries(_names, inner, max_size=3), max_leaves=8)


@st.composite
def chains(draw) -> NIRGraph:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    finite = st.floats(-2.0**20, 2.0**20, width=32)
    positive = st.floats(2.0**-20, 1024.0, width=32)

    def arr(shape, elements=finite):
        n = int(np.prod(shape))
        return np.array(draw(st.lists(elements, min_size=n, max_size=n)),
                        dtype=dtype).reshape(shape)

    nodes = {"input": Input(shape=np.array([widths[0]]))}
    edges, prev = [], "input"
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        nodes[f"fc{i}"] = Affine(weight=arr((b, a)), bias=arr((b,)),
                                 metadata=draw(_metadata))
        nodes[f"lif{i}"] = LIF(tau=arr((b,), positive), r=arr((b,)), v_leak=arr((b,)),
                               v_threshold=arr((b,)), v_reset=arr((b,)))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = Output(shape=np.array([widths[-1]]))
    edges.append((prev, "output"))
    return NIRGraph(nodes=nodes, edges=tuple(edges), metadata=draw(_metadata))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(graph=chains(), compress=st.booleans())
def test_any_chain_with_any_metadata_round_trips(tmp_path, graph, compress):
    path = tmp_path / "chain.nir"
    write(path, graph, compress=compress)
    assert_same_graph(graph, read(path))


def test_a_node_name_hdf5_would_split_is_refused(tmp_path):
    graph = NIRGraph(nodes={"input": GRAPHS["LIF"].nodes["input"],
                            "a/b": GRAPHS["LIF"].nodes["node"],
                            "output": GRAPHS["LIF"].nodes["output"]},
                     edges=(("input", "a/b"), ("a/b", "output")))
    with pytest.raises(ModelError) as err:
        write(tmp_path / "slash.nir", graph)
    assert str(err.value) == (f"{tmp_path / 'slash.nir'}: node 'a/b': is not a name HDF5 can "
                              f"store (empty, '.' or containing '/')")
    assert list(tmp_path.iterdir()) == []


def test_a_graph_of_exactly_the_node_limit_reads_and_one_more_is_refused(tmp_path, monkeypatch):
    # The root graph is the file itself: it does not count against MAX_NODES (a 10^5-node
    # chain, benchmarks/bench_multichip.py, was refused by one).
    import sys

    from nirc.nirio import reader

    sys.path.insert(0, str(Path(__file__).parent))
    from multichip_networks import chain

    graph = chain(6)
    assert len(graph.nodes) == 6
    path = tmp_path / "chain.nir"
    write(path, graph)
    monkeypatch.setattr(reader, "MAX_NODES", 6)
    assert set(read(path).nodes) == set(graph.nodes)
    monkeypatch.setattr(reader, "MAX_NODES", 5)
    with pytest.raises(ModelError, match="more than (the )?5 (nodes|nirc reads)"):
        read(path)
