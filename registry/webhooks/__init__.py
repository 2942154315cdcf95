"""Webhooks: signed HTTP notifications of pushes, tag deletions and pulls."""
