"""Mediation bodies, courts and arbitration commissions."""
