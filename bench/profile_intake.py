"""Profile the intake path in process: `python -m bench.profile_intake [--requests N]`.

Builds the connector app exactly as gunicorn's worker does (`create_app()` from the
environment), pointed at a private redis-server, and calls its WSGI callable directly with
pre-built environs — no HTTP server, no socket to the client — so what is measured is the
app's own cost per request: Flask, the view, validation, JSON, the Redis round trip, logging.
The floor app is timed the same way; the difference is what the connector adds.

With pyinstrument installed (`pip install pyinstrument`) each path is profiled and the
heaviest frames printed; without it, cProfile (stdlib) is used.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import EnvironBuilder

from bench.audience import AudienceSend
from bench.load import SFMC_SECRET, SfmcRun, braze_body, braze_send, sign
from bench.plan import API_TOKEN, BRAZE_TOKEN
from stack import Stack

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environs(path: str, bodies: list[bytes], headers: dict[str, str]) -> list[dict[str, Any]]:
    """One complete WSGI environ per body, as gunicorn would hand them to the app."""
    out = []
    for body in bodies:
        builder = EnvironBuilder(
            path=path,
            method="POST",
            data=body,
            headers=list(headers.items()),
            base_url="http://127.0.0.1:8000",
        )
        env = builder.get_environ()
        env["REMOTE_ADDR"] = "127.0.0.1"
        out.append(env)
        builder.close()
    return out


def call(app: WSGIApp, environ: dict[str, Any]) -> str:
    """One request through the WSGI app; returns the status line."""
    status: list[str] = []

    def start_response(s: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(s)
        return lambda data: None

    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(environ["bench.body"])
    result = app(env, start_response)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0]


def prepared(path: str, bodies: list[bytes], headers: dict[str, str]) -> list[dict[str, Any]]:
    """Environs with the body kept aside, so each call gets a fresh input stream."""
    envs = environs(path, bodies, headers)
    for env, body in zip(envs, bodies, strict=True):
        env["bench.body"] = body
    return envs


def time_per_request(app: WSGIApp, envs: list[dict[str, Any]]) -> tuple[float, str]:
    """Mean CPU µs per request over the environs (process CPU time, not wall)."""
    statuses = set()
    started = time.process_time()
    for env in envs:
        statuses.add(call(app, env))
    spent = time.process_time() - started
    return spent / len(envs) * 1e6, ",".join(sorted(statuses))


def profile(app: WSGIApp, envs: list[dict[str, Any]], top: int) -> str:
    """A profile of the calls: pyinstrument's tree if installed, else cProfile's top."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        prof = cProfile.Profile()
        prof.enable()
        for env in envs:
            call(app, env)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
        return out.getvalue()
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for env in envs:
        call(app, env)
    profiler.stop()
    return str(
        profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total")
    )


def cpu_us(fn: Callable[[], object], n: int) -> float:
    """Mean CPU µs of one call of `fn` over `n` calls (process time: waits do not count)."""
    for _ in range(min(200, n)):
        fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


def components(n: int, redis_url: str) -> dict[str, float]:
    """CPU µs of each piece of the intake path, measured alone."""
    import hmac
    import uuid as uuid_mod

    import jwt
    import redis as redis_mod

    from adapters import braze as braze_adapter
    from adapters import sfmc as sfmc_adapter
    from connector.bodies import parse_json
    from connector.sfmc.jwt_body import verify
    from wiring.services import Services, connect_redis
    from wiring.settings import Settings

    settings = Settings.from_env()
    services = Services.build(settings)
    campaign, send_key = braze_send()
    body = json.dumps(braze_body(campaign, send_key, "u-1")).encode()
    data = json.loads(body)
    run = SfmcRun.new("components")
    claims = run.payload(1)
    token = sign(claims).decode()
    braze_schema = braze_adapter.BrazeWebhookSchema()
    exec_schema = sfmc_adapter.ExecuteSchema()
    in_schema = sfmc_adapter.InArgumentsSchema()
    braze_req = braze_adapter.parse(data).request
    sfmc_req = sfmc_adapter.parse_execute(claims).request
    services.ledger.intake(braze_req)
    services.ledger.intake(sfmc_req)
    tokens = iter(range(10**9))

    def sfmc_intake() -> None:
        token_n = next(tokens)
        services.ledger.intake(
            sfmc_adapter.parse_execute(
                {**claims, "definitionInstanceId": f"c-{token_n}"}
            ).request
        )

    secret = SFMC_SECRET.encode()

    def hand_verify() -> object:
        # What an HS256 check needs: one HMAC, one compare, one base64 + JSON decode.
        head, payload, sig = token.encode().split(b".")
        want = base64_url(hmac.new(secret, head + b"." + payload, "sha256").digest())
        if not hmac.compare_digest(want, sig):
            raise ValueError("bad signature")
        return json.loads(base64_decode(payload))

    client = services.redis
    pool_client = connect_redis(settings.redis_url)
    raw_client = redis_mod.Redis.from_url(settings.redis_url)
    out = {
        "braze: json parse (connector.bodies.parse_json)": cpu_us(lambda: parse_json(body), n),
        "braze: a BrazeWebhookSchema() construction": cpu_us(braze_adapter.BrazeWebhookSchema, n),
        "braze: schema.load on a reused schema": cpu_us(lambda: braze_schema.load(data), n),
        "braze: adapters.braze.parse (whole)": cpu_us(lambda: braze_adapter.parse(data), n),
        "sfmc: connector.sfmc.jwt_body.verify": cpu_us(
            lambda: verify(token, (SFMC_SECRET,)), n
        ),
        "sfmc: PyJWT's get_unverified_header alone (for comparison)": cpu_us(
            lambda: jwt.get_unverified_header(token), n
        ),
        "sfmc: HS256 check by hand (hmac + b64 + json)": cpu_us(hand_verify, n),
        "sfmc: ExecuteSchema() + InArgumentsSchema() construction": cpu_us(
            lambda: (sfmc_adapter.ExecuteSchema(), sfmc_adapter.InArgumentsSchema()), n
        ),
        "sfmc: both loads on reused schemas": cpu_us(
            lambda: in_schema.load(
                sfmc_adapter.merge_in_arguments(exec_schema.load(claims)["in_arguments"])
            ),
            n,
        ),
        "sfmc: adapters.sfmc.parse_execute (whole)": cpu_us(
            lambda: sfmc_adapter.parse_execute(claims), n
        ),
        "redis: Ledger.intake, duplicate (braze)": cpu_us(
            lambda: services.ledger.intake(braze_req), n
        ),
        "redis: parse_execute + Ledger.intake, new contact (sfmc)": cpu_us(sfmc_intake, n),
        "redis: PING, the app's client (health_check_interval=30)": cpu_us(client.ping, n),
        "redis: PING, a plain redis.Redis client": cpu_us(raw_client.ping, n),
        "redis: connect_redis(url) per request (construction only)": cpu_us(
            lambda: connect_redis(settings.redis_url), n
        ),
        "request_log: uuid4().hex": cpu_us(lambda: uuid_mod.uuid4().hex, n),
    }
    pool_client.close()
    raw_client.close()
    client.close()
    return {k: round(v, 1) for k, v in out.items()}


