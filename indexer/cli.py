"""Command line of the indexer: `python -m indexer build|versions|activate|keys|audit|...`."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import faiss
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from indexer import access_cli, audit, models, training, versions
from indexer.arguments import record_number
from indexer.backup import backup, restore
from indexer.build import BuildContext, BuildReport, BuildRequest, DryRunReport, build_version
from indexer.catalog import ColumnMap
from indexer.cpus import usable_cpus
from indexer.database import create_database_engine, migrate, session_factory
from indexer.delta import DeltaPlan
from indexer.embedding import Embedder
from indexer.errors import CatalogError, CatalogSearchError, InvalidCatalogError
from indexer.gate import DEFAULT_MAX_REMOVED_FRACTION, load_golden_queries
from indexer.logs import configure_logging
from indexer.retention import prune
from indexer.schedule import cron_trigger, run_on_schedule, run_scheduled_build
from indexer.settings import Settings

log = structlog.get_logger(__name__)

Sessions = sessionmaker[Session]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one indexer command; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        # OpenMP would start one thread per host core, even under a smaller cgroup quota.
        faiss.omp_set_num_threads(usable_cpus())
        if args.command is _restore:
            # Restore needs the destination without a database, so it opens none first.
            return _restore(args, settings)
        engine = create_database_engine(settings.database_url)
        migrate(engine)
        return int(args.command(args, settings, engine, session_factory(engine)))
    except InvalidCatalogError as error:
        print(f"error: {error}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        print("Fix these rows, or pass --skip-invalid to build without them.", file=sys.stderr)
    except CatalogSearchError as error:
        print(f"error: {error}", file=sys.stderr)
    except OperationalError as error:
        print(f"error: database failed: {error.orig}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description="Build, list and activate catalog index versions. Settings come from "
                    "CATALOG_SEARCH_* environment variables (see the README).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="embed a catalog into a new index version")
    build.add_argument("--catalog", type=Path, required=True,
                       help="catalog file: .csv with a header row, or .jsonl/.ndjson")
    build.add_argument("--columns", type=_column_map, default=ColumnMap(),
                       help="map product fields to catalog columns, "
                            "e.g. id=product_uid,title=product_title")
    build.add_argument("--format", choices=("csv", "jsonl"),
                       help="catalog format when the file extension does not tell")
    build.add_argument("--skip-invalid", action="store_true",
                       help="build without invalid rows and record how many were skipped "
                            "(default: fail and publish nothing)")
    build.add_argument("--activate", action="store_true",
                       help="make the new version the active one when the build succeeds")
    build.add_argument("--skip-if-active", action="store_true",
                       help="do nothing when a version is already active")
    build.add_argument("--dry-run", action="store_true",
                       help="print the new/changed/unchanged/removed counts and the estimated "
                            "encoding time, and write nothing")
    build.add_argument("--model-version", type=record_number,
                       help="embed with this trained model version (see `models`); default: the "
                            "active version's model, or CATALOG_SEARCH_MODEL when none is active")
    build.set_defaults(command=_build)

    train = commands.add_parser(
        "train", help="fine-tune the model on relevance judgments into a new model version")
    train.add_argument("--judgments", type=Path, required=True,
                       help="CSV with query (or query_id with --queries), product_id, relevance")
    train.add_argument("--queries", type=Path,
                       help="CSV with query_id, query, when the judgments name queries by id")
    train.add_argument("--judgment-columns", type=_judgment_columns, default={},
                       help="map judgment fields to columns, e.g. product_id=product_uid")
    train.add_argument("--products", type=Path,
                       help="catalog file the judged product ids come from (default: the "
                            "active version's products)")
    train.add_argument("--columns", type=_column_map, default=ColumnMap(),
                       help="column mapping of --products, as `build` takes it")
    train.add_argument("--base-model-version", type=record_number,
                       help="model version to start from (default: the active version's model)")
    defaults = training.TrainOptions()
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    train.add_argument("--max-steps", type=int,
                       help="train exactly this many steps, repeating the pairs when needed; "
                            "overrides --epochs")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="pairs per step; each pair's negatives are the other pairs' "
                            "products (default: %(default)s)")
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help="default: %(default)s")
    train.add_argument("--seed", type=int, default=defaults.seed,
                       help="seed of the split, the batch order and the weights (default: %(default)s)")
    train.add_argument("--eval-fraction", type=float, default=defaults.eval_fraction,
                       help="share of the queries held out for evaluation (default: %(default)s)")
    train.add_argument("--min-relevance", type=float,
                       help="relevance from which a judged product is a positive (default: the "
                            "top quarter of the file's grade range, 2.5 on a 1-3 scale)")
    train.add_argument("--hard-negatives", action="store_true",
                       help="add to each pair a product the current model ranks high for the "
                            "query but the judgments do not call relevant")
    train.set_defaults(command=_train)

    model_listing = commands.add_parser("models", help="list trained model versions, newest first")
    model_listing.set_defaults(command=_models)

    listing = commands.add_parser("versions", help="list index versions, newest first")
    listing.set_defaults(command=_versions)

    activate = commands.add_parser("activate", help="make a ready version the active one")
    activate.add_argument("version", type=record_number, help="version number, as `versions` lists it")
    activate.set_defaults(command=_activate)

    rollback = commands.add_parser(
        "rollback", help="re-activate the version that was active before the current one")
    rollback.set_defaults(command=_rollback)

    prune = commands.add_parser(
        "prune", help="delete old versions' artifacts and mark them retired")
    prune.add_argument("--keep", type=int, required=True,
                       help="ready versions to keep besides the active one, newest first")
    prune.set_defaults(command=_prune)

    schedule = commands.add_parser(
        "schedule", help="rebuild a catalog on a cron schedule, activating past the promotion gate")
    schedule.add_argument("--catalog", type=Path, required=True, help="catalog file to rebuild")
    schedule.add_argument("--cron", help='crontab expression in UTC, e.g. "0 3 * * *"')
    schedule.add_argument("--once", action="store_true",
                          help="run once now and exit (for cron or a Kubernetes CronJob)")
    schedule.add_argument("--columns", type=_column_map, default=ColumnMap(),
                          help="map product fields to catalog columns")
    schedule.add_argument("--format", choices=("csv", "jsonl"), help="catalog format")
    schedule.add_argument("--skip-invalid", action="store_true", help="build without invalid rows")
    schedule.add_argument("--golden", type=Path,
                          help='JSON Lines of {"query": ..., "expected": [ids], "top_k": 10} '
                               "that must pass before activation")
    schedule.add_argument("--max-removed-fraction", type=float, default=DEFAULT_MAX_REMOVED_FRACTION,
                          help="hold a version that removes more than this fraction of the "
                               "active version's products (default: %(default)s)")
    schedule.set_defaults(command=_schedule)

    save = commands.add_parser(
        "backup", help="copy the SQLite database and the ready versions into a new folder")
    save.add_argument("--to", type=Path, required=True, help="backup folder, new or empty")
    save.set_defaults(command=_backup)

    load = commands.add_parser(
        "restore", help="restore a backup folder into an empty data folder")
    load.add_argument("--from", dest="source", type=Path, required=True, help="backup folder")
    load.set_defaults(command=_restore)

    access_cli.add_commands(commands)

    upgrade = commands.add_parser("migrate", help="upgrade the database schema to the newest revision")
    upgrade.set_defaults(command=lambda args, settings, engine, sessions: 0)
    return parser


def _column_map(spec: str) -> ColumnMap:
    """argparse type of --columns: turns a bad mapping into a usage error, not a traceback."""
    try:
        return ColumnMap.parse(spec)
    except CatalogError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _judgment_columns(spec: str) -> dict[str, str]:
    try:
        return training.parse_judgment_columns(spec)
    except CatalogSearchError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _build_context(settings: Settings, engine: Engine, sessions: Sessions,
                   model_version: int | None = None) -> BuildContext:
    """Build context with the model `models.choose_for_build` picks, loaded on first use."""

    @functools.cache
    def load() -> Embedder:
        with sessions() as session:
            choice = models.choose_for_build(session, settings, model_version)
        return models.load_model(settings, choice)

    return BuildContext(engine, sessions, load, settings.index_dir, settings.text_template,
                        settings.lexical_language, settings.index_choice, settings.promotion_rule)


def _build(args: argparse.Namespace, settings: Settings, engine: Engine,
           sessions: Sessions) -> int:
    if args.skip_if_active:
        with sessions() as session:
            active = versions.get_active(session)
        if active is not None:
            print(f"Version {active.version.id} is active; nothing built (--skip-if-active).")
            return 0

    request = BuildRequest(
        catalog=args.catalog, columns=args.columns, format=args.format,
        skip_invalid=args.skip_invalid, activate=args.activate, progress=sys.stderr.isatty(),
        dry_run=args.dry_run, source="cli",
    )
    if args.model_version is not None:
        with sessions() as session:
            models.ready_choice(session, settings, args.model_version)
    report = build_version(request, _build_context(settings, engine, sessions, args.model_version))
    if isinstance(report, DryRunReport):
        _print_dry_run(report, args.catalog)
    else:
        _print_report(report, args.catalog)
    return 0


def _print_changes(plan: DeltaPlan) -> None:
    base = f"version {plan.base_version}" if plan.base_version else "no active version"
    print(f"  changes:   {plan.new} new, {plan.changed} changed, {plan.unchanged} unchanged, "
          f"{plan.removed} removed (against {base})")


def _print_dry_run(report: DryRunReport, catalog: Path) -> None:
    plan = report.plan
    print(f"Dry run of {catalog}: nothing was written")
    print(f"  products:  {report.product_count}")
    _print_changes(plan)
    print(f"  encode:    {len(plan.missing)} texts, about {report.estimated_encode_seconds:.0f} s; "
          f"{report.product_count - len(plan.missing)} reuse a stored vector")


def _print_report(report: BuildReport, catalog: Path) -> None:
    timings = ", ".join(f"{name.removesuffix('_seconds')} {value:.1f}"
                        for name, value in report.timings.items())
    print(f"Built index version {report.version} from {catalog}")
    print(f"  products:  {report.product_count} ({len(report.skipped)} invalid rows skipped, "
          f"{report.truncated_count} texts truncated to the model's length)")
    print(f"  time:      {report.seconds:.1f} s ({timings})")
    _print_changes(report.plan)
    print(f"  encoded:   {len(report.plan.missing)} texts; "
          f"{report.product_count - len(report.plan.missing)} reused a stored vector")
    print(f"  folder:    {report.path}")
    activation = "yes" if report.activated else f"no; run: python -m indexer activate {report.version}"
    if report.held:
        activation = (f"no, held by the promotion gate: {'; '.join(report.held)}. To switch "
                      f"anyway: python -m indexer activate {report.version}")
    print(f"  active:    {activation}")
    for problem in report.skipped:
        print(f"  skipped {problem}")


def _train(args: argparse.Namespace, settings: Settings, engine: Engine,
           sessions: Sessions) -> int:
    options = training.TrainOptions(
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, eval_fraction=args.eval_fraction,
        min_relevance=args.min_relevance, hard_negatives=args.hard_negatives,
    )
    request = training.TrainRequest(
        judgments=args.judgments, queries=args.queries, columns=args.judgment_columns,
        products=args.products, product_columns=args.columns,
        base_model_version=args.base_model_version, options=options, progress=sys.stderr.isatty(),
    )
    report = training.train(request, settings, engine, sessions)
    card = report.card
    evaluation = card["evaluation"]
    print(f"Trained model version {report.model_version} ({report.name}) in "
          f"{card['training_seconds']:.0f} s: {card['hyperparameters']['steps']} steps on "
          f"{card['split']['train_pairs']} pairs")
    print(f"  held-out queries: {evaluation['queries']}; before -> after:")
    for mode in training.EVALUATED_MODES:
        before, after = evaluation["before"][mode], evaluation["after"][mode]
        print(f"  {mode:<7} nDCG@10 {before['ndcg_at_10']:.4f} -> {after['ndcg_at_10']:.4f}, "
              f"Recall@100 {before['recall_at_100']:.4f} -> {after['recall_at_100']:.4f}")
    print(f"  folder:    {report.folder}")
    print(f"  next:      python -m indexer build --catalog PATH --model-version "
          f"{report.model_version} --activate  (activates only past the promotion gate)")
    return 0


def _models(args: argparse.Namespace, settings: Settings, engine: Engine,
            sessions: Sessions) -> int:
    mode = settings.promotion_rule.mode
    with sessions() as session:
        records = models.list_model_versions(session)
    if not records:
        print("No model versions yet; run: python -m indexer train --judgments FILE")
        return 0
    print(f"{'model':>5}  {'status':<8}  {'trained (UTC)':<19}  {'seconds':>7}  "
          f"{mode + ' nDCG@10':<22}  name (base)")
    for record in records:
        trained = record.created_at.strftime("%Y-%m-%d %H:%M:%S")
        seconds = "-" if record.training_seconds is None else f"{record.training_seconds:.0f}"
        evaluation = (record.card or {}).get("evaluation")
        change = "-" if not evaluation else (f"{evaluation['before'][mode]['ndcg_at_10']:.4f} -> "
                                             f"{evaluation['after'][mode]['ndcg_at_10']:.4f}")
        print(f"{record.id:>5}  {record.status:<8}  {trained:<19}  {seconds:>7}  {change:<22}  "
              f"{record.name} ({record.base_name})")
    return 0


def _versions(args: argparse.Namespace, settings: Settings, engine: Engine,
              sessions: Sessions) -> int:
    with sessions() as session:
        records = versions.list_versions(session)
        active = versions.get_active(session)
    if not records:
        print("No index versions yet; run: python -m indexer build --catalog PATH --activate")
        return 0
    active_id = active.version.id if active else None
    print(f"{'version':>7}  {'status':<8}  {'products':>8}  {'built (UTC)':<19}  {'seconds':>7}  "
          f"{'model':>5}  catalog")
    for record in records:
        built = record.created_at.strftime("%Y-%m-%d %H:%M:%S")
        products = "-" if record.product_count is None else str(record.product_count)
        seconds = "-" if record.build_seconds is None else f"{record.build_seconds:.1f}"
        model = "-" if record.model_version_id is None else str(record.model_version_id)
        print(f"{record.id:>7}  {versions.shown_status(record, active_id):<8}  {products:>8}  "
              f"{built:<19}  {seconds:>7}  {model:>5}  {record.source_path}")
        if record.note and versions.shown_status(record, active_id) == "ready":
            print(f"{'':>9}held: {record.note}")
    return 0


def _activate(args: argparse.Namespace, settings: Settings, engine: Engine,
              sessions: Sessions) -> int:
    with sessions() as session:
        active = versions.get_active(session)
    if active is not None and active.version.id == args.version:
        print(f"Version {args.version} is already active; nothing changed.")
        return 0
    with audit.audited(sessions, audit.CLI_ACTOR, "activate", f"version {args.version}") as action:
        record = versions.activate(action.session, args.version, source="cli")
    print(f"Version {record.id} is now active ({record.product_count} products). "
          "Running services switch to it within their poll interval.")
    return 0


def _rollback(args: argparse.Namespace, settings: Settings, engine: Engine,
              sessions: Sessions) -> int:
    with audit.audited(sessions, audit.CLI_ACTOR, "rollback", "the previously active version") as action:
        record = versions.rollback(action.session, source="cli")
        action.target = f"version {record.id}"
    print(f"Rolled back: version {record.id} is active again ({record.product_count} products). "
          "Running services switch to it within their poll interval.")
    return 0


def _schedule(args: argparse.Namespace, settings: Settings, engine: Engine,
              sessions: Sessions) -> int:
    if not args.once and not args.cron:
        print("error: give --cron EXPRESSION, or --once to run a single time", file=sys.stderr)
        return 2
    if not 0 <= args.max_removed_fraction <= 1:
        print("error: --max-removed-fraction must be between 0 and 1", file=sys.stderr)
        return 2
    golden = load_golden_queries(args.golden) if args.golden else []
    request = BuildRequest(catalog=args.catalog, columns=args.columns, format=args.format,
                           skip_invalid=args.skip_invalid)
    context = _build_context(settings, engine, sessions)

    def run() -> None:
        try:
            result = run_scheduled_build(request, context, golden, args.max_removed_fraction)
        except CatalogSearchError as error:
            log.error("scheduled_build_failed", error=str(error), catalog=str(args.catalog))
            if args.once:
                raise
            return
        verdict = {"skipped": "Nothing built", "activated": "Activated version",
                   "held": "Built but did not activate version"}[result.outcome]
        print(f"{verdict} {result.version}: {'; '.join(result.reasons) or 'passed the promotion gate'}")

    if args.once:
        run()
        return 0
    cron_trigger(args.cron)
    run_on_schedule(args.cron, run)
    return 0


def _backup(args: argparse.Namespace, settings: Settings, engine: Engine,
            sessions: Sessions) -> int:
    report = backup(engine, sessions, settings.index_dir, settings.models_dir, args.to)
    print(f"Backed up the database and versions {', '.join(map(str, report.versions)) or 'none'} "
          f"(active: {report.active}) to {report.folder}")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    report = restore(args.source, settings.database_url, settings.index_dir, settings.models_dir)
    print(f"Restored versions {', '.join(map(str, report.versions)) or 'none'} "
          f"(active: {report.active}) into {settings.data_dir}; the active version's files verified")
    return 0


def _prune(args: argparse.Namespace, settings: Settings, engine: Engine,
           sessions: Sessions) -> int:
    if args.keep < 0:
        print("error: --keep must be 0 or more", file=sys.stderr)
        return 2
    report = prune(engine, sessions, settings.index_dir, args.keep)
    retired = ", ".join(map(str, report.retired)) or "none"
    print(f"Retired versions: {retired}; kept ready: {', '.join(map(str, report.kept)) or 'none'}")
    return 0
