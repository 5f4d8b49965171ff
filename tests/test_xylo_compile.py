"""Compiling NIR for Xylo: layout on the fixed fabric, quantization, emitted config, emulation.

The chain is the target's pass list (normalize ... xylo_quantize), then the
backend's emit; the emulator reads only the emitted files and must agree bit
for bit with the integer reference, and with xylosim built from the same files.
Networks that do not fit fail with a FitError naming the limit and the demand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nirc.errors import FitError, TargetError
from nirc.ir.nodes import LI, LIF, Affine, CubaLIF, Input, Linear, NIRGraph, Output
from nirc.neuron_models import get_model
from nirc.passes.context import PassContext
from nirc.passes.registry import get_pass
from nirc.target import load_target
from nirc.targets.xylo import backend
from nirc.targets.xylo.config import read_config, rockpool_specification

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DT = 1e-3


def lif(n, tau=0.02, th=1.0):
    return LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, th),
               v_reset=np.zeros(n))


def cuba(n, tau_mem=0.02, tau_syn=0.005, th=1.0):
    return CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.ones(n),
                   v_leak=np.zeros(n), v_threshold=np.full(n, th), v_reset=np.zeros(n), w_in=np.ones(n))


def graph(n_in=16, hidden=(30, 20), n_out=8, recurrent=True, seed=0, hidden_node=cuba, **extra_nodes):
    """Input -> Affine -> CubaLIF [recurrent] -> Affine -> CubaLIF ... -> Affine -> LIF readout -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([n_in])), "output": Output(shape=np.array([n_out]))}
    edges, prev, width = [], "input", n_in
    for k, n in enumerate(hidden):
        nodes[f"w{k}"] = Affine(weight=rng.normal(0.3, 25 / np.sqrt(width), (n, width)), bias=np.zeros(n))
        nodes[f"h{k}"] = hidden_node(n)
        edges += [(prev, f"w{k}"), (f"w{k}", f"h{k}")]
        if recurrent and k == 0:
            nodes["rec"] = Linear(weight=rng.normal(0, 5 / np.sqrt(n), (n, n)))
            edges += [("h0", "rec"), ("rec", "h0")]
        prev, width = f"h{k}", n
    nodes["wout"] = Affine(weight=rng.normal(0.5, 25 / np.sqrt(width), (n_out, width)), bias=np.zeros(n_out))
    nodes["readout"] = lif(n_out)
    edges += [(prev, "wout"), ("wout", "readout"), ("readout", "output")]
    nodes.update(extra_nodes)
    return NIRGraph(nodes=nodes, edges=edges)


def lower(g, target="xylo", granularity="layer", dt=DT):
    t = load_target(target)
    ctx = PassContext(model=get_model("float"), dt=dt, target_name=target, granularity=granularity)
    stage = g
    for name in t.passes:
        stage = get_pass(name)(stage, ctx)
    return stage, ctx.report, t


def events(steps=120, n=16, rate=0.3, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, n)) < rate).astype(np.uint8) * rng.integers(1, 4, (steps, n)).astype(np.uint8)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    net, report, target = lower(graph())
    out = backend.emit(net, target, tmp_path_factory.mktemp("xylo") / "build", report)
    return net, report, out


def test_hidden_layers_are_laid_out_one_after_another_with_feed_forward_blocks_in_w_rec(built):
    net, _, out = built
    spec, manifest = read_config(out)
    assert [(h["name"], h["neurons"]) for h in manifest["hidden"]] == [("h0", [0, 30]), ("h1", [30, 50])]
    assert manifest["readout"] == [{"name": "readout", "neurons": [0, 8], "shape": [8]}]
    w = spec.weights_rec[:, :, 0]
    assert np.count_nonzero(w[:30, :30]) > 0          # h0's recurrent block
    assert np.count_nonzero(w[:30, 30:50]) > 0        # h0 -> h1 feed-forward block
    assert np.count_nonzero(w[30:, :]) == 0           # h1 feeds only the readout
    assert np.count_nonzero(spec.weights_in[:, 30:]) == 0
    assert np.count_nonzero(spec.weights_out[:30]) == 0 and np.count_nonzero(spec.weights_out[30:50]) > 0
    assert spec.weights_rec[:, :, 1].any() == False    # noqa: E712  one synaptic time constant per layer