def base64_url(raw: bytes) -> bytes:
    """base64url without padding."""
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def base64_decode(raw: bytes) -> bytes:
    """base64url, padding restored."""
    import base64

    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def main(argv: list[str] | None = None) -> int:
    """Time and profile the floor, Braze, SFMC and Braze audience-mode paths in process."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_intake")
    parser.add_argument("--requests", type=int, default=5000, help="requests per path")
    parser.add_argument("--top", type=int, default=40, help="cProfile lines")
    parser.add_argument("--no-profile", action="store_true", help="timings only")
    parser.add_argument("--json", help="write the timings here")
    args = parser.parse_args(argv)
    n = args.requests

    with Stack() as stack:
        rds = stack.redis("redis-profile")
        os.environ.update(
            {
                "REDIS_URL": rds.url,
                "PUNCHH_BASE_URL": "http://127.0.0.1:9",  # never called on this path
                "PUNCHH_API_KEY": "k",
                "API_TOKEN": API_TOKEN,
                "BRAZE_WEBHOOK_TOKEN": BRAZE_TOKEN,
                "SFMC_JWT_SECRET": SFMC_SECRET,
                "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            }
        )
        from bench.floor import app as floor_app
        from connector import create_app

        app = create_app()
        campaign, send_key = braze_send()
        braze_envs = prepared(
            "/webhooks/braze",
            [json.dumps(braze_body(campaign, send_key, f"u-{i}")).encode() for i in range(n)],
            {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"},
        )
        run = SfmcRun.new("profile")
        sfmc_envs = prepared(
            "/sfmc/execute",
            [sign(run.payload(i)) for i in range(n)],
            {"Content-Type": "application/jwt"},
        )
        audience = AudienceSend.new()
        audience_envs = prepared(
            "/webhooks/braze",
            [json.dumps(audience.body(i)).encode() for i in range(n)],
            {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"},
        )
        floor_envs = prepared(
            "/webhooks/braze",
            [json.dumps(braze_body(campaign, send_key, f"u-{i}")).encode() for i in range(n)],
            {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"},
        )
        # Warm up: first-request set-up, script loading, imports done lazily.
        paths = (
            ("floor", floor_app, floor_envs),
            ("braze", app, braze_envs),
            ("sfmc", app, sfmc_envs),
            ("audience", app, audience_envs),
        )
        for _, target, envs in paths:
            for env in envs[:50]:
                call(target, env)
        results = {}
        for name, target, envs in paths:
            us, statuses = time_per_request(target, envs)
            results[name] = {"cpu_us_per_request": round(us, 1), "statuses": statuses}
            print(f"{name:8s} {us:8.1f} µs/request in process ({statuses})", flush=True)
        print("\nCPU per piece, measured alone:")
        parts = components(min(n, 5000), rds.url)
        for label, us in parts.items():
            print(f"  {us:8.1f} µs  {label}")
        results["components_cpu_us"] = parts  # type: ignore[assignment]
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(results, handle, indent=2)
        if not args.no_profile:
            for name, target, envs in paths[1:]:
                print(f"\n===== {name} =====")
                print(profile(target, envs, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
