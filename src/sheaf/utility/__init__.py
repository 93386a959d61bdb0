"""The utility domain: EnergyCAP-compatible calculated-bill aggregation."""
