"""Reports: a space (or some of its modules) as a marked PDF, on demand or on a schedule."""
