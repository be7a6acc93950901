"""The whole system as local processes: what ``make up`` runs and what integration tests start."""
