"""Domain-agnostic building blocks: ORM base, ids, time, collection parameters."""
