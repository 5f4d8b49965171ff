"""The SynSense Xylo backend (XyloAudio 2, XyloIMU): everything Xylo needs that a YAML cannot say.

Modules:
- ``device``: the target's Xylo facts as one typed object (and the YAML schema
  of ``backend_options``, installed as TARGET_SCHEMA for nirc.target's loader);
- ``layout``: fixed-fabric mapping of a float hardware network onto input
  channels, the hidden pool and readout neurons, with FitErrors naming limits;
- ``quantize``: float weights, thresholds and time constants -> 8-bit weights
  with global shifts, 16-bit thresholds/biases, bit-shift decays, and the error;
- ``config``: the deployment config in rockpool's Xylo specification vocabulary,
  written and read back;
- ``inputs``: NIR input arrays -> event counts per input channel;
- ``backend``: the driver's entry points (xylo_quantize's work, emit, integer
  reference, emulate), all running nirc.neuron_models.xylo_lif's XyloFabric;
- ``xylosim_bridge``: runs the same config on SynSense's xylosim (cross-check).
"""

from nirc.targets.xylo.device import TARGET_SCHEMA  # noqa: F401  (read by nirc.target)


def _register_strategy() -> None:
    from nirc.partition import register_strategy
    from nirc.targets.xylo.backend import place

    register_strategy("fixed_fabric", place)


_register_strategy()

# Hooks read by nirc.driver (emit) and nirc.emulator (configs with "backend": "xylo").
from nirc.targets.xylo.backend import build_config, load_build  # noqa: E402,F401
