"""Operational endpoints: liveness, readiness, problem type pages."""
