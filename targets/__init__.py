"""Chip descriptions (one YAML per chip) and the backend code a YAML cannot say.

Installed as ``nirc.targets``; the YAML files ship inside the package.
"""
