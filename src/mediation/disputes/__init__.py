"""Disputes: intake, the lifecycle, the timeline."""
