"""Verified professionals: applications, an admin's decision, and the badge shown wherever they write."""