def test_emulator_reading_the_files_agrees_with_the_integer_reference(built):
    net, _, out = built
    x = {"input": events()}
    ref = backend.reference(net, x, record=True)
    emu = backend.emulate(out, x, record=True)
    assert emu.spikes["h0"].sum() > 0 and emu.outputs["output"].sum() > 0
    np.testing.assert_array_equal(emu.outputs["output"], ref.outputs["output"])
    for pop in ref.spikes:
        np.testing.assert_array_equal(emu.spikes[pop], ref.spikes[pop])
        for state in ref.states[pop]:
            np.testing.assert_array_equal(emu.states[pop][state], ref.states[pop][state])


def test_batched_emulation_equals_one_sample_at_a_time(built):
    _, _, out = built
    batch = np.stack([events(seed=s) for s in range(3)], axis=1)          # (T, B, 16)
    together = backend.emulate(out, {"input": batch}, batch=True)
    for b in range(3):
        alone = backend.emulate(out, {"input": batch[:, b]})
        np.testing.assert_array_equal(together.outputs["output"][:, b], alone.outputs["output"])


@pytest.mark.xylosim
def test_xylosim_built_from_the_emitted_config_agrees_with_nirc_emulate(built, xylosim_v2):
    from nirc.targets.xylo.xylosim_bridge import run_xylosim

    _, _, out = built
    spec, _ = read_config(out)
    x = events(steps=150, seed=5)
    emu = backend.emulate(out, {"input": x}, record=True)
    theirs = run_xylosim(spec, x)
    np.testing.assert_array_equal(emu.outputs["output"], theirs.spikes_out[0])
    np.testing.assert_array_equal(emu.spikes["h0"], theirs.spikes[0][:, :30])
    np.testing.assert_array_equal(emu.states["h1"]["v_mem"], theirs.v_mem[0][:, 30:50])
    np.testing.assert_array_equal(emu.states["readout"]["v_mem"], theirs.v_mem_out[0])


def test_rockpool_specification_uses_rockpools_names_and_int8_weights(built):
    _, _, out = built
    spec, _ = read_config(out)
    kwargs = rockpool_specification(spec)
    assert {"weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "dash_syn_2", "dash_mem_out",
            "dash_syn_out", "threshold", "threshold_out", "bias", "bias_out", "weight_shift_in",
            "weight_shift_rec", "weight_shift_out", "aliases", "dt"} == set(kwargs)
    assert kwargs["weights_in"].dtype == np.int8 and kwargs["weights_in"].shape == (16, 50, 2)
    assert kwargs["weights_rec"].shape == (50, 50, 2) and kwargs["weights_out"].shape == (50, 8)


def test_time_constants_become_bit_shifts_and_the_report_states_the_error(built):
    _, report, out = built
    spec, _ = read_config(out)
    # tau_mem 20 ms at dt 1 ms: log2(20) = 4.3 -> nearest dash 4; tau_syn 5 ms -> log2(5) = 2.3
    # -> 2; the fidelity search may take the shift beside the nearest (dash_steps says so).
    rows = {r["population"]: r for r in report["quantize"]["layers"]}
    step_mem, step_syn = rows["h0"]["dash_steps"]
    assert rows["h0"]["dash_mem"] == [4 + step_mem] and rows["h0"]["dash_syn"] == [2 + step_syn]
    assert set(spec.dash_mem[:20].tolist()) == {4 + step_mem}
    # Euler: v_decay = 1 - dt/tau = 0.95 -> tau/dt 20; Xylo's is 2**dash (16: 20 % short)
    assert rows["h0"]["tau_mem_relative_error"] == pytest.approx(abs(2 ** (4 + step_mem) / 20 - 1),
                                                                 abs=1e-6)
    assert 0 < rows["h0"]["weights_in_relative_rms_error"] < 0.01
    # each matrix takes the smallest shift that fits, so its largest weight uses 7 or 8 bits
    assert int(np.abs(spec.weights_in).max()) >= 64 and int(np.abs(spec.weights_rec).max()) >= 64
    assert json.loads((Path(out) / "report.json").read_text())["quantize"]["granularity"] == "layer"


