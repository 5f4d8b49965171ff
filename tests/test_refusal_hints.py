"""Each class of refusal prints why/next lines naming its real cause and a fix the CLI offers.

- a time constant below dt: the node, the exporter recognised and the dt it implies;
- a topology refusal: what to change in the graph (never "the chip is too small");
- a whole-chip resource refusal: the layer that dominates it, with the numbers.
And an snnTorch recurrent export compiles for Xylo with no options at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from nirc.cli import main
from nirc.ir.nodes import LI, Affine, CubaLIF, Input, LIF, Linear, NIRGraph, Output
from nirc.nirio.writer import write

ROOT = Path(__file__).resolve().parent.parent
SRNN = ROOT / "examples" / "srnn.nir"
SNNTORCH_DT = np.float32(1e-4)


def snntorch_lif(n, beta, seed):
    """An LIF as snnTorch 1.0 writes it: tau = 1e-4/(1 - beta), r = tau/1e-4."""
    b = np.random.default_rng(seed).uniform(*beta, size=n).astype(np.float32)
    tau = SNNTORCH_DT / (1 - b)
    return LIF(tau=tau, r=tau / SNNTORCH_DT, v_leak=np.zeros(n, np.float32),
               v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))


def snntorch_rnn(n_in=16, hidden=32, n_out=4, seed=0) -> NIRGraph:
    """RLeaky hidden layer + Synaptic readout, as snnTorch's export_to_nir nests them."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 0.8, n_out).astype(np.float32), \
        rng.uniform(0.7, 0.9, n_out).astype(np.float32)
    tau_syn, tau_mem = SNNTORCH_DT / (1 - a), SNNTORCH_DT / (1 - b)
    readout = CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / SNNTORCH_DT,
                      v_leak=np.zeros(n_out, np.float32), w_in=tau_syn / SNNTORCH_DT,
                      v_threshold=np.ones(n_out, np.float32),
                      v_reset=np.zeros(n_out, np.float32))
    rleaky = NIRGraph(nodes={"input": Input(shape=np.array([hidden])),
                             "lif": snntorch_lif(hidden, (0.6, 0.9), seed),
                             "w_rec": Affine(weight=rng.normal(0, 0.2, (hidden, hidden)),
                                             bias=np.zeros(hidden)),
                             "output": Output(shape=np.array([hidden]))},
                      edges=(("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                             ("lif", "output")))
    return NIRGraph(nodes={"input": Input(shape=np.array([n_in])),
                           "0": Linear(weight=rng.normal(0, 0.5, (hidden, n_in))),
                           "1": rleaky,
                           "2": Linear(weight=rng.normal(0, 0.5, (n_out, hidden))),
                           "3": readout, "output": Output(shape=np.array([n_out]))},
                    edges=(("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"),
                           ("3", "output")))


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if line and not line.startswith(("warning:",)) and "assuming" not in line]


def test_snntorch_recurrent_export_compiles_for_xylo_with_no_options(tmp_path):
    model = tmp_path / "snntorch_rnn.nir"
    write(model, snntorch_rnn())
    assert main(["compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b")]) == 0
    import json

    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["dt"] == pytest.approx(1e-4) and report["dt_source"] == "exporter convention"
    assert report["convention"]["exporter"] == "snntorch"
    assert report["convention"]["sources"]["dt"] == "detection"
    assert any("r = tau/1e-4" in e for e in report["convention"]["evidence"])


@pytest.mark.parametrize("options", [["--from", "nir"], ["--dt", "1e-3"]])
def test_time_constant_below_dt_names_the_exporter_and_the_dt_it_implies(tmp_path, capsys,
                                                                         options):
    model = tmp_path / "snntorch_rnn.nir"
    write(model, snntorch_rnn())
    assert main(["compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b"),
                 *options]) == 2
    err = errors(capsys)
    assert err[0].startswith(f"error: {model}: node '1.lif', parameter 'tau_mem': membrane "
                             f"time constant")
    assert err[1].startswith("  why: the model is valid, but at dt = 0.001 s its time "
                             "constant")
    assert "the file looks like an snnTorch export, whose convention implies dt = 0.0001 s" \
        in err[1]
    assert "too small" not in err[1]
    assert err[2] == ("  next: run with --dt 0.0001, or without --dt and --from so that "
                      "snnTorch's convention applies")
    assert not (tmp_path / "b").exists()


def test_time_constant_below_dt_of_an_unknown_file_asks_for_a_dt_that_fits(tmp_path, capsys):
    n = 8
    graph = NIRGraph(nodes={"input": Input(shape=np.array([4])),
                            "fc": Affine(weight=np.ones((n, 4)), bias=np.zeros(n)),
                            "h": LIF(tau=np.full(n, 5e-4), r=np.full(n, 3.0),
                                     v_leak=np.zeros(n), v_threshold=np.ones(n)),
                            "ro": Affine(weight=np.ones((2, n)), bias=np.zeros(2)),
                            "out_lif": LIF(tau=np.full(2, 0.02), r=np.full(2, 3.0),
                                           v_leak=np.zeros(2), v_threshold=np.ones(2)),
                            "output": Output(shape=np.array([2]))},
                     edges=(("input", "fc"), ("fc", "h"), ("h", "ro"), ("ro", "out_lif"),
                            ("out_lif", "output")))
    model = tmp_path / "hand.nir"
    write(model, graph)
    assert main(["compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b")]) == 2
    err = errors(capsys)
    assert "(dt: the target's default)" in err[1]
    assert err[2] == ("  next: pass --dt no longer than the shortest time constant (0.0005 s), "
                      "or --from EXPORTER if a framework wrote the file ('nirc inspect' shows "
                      "what was detected)")


def test_topology_refusal_says_what_to_change_in_the_graph(tmp_path, capsys):
    # A non-spiking readout (its v is the output): a spiking one straight after the input
    # fits, on hidden neurons counted through relays (tests/test_xylo_count_relay.py).
    n = 4
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3])),
                            "fc": Affine(weight=np.ones((n, 3)), bias=np.zeros(n)),
                            "readout": LI(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n)),
                            "output": Output(shape=np.array([n]))},
                     edges=(("input", "fc"), ("fc", "readout"), ("readout", "output")))
    model = tmp_path / "shallow.nir"
    write(model, graph)
    assert main(["compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b")]) == 2
    err = errors(capsys)
    assert "takes input straight from 'input'" in err[0]
    assert err[1] == ("  why: the model is valid and small enough, but Xylo's fixed wiring "
                      "(input -> hidden -> readout) cannot express this graph")
    assert err[2] == ("  next: add a hidden neuron layer between 'input' and 'readout' in the "
                      "model, then export it again")


def test_whole_chip_refusal_names_the_layer_that_dominates_with_the_numbers(tmp_path, capsys):
    data = yaml.safe_load((ROOT / "targets" / "spinnaker2.yaml").read_text())
    data["name"] = "tiny_router"
    data["chip"]["routing_entries"] = 3
    data["cores"]["limits"]["neurons"] = 16    # spreads the 64-neuron hidden layer
    chip = tmp_path / "tiny_router.yaml"
    chip.write_text(yaml.safe_dump(data))
    assert main(["compile", str(SRNN), "--target", str(chip), "-o", str(tmp_path / "b")]) == 2
    err = errors(capsys)
    assert "of 'routing_entries' but tiny_router has 3 for the whole chip; the largest " \
           "demand is layer" in err[0]
    assert "%)" in err[0]
    assert err[1].startswith("  why: the model is valid, but the chip is too small for it. "
                             "'routing_entries' counts")
