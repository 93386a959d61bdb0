"""Credentials, tokens and the Principal every endpoint sees."""
