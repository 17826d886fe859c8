"""Read side of catalog-search: the Litestar API that searches the active index version."""
