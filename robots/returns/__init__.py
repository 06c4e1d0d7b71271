"""The returns robot: link unlabelled warehouse parcels (无名件) to their orders (DOMAIN.md §2)."""