def test_channel_quantization_gives_every_neuron_at_least_the_global_resolution():
    g = graph(hidden=(20,), seed=3)
    # Thresholds differing by 10x between neurons: channel scaling keeps each neuron's resolution.
    g.nodes["h0"] = cuba(20, th=1.0).__class__(**{**g.nodes["h0"].__dict__,
                                                 "v_threshold": np.geomspace(0.2, 2.0, 20)})
    # The range-based scales, before the pass's fidelity search multiplies them.
    t = load_target("xylo")
    ctx = PassContext(model=get_model("float"), dt=DT, target_name="xylo")
    stage = g
    for name in t.passes[:t.passes.index("xylo_quantize")]:
        stage = get_pass(name)(stage, ctx)
    device = backend.device_for(t)
    layer, _ = backend.quantized_network(stage, device, "layer")
    channel, rep = backend.quantized_network(stage, device, "channel")
    th_layer = layer.populations["h0"].params["threshold"]
    th_channel = channel.populations["h0"].params["threshold"]
    assert th_layer[0] < th_layer[-1] / 5                  # one scale: thresholds keep their 10x spread
    assert np.all(th_channel >= th_layer) and np.sum(th_channel > 2 * th_layer) >= 10
    assert rep["granularity"] == "channel"
    assert lower(g, granularity="channel")[1]["quantize"]["granularity"] == "channel"


def test_srnn_example_compiles_and_emulates(tmp_path):
    from nirc.nirio import read

    g = read(EXAMPLES / "srnn.nir")
    net, report, target = lower(g, dt=float(g.metadata.get("dt", DT)))
    out = backend.emit(net, target, tmp_path / "build", report)
    x = {"input": events(steps=200, rate=0.1)}
    emu = backend.emulate(out, x)
    np.testing.assert_array_equal(emu.outputs["output"], backend.reference(net, x).outputs["output"])
    assert emu.outputs["output"].sum() > 0


@pytest.mark.parametrize("target,change,limit,demand", [
    ("xylo", dict(n_in=17), "input_channels", "17 inputs"),
    ("xylo", dict(hidden=(600, 401)), "hidden_neurons", "1001 neurons"),
    ("xylo_imu", dict(hidden=(497,), recurrent=False), "hidden_neurons", "497 neurons"),
    # 9 spiking outputs fit 8 readout neurons, two per relay (tests/test_xylo_count_relay.py)
    ("xylo", dict(n_out=17), "output_neurons", "17 neurons"),
])
def test_networks_beyond_the_fabric_fail_naming_limit_and_demand(target, change, limit, demand):
    with pytest.raises(FitError) as err:
        lower(graph(**change), target=target)
    assert limit in str(err.value) and demand in str(err.value)


def test_fan_out_above_64_moves_extra_synapses_to_alias_copies_and_stays_exact(tmp_path, xylosim_v2):
    from nirc.targets.xylo.xylosim_bridge import run_xylosim

    net, report, target = lower(graph(hidden=(70, 20)))       # h0: 70 recurrent + 20 forward synapses
    out = backend.emit(net, target, tmp_path / "b", report)
    spec, manifest = read_config(out)
    # 90 synapses per h0 neuron: 64 stay, 26 move to one copy each (90 hidden + 70 copies)
    assert spec.n_hidden == 160
    assert spec.aliases[:3] == ((90,), (91,), (92,)) and spec.aliases[89] == ()
    assert np.count_nonzero(spec.weights_rec, axis=(1, 2)).max() == 64
    assert np.all(spec.threshold[90:] == 32767) and not spec.weights_in[:, 90:].any()
    assert any("alias copies" in note for note in report["quantize"]["notes"])
    x = events(steps=120, seed=3)
    emu = backend.emulate(out, {"input": x}, record=True)
    ref = backend.reference(net, {"input": x}, record=True)
    theirs = run_xylosim(spec, x)
    np.testing.assert_array_equal(emu.outputs["output"], ref.outputs["output"])
    np.testing.assert_array_equal(emu.outputs["output"], theirs.spikes_out[0])
    np.testing.assert_array_equal(emu.states["h1"]["v_mem"], theirs.v_mem[0][:, 70:90])
    # A copy repeats its neuron's spikes in the same step.
    np.testing.assert_array_equal(theirs.spikes[0][:, 90:], theirs.spikes[0][:, :70])
    assert emu.spikes["h1"].sum() > 0


