"""peerlift: peer-to-peer health care and behavioural interventions in private circles."""

__version__ = "0.1.0"
