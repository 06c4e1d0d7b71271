"""robots: unattended RPA workers for e-commerce operations."""

__version__ = "0.1.0"
