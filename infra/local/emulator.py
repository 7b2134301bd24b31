"""Runs moto's server (the AWS wire protocol on loopback) with requests applied one at a time.

DynamoDB applies each write to an item atomically: two concurrent `ADD total 1` updates
always add 2. moto's stock threaded server runs concurrent requests against its in-memory
tables without that isolation, so concurrent counter updates can be lost there though they
never are on AWS. Serialising requests restores DynamoDB's guarantee; connections are still
served concurrently (keep-alive, many clients), only the application of DynamoDB requests
is serialised.

Usage: emulator.py [--host 127.0.0.1] [--port 4566]
"""

import argparse
import os
import signal
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


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
