"""Controllers of one device's hardware knobs: the common base, the Raspberry Pi with
its Coral TPU, the cloud host; and fan-out of an operation to many devices."""
