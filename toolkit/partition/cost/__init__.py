"""Predicted costs of partition plans: per device (MACs, memory, traffic, latency,
energy) and, for hybrid plans, the cloud's."""
