"""Intervention protocols: versioned YAML files, checked, previewed, delivered on a rolling
horizon in each person's local time, and measured for fidelity."""
