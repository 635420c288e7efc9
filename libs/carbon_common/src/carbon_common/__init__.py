"""Code every service of the carbon account platform needs, written once."""
