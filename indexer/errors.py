"""Domain errors of catalog-search.

They describe what went wrong in terms of catalogs, models and index versions and know
nothing of HTTP; the service maps each class to a status code in one table.
"""

from __future__ import annotations


class CatalogSearchError(Exception):
    """Base class of every error this project raises on purpose."""


class SettingsError(CatalogSearchError):
    """An environment variable has a value that cannot be used."""


class ModelLoadError(CatalogSearchError):
    """The embedding model folder is missing or cannot be loaded."""


class CatalogError(CatalogSearchError):
    """The catalog file cannot be read at all (missing file, unknown format, bad header)."""


class InvalidCatalogError(CatalogSearchError):
    """The catalog has invalid rows and the build was not asked to skip them.

    `problems` contains one `RowProblem` per rejected row, in file order.
    """

    def __init__(self, path: str, problems: list) -> None:
        self.path = path
        self.problems = problems
        rows = "row" if len(problems) == 1 else "rows"
        super().__init__(f"{path}: {len(problems)} invalid {rows}, nothing was published")


class VersionNotFoundError(CatalogSearchError):
    """No index version has the requested number."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"index version {version} does not exist")


class VersionNotActivatableError(CatalogSearchError):
    """The index version exists but its status does not allow activation."""

    def __init__(self, version: int, status: str) -> None:
        self.version = version
        self.status = status
        super().__init__(
            f"index version {version} is {status}; only a ready version can be activated"
        )


class NoRollbackTargetError(CatalogSearchError):
    """The active version has no earlier active version to return to."""


class AuthenticationError(CatalogSearchError):
    """A request to a protected route carries no API key, or one that is unknown or revoked."""


class AccessDeniedError(CatalogSearchError):
    """A request carries a valid API key that lacks the scope the route needs."""


class ApiKeyError(CatalogSearchError):
    """An API key cannot be created or revoked: invalid name or scope, name taken, or unknown name."""


class DatabaseUnavailableError(CatalogSearchError):
    """The metadata database cannot be reached, so a request that needs it cannot be served now."""


class ProductNotFoundError(CatalogSearchError):
    """The served index version has no product with the requested id."""

    def __init__(self, product_id: str, version: int) -> None:
        self.product_id = product_id
        self.version = version
        super().__init__(f"product {product_id!r} does not exist in index version {version}")


class JobNotFoundError(CatalogSearchError):
    """No reindex job has the requested id."""


class ReindexUnavailableError(CatalogSearchError):
    """A reindex was requested but no catalog source is configured, or one already runs."""


class BackupError(CatalogSearchError):
    """A backup or restore cannot run: wrong database kind, or a folder that is not empty."""


class BuildLockedError(CatalogSearchError):
    """Another build holds the build lock."""


class ArtifactError(CatalogSearchError):
    """An index version's files are missing, altered or do not match the loaded model."""

    def __init__(self, version: int, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"index version {version} rejected: {reason}")


class IndexNotReadyError(CatalogSearchError):
    """A search needs the catalog index, but no version is active or loaded yet."""


class ModelNotReadyError(CatalogSearchError):
    """A request needs the embedding model, but it is still loading or failed to load."""


class ModelVersionNotFoundError(CatalogSearchError):
    """No model version has the requested number."""

    def __init__(self, model_version: int) -> None:
        self.model_version = model_version
        super().__init__(f"model version {model_version} does not exist")


class ModelVersionNotReadyError(CatalogSearchError):
    """The model version exists but its training did not finish."""

    def __init__(self, model_version: int, status: str) -> None:
        self.model_version = model_version
        super().__init__(f"model version {model_version} is {status}; only a ready model version "
                         "can build an index")


class JudgmentsError(CatalogSearchError):
    """A judgments file for training cannot be read or names no usable query-product pair."""
