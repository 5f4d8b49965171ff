"""nirc: compile NIR spiking neural networks onto neuromorphic chips.

The flow is NIR file -> NIR graph (nirc.ir) -> passes (nirc.passes) ->
hardware network (nirc.hwnet) -> placement -> deployment config; see DESIGN.md.
"""

__version__ = "0.1.0"
