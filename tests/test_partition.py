"""The neuron_partition strategy: lower bound, packing, multicast message counting, FitError.

Small networks whose optimum is known by hand; every run uses a fixed seed and
a deterministic time limit, so results are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nirc.errors import FitError
from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable
from nirc.partition import partition
from nirc.partition.connectivity import Connectivity
from nirc.partition.demand import SynapseListCost, core_traffic, group_demand
from nirc.partition.lower_bound import cores_needed
from nirc.target import Target

TIME_LIMIT_S = 1.0


def toy_target(count: int = 4, **limits) -> Target:
    return Target.model_validate({
        "name": "toy", "description": "test chip", "neuron_model": "loihi_cuba_lif",
        "mapping": "neuron_partition", "default_dt": 1e-3, "passes": ["normalize"],
        "cores": {"count": count, "limits": limits,
                  "synapse_memory": {"word_bits": 64, "synapses_per_group": 64,
                                     "group_header_bits": 10, "index_bits": 10}},
        "formats": {"weight_bits": 8, "state_bits": 24},
        "partitioner": {"time_limit_s": TIME_LIMIT_S, "seed": 0},
    })


def dense(n_dst: int, n_src: int) -> sp.csr_array:
    return sp.csr_array(np.ones((n_dst, n_src)))


def network(populations: dict[str, int], tables: list[tuple[str, str, sp.csr_array]],
            inputs: dict[str, int] | None = None, provenance: dict[str, tuple] | None = None) -> HardwareNetwork:
    provenance = provenance or {}
    pops = {n: Population(n, (size,), {}, provenance=provenance.get(n, (n,))) for n, size in populations.items()}
    ins = {n: InputPort(n, (size,)) for n, size in (inputs or {}).items()}
    last = list(populations)[-1]
    return HardwareNetwork("float", 1e-3, ins, pops,
                           tuple(SynapseTable(s, t, w) for s, t, w in tables),
                           {"out": OutputPort("out", last)})


def assert_within_limits(placement) -> None:
    for core, uses in placement.utilisation.items():
        for name, use in uses.items():
            if use.capacity is not None:
                assert use.used <= use.capacity, (core, name, use)


def assert_covers_every_neuron_once(placement, net: HardwareNetwork) -> None:
    for name, pop in net.populations.items():
        cores = placement.core_of(name, pop.size)
        assert np.all(cores >= 0), name
        blocks = placement.blocks_of(name)
        assert blocks[0].start == 0 and blocks[-1].stop == pop.size
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))


def test_lower_bound_is_the_largest_demand_over_capacity_among_resources():
    # neurons: 120 / 64 -> 2 cores; synapses: (60 + 3600) / 1000 -> 4 cores.
    net = network({"a": 60, "b": 60}, [("in", "a", sp.csr_array(sp.eye(60))), ("a", "b", dense(60, 60))],
                  inputs={"in": 60})
    placement = partition(net, toy_target(count=8, neurons=64, synapses=1000))
    assert (placement.lower_bound, placement.lower_bound_resource) == (4, "synapses")
    assert placement.cores_used == 4 and placement.gap == 0.0
    assert_within_limits(placement)
    assert_covers_every_neuron_once(placement, net)


def test_three_layers_that_fit_two_cores_use_two_cores():
    net = network({"a": 40, "b": 40, "c": 40}, [])
    placement = partition(net, toy_target(neurons=60))
    assert (placement.cores_used, placement.lower_bound) == (2, 2)
    assert sorted(u["neurons"].used for u in placement.utilisation.values()) == [60, 60]


def test_two_independent_chains_share_no_core_messages_unlike_the_sequential_fill():
    # a1->b1 and a2->b2, 30 neurons each, 60 per core: the optimum keeps each chain on one
    # core (0 messages); filling cores in network order puts both a's on core 0 and both
    # b's on core 1 (each a neuron sends one message per step).
    net = network({"a1": 30, "a2": 30, "b1": 30, "b2": 30},
                  [("a1", "b1", dense(30, 30)), ("a2", "b2", dense(30, 30))])
    target = toy_target(neurons=60)
    naive = partition(net, target, method="sequential")
    best = partition(net, target)
    assert (naive.cores_used, naive.messages) == (2, 60.0)
    assert (best.cores_used, best.messages) == (2, 0.0)
    assert best.solver_status == "OPTIMAL"


@pytest.mark.parametrize("aborts_on", ["several workers", "every solve"])
def test_a_cp_sat_search_that_aborts_the_process_costs_that_solve_not_the_compile(monkeypatch,
                                                                                aborts_on):
    # OR-Tools 9.13-9.15 can abort in multi-worker search (google/or-tools#5025): each solve
    # runs in a forked child; one that dies is redone on one worker, else the start is kept.
    import os
    from nirc.partition import cpsat
    original = cpsat._Model._solve

    def aborting(self, time_limit_s, seed, workers):
        if workers > cpsat.SAFE_WORKERS or aborts_on == "every solve":
            os.abort()
        return original(self, time_limit_s, seed, workers)

    monkeypatch.setattr(cpsat._Model, "_solve", aborting)
    net = network({"a1": 30, "a2": 30, "b1": 30, "b2": 30},
                  [("a1", "b1", dense(30, 30)), ("a2", "b2", dense(30, 30))])
    best = partition(net, toy_target(neurons=60))
    assert_covers_every_neuron_once(best, net)
    assert_within_limits(best)
    expected = "solved on one worker" if aborts_on == "several workers" else "kept the start"
    assert any(expected in note for note in best.notes), best.notes
    if aborts_on == "several workers":
        assert (best.cores_used, best.messages) == (2, 0.0)


def test_cores_of_different_sizes_are_used_largest_first_each_within_its_own_limits():
    # Core 1 holds 100 neurons, cores 0 and 2 hold 20: 110 neurons need two cores, one
    # of them core 1; core numbers stay physical.
    data = toy_target(count=3, neurons=20).model_dump(exclude={"cores"})
    data["cores"] = {"count": 3, "limits": {"neurons": 20},
                     "overrides": [{"cores": [1], "limits": {"neurons": 100}}]}
    target = Target.model_validate(data)
    net = network({"a": 60, "b": 50}, [("a", "b", dense(50, 60))])
    placement = partition(net, target)
    assert (placement.cores_used, placement.lower_bound) == (2, 2)
    assert 1 in placement.utilisation and len(placement.utilisation) == 2
    assert placement.utilisation[1]["neurons"].capacity == 100
    assert all(uses["neurons"].capacity == 20 for core, uses in placement.utilisation.items() if core != 1)
    assert_within_limits(placement)
    assert_covers_every_neuron_once(placement, net)


def test_one_message_per_source_neuron_and_destination_core_weighted_by_rate():
    # s0 -> t0, t1 (both on core 1): one message; s1 -> t2 (core 1), t3 (core 2): two.
    weights = sp.csr_array(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float))
    net = network({"s": 2, "t": 4}, [("s", "t", weights)])
    conn = Connectivity.from_hwnet(net, rates={"s": np.array([3.0, 0.5])})
    core_of = np.array([0, 0, 1, 1, 1, 2])          # s0 s1 | t0 t1 t2 | t3
    cost = SynapseListCost.of(toy_target(neurons=8))
    demand = group_demand(conn, core_of, 3, cost)
    traffic = core_traffic(conn, core_of, 3, demand)
    assert traffic.messages_by_pair[0, 1] == 3.0 + 0.5 and traffic.messages_by_pair[0, 2] == 0.5
    assert traffic.messages_by_pair.sum() == 4.0
    assert traffic.fan_out_axons.tolist() == [3, 0, 0]
    assert demand.fan_in_axons.tolist() == [0, 2, 1]


def test_synapse_memory_counts_groups_of_64_rounded_to_words():
    # One source feeding 70 neurons on one core: a group of 64 and one of 6 synapses,
    # each (n * (8 + 10) + 10) bits rounded up to 64: 1216 + 128.
    net = network({"s": 1, "t": 70}, [("s", "t", dense(70, 1))])
    conn = Connectivity.from_hwnet(net)
    cost = SynapseListCost.of(toy_target(neurons=100))
    demand = group_demand(conn, np.array([0] + [1] * 70), 2, cost)
    assert demand.synapse_memory_bits.tolist() == [0, 1216 + 128]


def test_placement_reports_each_bounded_resource_per_core_and_consistent_messages():
    net = network({"a": 50, "b": 50}, [("a", "b", dense(50, 50)), ("b", "b", sp.csr_array(sp.eye(50)))])
    target = toy_target(neurons=64, fan_in_axons=200, fan_out_axons=200, synapse_memory_bits=200_000)
    placement = partition(net, target)
    assert set(placement.utilisation[0]) == {"neurons", "synapses", "synapse_memory_bits",
                                             "fan_in_axons", "fan_out_axons"}
    assert placement.utilisation[0]["fan_in_axons"].unit == "axons"
    assert placement.utilisation[0]["neurons"].capacity == 64
    assert placement.utilisation[0]["synapses"].capacity is None
    assert placement.messages == sum(placement.messages_by_pair.values())
    assert_within_limits(placement)
    assert_covers_every_neuron_once(placement, net)


def random_network(seed: int) -> HardwareNetwork:
    rng = np.random.default_rng(seed)

    def table(n_dst, n_src):
        return sp.csr_array(sp.random_array((n_dst, n_src), density=0.2, rng=rng, format="csr"))
    return network({"h1": 90, "h2": 70, "h3": 20},
                   [("in", "h1", table(90, 30)), ("h1", "h2", table(70, 90)), ("h2", "h2", table(70, 70)),
                    ("h2", "h3", table(20, 70))], inputs={"in": 30})


def test_same_network_and_seed_give_the_same_placement():
    target = toy_target(count=8, neurons=48, fan_in_axons=150)
    first = partition(random_network(1), target).to_dict()
    second = partition(random_network(1), target).to_dict()
    assert first == second


def test_cpsat_never_does_worse_than_the_sequential_fill():
    net = random_network(2)
    target = toy_target(count=8, neurons=48, fan_in_axons=200)
    naive = partition(net, target, method="sequential")
    best = partition(net, target)
    assert best.cores_used <= naive.cores_used
    assert (best.cores_used, best.messages + best.input_messages) <= \
        (naive.cores_used, naive.messages + naive.input_messages)
    assert best.lower_bound <= best.cores_used
    assert_within_limits(best)
    assert_within_limits(naive)


def test_a_neuron_with_too_many_inputs_names_layer_resource_demand_and_capacity():
    net = network({"a": 10, "b": 1}, [("a", "b", dense(1, 10))], provenance={"b": ("fc2", "lif2")})
    with pytest.raises(FitError) as info:
        partition(net, toy_target(neurons=64, fan_in_axons=8))
    assert str(info.value) == (
        "layer 'b' (NIR nodes fc2, lif2): one neuron needs 10 axons of 'fan_in_axons' but a core "
        "of toy has 8; give each neuron fewer inputs (sparser weights, smaller kernels, fewer input "
        "channels), or a chip with larger cores")


def test_a_network_larger_than_the_chip_names_the_resource_and_the_largest_layer():
    net = network({"a": 100, "b": 150}, [])
    with pytest.raises(FitError) as info:
        partition(net, toy_target(count=3, neurons=64))
    assert str(info.value) == (
        "the network needs at least 250 neurons of 'neurons' but the 3 cores of toy have 192; "
        "the largest demand is layer 'b' with 150 neurons; use fewer neurons per layer, "
        "or a chip with more cores")


def test_neuron_partition_rejects_unknown_methods():
    with pytest.raises(ValueError, match="method must be one of"):
        partition(network({"a": 1}, []), toy_target(neurons=4), method="magic")


def test_no_placement_within_the_limits_names_the_resource_layer_and_capacity():
    # 30 neurons on 3 cores of 10 fit the bound, but every neuron of 'a' feeds 'b' on
    # every core it spans, and each core sends at most 10 (neuron, core) pairs.
    net = network({"a": 10, "b": 20}, [("a", "b", dense(20, 10))])
    target = toy_target(count=3, neurons=10, fan_out_axons=10)
    for method, remedy in (("sequential", "or use the CP-SAT placement (method 'cpsat', the default)"),
                           ("cpsat", "or raise partitioner.time_limit_s")):
        with pytest.raises(FitError) as info:
            partition(net, target, method=method)
        message = str(info.value)
        assert message.startswith("no placement on the 3 cores of toy found ")
        assert "needs " in message and " axons of 'fan_out_axons' on a core that has 10; " in message
        assert "layer 'a'" in message or "layer 'b'" in message
        assert message.endswith(remedy)


def test_cores_needed_takes_the_largest_cores_first_and_ignores_unbounded_overflow():
    assert cores_needed(110, np.array([20, 100, 20])) == 2
    assert cores_needed(250, np.array([64, 64, 64])) is None
    assert cores_needed(250, np.full(128, np.iinfo(np.int64).max // 4)) == 1
    assert cores_needed(0, np.array([5])) == 0


def test_sources_whose_targets_exceed_a_core_need_a_fan_in_axon_per_core_they_reach():
    # Inputs i0 and i1 each feed 15 of the 30 neurons of a; a core holds 10 neurons and one
    # fan-in axon. Each input reaches at least ceil(15 / 10) = 2 cores: fan-in demand 4 ->
    # 4 cores (neurons alone: 3; one axon per source: 2). Four cores suffice.
    weights = sp.csr_array(np.repeat(np.eye(2), 15, axis=0))
    net = network({"a": 30}, [("in", "a", weights)], inputs={"in": 2})
    placement = partition(net, toy_target(count=6, neurons=10, fan_in_axons=1))
    assert (placement.lower_bound, placement.lower_bound_resource) == (4, "fan_in_axons")
    assert placement.cores_used == 4 and placement.gap == 0.0
    assert_within_limits(placement)
    assert_covers_every_neuron_once(placement, net)


def test_synapse_memory_floor_pays_one_header_per_list_a_source_must_be_split_into():
    cost = SynapseListCost.of(toy_target(neurons=8))      # 18-bit entries, 10-bit headers, 64-bit words
    assert cost.floor_bits(np.array([10, 10, 0]), np.array([1, 3, 2])).tolist() == [192, 256, 0]


def test_a_convolutional_layer_is_cut_into_spatial_tiles_holding_every_channel():
    # (4, 8, 8) neurons, 64 per core: each core takes whole positions, all 4 channels of each.
    pop = Population("conv", (4, 8, 8), {}, provenance=("conv",))
    net = HardwareNetwork("float", 1e-3, {}, {"conv": pop}, (), {"out": OutputPort("out", "conv")})
    placement = partition(net, toy_target(count=4, neurons=64), method="sequential")
    cores = placement.core_of("conv", 256).reshape(4, 8, 8)
    assert placement.cores_used == 4
    assert all(np.array_equal(cores[0], cores[k]) for k in range(1, 4))
    assert_covers_every_neuron_once(placement, net)


def test_every_resource_the_partitioner_bounds_has_advice_for_its_fit_error():
    # A missing entry turned "too few cores for the neuron profiles" (a 10^4-node chain on
    # loihi2) into a KeyError traceback instead of a FitError.
    from nirc.partition.explain import ADVICE, too_few_cores
    from nirc.partition.neuron_partition import RESOURCE_ORDER
    from nirc.target import CHIP_RESOURCES

    for resource in (*RESOURCE_ORDER, *CHIP_RESOURCES):
        assert resource in ADVICE, resource
    err = too_few_cores("neuron_profiles", 4999, 4096, 128, "loihi2", None)
    assert isinstance(err, FitError) and "4999 profiles of 'neuron_profiles'" in str(err)


def test_layers_with_equal_profile_values_share_one_profile_slot_of_a_core():
    # A core's profile table is shared by all its neurons: three layers with the same du, dv,
    # vth and bias exponent take one slot, a fourth with another vth a second one. (Counted
    # per layer, a 10^4-node chain of 5,000 equal layers needed 5,000 slots of loihi2's 4,096.)
    same = {"du": 4095, "dv": 410, "vth": 640, "bias_exp": 0}
    other = dict(same, vth=700)
    net = network({"a": 2, "b": 2, "c": 2, "d": 2},
                  [("in", "a", dense(2, 2)), ("a", "b", dense(2, 2)), ("b", "c", dense(2, 2)),
                   ("c", "d", dense(2, 2))], inputs={"in": 2})
    pops = {name: pop.with_(profile=np.zeros(2, np.int64), profiles=(other if name == "d" else same,))
            for name, pop in net.populations.items()}
    net = net.with_(populations=pops)
    one = partition(net, toy_target(count=1, neurons=8, neuron_profiles=2))
    assert one.cores_used == 1
    assert one.utilisation[0]["neuron_profiles"].used == 2
    with pytest.raises(FitError, match="neuron_profiles"):
        partition(net, toy_target(count=1, neurons=8, neuron_profiles=1))


def test_a_graph_of_many_populations_keeps_the_sequential_fill_and_says_so(monkeypatch):
    # The other greedy fills cost a pass over every block each: a 10^5-node chain's 50,000
    # layers keep the sequential fill in network order, which the notes say.
    from nirc.partition import neuron_partition

    net = network({"a": 4, "b": 4, "c": 4}, [("in", "a", dense(4, 4)), ("a", "b", dense(4, 4)),
                                              ("b", "c", dense(4, 4))], inputs={"in": 4})
    target = toy_target(count=4, neurons=6)
    tried = partition(net, target)
    assert not any("no other fills tried" in n for n in tried.notes)
    monkeypatch.setattr(neuron_partition, "ONE_FILL_POPULATIONS", 2)
    kept = partition(net, target)
    assert "start: sequential fill (no other fills tried: more than 2 populations)" in kept.notes
    assert_within_limits(kept)
    assert_covers_every_neuron_once(kept, net)


def test_a_deep_layer_on_a_system_is_cut_across_each_positions_channels_not_into_bands():
    # (6, 2, 3): one position's 6 channels outweigh a 4-neuron piece. With split_positions
    # (the system strategy's shares) each position's channels go in two parts of 3, so a
    # block's neurons share one receptive field; without, channel bands as before.
    from nirc.partition.blocks import _tiles

    assert _tiles((6, 2, 3), 4) is None
    tiles = _tiles((6, 2, 3), 4, split_positions=True)
    assert len(tiles) == 12
    neurons = [a for tile in tiles for a, b in tile for a in range(a, b)]
    assert sorted(neurons) == list(range(36))
    assert all(len({a % 6 for a, _ in tile}) == 1 and len(tile) == 3 for tile in tiles)
    assert [tile[0][0] % 6 for tile in tiles] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_a_fill_with_a_window_tops_up_the_cores_it_left_with_room():
    # Blocks of 6, 6, 4 and 4 neurons on 10-neuron cores: in turn they need 3 cores; a
    # block that first tries the cores before the current one needs 2 (6 + 4 twice).
    from nirc.partition.blocks import coarsen
    from nirc.partition.packing import sequential_fill

    net = network({"a": 6, "b": 6, "c": 4, "d": 4}, [])
    target = toy_target(count=4, neurons=10)
    cost = SynapseListCost.of(target)
    graph = coarsen(Connectivity.from_hwnet(net), cost, {"neurons": 10}, max_blocks=16,
                    block_size=6, target_name="toy")
    capacities = {"neurons": np.full(4, 10)}
    assert sequential_fill(graph, capacities, cost)[0].tolist() == [0, 1, 1, 2]
    assert sequential_fill(graph, capacities, cost, window=2)[0].tolist() == [0, 1, 0, 1]
