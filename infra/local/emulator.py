"""Runs moto's server (the AWS wire protocol on loopback) with requests applied one at a time.

DynamoDB applies each write to an item atomically: two concurrent `ADD total 1` updates
always add 2. moto's stock threaded server runs concurrent requests against its in-memory
tables without that isolation, so concurrent counter updates can be lost there though they
never are on AWS. Serialising requests restores DynamoDB's guarantee; connections are still
served concurrently (keep-alive, many clients), only the application of DynamoDB requests
is serialised.

moto also backs up every table a transaction touches, whole, before each TransactWriteItems
(a deep copy per call), which makes each transaction cost time and memory in proportion to
the table: thousands of builds slow it to a crawl and use gigabytes. Here a transaction saves
only the items it touches and restores those if it is cancelled: the same all-or-nothing
outcome, at a cost independent of the table's size.

Usage: emulator.py [--host 127.0.0.1] [--port 4566]
"""

import argparse
import os
import signal
import threading

import copy
import types

from werkzeug.serving import run_simple
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend, Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def _check_patched_internals() -> None:
    """Fails loudly when moto's internals no longer look like what the patches below assume
    (an upgrade could otherwise leave a patch silently without effect)."""
    import inspect
    from importlib.metadata import version

    problems = []
    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    if "copy.deepcopy" not in source:
        problems.append("DynamoDBBackend.transact_write_items no longer backs tables up with copy.deepcopy")
    if not hasattr(dynamodb_models, "copy"):
        problems.append("moto.dynamodb.models no longer imports copy")
    for name in ("get_table", "get_item", "put_item", "delete_item"):
        if not callable(getattr(DynamoDBBackend, name, None)):
            problems.append(f"DynamoDBBackend.{name} is gone")
    if problems:
        raise SystemExit(
            f"emulator.py: moto {version('moto')} changed what its patches rely on: "
            + "; ".join(problems)
            + " (pinned in infra/requirements.txt; update the patches before the pin)"
        )


_check_patched_internals()


def _deepcopy_except_tables(value, memo=None):
    # Tables are no longer copied whole; transactions save their items instead (below).
    if isinstance(value, Table):
        return value
    return copy.deepcopy(value, memo)


dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables)
_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_with_item_backups(self, transact_items):
    backups = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = self.get_item(op["TableName"], key)
        except Exception:  # moto itself reports malformed operations
            continue
        saved = copy.deepcopy(current.to_json()["Attributes"]) if current else None
        backups.append((op["TableName"], key, saved))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, saved in reversed(backups):
            if saved is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, saved)
        raise


DynamoDBBackend.transact_write_items = _transact_with_item_backups


class Serialised:
    """WSGI middleware: one DynamoDB request at a time through the wrapped application.

    Other services pass straight through: an SQS long poll (ReceiveMessage waits up to 20 s
    inside the request) must not hold up the table.
    """

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the body inside the lock so the whole request is one step.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    # Everything lives in memory: stop at once, without waiting for long polls to finish.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Serialised(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
