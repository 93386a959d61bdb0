"""Demo files loaded by `sheaf demo`."""
