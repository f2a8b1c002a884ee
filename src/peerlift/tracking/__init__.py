"""Self-monitoring entries, goals and validated questionnaires."""
