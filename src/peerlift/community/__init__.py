"""Spaces (private circles, later open communities), memberships, posts, comments,
reactions, mentions, polls and direct messages."""

import peerlift.search.index  # noqa: E402,F401 - keeps the search index in step with posts and comments
