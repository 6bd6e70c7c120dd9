"""Pure image functions: every parameter explicit, no randomness, inputs never modified."""
