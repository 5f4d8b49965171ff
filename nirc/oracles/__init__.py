"""Bridges to vendor simulators that nirc's emulator must agree with bit for bit (see docs/oracles.md)."""
