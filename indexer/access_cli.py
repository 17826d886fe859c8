"""Command line of API keys and the audit log: `python -m indexer keys ...` and `audit`.

Each command takes the parsed arguments, the settings, the engine and the session factory,
as the commands in `indexer.cli` do. Key changes are recorded in the audit log as `cli`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from indexer import audit, keys
from indexer.arguments import whole_number
from indexer.schema import SCOPES
from indexer.settings import Settings

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the `keys` and `audit` commands to the indexer's command parser."""
    keys_parser = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys_parser.add_subparsers(required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create an API key and print it, once, on standard output")
    create.add_argument("--name", required=True,
                        help="unique name that the audit log shows: letters, digits, '.', '_' and '-'")
    create.add_argument("--scope", action="append", choices=SCOPES, required=True,
                        help="search or admin; repeat the option for both (admin includes search)")
    create.set_defaults(command=_create)

    listing = actions.add_parser("list", help="list API keys with scopes and dates, never the keys")
    listing.set_defaults(command=_list)

    revoke = actions.add_parser("revoke", help="revoke an API key at once; its name stays taken")
    revoke.add_argument("name", help="key name, as `keys list` shows it")
    revoke.set_defaults(command=_revoke)

    log = commands.add_parser("audit", help="print the audit log of admin actions, newest first")
    log.add_argument("--limit", type=whole_number(1, 100_000, "limits"), default=50,
                     help="entries to print (default: %(default)s)")
    log.set_defaults(command=_audit)


def _create(args: argparse.Namespace, settings: Settings, engine: Engine,
            sessions: sessionmaker[Session]) -> int:
    with audit.audited(sessions, audit.CLI_ACTOR, "key_created", args.name) as action:
        key = keys.create_key(action.session, args.name, args.scope)
    print(f"Created API key {args.name!r} with scopes {', '.join(sorted(set(args.scope)))}. "
          "It is shown only now; store it in your secret store.", file=sys.stderr)
    print(key)
    return 0


def _list(args: argparse.Namespace, settings: Settings, engine: Engine,
          sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        records = keys.list_keys(session)
    if not records:
        print("No API keys yet; create one with: python -m indexer keys create --name NAME --scope search")
        return 0
    print(f"{'name':<24}  {'scopes':<13}  {'created (UTC)':<19}  revoked (UTC)")
    for record in records:
        created = record.created_at.strftime(TIME_FORMAT)
        revoked = record.revoked_at.strftime(TIME_FORMAT) if record.revoked_at else "-"
        print(f"{record.name:<24}  {record.scopes:<13}  {created:<19}  {revoked}")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings, engine: Engine,
            sessions: sessionmaker[Session]) -> int:
    with audit.audited(sessions, audit.CLI_ACTOR, "key_revoked", args.name) as action:
        keys.revoke_key(action.session, args.name)
    print(f"Revoked API key {args.name!r}; requests with it get 401 from now on.")
    return 0


def _audit(args: argparse.Namespace, settings: Settings, engine: Engine,
           sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        entries = audit.list_entries(session, args.limit)
    if not entries:
        print("The audit log is empty.")
        return 0
    print(f"{'time (UTC)':<19}  {'key':<24}  {'action':<11}  {'target':<30}  result")
    for entry in entries:
        print(f"{entry.occurred_at.strftime(TIME_FORMAT):<19}  {entry.key_name:<24}  {entry.action:<11}  "
              f"{entry.target:<30}  {entry.result}")
    return 0
