"""Triage and routing (分流): the body registry's rules and the recommendation engine."""
