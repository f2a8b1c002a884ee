"""Accounts, roles, sign-in sessions, invitations and the audit log."""
