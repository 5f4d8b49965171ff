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
