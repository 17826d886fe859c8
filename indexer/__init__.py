"""Write side of catalog-search: load a catalog, embed it, publish index versions."""
