"""Ingestion: PDF → pages → sections → chunks."""
