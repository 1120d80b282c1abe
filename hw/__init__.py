"""hw package (see ../shared/ARCHITECTURE.md)."""