def test_fan_out_that_even_alias_copies_cannot_hold_fails():
    with pytest.raises(FitError, match=r"fan_out_per_neuron.*recurrent synapses.*allows 64.*needs \d+ hidden "
                                       r"neurons of 496"):
        lower(graph(hidden=(300,)), target="xylo_imu")


def test_time_constant_shorter_than_dt_fails():
    g = graph(hidden=(20,))
    g.nodes["h0"] = cuba(20, tau_mem=0.0005)
    with pytest.raises(FitError, match=r"node 'h0'.*tau_mem.*shorter than dt"):
        lower(g)


def test_readout_fed_straight_from_the_input_fails():
    # Non-spiking (v is read): a spiking layer there runs on hidden neurons, counted through
    # relays (tests/test_xylo_count_relay.py).
    rng = np.random.default_rng(0)
    g = NIRGraph(nodes={"input": Input(shape=np.array([16])), "w": Affine(weight=rng.normal(size=(4, 16)),
                                                                        bias=np.zeros(4)),
                        "readout": LI(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4)),
                        "output": Output(shape=np.array([4]))},
                 edges=[("input", "w"), ("w", "readout"), ("readout", "output")])
    with pytest.raises(FitError, match="hidden neurons only"):
        lower(g)


def test_emulate_rejects_inputs_that_are_not_event_counts(built):
    _, _, out = built
    with pytest.raises(TargetError, match="input 'input'|node 'input'"):
        backend.emulate(out, {"input": np.full((5, 16), 0.5)})


def test_convolution_unrolling_beyond_the_hidden_pool_fails_naming_the_layer():
    from nirc.ir.nodes import Conv2d, Flatten

    rng = np.random.default_rng(0)
    n_conv = 64 * 4 * 4                       # 64 channels of 4x4: 1024 hidden neurons > 1000
    g = NIRGraph(nodes={
        "input": Input(shape=np.array([1, 4, 4])),
        "conv": Conv2d(weight=rng.normal(size=(64, 1, 3, 3)), stride=np.array([1, 1]),
                       padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(64),
                       input_shape=np.array([4, 4])),
        "h": lif(n_conv).__class__(**{k: v.reshape(64, 4, 4) if isinstance(v, np.ndarray) else v
                                      for k, v in lif(n_conv).__dict__.items()}),
        "flat": Flatten(start_dim=0, end_dim=-1, input_type=np.array([64, 4, 4])),
        "w": Affine(weight=rng.normal(size=(4, n_conv)), bias=np.zeros(4)),
        "readout": lif(4), "output": Output(shape=np.array([4]))},
        edges=[("input", "conv"), ("conv", "h"), ("h", "flat"), ("flat", "w"), ("w", "readout"),
               ("readout", "output")])
    with pytest.raises(FitError, match=r"node 'h'.*hidden layers need 1024 neurons.*xylo has 1000"):
        lower(g)


def _rockpool_xylosim(monkeypatch):
    """rockpool's XyloAudio 2 XyloSim class, imported without rockpool.devices.xylo's samna-only modules.

    Importing the package runs every Xylo family's hardware helpers, which need samna (a
    stub here that tries to pip-install itself); only xylo_sim.py and its V1 base are needed.
    """
    import importlib
    import sys
    import types

    monkeypatch.setitem(sys.modules, "samna", types.ModuleType("samna"))
    rockpool = pytest.importorskip("rockpool")
    base = Path(rockpool.__file__).parent / "devices" / "xylo"
    for name, path in [("rockpool.devices.xylo", base), ("rockpool.devices.xylo.syns61300", base / "syns61300"),
                       ("rockpool.devices.xylo.syns61201", base / "syns61201")]:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            monkeypatch.setitem(sys.modules, name, package)
    return importlib.import_module("rockpool.devices.xylo.syns61201.xylo_sim").XyloSim


@pytest.mark.xylosim
def test_rockpool_xylosim_runs_the_emitted_config_like_nirc_emulate(built, monkeypatch, xylosim_v2):
    XyloSim = _rockpool_xylosim(monkeypatch)
    _, _, out = built
    spec, _ = read_config(out)
    module = XyloSim.from_specification(**rockpool_specification(spec))
    x = events(steps=100, seed=7)
    spikes, _, recorded = module.evolve(x.astype(int), record=True)
    ours = backend.emulate(out, {"input": x}, record=True)
    np.testing.assert_array_equal(np.asarray(spikes), ours.outputs["output"])
    np.testing.assert_array_equal(np.asarray(recorded["Vmem"])[:, :30], ours.states["h0"]["v_mem"])
    np.testing.assert_array_equal(np.asarray(recorded["Isyn"])[:, 30:50], ours.states["h1"]["i_syn"])
    assert ours.outputs["output"].sum() > 0


