"""why/next lines for refusals whose real cause depends on what the compiler knows.

A refusal raised deep in a backend knows the node and the numbers; the driver knows
the convention the model was trained under. ``refine(err, convention)`` rewrites the
why/next of refusals whose fix depends on it (a time constant below dt: the exporter's
dt is the usual fix), and leaves every other error as it is.
"""

from __future__ import annotations

from nirc.convention import PROFILES, Convention
from nirc.errors import NircError

_NAMES = {"snntorch": "snnTorch", "norse": "Norse", "sinabs": "Sinabs", "rockpool": "Rockpool"}


def time_constant(err: NircError, convention: Convention | None) -> NircError:
    """A time constant below dt: name the exporter and the dt its convention implies."""
    tau, dt = err.details.get("tau"), err.details.get("dt")
    why = (f"the model is valid, but at dt = {dt:g} s its time constant "
           f"{tau:.3g} s is shorter than one step: the neuron would overshoot"
           if tau is not None and dt is not None else
           "the model is valid, but a time constant is shorter than one step")
    source = convention.source("dt") if convention is not None else "default"
    where = {"option": "given with --dt", "file": "from the file's metadata",
             "default": "the target's default", "detection": "the exporter's convention"}[source]
    why += f" (dt: {where})"
    exporter = convention.exporter if convention is not None else "unknown"
    if exporter not in PROFILES and convention is not None and convention.candidates:
        exporter = convention.candidates[0]    # --from nir on a file that looks like an export
    if exporter in PROFILES and source != "detection" and PROFILES[exporter].dt < (dt or 0):
        implied = PROFILES[exporter].dt
        article = "an" if exporter == "snntorch" else "a"
        why += (f"; the file looks like {article} {_NAMES[exporter]} export, whose convention implies "
                f"dt = {implied:g} s")
        nxt = (f"run with --dt {implied:g}, or without --dt and --from so that {_NAMES[exporter]}'s "
               f"convention applies")
    elif exporter in ("nir", "unknown") and tau is not None:
        nxt = (f"pass --dt no longer than the shortest time constant ({tau:.3g} s), or --from "
               f"EXPORTER if a framework wrote the file ('nirc inspect' shows what was detected)")
    elif tau is not None:
        nxt = f"pass --dt no longer than the shortest time constant ({tau:.3g} s)"
    else:
        nxt = "pass a smaller --dt"
    return err.hinted(why, nxt)


def refine(err: NircError, convention: Convention | None) -> NircError:
    """``err`` with why/next written for its cause, given the model's convention."""
    if err.cause == "time_constant":
        return time_constant(err, convention)
    return err
