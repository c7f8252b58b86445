"""Integrations with web frameworks; each module is imported only by projects that use it."""
