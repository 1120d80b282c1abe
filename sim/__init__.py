"""sim package (see ../shared/ARCHITECTURE.md)."""
