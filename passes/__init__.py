"""Graph-to-graph passes, one module each (see DESIGN.md, "Passes").

Installed as ``nirc.passes``. Every pass is a pure function: it never mutates
its input, and its docstring states what it requires and what it guarantees.
"""
