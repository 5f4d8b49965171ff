"""Chip assignment at scale: where the chip search starts, and the connectivity order.

Small networks only (seconds): the 10^7 / 10^8 figures are benchmarks/bench_multichip.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable
from nirc.partition.chips import connectivity_order, hilbert_index
from nirc.partition.connectivity import Connectivity

from multichip_networks import recurrent_matrices


def _recurrent(n: int, fan_in: int, connectivity: str) -> Connectivity:
    rng = np.random.default_rng(0)
    w_in, w_rec, _ = recurrent_matrices(n, fan_in, 16, 4, rng, connectivity, sigma=3.0)
    net = HardwareNetwork("float", 1e-3, {"input": InputPort("input", (16,))},
                          {"hidden": Population("hidden", (n,), {}, provenance=("hidden",))},
                          (SynapseTable("input", "hidden", sp.csr_array(w_in)),
                           SynapseTable("hidden", "hidden", sp.csr_array(w_rec))),
                          {"out": OutputPort("out", "hidden")})
    return Connectivity.from_hwnet(net)


def _sources_per_run(conn: Connectivity, order: np.ndarray, run: int = 256) -> float:
    m = sp.csr_array(conn.from_neurons)
    return float(np.mean([len(np.unique(m[order[a:a + run]].indices))
                          for a in range(0, len(order) - run + 1, run)]))


def test_hilbert_index_visits_a_grid_cell_by_neighbouring_cell():
    x, y = (v.ravel() for v in np.meshgrid(np.arange(16), np.arange(16)))
    d = hilbert_index(x, y)
    assert sorted(d.tolist()) == list(range(256))
    walk = np.argsort(d)
    assert np.all(np.abs(np.diff(x[walk])) + np.abs(np.diff(y[walk])) == 1)


def test_connectivity_order_finds_a_randomly_numbered_sheet():
    # A 2-D sheet whose neurons the file numbers at random: runs of the file's order draw on
    # nearly every source, runs of the connectivity order on a neighbourhood's worth.
    conn = _recurrent(16_384, 32, "sheet")
    order = connectivity_order(conn)
    assert sorted(order.tolist()) == list(range(conn.neuron_count))
    found = _sources_per_run(conn, order)
    numbered = _sources_per_run(conn, np.arange(conn.neuron_count))
    assert found < numbered / 3, (found, numbered)
    # Reverse Cuthill-McKee alone cuts the sheet in thin level sets: twice the sources.
    m = conn.from_neurons
    pattern = sp.csr_matrix((np.ones(m.nnz, dtype=np.int8), m.indices, m.indptr), shape=m.shape)
    rcm = reverse_cuthill_mckee((pattern + pattern.T).tocsr(), symmetric_mode=True)
    assert found < _sources_per_run(conn, np.asarray(rcm)) / 1.5


SMALL_BOARD = """
name: small_board
description: test system, 8 chips of 8 SpiNNaker-2-like PEs with 32 KiB of synapse rows each
system:
  chip: spinnaker2
  chips: 8
  mesh: [2, 4]
  link:
    messages_per_step: 100000
partitioner:
  time_limit_s: 1
  max_blocks: 256
cores:
  count: 8
  limits:
    neurons: 256
    synapse_memory_bits: 262144
  synapse_memory:
    word_bits: 32
    synapses_per_group: 256
    group_header_bits: 32
    index_bits: 8
