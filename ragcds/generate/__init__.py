"""Generation: prompts with cited passages, output formats, backends, and the answer pipeline."""
