"""pixel transforms."""
