"""Predicted costs of partition plans: per device (MACs, memory, traffic, latency,
energy), for hybrid plans the cloud's, and a stream of requests' schedule."""
