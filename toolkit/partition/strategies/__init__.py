"""The partitioning strategies: layer-wise, spatial, output- and input-channel, and the
hybrid edge/cloud plan; each builds a plan from the model representation."""
