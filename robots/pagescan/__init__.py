"""The page-scan robot: price errors and banned words across a storefront (DOMAIN.md §3-§4)."""
