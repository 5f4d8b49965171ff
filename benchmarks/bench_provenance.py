"""`nirc simulate` on fresh framework exports vs the framework's own forward pass.

    .venv/bin/python benchmarks/bench_provenance.py [--steps 300]

For snnTorch 1.0, Norse 1.1, Sinabs 3.1 and Rockpool 3.1: networks with other seeds,
sizes and architectures than tests/test_framework_conventions.py (built by
tests/framework_nets.py), each framework's default and non-default reset/spike
settings. Each is exported by the framework, written with nir.write, and run through

    nirc simulate FILE --input IN.npz --output OUT.npz [--reset/--spikes/--v-min ...]

with no --dt: only the options for the rules the user chose in training. The table gives,
per file, the exporter nirc recognised, the dt it assumed, the framework's spike count and
the share of output entries where nirc and the framework agree (spikes and multi-spike
counts exactly; membrane readouts within 1e-4 relative), next to the same file simulated
with NIR's own rules at the old default (--from nir), the agreement before this
detection existed. Writes benchmarks/results/provenance.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = Path(__file__).resolve().parent / "results" / "provenance.json"


def exports():
    """(builder, kwargs): other seeds/sizes/architectures than the tests use."""
    import framework_nets as fn

    mlp = dict(n_in=20, hidden=40, n_out=7)
    out = []
    for kind in ("leaky", "synaptic", "rleaky", "rsynaptic"):
        for reset in ("subtract", "zero"):
            out.append((fn.snntorch_export, dict(kind=kind, reset=reset, seed=11, **mlp)))
    out += [(fn.snntorch_export, dict(kind="leaky", reset_delay=False, seed=12, **mlp)),
            (fn.snntorch_export, dict(kind="synaptic", reset="zero", reset_delay=False,
                                      seed=13, **mlp)),
            (fn.snntorch_export, dict(kind="synaptic", arch="cnn", seed=14))]
    for kind in ("lifbox", "lif"):
        out.append((fn.norse_export, dict(kind=kind, seed=21, **mlp)))
    out.append((fn.norse_export, dict(kind="iaf", seed=21, gain=75.0, **mlp)))
    out += [(fn.norse_export, dict(kind="lif", readout="li", seed=22, **mlp)),
            (fn.norse_export, dict(kind="lifbox", arch="cnn", seed=23))]
    for kind in ("iaf", "lif"):
        for spikes in ("multi", "single"):
            for reset in ("subtract", "zero"):
                out.append((fn.sinabs_export, dict(kind=kind, spikes=spikes, reset=reset,
                                                   seed=31, **mlp)))
    out += [(fn.sinabs_export, dict(kind="iaf", v_min=-0.3, seed=32, **mlp)),
            (fn.sinabs_export, dict(kind="lif", readout="expleak", seed=33, **mlp)),
            (fn.sinabs_export, dict(kind="lif", norm_input=False, spikes="single", seed=36,
                                    **mlp)),
            (fn.sinabs_export, dict(kind="iaf", arch="cnn", spikes="single", seed=34)),
            (fn.sinabs_export, dict(kind="iaf", arch="cnn", seed=35))]
    out += [(fn.rockpool_export, dict(kind="lif", seed=41, **mlp)),
            (fn.rockpool_export, dict(kind="neuron", seed=42, gain=3.0, **mlp)),
            (fn.rockpool_export, dict(kind="expsyn", seed=43, **mlp)),
            (fn.rockpool_export, dict(kind="lif", dt=2e-3, seed=44, **mlp)),
            (fn.rockpool_export, dict(kind="lif", max_spikes=3, seed=45, **mlp))]
    return out


def cli_options(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        if key == "reset_delay":
            args.append("--reset-delay" if value else "--no-reset-delay")
        else:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def agreement(got: np.ndarray, want: np.ndarray, readout: str) -> float:
    got = got.reshape(want.shape)
    if readout == "membrane":
        close = np.abs(got - want) <= 1e-4 * np.abs(want) + 1e-6
        return float(np.mean(close))
    return float(np.mean(got == want))


def nirc_simulate(model: Path, x: np.ndarray, options: list[str]) -> np.ndarray:
    from nirc.cli import main

    inp, out = model.with_suffix(".in.npz"), model.with_suffix(".out.npz")
    np.savez(inp, input=x)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["-q", "simulate", str(model), "--input", str(inp), "--output", str(out),
                     *options])
    if code != 0:
        raise RuntimeError(f"nirc simulate failed: {err.getvalue()}")
    return np.load(out)["output"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import nir

    import framework_nets as fn
    from nirc.convention import detect
    from nirc.nirio import read

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for build, kwargs in exports():
            started = time.perf_counter()
            export = build(**kwargs)
            if "max_spikes" in kwargs:
                export.options["max_spikes"] = kwargs["max_spikes"]
            x = fn.spike_input(args.steps, export.input_shape, rate=0.3,
                               seed=kwargs["seed"] + 100)
            want = export.run(x)
            model = Path(tmp) / f"{export.name}-{kwargs['seed']}.nir"
            nir.write(model, export.graph)
            options = cli_options(export.options)
            got = nirc_simulate(model, x, options)
            plain = nirc_simulate(model, x, ["--from", "nir"])
            convention = detect(read(model))
            rows.append({
                "file": model.name, "framework": export.framework,
                "options": " ".join(options), "detected": convention.exporter,
                "dt": convention.dt, "framework_spikes": float(want.sum())
                if export.readout == "spikes" else None,
                "max_per_step": float(want.max()) if export.readout == "spikes" else None,
                "readout": export.readout,
                "agreement": agreement(got, want, export.readout),
                "agreement_nir_rules": agreement(plain, want, export.readout),
                "seconds": round(time.perf_counter() - started, 2)})
            print(f"  {rows[-1]['file']}: {rows[-1]['agreement']:.4f}", file=sys.stderr)
    print(f"{args.steps} steps each; agreement = share of output entries equal to the "
          f"framework's (membranes within 1e-4 relative)")
    print(f"{'file':<52}{'options':<44}{'detected':<10}{'dt':>8}{'spikes':>8}{'max':>5}"
          f"{'agree':>8}{'NIR':>8}")
    for r in rows:
        spikes = "-" if r["framework_spikes"] is None else f"{r['framework_spikes']:.0f}"
        most = "-" if r["max_per_step"] is None else f"{r['max_per_step']:.0f}"
        print(f"{r['file']:<52}{r['options'] or '-':<44}{r['detected']:<10}{r['dt']:>8g}"
              f"{spikes:>8}{most:>5}{r['agreement']:>8.4f}{r['agreement_nir_rules']:>8.4f}")
    worst = min(r["agreement"] for r in rows)
    print(f"worst agreement {worst:.4f} over {len(rows)} files "
          f"({sum(r['agreement'] >= 0.99 for r in rows)} at >= 0.99); with NIR's rules: "
          f"worst {min(r['agreement_nir_rules'] for r in rows):.4f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"steps": args.steps, "files": rows,
                                   "worst_agreement": worst}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_NO_INDEX", "1")
    raise SystemExit(main())
