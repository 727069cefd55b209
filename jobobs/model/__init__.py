"""The model: statuses and their transitions, control requests, journal lines and rejects,
errors, value limits and job definitions. Standard library only; every other layer builds
on it."""