"""


@pytest.mark.slow
def test_the_chip_search_starts_at_the_chips_a_greedy_fill_used(tmp_path):
    # 5x5 convolutions with 16 and 32 channels: synapse rows fill a PE's memory before its
    # neurons (bound 4 chips by synapse memory, 5 needed); no count below is tried.
    from multichip_networks import sinabs_cnn
    from nirc.driver import compile

    (tmp_path / "board.yaml").write_text(SMALL_BOARD)
    result = compile(sinabs_cnn(16, (8, 16, 32), kernel=5, n_out=0),
                     str(tmp_path / "board.yaml"), None, calibration_steps=0)
    system, notes = result.placement.system, result.placement.notes
    assert system["chip_lower_bound"] == 4 and system["chips_used"] == 5
    assert any("the chip search starts at 5 chips (bound 4)" in n for n in notes)
    assert not any(n.startswith("4 chips, ") for n in notes), notes


def _dense(n_in: int, n_out: int) -> HardwareNetwork:
    w = sp.csr_array(np.ones((n_out, n_in)))
    return HardwareNetwork("float", 1e-3, {"input": InputPort("input", (n_in,))},
                           {"hidden": Population("hidden", (n_out,), {}, provenance=("hidden",))},
                           (SynapseTable("input", "hidden", w),),
                           {"out": OutputPort("out", "hidden")})


def test_the_chip_bound_counts_the_cores_a_wide_fan_in_layer_needs(tmp_path):
    # 500 inputs, all to 256 neurons: a PE's 262144 bits hold the 16-bit entries of at most
    # 32 such neurons, so each input's row reaches 8 PEs, not 1: 500 x (256 x 16 + 8 x 32) bits
    # need 9 PEs, two 8-PE chips (counting one row per input: 8 PEs, one chip).
    from nirc.partition.chips import chip_lower_bound
    from nirc.partition.demand import SynapseListCost
    from nirc.target import load_target

    (tmp_path / "board.yaml").write_text(SMALL_BOARD)
    target = load_target(str(tmp_path / "board.yaml"))
    conn = Connectivity.from_hwnet(_dense(500, 256))
    bound = chip_lower_bound(conn, SynapseListCost.of(target), target)
    assert bound.demand["synapse_memory_bits"] == 500 * (256 * 16 + 8 * 32)
    assert (bound.chips, bound.resource, bound.cores, bound.cores_resource) == \
        (2, "synapse_memory_bits", 9, "synapse_memory_bits")
    assert bound.chips_by_resource["neurons"] == 1


def test_a_randomly_numbered_sheet_is_placed_in_connectivity_order_on_few_chips(tmp_path):
    # 4096 neurons of a sheet numbered at random: runs of the file's order fill a PE's synapse
    # rows with ~150 neurons, neighbourhoods with 256; placed in connectivity order the sheet
    # takes at most the bound + 1 chips and fewer messages than the sequential fill.
    from nirc.partition import partition
    from nirc.target import load_target

    (tmp_path / "board.yaml").write_text(SMALL_BOARD)
    target = load_target(str(tmp_path / "board.yaml"))
    rng = np.random.default_rng(0)
    w_in, w_rec, _ = recurrent_matrices(4096, 32, 16, 4, rng, "sheet", sigma=3.0)
    net = HardwareNetwork("float", 1e-3, {"input": InputPort("input", (16,))},
                          {"hidden": Population("hidden", (4096,), {}, provenance=("hidden",))},
                          (SynapseTable("input", "hidden", sp.csr_array(w_in)),
                           SynapseTable("hidden", "hidden", sp.csr_array(w_rec))),
                          {"out": OutputPort("out", "hidden")})
    rates = {"hidden": 0.01, "input": 0.05}
    placed = partition(net, target, rates=rates)
    baseline = partition(net, target, rates=rates, method="sequential")
    system = placed.system
    assert "hidden: placed in connectivity order" in placed.notes[0]
    assert system["chips_used"] <= system["chip_lower_bound"] + 1 == 3
    assert baseline.system["chips_used"] > system["chips_used"]
    assert system["inter_chip_messages"] < baseline.system["inter_chip_messages"]
    # Every neuron on exactly one core, each core within its limits.
    core = placed.core_of("hidden", 4096)
    assert core.min() >= 0 and sum(b.size for b in placed.blocks_of("hidden")) == 4096
    assert all(u.used <= u.capacity for uses in placed.utilisation.values()
               for u in uses.values() if u.capacity is not None)


def test_feature_maps_are_cut_in_2d_tiles_laid_onto_the_mesh():
    # A (2, 8, 8) map fed by a (2, 16, 16) map through a stride-2 pattern, on 4 chips of a
    # 2 x 3 mesh: quadrants of both maps (all channels), tile (i, j) on mesh chip (i, j).
    from nirc.partition.chips import _sub_population, tile_assignment

    rows = np.arange(2 * 8 * 8)
    c, at = rows // 64, rows % 64
    cols = c * 256 + (at // 8 * 2) * 16 + at % 8 * 2          # neuron (c, y, x) <- (c, 2y, 2x)
    w = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(128, 512))
    net = HardwareNetwork("float", 1e-3, {"input": InputPort("input", (2, 16, 16))},
                          {"big": Population("big", (2, 16, 16), {}),
                           "small": Population("small", (2, 8, 8), {})},
                          (SynapseTable("input", "big", sp.csr_array(sp.eye(512))),
                           SynapseTable("big", "small", w)),
                          {"out": OutputPort("out", "small")})
    conn = Connectivity.from_hwnet(net)
    name, chip = tile_assignment(conn, np.ones(conn.neuron_count), 4, (2, 3))
    assert name.endswith("(rows of 2x2 tiles)")
    y, x = np.divmod(np.arange(64) % 64, 8)
    expected_small = np.tile((y >= 4) * 3 + (x >= 4), 2)          # mesh chips 0, 1, 3, 4
    assert np.array_equal(chip[512:], expected_small)
    y, x = np.divmod(np.arange(256), 16)
    assert np.array_equal(chip[:512], np.tile((y >= 8) * 3 + (x >= 8), 2))
    # A chip's share of a map keeps its (C, rows, columns) shape.
    mine = np.flatnonzero(chip[512:] == 4)
    assert _sub_population(net.populations["small"], mine).shape == (2, 4, 4)
    assert _sub_population(net.populations["small"], mine[1:]).shape == (len(mine) - 1,)


def test_tiles_balance_the_load_to_one_position_with_staircase_edges():
    # A (2, 7, 7) map with one unit of load per neuron on 4 chips of a 2 x 2 mesh: 49
    # positions do not split into 2 x 2 equal blocks of rows and columns (whole rows would
    # leave 21 and 28 positions), so the cuts step part way along a row: every tile holds
    # 12 or 13 positions of both channels, and a chip's share stays (C, 1, positions).
    from nirc.partition.chips import _sub_population, tile_assignment

    net = HardwareNetwork("float", 1e-3, {"input": InputPort("input", (2, 7, 7))},
                          {"map": Population("map", (2, 7, 7), {})},
                          (SynapseTable("input", "map", sp.csr_array(sp.eye(98))),),
                          {"out": OutputPort("out", "map")})
    conn = Connectivity.from_hwnet(net)
    name, chip = tile_assignment(conn, np.ones(98), 4, (2, 2))
    assert name.endswith("(rows of 2x2 tiles)")
    assert np.array_equal(chip[:49], chip[49:])                   # channels stay together
    assert sorted(np.bincount(chip[:49]).tolist()) == [12, 12, 12, 13]
    # Rows of tiles are cut in row-major order: the first row of tiles takes rows 0-2 and
    # the first three positions of row 3.
    assert np.array_equal(np.flatnonzero(chip[:49] < 2), np.arange(24))
    for c in range(4):
        mine = np.flatnonzero(chip == c)
        shape = _sub_population(net.populations["map"], mine).shape
        assert shape in ((2, 1, len(mine) // 2), (2, 3, 4), (2, 4, 3))
