"""Journey Builder's signed bodies: a compact HS256 JWT, checked against every configured secret.

With `useJwt: true` Journey Builder sends the whole body as a JWT signed with the installed
package's JWT Signing Secret; the decoded claims are the same object as the unsigned JSON body.
Any doubt about the token is a 401 with a short reason, decided before anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Any

from connector.bodies import loads, parse_json
from wiring.errors import InvalidBody, Unauthorized

#: The only algorithm Journey Builder uses; pinned so `alg: none` or RS/HS-confusion fails.
ALGORITHM = "HS256"
#: Clock skew tolerated on `exp`, `nbf` and `iat` between Marketing Cloud and us.
LEEWAY_SECONDS = 30
#: Three base64url parts: the compact serialisation.
_COMPACT = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
#: JSON wrappers some deployments put around the token.
_WRAPPER_KEYS = ("jwt", "token")


def _refuse(reason: str) -> Unauthorized:
    """The one 401 shape for a body we cannot trust."""
    return Unauthorized(reason, code="invalid_jwt")


def _b64(segment: str) -> bytes:
    """base64url without padding, as JWS uses it."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim, or None when absent; anything else is a malformed token."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(f"the JWT's {name} claim is not a number")
    return float(value)


def verify(token: str, secrets: Sequence[str], *, now: float | None = None) -> dict[str, Any]:
    """The claims of a token signed with one of `secrets`, or Unauthorized saying why not.

    HS256 checked directly with hmac (RFC 7515/7519): the algorithm is pinned, the signature
    compared in constant time against every secret, then exp/nbf/iat checked when present.
    PyJWT did the same several times slower, most of it re-validating base64 in Python
    (bench/README.md, "Where the time goes"), on a path Journey Builder calls once per contact.
    """
    if not secrets:
        raise Unauthorized("SFMC_JWT_SECRET is not configured", code="not_configured")
    parts = token.split(".")
    if len(parts) != 3:
        raise _refuse("the body is not a well-formed JWT")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = loads(_b64(header_b64), unique_keys=False)
        signature = _b64(signature_b64)
    except (ValueError, binascii.Error) as exc:
        raise _refuse("the body is not a well-formed JWT") from exc
    if not isinstance(header, dict):
        raise _refuse("the body is not a well-formed JWT")
    if header.get("alg") != ALGORITHM:
        raise _refuse(f"JWT algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    signed = f"{header_b64}.{payload_b64}".encode("ascii")
    matched = False
    for secret in secrets:  # every secret is tried, so timing does not say which matched
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise _refuse("the JWT signature does not match any configured secret")
    try:
        claims = loads(_b64(payload_b64), unique_keys=False)
    except (ValueError, binascii.Error) as exc:
        raise _refuse("the body is not a well-formed JWT") from exc
    if not isinstance(claims, dict):
        raise _refuse("the JWT's claims are not an object")
    moment = time.time() if now is None else now
    exp, nbf, iat = _numeric(claims, "exp"), _numeric(claims, "nbf"), _numeric(claims, "iat")
    if exp is not None and moment > exp + LEEWAY_SECONDS:
        raise _refuse("the JWT has expired")
    if (nbf is not None and moment < nbf - LEEWAY_SECONDS) or (
        iat is not None and moment < iat - LEEWAY_SECONDS
    ):
        raise _refuse("the JWT is not valid yet")
    return claims


def decode_body(
    raw: bytes,
    mimetype: str,
    secrets: Sequence[str],
    *,
    allow_plain_json: bool = False,
) -> dict[str, Any]:
    """The verified body of a Journey Builder call (see the module docstring)."""
    body = raw.strip()
    if not body:
        raise _refuse("the body is empty; expected a JWT")
    if _COMPACT.match(body):
        # application/jwt normally; some gateways relabel it text/plain or JSON: the token
        # itself is what is trusted, not the label.
        return verify(body.decode("ascii"), secrets)
    if body[:1] == b"{":
        try:
            wrapper = loads(body, unique_keys=False)
        except ValueError:
            wrapper = None
        if isinstance(wrapper, dict):
            for key in _WRAPPER_KEYS:
                token = wrapper.get(key)
                if isinstance(token, str) and _COMPACT.match(token.encode()):
                    return verify(token, secrets)
        if allow_plain_json and (mimetype == "application/json" or mimetype.endswith("+json")):
            data = parse_json(raw)
            if not isinstance(data, dict):
                raise InvalidBody("the body must be a JSON object")
            return data
        raise _refuse("plain JSON is not accepted: set useJwt to true on this activity")
    raise _refuse("the body is not a JWT")
