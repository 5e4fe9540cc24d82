"""Judicial confirmation requests and referrals: the court- and commission-facing pull API."""