def test_nirc_compile_and_verify_work_for_xylo_from_the_command_line(tmp_path, capsys):
    from nirc.cli import main

    assert main(["compile", str(EXAMPLES / "srnn.nir"), "--target", "xylo", "-o", str(tmp_path / "b")]) == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["backend"] == "xylo" and config["format"] == "nirc.xylo"
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert {row["population"] for row in report["quantization"]} == {"1.lif", "3"}
    assert main(["verify", str(EXAMPLES / "srnn.nir"), "--target", "xylo", "--steps", "40",
                 "--samples", "2"]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out


def test_a_model_that_does_not_fit_exits_2_without_output(tmp_path, capsys):
    from nirc.cli import main

    assert main(["compile", str(EXAMPLES / "mlp.nir"), "--target", "xylo", "-o", str(tmp_path / "b")]) == 2
    assert "64 inputs" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_a_damaged_config_is_refused_naming_file_and_field(built, tmp_path):
    import shutil

    _, _, out = built
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    config = json.loads((broken / "config.json").read_text())
    config["version"] = 99
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(TargetError, match=r"config.json: parameter 'version': version 99"):
        read_config(broken)
    config["version"] = 1
    (broken / "config.json").write_text(json.dumps(config))
    with np.load(broken / "arrays.npz") as data:
        arrays = dict(data)
    arrays["dash_mem"] = np.full_like(arrays["dash_mem"], 16)
    np.savez(broken / "arrays.npz", **arrays)
    with pytest.raises(TargetError, match=r"arrays.npz: parameter 'dash_mem': values span \[16, 16\], outside \[0, 15\]"):
        read_config(broken)


def test_xylo_target_files_are_checked_field_by_field(tmp_path):
    import yaml

    from nirc.targets.xylo.device import XyloDevice

    text = (Path(__file__).resolve().parents[1] / "targets" / "xylo.yaml").read_text()
    data = yaml.safe_load(text)
    data["backend_options"]["max_hidden_spikes"] = 15
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TargetError, match=r"a.yaml: parameter 'backend_options.max_hidden_spikes'.*fixes this at 31"):
        XyloDevice.of(load_target(str(tmp_path / "a.yaml")))
    data["backend_options"]["max_hidden_spikes"] = 31
    data["cores"]["limits"]["neurons"] = 1000
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TargetError, match=r"parameter 'cores.limits.neurons'.*1000 \+ 8"):
        XyloDevice.of(load_target(str(tmp_path / "b.yaml")))
    del data["backend_options"]["hidden_neurons"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TargetError, match=r"backend_options.hidden_neurons"):
        load_target(str(tmp_path / "c.yaml"))


def test_compiling_twice_gives_byte_identical_files(tmp_path):
    from nirc.cli import main

    for name in ("a", "b"):
        assert main(["-q", "compile", str(EXAMPLES / "srnn.nir"), "--target", "xylo", "-o", str(tmp_path / name)]) == 0
    for file in ("config.json", "arrays.npz", "report.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_a_non_spiking_li_readout_is_read_as_voltage_in_float_units(tmp_path):
    from nirc.emulator import Chip
    from nirc.ir.nodes import LI
    from nirc.verify import verify

    g = graph(hidden=(30,), seed=2)
    g.nodes["readout"] = LI(tau=np.full(8, 0.02), r=np.ones(8), v_leak=np.zeros(8))
    report = verify(g, "xylo", steps=150, samples=3, out_dir=tmp_path / "b")
    assert report.bit_exact
    assert report.outputs[0]["voltage_correlation"] > 0.99
    chip = Chip.load(tmp_path / "b")
    scale = np.asarray(chip.outputs["output"]["v_scale"])
    assert scale.shape == (8,) and np.all(scale > 1)
    raw = chip.run({"input": events(steps=50)}).outputs["output"]
    np.testing.assert_allclose(chip.to_float("output", raw), raw / scale)
