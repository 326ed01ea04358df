"""Testbeds that run split inference and measure it: the interface, the local emulated
testbed (cgroup quota, calibration, timing fits), the SSH testbed, pools and the factory."""
