"""Shared experience in open communities: experience reports on a treatment or strategy, their
counts per treatment, "helpful" votes, and the guide a community's facilitators curate."""
