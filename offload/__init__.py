"""offload package (see ../shared/ARCHITECTURE.md)."""
