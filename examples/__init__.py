"""Small, readable examples of integrating with IACS (not part of the installed packages)."""
