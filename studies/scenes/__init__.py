"""The scenes study: procedural scenes whose captions state every factor (its README says how to run it)."""
