"""Adapters that let other frameworks use ragcds retrieval."""
