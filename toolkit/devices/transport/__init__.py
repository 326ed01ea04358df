"""The SSH transport to a device: connections with reconnects, commands, file transfer,
remote shells and processes, and deploying the toolkit to a host."""
