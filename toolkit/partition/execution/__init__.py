"""Real execution of partition plans: the device and cloud worker processes, the
cluster that drives them, measured runs, and studies (campaigns over partition
configurations)."""
