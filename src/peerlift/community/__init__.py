"""Spaces (private circles, later open communities), memberships, posts, comments,
reactions, mentions, polls and direct messages."""
