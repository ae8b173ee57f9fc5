"""Tools for contributors: scaffold a kata, check a kata, sync generated files."""
