"""Speck memory accounting and layer -> core assignment (nirc.targets.speck.memory/assign)."""

import pytest

from nirc.errors import FitError
from nirc.targets.speck.assign import LayerToPlace, assign_layers
from nirc.targets.speck.chip import load_chip
from nirc.targets.speck.memory import LayerGeometry, ceil_log2, memory_demand


@pytest.fixture(scope="module")
def cores():
    return load_chip("speck2f").cores


def test_ceil_log2_is_exact_on_powers_of_two_and_neighbours():
    assert [ceil_log2(n) for n in (1, 2, 3, 4, 5, 8, 9, 1024, 1025)] == [0, 1, 2, 2, 3, 3, 4, 10, 11]


def test_sinabs_docs_example_conv_16_to_32_on_64x64_needs_8ki_kernel_and_128ki_neurons():
    demand = memory_demand(LayerGeometry(16, 64, 64, 32, 3, (1, 1), (1, 1)))
    assert (demand.kernel, demand.neuron, demand.bias) == (8192, 131072, 32)


def test_kernel_memory_rounds_kernel_area_and_output_channels_up_to_powers_of_two():
    # 5x5 = 25 -> 32 slots, 10 channels -> 16: 3 * 32 * 16
    assert memory_demand(LayerGeometry(3, 32, 32, 10, 5)).kernel == 3 * 32 * 16


def test_neuron_memory_rounds_each_output_axis_separately_and_uses_stride_and_padding():
    # (20 + 2 - 3) // 2 + 1 = 10 -> 16 rows; (33 - 3)//2 + 1 = 16 cols: 6 * 16 * 16
    g = LayerGeometry(1, 20, 33, 6, 3, stride=(2, 2), padding=(1, 0))
    assert (g.h_out, g.w_out) == (10, 16)
    assert memory_demand(g).neuron == 6 * 16 * 16


def test_layer_without_bias_needs_no_bias_memory():
    assert memory_demand(LayerGeometry(2, 8, 8, 4, 3, has_bias=False)).bias == 0


def test_speck2f_has_sinabs_core_memories(cores):
    assert [(c.kernel // 1024, c.neuron // 1024, c.bias) for c in cores] == [
        (16, 64, 1024)] * 3 + [(32, 32, 1024)] * 2 + [(64, 16, 1024)] * 2 + [(16, 16, 1024)] * 2


def test_assignment_prefers_the_smallest_cores_that_fit(cores):
    small = [LayerToPlace.of(f"l{i}", LayerGeometry(2, 16, 16, 4, 3)) for i in range(2)]
    assert assign_layers(small, cores).core_of == {"l0": 7, "l1": 8}


def test_assignment_gives_the_big_neuron_layer_a_64ki_core_and_the_big_kernel_a_64ki_kernel_core(cores):
    layers = [LayerToPlace.of("wide", LayerGeometry(2, 128, 128, 4, 3, padding=(1, 1))),  # 64Ki neurons
              LayerToPlace.of("deep", LayerGeometry(64, 8, 8, 64, 3, padding=(1, 1)))]    # 64Ki kernel
    core_of = assign_layers(layers, cores).core_of
    assert core_of["wide"] in (0, 1, 2) and core_of["deep"] in (5, 6)


def test_misfit_names_layer_memory_excess_best_core_and_a_fix(cores):
    layer = LayerToPlace.of("conv1", LayerGeometry(16, 64, 64, 32, 3, padding=(1, 1)))
    with pytest.raises(FitError) as err:
        assign_layers([layer], cores)
    msg = str(err.value)
    assert msg.startswith("node 'conv1': does not fit: neuron memory 128Ki exceeds the 64Ki of core 0 by 64Ki")
    assert "at most 16 output channels (now 32)" in msg
    assert "pool 2x2 earlier or use stride 2 so the output map shrinks from 64x64 to 32x32" in msg


def test_misfit_when_no_core_has_both_memories_says_so(cores):
    layer = LayerToPlace.of("k", LayerGeometry(64, 32, 32, 64, 3, padding=(1, 1)))  # 64Ki + 64Ki
    with pytest.raises(FitError, match="no single core has enough of every memory at once"):
        assign_layers([layer], cores)


def test_competition_for_big_cores_names_the_unplaced_layer_and_the_holders(cores):
    layers = [LayerToPlace.of(f"c{i}", LayerGeometry(2, 64, 64, 16, 3, padding=(1, 1)))
              for i in range(4)]   # each 64Ki neurons: only cores 0-2
    with pytest.raises(FitError) as err:
        assign_layers(layers, cores)
    msg = str(err.value)
    assert "cores it would fit are taken (core 0 holds" in msg and "core 2 holds" in msg
    assert "the best free core" in msg


def test_more_layers_than_cores_is_refused_naming_the_first_extra_layer(cores):
    layers = [LayerToPlace.of(f"l{i}", LayerGeometry(1, 4, 4, 1, 1)) for i in range(10)]
    with pytest.raises(FitError, match="node 'l9': the network needs 10 convolutional cores but "
                                       "the chip has 9"):
        assign_layers(layers, cores)


def test_the_same_layers_get_the_same_cores_on_every_run(cores):
    layers = [LayerToPlace.of(f"l{i}", LayerGeometry(4, 16, 16, 8, 3)) for i in range(9)]
    assert assign_layers(layers, cores).core_of == assign_layers(layers, cores).core_of
