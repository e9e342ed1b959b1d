"""Serve the Punchh sandbox: ``python -m sandbox --host 127.0.0.1 --port 8900 [--seed path]``.

Prints ``sandbox listening on http://HOST:PORT`` once bound, so ``--port 0`` works for
tests that start it as a subprocess and read the real port from stdout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from werkzeug.serving import make_server

from sandbox.app import create_app


def _stop(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into a clean exit so the socket is closed."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, bind, announce the address, and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument("--seed", help="seed JSON file (default: the packaged seed.json)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, create_app(args.seed), threaded=True)
    signal.signal(signal.SIGTERM, _stop)
    print(f"sandbox listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
