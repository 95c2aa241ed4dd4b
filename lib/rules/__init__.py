"""The lifecycle rules: services, states and tasks, composite start, expiration, maintenance."""
