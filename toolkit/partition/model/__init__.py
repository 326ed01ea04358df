"""How a partitioned model is represented: its ops read from Keras, partition plans,
the plans' reference execution in one process, and the built-in conv stacks."""
