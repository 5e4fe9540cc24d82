"""Case clocks: deadlines by rule, pauses, extensions, at-risk and overdue levels, the scheduler."""
