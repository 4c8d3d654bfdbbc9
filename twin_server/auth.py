"""Authentication and authorisation of the twin server.

Two kinds of credential, both sent as ``Authorization: Bearer <credential>``:

* **Static tokens.** The configuration holds only the SHA-256 digest of each token (``sha256``), or
  the name of an environment variable that holds the plain token (``env``), which is read and
  hashed once at start-up. Plain tokens never go into configuration files.
* **JWTs** from an identity provider, verified offline against a PEM public key (or certificate)
  or a JWKS file. Only asymmetric algorithms are accepted. The role comes from a claim (``roles``
  by default, a list or a space-separated string); the highest recognised role wins.

Roles are ordered: ``reader`` < ``writer`` < ``admin``. Reads need ``reader``, writes of AAS content
need ``writer``, administrative operations need ``admin``.

With neither tokens nor JWT configured, the authenticator is disabled and every client is
treated as an anonymous admin; :func:`bind_policy` then refuses a non-loopback address unless the
operator explicitly asked for an insecure server.

Nothing here keeps mutable state at module level: an :class:`Authenticator` is built once from
its configuration and is read-only afterwards.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "Authenticator",
    "JwtConfig",
    "Principal",
    "Role",
    "TokenConfig",
    "bind_policy",
    "hash_token",
    "is_loopback",
    "new_token",
    "startup_notice",
]

# --------------------------------------------------------------------------------------------
# Roles, principals, errors
# --------------------------------------------------------------------------------------------


class Role(enum.Enum):
    """A permission level; members compare by rank (``Role.READER < Role.WRITER < Role.ADMIN``)."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {"reader": 0, "writer": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token entry's ``name`` or the JWT's subject, and the granted role."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.ADMIN)
"""The principal of every request when authentication is disabled (loopback or ``--insecure``)."""

_REALM = 'Bearer realm="twinedge"'


class AuthError(Exception):
    """A request is refused: ``status`` is 401 (who are you?) or 403 (not allowed).

    ``www_authenticate`` is the value for the response's ``WWW-Authenticate`` header (RFC 6750).
    """

    def __init__(self, status: int, text: str, *, error: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.error = error
        self.www_authenticate = _REALM if error is None else f'{_REALM}, error="{error}"'

    def __repr__(self) -> str:
        return f"AuthError({self.status}, {self.text!r})"


def _unauthorized(text: str, *, error: str | None = "invalid_token") -> AuthError:
    return AuthError(401, text, error=error)


class AuthConfigError(ValueError):
    """The auth configuration cannot be put into effect (missing env variable, unreadable key file, ...)."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

#: Algorithms a JWT may be signed with. Symmetric (HS*) ones are left out on purpose: the server
#: only holds public keys, and "none" is never acceptable.
JWT_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

#: Plain tokens read from the environment must be at least this long.
MIN_TOKEN_LENGTH = 16

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TokenConfig(BaseModel):
    """One static bearer token: exactly one of ``sha256`` or ``env``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Name = Field(description="Who holds the token; shown in logs as the principal's name.")
    role: Role = Field(description="reader, writer or admin.")
    sha256: str | None = Field(
        default=None,
        description="Hex SHA-256 digest of the token (`twinedge server token` prints one).",
    )
    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of an environment variable holding the plain token; read and hashed at start-up.",
    )

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digest = value.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(
                "expected the SHA-256 digest of the token as 64 hexadecimal characters "
                "(not the token itself); `twinedge server token` prints one"
            )
        return digest

    @model_validator(mode="after")
    def _one_source(self) -> TokenConfig:
        if (self.sha256 is None) == (self.env is None):
            got = "both" if self.sha256 is not None else "neither"
            raise ValueError(
                f"token {self.name!r}: set exactly one of 'sha256' (hex digest of the token) or 'env' "
                f"(name of an environment variable holding the token); got {got}"
            )
        return self


