"""dropout transforms."""
