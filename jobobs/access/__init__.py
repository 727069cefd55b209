"""Reaching jobs from outside a runtime: the client, submissions, queries and analytics, the
analyst's read-only SQL, the server's endpoint file and its users."""
