"""Partition benchmark: CP-SAT placement against the lower bound and the naive sequential fill.

    .venv/bin/python benchmarks/bench_partition.py [--target loihi1] [--time-limit 10] [--only cnn,mlp]

Five synthetic networks (benchmarks/partition_networks.py: MLP, unrolled CNN,
topographic recurrent, wide, deep; random sparse tables with fixed seeds) are
placed on the target twice: ``method="sequential"`` (blocks in network order,
each on the current core or the next) and ``method="cpsat"`` (the default).
For each: cores used against the lower bound (goal: within 5 % or +1 core),
messages per step (one per spike and destination core, all rates 1; network
input spikes included) against the sequential fill (goal: >= 25 % fewer on
the recurrent and convolutional networks), and wall time. The CP-SAT search
is deterministic (seeded, deterministic time limit), so cores and messages
repeat exactly; wall times depend on the machine's load.

Prints a table and writes benchmarks/results/partition.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from partition_networks import NETWORKS  # noqa: E402

from nirc.errors import FitError  # noqa: E402
from nirc.partition import partition  # noqa: E402
from nirc.target import load_target  # noqa: E402

MESSAGE_GOAL_NETWORKS = ("cnn", "recurrent")


def run(net, target, method: str, time_limit: float) -> dict:
    started = time.perf_counter()
    try:
        placement = partition(net, target, method=method, time_limit_s=time_limit)
    except FitError as err:
        return {"failed": str(err), "seconds": round(time.perf_counter() - started, 2)}
    return {
        "cores": placement.cores_used,
        "lower_bound": placement.lower_bound,
        "bound_resource": placement.lower_bound_resource,
        "messages": placement.messages + placement.input_messages,
        "status": placement.solver_status,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_utilisation": {k: round(v, 3) for k, v in placement.peak_utilisation().items()},
        "notes": list(placement.notes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="loihi1")
    parser.add_argument("--time-limit", type=float, default=10.0,
                        help="CP-SAT deterministic time budget per network")
    parser.add_argument("--only", default=",".join(NETWORKS), help="comma-separated network names")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "partition.json")
    args = parser.parse_args()
    target = load_target(args.target)
    rows = []
    for name in args.only.split(","):
        net = NETWORKS[name]()
        naive = run(net, target, "sequential", args.time_limit)
        best = run(net, target, "cpsat", args.time_limit)
        row = {"network": name, "neurons": net.neuron_count, "synapses": net.synapse_count,
               "sequential": naive, "cpsat": best}
        if "failed" not in best:
            lb = best["lower_bound"]
            row["cores_goal_met"] = best["cores"] <= max(lb + 1, lb * 1.05)
            if "failed" not in naive:
                row["messages_ratio"] = round(best["messages"] / max(naive["messages"], 1e-9), 3)
                row["cores_ratio"] = round(best["cores"] / naive["cores"], 3)
                if name in MESSAGE_GOAL_NETWORKS:
                    row["messages_goal_met"] = row["messages_ratio"] <= 0.75
        rows.append(row)
        print(_line(row), flush=True)

    print()
    print(_table(rows, target.name))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "target": target.name, "time_limit_s": args.time_limit,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "networks": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _line(row: dict) -> str:
    return f"{row['network']}: sequential {row['sequential']}, cpsat {row['cpsat']}"


def _table(rows: list[dict], target: str) -> str:
    head = (f"{'network':<10} {'neurons':>8} {'synapses':>9} | {'LB':>4} {'seq':>4} {'cpsat':>5} "
            f"{'goal':>5} | {'msgs seq':>9} {'msgs cpsat':>10} {'ratio':>6} {'goal':>5} | "
            f"{'t seq':>6} {'t cpsat':>7}  ({target})")
    lines = [head, "-" * len(head)]
    for r in rows:
        s, c = r["sequential"], r["cpsat"]
        def get(d, k, fmt="{}"):
            return "fail" if "failed" in d else fmt.format(d[k])
        goal_c = {True: "yes", False: "NO"}.get(r.get("cores_goal_met"), "-")
        goal_m = {True: "yes", False: "NO"}.get(r.get("messages_goal_met"), "-")
        lines.append(
            f"{r['network']:<10} {r['neurons']:>8} {r['synapses']:>9} | {get(c, 'lower_bound'):>4} "
            f"{get(s, 'cores'):>4} {get(c, 'cores'):>5} {goal_c:>5} | {get(s, 'messages', '{:.0f}'):>9} "
            f"{get(c, 'messages', '{:.0f}'):>10} {r.get('messages_ratio', '-'):>6} {goal_m:>5} | "
            f"{s['seconds']:>6} {c['seconds']:>7}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
