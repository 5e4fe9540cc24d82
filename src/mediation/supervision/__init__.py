"""Supervision orders (督办) and case owners (包案领导)."""
