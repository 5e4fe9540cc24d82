"""Shared plumbing: settings, database, errors, HTTP conventions."""