class JwtConfig(BaseModel):
    """Offline JWT validation: a PEM public key (or certificate) or a JWKS file, never a URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key_file: Path | None = Field(default=None, description="PEM public key or X.509 certificate.")
    jwks_file: Path | None = Field(default=None, description="JSON Web Key Set file (RFC 7517).")
    audience: str | list[str] | None = Field(
        default=None, description="Accepted 'aud' value(s); without it, tokens that carry 'aud' are refused."
    )
    issuer: str | None = Field(default=None, description="Required 'iss' value.")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    role_claim: _Name = Field(
        default="roles",
        description="Claim holding the roles (a list or a space-separated string); a dotted path such as "
        "'realm_access.roles' reaches into nested objects.",
    )
    role_map: dict[str, Role] = Field(
        default_factory=dict,
        description="Extra role names of the identity provider mapped to reader/writer/admin.",
    )
    leeway_seconds: float = Field(default=0, ge=0, le=3600, description="Clock skew allowed for exp/nbf/iat.")

    @field_validator("algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a not in JWT_ALGORITHMS]
        if bad:
            raise ValueError(
                f"unsupported algorithm(s) {bad}: expected some of {sorted(JWT_ALGORITHMS)} "
                "(symmetric HS* and 'none' are not accepted)"
            )
        return list(dict.fromkeys(value))

    @field_validator("audience")
    @classmethod
    def _check_audience(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("expected at least one audience, or leave 'audience' out")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        if (self.public_key_file is None) == (self.jwks_file is None):
            got = "both" if self.public_key_file is not None else "neither"
            raise ValueError(f"set exactly one of 'public_key_file' (PEM) or 'jwks_file' (JWKS JSON); got {got}")
        return self


class AuthConfig(BaseModel):
    """The ``auth`` section of the server configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[TokenConfig] = Field(default_factory=list)
    jwt: JwtConfig | None = None

    @field_validator("tokens")
    @classmethod
    def _unique(cls, value: list[TokenConfig]) -> list[TokenConfig]:
        seen_names: set[str] = set()
        seen_digests: set[str] = set()
        for entry in value:
            if entry.name in seen_names:
                raise ValueError(f"token name {entry.name!r} is used twice; names must be unique")
            seen_names.add(entry.name)
            if entry.sha256 is not None:
                if entry.sha256 in seen_digests:
                    raise ValueError(f"token {entry.name!r} has the same sha256 as an earlier entry")
                seen_digests.add(entry.sha256)
        return value


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def hash_token(plain: str) -> str:
    """The hex SHA-256 digest of a token, as it goes into the ``sha256`` field of a token entry."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token and its digest: ``(plain, sha256)``. Show the plain one once, store the digest."""
    plain = secrets.token_urlsafe(32)
    return plain, hash_token(plain)


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

_EC_CURVE_ALG = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _key_algorithms(key: object) -> frozenset[str]:
    """The JWT algorithms a public key can verify (empty for symmetric or unknown keys)."""
    if isinstance(key, rsa.RSAPublicKey):
        return frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_CURVE_ALG.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    return frozenset()


@dataclass(frozen=True)
class _VerifyKey:
    kid: str | None
    key: PublicKey
    algorithms: tuple[str, ...]


def _check_rsa_size(key: object, where: str) -> None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise AuthConfigError(f"{where}: RSA key of {key.key_size} bits is too weak; use at least 2048 bits")


def _load_pem(path: Path, allowed: Sequence[str]) -> list[_VerifyKey]:
    where = f"auth.jwt.public_key_file {path}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    loaded: object
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            loaded = x509.load_pem_x509_certificate(data).public_key()
        else:
            loaded = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuthConfigError(
            f"{where}: not a PEM public key or certificate ({exc}); "
            "expected '-----BEGIN PUBLIC KEY-----' or '-----BEGIN CERTIFICATE-----'"
        ) from exc
    if not isinstance(loaded, PublicKey):
        raise AuthConfigError(f"{where}: unsupported key type {type(loaded).__name__}; expected RSA, EC or Ed25519")
    _check_rsa_size(loaded, where)
    algs = tuple(a for a in allowed if a in _key_algorithms(loaded))
    if not algs:
        raise AuthConfigError(
            f"{where}: a {type(loaded).__name__.removeprefix('_')} cannot verify any of the configured "
            f"algorithms {list(allowed)}; fix auth.jwt.algorithms"
        )
    return [_VerifyKey(None, loaded, algs)]


def _load_jwks(path: Path, allowed: Sequence[str]) -> list[_VerifyKey]:
    where = f"auth.jwt.jwks_file {path}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthConfigError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthConfigError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise AuthConfigError(f'{where}: expected a JSON Web Key Set, an object {{"keys": [...]}}')
    keys: list[_VerifyKey] = []
    for i, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            jwk = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key type or curve this server does not verify with (e.g. symmetric "oct")
        key = jwk.key
        if not isinstance(key, PublicKey):
            continue  # a private or symmetric key: never used for verification
        _check_rsa_size(key, f"{where} key {i} (kid {entry.get('kid')!r})")
        algs = [a for a in allowed if a in _key_algorithms(key)]
        declared = entry.get("alg")
        if isinstance(declared, str):
            algs = [a for a in algs if a == declared]
        if algs:
            kid = entry.get("kid")
            keys.append(_VerifyKey(kid if isinstance(kid, str) else None, key, tuple(algs)))
    if not keys:
        raise AuthConfigError(f"{where}: no public signing key usable with the configured algorithms {list(allowed)}")
    return keys


