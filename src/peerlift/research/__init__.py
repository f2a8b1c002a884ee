"""Studies and arms; randomisation, consent, metrics and exports grow here."""
