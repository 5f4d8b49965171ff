"""The SynSense Speck / DYNAP-CNN backend: everything Speck needs that a YAML cannot say.

Modules:
- ``chip``: the target's Speck facts as one typed object (and the YAML schema of
  ``backend_options``, installed as TARGET_SCHEMA for nirc.target's loader);
- ``memory``: kernel/neuron/bias memory a layer occupies (sinabs' accounting);
- ``assign``: layer -> core assignment with CP-SAT, and why-not explanations;
- ``lower``: NIR graph -> Speck layers (conv core + IAF + destination pooling);
- ``quantize``: 8-bit weights/biases, 16-bit thresholds (sinabs' discretize rule);
- ``config``: the deployment config in samna's vocabulary, and reading it back;
- ``network``: Speck layers as a hardware network, and the event-driven integer
  reference over it;
- ``emulate``: the event-driven integer emulator of the emitted config;
- ``backend``: the hooks nirc's driver, emulator and integer reference call
  (layer_per_core placement, emit, load_build, run_network).
"""

from nirc.targets.speck.chip import TARGET_SCHEMA  # noqa: F401  (read by nirc.target)


def _register_strategy() -> None:
    from nirc.partition import register_strategy
    from nirc.targets.speck.backend import place

    register_strategy("layer_per_core", place)


_register_strategy()

# Hooks read by nirc.driver (emit) and nirc.emulator (configs with "backend": "speck").
from nirc.targets.speck.backend import build_config, load_build  # noqa: E402,F401
