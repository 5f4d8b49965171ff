"""Systems of chips at scale: compile time, peak memory, chips vs bound, messages vs the sequential fill.

    .venv/bin/python benchmarks/bench_multichip.py [--sizes 1e7 1e8] [--chains 1e4 1e5]

Networks (tests/multichip_networks.py), on the 48-chip spinnaker2_board:

- cnn: a Sinabs-style CNN (IF neurons, three 5x5 convolutions; no dense readout,
  whose 10^4-wide neurons exceed a SpiNNaker PE's synapse memory),
  compiled from its NIR graph (every pass, calibration, placement, emit);
- recurrent-sheet: a random-sparse recurrent layer on a 2-D sheet (each neuron
  fed by 100 draws from a Gaussian of SHEET_SIGMA_NEURONS = 6 neurons around it,
  about 92 distinct sources, at every size, as in spatially embedded cortical and
  reservoir models) whose neurons the network numbers at RANDOM: the placement must
  find the neighbourhoods in the synapses (chips.connectivity_order), the sequential
  fill cuts the random numbering. (An index-local layer, neighbours within +-390 in
  index order, was measured before: there the sequential fill is already near the
  best cut, so it says nothing about the partitioner.) 10^5 neurons at 10^7
  synapses, 10^6 at 10^8, with an input and a readout;
- recurrent-uniform (10^7 only): the same layer with sources drawn uniformly, the
  case no placement can beat the fill: on k balanced chips a neuron with d = 100
  random targets reaches (k - 1)(1 - (1 - 1/k)^d) other chips, k - 1 to within
  1e-17 at k = 3, whatever the cut (at 10^8 every spike reaches nearly all of ~30
  chips and the links cannot carry that at any rate worth simulating).
  Both are built directly as hardware networks (NIR has no sparse node: a dense
  matrix would be 10^11 entries at 10^8), quantized, placed with hidden neurons
  at 0.01 spikes per step (10 Hz at 1 ms steps; there is no float model at this
  size to measure them, and every neuron spiking every step would overload every
  link), latency-balanced and emitted as a compile does.

Plus the 64x64 Sinabs-style CNN of tests/test_multichip.py on
loihi2_kapoho_point. Each compile runs in its own subprocess; peak memory is
its ru_maxrss right after the compile. Then, in the same process, the same
network is placed with ``method="sequential"`` (the naive fill of the
system's cores in network order) for the side-by-side messages between chips.
Chains of 10^4 and 10^5 nodes (Affine -> LIF pairs of two neurons) time
``nirc inspect`` and ``nirc compile`` (loihi2) as subprocesses, wall and CPU seconds
(the CPU the work itself took, on a shared machine), with the compile's stages
(timings.json, wall seconds), cores, and whether the fidelity runs fit the compile's layer-step
budget (nirc.fidelity.LAYER_STEP_BUDGET: the 10^5 chain's do not, and report.json
says so). The chain's file states dt = 1 ms in its metadata, as an exporter that
knows its time step writes it: without it nirc takes tau = 10 ms with r = 1 for a
Sinabs export (dt 1 s, several spikes per step), where a gain of 1.6 per layer
multiplies the spike counts until they overflow, which no trained network does.
Prints tables and writes benchmarks/results/multichip.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = HERE / "results" / "multichip.json"
BOARD = "spinnaker2_board"
# (side, channels) of the CNN, and (neurons, fan-in) of the recurrent nets, per size.
CNN = {1e7: (64, (9, 18, 36)), 1e8: (128, (15, 30, 60))}
RECURRENT = {1e7: (100_000, 100), 1e8: (1_000_000, 100)}
# The recurrent nets: "sheet" (neighbours on a 2-D sheet, numbered at random) at every size;
# "uniform" (any neuron feeds any) at 10^7 only: at 10^6 neurons each neuron reaches nearly
# every chip, whatever the placement, and the links cannot carry that.
RECURRENT_KINDS = {"recurrent-sheet": "sheet", "recurrent-uniform": "uniform"}
UNIFORM_SIZES = (1e7,)
# Gaussian width of the sheet's neighbourhood in neurons, the same at every size: a PE's
# 256 neighbours then draw on about (16 + 4 x 6)^2 = 1600 source rows, which fit its 64 KiB
# of synapse memory (a width growing with the sheet, SHEET_SIGMA x side, would spread their
# fan-in over more rows than fit, as cortical models keep connectivity local).
SHEET_SIGMA_NEURONS = 6.0
# Spikes per step of the hidden neurons when placing (10 Hz at 1 ms steps, a cortical rate;
# no float model exists to measure them at this size): link capacity is enforced against
# these. Inputs spike at 0.05 per step.
RECURRENT_RATES = {"hidden": 0.01, "readout": 0.01, "input": 0.05}
CHAIN_TIMEOUT_S = 900
CASE_TIMEOUT_S = 900


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu_s(who=resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds: on a shared machine, the time the work itself took."""
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def recurrent_network(n: int, fan_in: int, target, connectivity: str = "sheet"):
    """The quantized hardware network of multichip_networks.recurrent_sparse at n neurons
    (``connectivity``: see recurrent_matrices; neurons numbered at random), built from a
    small NIR instance's populations with large sparse tables."""
    import scipy.sparse as sp

    from multichip_networks import recurrent_matrices, recurrent_sparse
    from nirc.driver import run_passes
    from nirc.neuron_models import get_model
    from nirc.passes.context import PassContext
    from nirc.hwnet import InputPort

    n_in, n_out = 1024, 10
    small = recurrent_sparse(n=64, fan_in=8, n_in=16, n_out=n_out)
    ctx = PassContext(model=get_model(target.neuron_model), dt=1e-3, method="euler",
                      granularity="layer", formats=target.formats.model_dump(),
                      target_name=target.name, file=None, target=target)
    net = run_passes(small, ["normalize", "discretize", "fuse", "unroll"], ctx)
    rng = np.random.default_rng(0)
    sizes = {"hidden": n, "readout": n_out}

    def grown(pop):
        size = sizes[pop.name]
        params = {k: np.full(size, np.asarray(v).reshape(-1)[0]) for k, v in pop.params.items()}
        return pop.with_(shape=(size,), params=params)

    populations = {k: grown(p) for k, p in net.populations.items()}
    w_in, w_rec, w_out = recurrent_matrices(n, fan_in, n_in, n_out, rng, connectivity,
                                            sigma=SHEET_SIGMA_NEURONS)
    matrices = {("input", "hidden"): w_in, ("hidden", "hidden"): w_rec,
                ("hidden", "readout"): w_out}
    del w_in, w_rec, w_out
    tables = []
    for t in net.tables:
        w = sp.csr_array(matrices[(t.source, t.target)])
        gain = float(np.asarray(net.populations[t.target].params.get("input_gain", 1.0)).reshape(-1)[0]) \
            if "input_gain" in net.populations[t.target].params else 1.0
        tables.append(t.with_(weights=sp.csr_array(w * gain) if gain != 1.0 else w))
    big = net.with_(populations=populations, tables=tuple(tables),
                    inputs={"input": InputPort("input", (n_in,))})
    del matrices, tables
    return run_passes(big, ["quantize"], ctx), ctx


