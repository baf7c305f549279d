"""The built-in Python kernel."""
