"""ragcds: offline retrieval-augmented clinical decision support over the Uganda Clinical Guidelines 2023."""

__version__ = "0.1.0"
