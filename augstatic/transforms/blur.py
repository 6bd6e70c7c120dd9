"""blur transforms."""
