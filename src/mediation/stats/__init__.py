"""Statistics for supervisors: counts, rates and stage durations over any range of registration dates."""
