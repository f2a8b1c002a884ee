"""Just-in-time cues: rules (trigger, condition, action) and the facilitator's inbox."""
