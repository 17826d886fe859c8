"""Serve the API: `python -m service` (host and port from CATALOG_SEARCH_HOST/PORT)."""

from __future__ import annotations

import uvicorn

from indexer.logs import configure_logging
from indexer.settings import Settings
from service.app import create_app


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False)


if __name__ == "__main__":
    main()
