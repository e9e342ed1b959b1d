"""Journey Builder's signed bodies: a compact HS256 JWT, checked against every configured secret.

With `useJwt: true` Journey Builder sends the whole body as a JWT signed with the installed
package's JWT Signing Secret; the decoded claims are the same object as the unsigned JSON body.
Any doubt about the token is a 401 with a short reason, decided before anything is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import jwt

from connector.errors import ApiError
from connector.http import parse_json

#: The only algorithm Journey Builder uses; pinned so `alg: none` or RS/HS-confusion fails.
ALGORITHM = "HS256"
#: Clock skew tolerated on `exp`, `nbf` and `iat` between Marketing Cloud and us.
LEEWAY_SECONDS = 30
#: Three base64url parts: the compact serialisation.
_COMPACT = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
#: JSON wrappers some deployments put around the token.
_WRAPPER_KEYS = ("jwt", "token")


def _refuse(reason: str) -> ApiError:
    """The one 401 shape for a body we cannot trust."""
    return ApiError(401, "invalid_jwt", reason)


def verify(token: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The claims of a token signed with one of `secrets`, or a 401 ApiError saying why not."""
    if not secrets:
        raise ApiError(401, "not_configured", "SFMC_JWT_SECRET is not configured")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise _refuse("the body is not a well-formed JWT") from exc
    if header.get("alg") != ALGORITHM:
        raise _refuse(f"JWT algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                leeway=LEEWAY_SECONDS,
                # Nothing is required (JB's claims are undocumented); exp is checked if present.
                # An `aud` we were never told about must not turn a good token into a 401.
                options={"require": [], "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise _refuse("the JWT has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _refuse("the JWT is not valid yet") from exc
        except jwt.DecodeError as exc:
            raise _refuse("the body is not a well-formed JWT") from exc
        except jwt.InvalidTokenError as exc:
            raise _refuse(f"the JWT was refused: {type(exc).__name__}") from exc
        if not isinstance(claims, dict):
            raise _refuse("the JWT's claims are not an object")
        return claims
    raise _refuse("the JWT signature does not match any configured secret")


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
            wrapper = json.loads(body)
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
                raise ApiError(400, "invalid_body", "the body must be a JSON object")
            return data
        raise _refuse("plain JSON is not accepted: set useJwt to true on this activity")
    raise _refuse("the body is not a JWT")
