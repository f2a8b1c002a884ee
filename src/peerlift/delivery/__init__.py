"""Delivery: the live stream hub, Redis fan-out between processes, the scheduler and email."""
