"""The notification centre: mentions, replies, reactions, messages, a facilitator's answer and
scheduled prompts; per-person preferences, quiet hours and email digests."""
