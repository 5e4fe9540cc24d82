"""Mediation sessions, the structured agreement with its signatures, obligations and follow-ups."""
