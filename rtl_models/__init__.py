"""rtl_models package (see ../shared/ARCHITECTURE.md)."""
