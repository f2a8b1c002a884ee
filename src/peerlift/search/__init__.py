"""Full-text search over the writing a person may open: posts and comments of the spaces they read."""