def one(kind: str, size: float, target_name: str) -> dict:
    """Compile one network in this process; then place it with the sequential fill."""
    from nirc.driver import _with_link_latency, compile
    from nirc.emitter import build_config, write_build
    from nirc.errors import FitError
    from nirc.partition import partition
    from nirc.target import load_target

    target = load_target(target_name)
    out: dict = {"network": kind, "size": size, "target": target_name}
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        start, cpu = time.perf_counter(), _cpu_s() + _cpu_s(resource.RUSAGE_CHILDREN)
        if kind == "cnn":
            from multichip_networks import sinabs_cnn

            side, channels = CNN.get(size, (64, (8, 16, 32)))
            n_out = 10 if target.system.chip == "loihi2" else 0
            result = compile(sinabs_cnn(side, channels, kernel=5, n_out=n_out), target, build,
                             calibration_steps=20)
            net, placement, timings = result.network, result.placement, result.timings
            rates = None
        else:
            n, fan_in = RECURRENT[size]
            timings = {}
            t0 = time.perf_counter()
            net, ctx = recurrent_network(n, fan_in, target, RECURRENT_KINDS[kind])
            timings["build+quantize"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rates = RECURRENT_RATES
            placement = partition(net, target, rates=rates)
            timings["partition"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            net, placement = _with_link_latency(net, placement, target, ctx)
            config, arrays = build_config(net, placement, target.name)
            build.mkdir()
            write_build(build, config, arrays, {"placement": placement.to_dict()})
            timings["emit"] = time.perf_counter() - t0
        out["compile_s"] = round(time.perf_counter() - start, 2)
        # CP-SAT solves in child processes: their CPU seconds count too.
        out["compile_cpu_s"] = round(_cpu_s() + _cpu_s(resource.RUSAGE_CHILDREN) - cpu, 2)
        out["peak_rss_mb"] = _peak_mb()
        out["stages_s"] = {k: round(v, 2) for k, v in timings.items()}
        out["build_mb"] = round(sum(p.stat().st_size for p in build.iterdir() if p.is_file()) / 2**20, 1)
    s = placement.system
    out.update(neurons=net.neuron_count, synapses=net.synapse_count, cores=placement.cores_used,
               chips=s["chips_used"], chip_lower_bound=s["chip_lower_bound"],
               bound_resource=s["chip_lower_bound_resource"],
               inter_chip_messages=round(s["inter_chip_messages"], 1),
               link_messages=round(s["link_messages"], 1),
               chip_assignment=next((n for n in placement.notes if n.startswith("chips: ")), ""),
               bound_cores=s.get("chip_lower_bound_cores"),
               bound_cores_resource=s.get("chip_lower_bound_cores_resource"),
               busiest_link=round(max((m for *_, m in s["links"]), default=0.0), 1))
    # The compile's row first: a baseline that does not finish in time leaves it standing.
    print(json.dumps({**out, "sequential": None}), flush=True)
    if kind == "cnn":
        from nirc.driver import spike_rates
        from multichip_networks import sinabs_cnn

        side, channels = CNN.get(size, (64, (8, 16, 32)))
        n_out = 10 if target.system.chip == "loihi2" else 0
        rates = spike_rates(sinabs_cnn(side, channels, kernel=5, n_out=n_out), net.dt, "euler", 20, 0)
    start = time.perf_counter()
    # The baseline is measured even where it overloads a link (noted in its row). Where the
    # naive fill cannot hold the network at all (a core's limit it breaks), the row says why.
    try:
        sequential = partition(net, target, method="sequential", check_links=False,
                               **({"rates": rates} if rates else {}))
    except FitError as err:
        out["sequential"] = {"seconds": round(time.perf_counter() - start, 2),
                             "error": str(err).splitlines()[0][:300]}
        return out
    q = sequential.system
    out["sequential"] = {"seconds": round(time.perf_counter() - start, 2), "chips": q["chips_used"],
                         "inter_chip_messages": round(q["inter_chip_messages"], 1),
                         "link_messages": round(q["link_messages"], 1),
                         "links_overloaded": len(q["link_overloads"])}
    return out


def chain_row(nodes: float) -> dict:
    """Write a chain NIR file, then time 'nirc inspect' and 'nirc compile' on it."""
    row: dict = {"network": "chain", "nodes": int(nodes)}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "chain.nir"
        subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, sys.argv[3]); from multichip_networks import chain; "
                        "from nirc.nirio import write; write(sys.argv[1], chain(int(sys.argv[2])))",
                        str(model), str(int(nodes)), str(ROOT / "tests")], check=True)
        nirc = [sys.executable, "-m", "nirc"]
        for what, cmd in (("inspect", [*nirc, "inspect", str(model), "--json"]),
                          ("compile", [*nirc, "compile", str(model), "--target", "loihi2", "-o",
                                       str(Path(tmp) / "build")])):
            start, cpu = time.perf_counter(), _cpu_s(resource.RUSAGE_CHILDREN)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHAIN_TIMEOUT_S)
                ok = proc.returncode == 0
                row[f"{what}_s"] = round(time.perf_counter() - start, 2)
                row[f"{what}_cpu_s"] = round(_cpu_s(resource.RUSAGE_CHILDREN) - cpu, 2)
                if not ok:
                    row[f"{what}_error"] = proc.stderr.strip().splitlines()[-1][:200]
            except subprocess.TimeoutExpired:
                row[f"{what}_s"] = None
                row[f"{what}_error"] = f"not finished after {CHAIN_TIMEOUT_S} s"
        build = Path(tmp) / "build"
        if (build / "report.json").exists():
            report = json.loads((build / "report.json").read_text())
            fidelity = report["pass_reports"].get("fidelity", {})
            row.update(cores=report["cores_used"],
                       fidelity=fidelity.get("agreement", fidelity.get("not_measured")),
                       traffic_from=report["traffic"]["estimated_from"])
            stages = json.loads((build / "timings.json").read_text())["stages"]
            row["stages_s"] = {k: round(v, 2) for k, v in stages.items()}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="*", default=[1e7, 1e8])
    parser.add_argument("--chains", type=float, nargs="*", default=[1e4, 1e5])
    parser.add_argument("--kinds", nargs="*", default=["cnn", *RECURRENT_KINDS])
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT_S,
                        help="seconds a case may take (compile and the sequential placement)")
    parser.add_argument("--no-kapoho", action="store_true",
                        help="skip the 64x64 CNN on loihi2_kapoho_point")
    parser.add_argument("--note", default="", help="a note to record in the JSON")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "SIZE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        kind, size, target = args.one
        print(json.dumps(one(kind, float(size), target)))
        return 0
    rows = []
    cases = [] if args.no_kapoho else [("cnn", 0.0, "loihi2_kapoho_point")]
    cases += [(kind, size, BOARD) for size in args.sizes for kind in args.kinds
              if kind != "recurrent-uniform" or size in UNIFORM_SIZES]
    for kind, size, target in cases:
        started = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", kind, str(size), target],
                                  capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired as timeout:
            printed = (timeout.stdout or b"")
            printed = printed.decode() if isinstance(printed, bytes) else printed
            lines = [line for line in printed.strip().splitlines() if line.startswith("{")]
            if lines:           # compiled; the sequential baseline did not finish
                row = json.loads(lines[-1])
                row["sequential"] = {"error": f"not finished within the {args.timeout:g} s "
                                              f"the case had"}
                rows.append(row)
                print(f"  {kind} {size:g} on {target}: baseline not finished", file=sys.stderr)
                continue
            rows.append({"network": kind, "size": size, "target": target,
                         "error": f"not finished after {args.timeout:g} s"})
            print(f"  {kind} {size:g} on {target}: not finished after {args.timeout:g} s",
                  file=sys.stderr)
            continue
        printed = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
        if proc.returncode != 0 and printed:    # compiled; the baseline's process failed
            row = json.loads(printed[-1])
            row["sequential"] = {"error": (proc.stderr.strip().splitlines() or ["killed"])[-1][:300]}
            rows.append(row)
            print(f"  {kind} {size:g} on {target}: baseline failed", file=sys.stderr)
            continue
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            rows.append({"network": kind, "size": size, "target": target,
                         "seconds": round(time.perf_counter() - started, 1),
                         "error": (proc.stderr.strip().splitlines() or ["killed"])[-1]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        RESULTS.with_suffix(".partial.json").write_text(json.dumps(rows, indent=1) + "\n")
        print(f"  {kind} {row['synapses']} synapses on {target}: {row['compile_s']} s, "
              f"{row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    chains = []
    for n in args.chains:
        chains.append(chain_row(n))
        print(f"  chain of {int(n)} nodes: {chains[-1]}", file=sys.stderr)

    print(f"\n{'network':>9} {'target':>20} {'neurons':>9} {'synapses':>11} {'compile s':>9} "
          f"{'peak MB':>8} {'chips':>5} {'bound':>5} {'msgs/step':>10} {'seq msgs':>10} "
          f"{'fewer':>6}")
    for r in rows:
        if "error" in r:
            print(f"{r['network']:>9} {r['target']:>20} error: {r['error']}")
            continue
        seq = (r["sequential"] or {}).get("inter_chip_messages")
        fewer = f"{(1 - r['inter_chip_messages'] / seq) * 100:.0f}%" if seq else "-"
        r["fewer_messages_than_sequential"] = round(1 - r["inter_chip_messages"] / seq, 4) if seq else None
        print(f"{r['network']:>9} {r['target']:>20} {r['neurons']:>9} {r['synapses']:>11} "
              f"{r['compile_s']:>9} {r['peak_rss_mb']:>8.0f} {r['chips']:>5} "
              f"{r['chip_lower_bound']:>5} {r['inter_chip_messages']:>10.0f} "
              + (f"{seq:>10.0f}" if seq is not None else f"{'-':>10}") + f" {fewer:>6}")
    print(f"\n{'chain nodes':>11} {'inspect s':>10} {'cpu s':>6} {'compile s':>10} {'cpu s':>6} "
          f"{'cores':>5}  fidelity")
    for c in chains:
        print(f"{c['nodes']:>11} {c.get('inspect_s') or '-':>10} {c.get('inspect_cpu_s') or '-':>6} "
              f"{c.get('compile_s') or '-':>10} {c.get('compile_cpu_s') or '-':>6} "
              f"{c.get('cores', '-'):>5}  {c.get('fidelity', '')} "
              f"{c.get('inspect_error', '')} {c.get('compile_error', '')}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Rows and chains of this run replace those of the same case; the others are kept (a run
    # of --sizes 1e8 leaves the 10^7 rows as they were).
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    ran = {(r["network"], r["size"], r["target"]) for r in rows}
    rows = [r for r in kept.get("rows", []) if (r["network"], r["size"], r["target"]) not in ran] + rows
    rows.sort(key=lambda r: (r["size"], r["network"] != "cnn", r["target"]))
    lengths = {c["nodes"] for c in chains}
    chains = sorted([c for c in kept.get("chains", []) if c["nodes"] not in lengths] + chains,
                    key=lambda c: c["nodes"])
    RESULTS.write_text(json.dumps({"benchmark": "multichip",
                                   **({"note": args.note} if args.note else {}),
                                   "rows": rows, "chains": chains}, indent=1) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
