"""Identity: sources, accounts, identities and account aggregation (SailPoint dialect)."""
