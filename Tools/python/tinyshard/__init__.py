"""TinyShard: a pure-Python (numpy) implementation of Spec/FORMAT.md."""
