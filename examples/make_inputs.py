"""Write a Bernoulli (rate-coded Poisson) spike input for a NIR model, for `nirc simulate`.

    python examples/make_inputs.py --model examples/mlp.nir --steps 50 --out out/in.npz \
        [--rate 0.1] [--seed 0]

The array matches the model's Input node: `input` shaped (T, *input_shape), or one
`input_<name>` per Input node when there are several. Each element spikes (1.0) in each
step independently with probability --rate. The same seed gives the same file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nirc.errors import NircError
from nirc.ir.graph import flatten, infer_shapes
from nirc.nirio import read
from nirc.npzio import input_key, write_atomically


def spike_inputs(input_shapes: dict[str, tuple[int, ...]], steps: int, rate: float,
                 seed: int) -> dict[str, np.ndarray]:
    """One (steps, *shape) float32 0/1 array per input, keyed as `nirc simulate` expects."""
    rng = np.random.default_rng(seed)
    several = len(input_shapes) > 1
    return {input_key(name, several):
            (rng.random((steps, *shape)) < rate).astype(np.float32)
            for name, shape in sorted(input_shapes.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="the .nir file to feed")
    parser.add_argument("--steps", required=True, type=int, help="number of time steps T")
    parser.add_argument("--out", required=True, type=Path, help="the .npz file to write")
    parser.add_argument("--rate", type=float, default=0.1,
                        help="spike probability per input per step (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if not 0.0 <= args.rate <= 1.0:
        parser.error("--rate must be a probability in [0, 1]")
    try:
        graph = read(args.model)
        shapes = infer_shapes(flatten(graph))
    except NircError as err:
        print(f"error: {err.at(file=str(args.model))}", file=sys.stderr)
        return 2
    arrays = spike_inputs({name: shapes[name].output for name in graph.inputs()},
                          args.steps, args.rate, args.seed)
    write_atomically(args.out, arrays)
    summary = ", ".join(f"{k} {list(v.shape)} ({int(v.sum())} spikes)" for k, v in arrays.items())
    print(f"wrote {args.out}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
