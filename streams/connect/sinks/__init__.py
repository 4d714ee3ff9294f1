"""Concrete sinks; each implements only ``write(batch)`` (and optionally setup/close)."""
