"""Training drivers: thin shells around ``sqljax.update`` (see each module)."""