# --------------------------------------------------------------------------------------------
# The authenticator
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TokenEntry:
    digest: bytes
    principal: Principal


class _JwtVerifier:
    """Verifies JWTs against a fixed set of keys; immutable after construction."""

    def __init__(self, cfg: JwtConfig, keys: Sequence[_VerifyKey]) -> None:
        self._keys = tuple(keys)
        self._algorithms = frozenset(cfg.algorithms)
        self._audience = cfg.audience
        self._issuer = cfg.issuer
        self._leeway = cfg.leeway_seconds
        self._role_claim = cfg.role_claim
        names: dict[str, Role] = {r.value: r for r in Role}
        names.update(cfg.role_map)
        self._role_names = names
        self._decoder = jwt.PyJWT()
        required = ["exp"]
        if cfg.issuer is not None:
            required.append("iss")
        if cfg.audience is not None:
            required.append("aud")
        self._required = required

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized("malformed bearer token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _unauthorized(f"token algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _unauthorized("malformed token header: 'kid' is not a string")
        if kid is None:
            candidates = list(self._keys)
        else:
            # A key named by the token's kid; else only keys without a kid (a PEM key) are tried.
            candidates = [k for k in self._keys if k.kid == kid] or [k for k in self._keys if k.kid is None]
        candidates = [k for k in candidates if alg in k.algorithms]
        if not candidates:
            raise _unauthorized("token signed with an unknown key" if kid is not None else "no key for this token")
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = self._decoder.decode(
                    token,
                    key.key,
                    algorithms=list(key.algorithms),
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": self._required},
                )
                break
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
                continue  # not this key
            except jwt.PyJWTError as exc:
                raise _unauthorized(_jwt_error_text(exc)) from exc
        if claims is None:
            raise _unauthorized("token signature does not verify")
        return Principal(_subject(claims), self._role(claims))

    def _role(self, claims: Mapping[str, Any]) -> Role:
        raw = _claim(claims, self._role_claim)
        names: list[str]
        if isinstance(raw, str):
            names = raw.split()
        elif isinstance(raw, list):
            names = [n for n in raw if isinstance(n, str)]
        else:
            names = []
        roles = [self._role_names[n] for n in names if n in self._role_names]
        if not roles:
            raise AuthError(
                403,
                f"token carries no recognised role in claim {self._role_claim!r} "
                f"(expected some of {sorted(self._role_names)})",
                error="insufficient_scope",
            )
        return max(roles)


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim called ``name``, or else the value at dotted path ``name`` (``realm_access.roles``)."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _subject(claims: Mapping[str, Any]) -> str:
    for name in ("sub", "azp", "client_id"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return "jwt"


def _jwt_error_text(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token audience is not accepted"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token issuer is not accepted"
    if isinstance(exc, jwt.DecodeError):
        return "malformed bearer token"
    return "invalid token"


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`; built once, read-only afterwards."""

    def __init__(self, tokens: Sequence[_TokenEntry] = (), jwt_verifier: _JwtVerifier | None = None) -> None:
        self._tokens = tuple(tokens)
        self._jwt = jwt_verifier

    @classmethod
    def from_config(cls, cfg: AuthConfig, environ: Mapping[str, str], *, base_dir: Path | None = None) -> Authenticator:
        """Read env tokens (hashed at once), load JWT keys. Relative key paths resolve against ``base_dir``.

        Raises :class:`AuthConfigError` when a variable is missing or a key file is unusable.
        """
        entries: list[_TokenEntry] = []
        seen: dict[str, str] = {}
        for tok in cfg.tokens:
            if tok.sha256 is not None:
                digest = tok.sha256
            else:
                assert tok.env is not None  # guaranteed by TokenConfig
                plain = environ.get(tok.env, "").strip()
                if not plain:
                    raise AuthConfigError(
                        f"auth.tokens: token {tok.name!r} reads environment variable {tok.env}, which is not set "
                        "or empty; set it, or put the token's digest into 'sha256' instead"
                    )
                if len(plain) < MIN_TOKEN_LENGTH:
                    raise AuthConfigError(
                        f"auth.tokens: token {tok.name!r} (from {tok.env}) is shorter than {MIN_TOKEN_LENGTH} "
                        "characters; use a random token, e.g. from `twinedge server token`"
                    )
                digest = hash_token(plain)
            if digest in seen:
                raise AuthConfigError(f"auth.tokens: tokens {seen[digest]!r} and {tok.name!r} are the same token")
            seen[digest] = tok.name
            entries.append(_TokenEntry(bytes.fromhex(digest), Principal(tok.name, tok.role)))

        verifier: _JwtVerifier | None = None
        if cfg.jwt is not None:
            j = cfg.jwt

            def resolve(p: Path) -> Path:
                return p if p.is_absolute() or base_dir is None else base_dir / p

            if j.public_key_file is not None:
                keys = _load_pem(resolve(j.public_key_file), j.algorithms)
            else:
                assert j.jwks_file is not None  # guaranteed by JwtConfig
                keys = _load_jwks(resolve(j.jwks_file), j.algorithms)
            verifier = _JwtVerifier(j, keys)
        return cls(entries, verifier)

    @property
    def enabled(self) -> bool:
        """False when neither tokens nor JWT are configured: every request is then :data:`ANONYMOUS`."""
        return bool(self._tokens) or self._jwt is not None

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal behind ``Authorization: Bearer ...``; :class:`AuthError` 401 when it is not valid."""
        if not self.enabled:
            return ANONYMOUS
        if authorization_header is None or not authorization_header.strip():
            raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'", error=None)
        parts = authorization_header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise _unauthorized("malformed Authorization header: expected 'Bearer <token>'", error="invalid_request")
        credential = parts[1]

        found = self._lookup_token(credential)
        if found is not None:
            return found
        if self._jwt is not None and credential.count(".") == 2:
            return self._jwt.verify(credential)
        raise _unauthorized("unknown or invalid bearer token")

    def _lookup_token(self, credential: str) -> Principal | None:
        # Compare the digest with every entry, without stopping early, so the time taken does not
        # depend on which entry (if any) matched.
        digest = hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for entry in self._tokens:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found

    @staticmethod
    def require(principal: Principal, role: Role) -> None:
        """:class:`AuthError` 403 unless ``principal`` holds at least ``role``."""
        if principal.role < role:
            raise AuthError(
                403,
                f"{principal.name!r} has role {principal.role.value}; this operation needs {role.value}",
                error="insufficient_scope",
            )

    def check(self, authorization_header: str | None, role: Role) -> Principal:
        """:meth:`authenticate` then :meth:`require`."""
        principal = self.authenticate(authorization_header)
        self.require(principal, role)
        return principal


# --------------------------------------------------------------------------------------------
# Where the server may listen
# --------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (also bracketed or IPv4-mapped); False for anything else."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h in ("localhost", "localhost."):
        return True
    try:
        addr = ipaddress.ip_address(h)
    except ValueError:
        return False  # another host name: it may resolve to anything
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def bind_policy(host: str, auth_enabled: bool, insecure: bool) -> str | None:
    """An error message if the server must refuse to start on ``host``; None when it may start."""
    if auth_enabled or insecure or is_loopback(host):
        return None
    shown = host or "all interfaces"
    return (
        f"refusing to listen on {shown} without authentication: anyone who can reach this port could read "
        "and change every twin. Configure tokens under 'auth.tokens' (`twinedge server token` prints an "
        "entry) or a JWT key under 'auth.jwt', or listen on 127.0.0.1, or start with --insecure if this "
        "network is trusted."
    )


def startup_notice(host: str, auth_enabled: bool, insecure: bool) -> str:
    """One line for the log at start-up saying who may do what."""
    if auth_enabled:
        notice = f"authentication on: every request to {host} needs a bearer token with a sufficient role"
        if insecure:
            notice += " (--insecure has no effect when authentication is configured)"
        return notice
    if is_loopback(host):
        return (
            f"no tokens configured: listening on loopback only ({host}); "
            "every local client may read, write and administer"
        )
    refusal = bind_policy(host, auth_enabled, insecure)
    if refusal is not None:
        return refusal
    return (
        f"INSECURE: no tokens configured and listening on {host or 'all interfaces'}: anyone who can reach "
        "this port may read, write and administer every twin"
    )
