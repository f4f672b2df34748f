"""Thin typer CLI over the ragcds library: one module per command group."""
