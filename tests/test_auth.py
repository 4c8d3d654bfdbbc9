"""twin_server.auth: static tokens, JWT validation, roles, configuration errors, bind policy."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from twin_server.auth import (
    ANONYMOUS,
    AuthConfig,
    AuthConfigError,
    Authenticator,
    AuthError,
    JwtConfig,
    Principal,
    Role,
    TokenConfig,
    bind_policy,
    hash_token,
    is_loopback,
    new_token,
    startup_notice,
)

READER_TOKEN = "reader-token-0123456789abcdef"
WRITER_TOKEN = "writer-token-0123456789abcdef"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def make_auth(
    data: dict[str, Any], environ: dict[str, str] | None = None, base_dir: Path | None = None
) -> Authenticator:
    return Authenticator.from_config(AuthConfig.model_validate(data), environ or {}, base_dir=base_dir)


def error_locs(exc: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(e["loc"]) for e in exc.errors()]


# ------------------------------------------------------------------------------------- roles


def test_roles_are_ordered() -> None:
    assert Role.READER < Role.WRITER < Role.ADMIN
    assert Role.ADMIN >= Role.WRITER >= Role.READER
    assert max([Role.WRITER, Role.ADMIN, Role.READER]) is Role.ADMIN
    assert Role("writer") is Role.WRITER
    with pytest.raises(TypeError):
        _ = Role.READER < "writer"


# ------------------------------------------------------------------------------------- tokens


def test_hash_and_new_token() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    plain, digest = new_token()
    assert len(plain) >= 40 and digest == hash_token(plain)
    assert new_token()[0] != plain


def test_token_from_sha256_and_from_env() -> None:
    auth = make_auth(
        {
            "tokens": [
                {"name": "dashboard", "role": "reader", "sha256": hash_token(READER_TOKEN).upper()},
                {"name": "agent", "role": "writer", "env": "TWIN_AGENT_TOKEN"},
            ]
        },
        {"TWIN_AGENT_TOKEN": WRITER_TOKEN + "\n"},
    )
    assert auth.enabled
    assert auth.authenticate(bearer(READER_TOKEN)) == Principal("dashboard", Role.READER)
    assert auth.authenticate(bearer(WRITER_TOKEN)) == Principal("agent", Role.WRITER)
    # scheme is case-insensitive, surrounding whitespace is ignored
    assert auth.authenticate(f"  bearer   {WRITER_TOKEN} ").role is Role.WRITER


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Bearer", "Bearer ", f"Basic {READER_TOKEN}", f"Bearer {READER_TOKEN} extra", READER_TOKEN],
)
def test_missing_or_garbled_header_is_401(header: str | None) -> None:
    auth = make_auth({"tokens": [{"name": "r", "role": "reader", "sha256": hash_token(READER_TOKEN)}]})
    with pytest.raises(AuthError) as info:
        auth.authenticate(header)
    assert info.value.status == 401
    assert info.value.www_authenticate.startswith('Bearer realm="twinedge"')


def test_unknown_token_is_401() -> None:
    auth = make_auth({"tokens": [{"name": "r", "role": "reader", "sha256": hash_token(READER_TOKEN)}]})
    with pytest.raises(AuthError) as info:
        auth.authenticate(bearer(WRITER_TOKEN))
    assert info.value.status == 401
    assert 'error="invalid_token"' in info.value.www_authenticate
    # a token's digest is not the token
    with pytest.raises(AuthError):
        auth.authenticate(bearer(hash_token(READER_TOKEN)))


def test_require_roles() -> None:
    auth = make_auth(
        {
            "tokens": [
                {"name": "r", "role": "reader", "sha256": hash_token(READER_TOKEN)},
                {"name": "w", "role": "writer", "sha256": hash_token(WRITER_TOKEN)},
            ]
        }
    )
    reader = auth.authenticate(bearer(READER_TOKEN))
    writer = auth.authenticate(bearer(WRITER_TOKEN))
    auth.require(reader, Role.READER)
    auth.require(writer, Role.READER)
    auth.require(writer, Role.WRITER)
    with pytest.raises(AuthError) as info:
        auth.require(reader, Role.WRITER)
    assert info.value.status == 403 and "writer" in info.value.text
    assert 'error="insufficient_scope"' in info.value.www_authenticate
    with pytest.raises(AuthError) as info:
        auth.require(writer, Role.ADMIN)
    assert info.value.status == 403
    assert auth.check(bearer(WRITER_TOKEN), Role.WRITER) == writer
    with pytest.raises(AuthError) as info:
        auth.check(bearer(READER_TOKEN), Role.WRITER)
    assert info.value.status == 403


def test_disabled_authenticator_lets_everyone_in() -> None:
    auth = make_auth({})
    assert not auth.enabled
    assert auth.authenticate(None) is ANONYMOUS
    assert auth.authenticate("Bearer whatever") is ANONYMOUS
    auth.require(ANONYMOUS, Role.ADMIN)


def test_env_token_missing_empty_or_short() -> None:
    cfg = {"tokens": [{"name": "agent", "role": "writer", "env": "TWIN_AGENT_TOKEN"}]}
    with pytest.raises(AuthConfigError, match="TWIN_AGENT_TOKEN"):
        make_auth(cfg, {})
    with pytest.raises(AuthConfigError, match="TWIN_AGENT_TOKEN"):
        make_auth(cfg, {"TWIN_AGENT_TOKEN": "  "})
    with pytest.raises(AuthConfigError, match="shorter"):
        make_auth(cfg, {"TWIN_AGENT_TOKEN": "secret"})


def test_same_token_twice_is_refused() -> None:
    with pytest.raises(AuthConfigError, match="same token"):
        make_auth(
            {
                "tokens": [
                    {"name": "a", "role": "reader", "sha256": hash_token(READER_TOKEN)},
                    {"name": "b", "role": "admin", "env": "T"},
                ]
            },
            {"T": READER_TOKEN},
        )


# ------------------------------------------------------------------------------- config errors


def test_token_with_both_sha256_and_env() -> None:
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate(
            {"tokens": [{"name": "x", "role": "reader", "sha256": hash_token("t"), "env": "TOKEN"}]}
        )
    assert error_locs(info.value) == [("tokens", 0)]
    text = str(info.value)
    assert "'sha256'" in text and "'env'" in text and "both" in text


def test_token_with_neither_sha256_nor_env() -> None:
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"tokens": [{"name": "x", "role": "reader"}]})
    assert "neither" in str(info.value)


@pytest.mark.parametrize("digest", ["abc", "g" * 64, hash_token("t") + "0", "my-plain-token"])
def test_sha256_must_be_64_hex(digest: str) -> None:
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"tokens": [{"name": "x", "role": "reader", "sha256": digest}]})
    assert error_locs(info.value) == [("tokens", 0, "sha256")]
    assert "64 hexadecimal" in str(info.value)


def test_unknown_role() -> None:
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"tokens": [{"name": "x", "role": "superuser", "sha256": hash_token("t")}]})
    assert error_locs(info.value) == [("tokens", 0, "role")]
    assert "'reader', 'writer' or 'admin'" in str(info.value)


def test_other_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"tokens": [{"name": "x", "role": "reader", "token": "plain"}]})
    assert ("tokens", 0, "token") in error_locs(info.value)
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"tokens": [{"name": "x", "role": "reader", "env": "NOT A NAME"}]})
    assert error_locs(info.value) == [("tokens", 0, "env")]
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate(
            {
                "tokens": [
                    {"name": "x", "role": "reader", "sha256": hash_token("a")},
                    {"name": "x", "role": "writer", "sha256": hash_token("b")},
                ]
            }
        )
    assert error_locs(info.value) == [("tokens",)]
    assert "used twice" in str(info.value)
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"jwt": {"public_key_file": "k.pem", "algorithms": ["HS256"]}})
    assert error_locs(info.value) == [("jwt", "algorithms")]
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"jwt": {"public_key_file": "k.pem", "algorithms": ["none"]}})
    assert error_locs(info.value) == [("jwt", "algorithms")]
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"jwt": {"public_key_file": "k.pem", "jwks_file": "k.json"}})
    assert error_locs(info.value) == [("jwt",)]
    assert "'public_key_file'" in str(info.value) and "'jwks_file'" in str(info.value)
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"jwt": {"audience": "twin"}})
    assert "neither" in str(info.value)
    with pytest.raises(ValidationError) as info:
        AuthConfig.model_validate({"jwt": {"public_key_file": "k.pem", "leeway_seconds": -1}})
    assert error_locs(info.value) == [("jwt", "leeway_seconds")]


def test_jwt_defaults() -> None:
    cfg = JwtConfig.model_validate({"public_key_file": "k.pem"})
    assert cfg.algorithms == ["RS256", "ES256"]
    assert cfg.role_claim == "roles"
    assert cfg.leeway_seconds == 0


def test_token_config_normalises_digest() -> None:
    entry = TokenConfig.model_validate({"name": " ops ", "role": "admin", "sha256": hash_token("t").upper()})
    assert entry.name == "ops" and entry.sha256 == hash_token("t") and entry.role is Role.ADMIN


# ------------------------------------------------------------------------------------------ JWT

AUDIENCE = "twinedge"
ISSUER = "https://idp.example.com/realms/plant"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, **extra: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        text = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    else:
        text = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())
    data: dict[str, Any] = json.loads(text)
    return {**data, "kid": kid, "use": "sig", **extra}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "roles": ["writer"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None = None, alg: str = "RS256", **overrides: Any
) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


@pytest.fixture()
def pem_auth(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Authenticator:
    (tmp_path / "idp.pem").write_bytes(pem(rsa_key))
    return make_auth(
        {"jwt": {"public_key_file": "idp.pem", "audience": AUDIENCE, "issuer": ISSUER}},
        base_dir=tmp_path,
    )


def assert_401(auth: Authenticator, token: str, text: str) -> None:
    with pytest.raises(AuthError) as info:
        auth.authenticate(bearer(token))
    assert info.value.status == 401, info.value
    assert text in info.value.text


def test_jwt_via_pem_public_key(pem_auth: Authenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    assert pem_auth.enabled
    assert pem_auth.authenticate(bearer(sign(rsa_key))) == Principal("alice", Role.WRITER)
    # a kid in the token does not matter for a single PEM key
    assert pem_auth.authenticate(bearer(sign(rsa_key, kid="k1"))).role is Role.WRITER
    # PS256 is not among the default algorithms
    assert_401(pem_auth, sign(rsa_key, alg="PS256"), "algorithm")


def test_jwt_via_jwks_with_kid(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            jwk(other_rsa_key, "old"),
            jwk(rsa_key, "current", alg="RS256"),
            jwk(ec_key, "ec-1"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            jwk(other_rsa_key, "enc", use="enc"),
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    auth = make_auth({"jwt": {"jwks_file": str(path), "audience": AUDIENCE, "issuer": ISSUER}})
    assert auth.authenticate(bearer(sign(rsa_key, kid="current"))).name == "alice"
    assert auth.authenticate(bearer(sign(other_rsa_key, kid="old"))).name == "alice"
    assert auth.authenticate(bearer(sign(ec_key, kid="ec-1", alg="ES256"))).role is Role.WRITER
    # a token without kid is tried against the keys
    assert auth.authenticate(bearer(sign(rsa_key))).name == "alice"
    # signed by key "old" but claims to be "current"
    assert_401(auth, sign(other_rsa_key, kid="current"), "signature")
    assert_401(auth, sign(rsa_key, kid="nobody"), "unknown key")
    # the symmetric and encryption-only entries are not verification keys
    assert_401(
        auth,
        jwt.encode(claims(), "secret-secret-secret-secret-1234", algorithm="HS256", headers={"kid": "hmac"}),
        "algorithm",
    )
    assert_401(auth, sign(other_rsa_key, kid="enc"), "unknown key")


def test_jwks_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    with pytest.raises(AuthConfigError, match="cannot read"):
        make_auth({"jwt": {"jwks_file": str(path)}})
    path.write_text("{not json")
    with pytest.raises(AuthConfigError, match="not valid JSON"):
        make_auth({"jwt": {"jwks_file": str(path)}})
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))
    with pytest.raises(AuthConfigError, match="no public signing key"):
        make_auth({"jwt": {"jwks_file": str(path)}})


def test_pem_file_problems(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "k.pem"
    path.write_text("hello")
    with pytest.raises(AuthConfigError, match="not a PEM public key"):
        make_auth({"jwt": {"public_key_file": str(path)}})
    path.write_bytes(pem(rsa_key))
    with pytest.raises(AuthConfigError, match="cannot verify any of the configured algorithms"):
        make_auth({"jwt": {"public_key_file": str(path), "algorithms": ["ES256"]}})
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_bytes(pem(weak))
    with pytest.raises(AuthConfigError, match="too weak"):
        make_auth({"jwt": {"public_key_file": str(path)}})


def test_expired_jwt_and_leeway(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, pem_auth: Authenticator) -> None:
    expired = sign(rsa_key, exp=int(time.time()) - 60)
    assert_401(pem_auth, expired, "expired")
    (tmp_path / "idp.pem").write_bytes(pem(rsa_key))
    lenient = make_auth(
        {
            "jwt": {
                "public_key_file": str(tmp_path / "idp.pem"),
                "audience": AUDIENCE,
                "issuer": ISSUER,
                "leeway_seconds": 120,
            }
        }
    )
    assert lenient.authenticate(bearer(expired)).name == "alice"
    assert_401(lenient, sign(rsa_key, exp=int(time.time()) - 600), "expired")
    # not yet valid
    assert_401(pem_auth, sign(rsa_key, nbf=int(time.time()) + 600), "not yet valid")
    # a token without exp never expires: refused
    assert_401(pem_auth, sign(rsa_key, exp=None), "'exp'")


def test_wrong_audience_or_issuer(pem_auth: Authenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    assert_401(pem_auth, sign(rsa_key, aud="another-service"), "audience")
    assert_401(pem_auth, sign(rsa_key, aud=None), "'aud'")
    assert pem_auth.authenticate(bearer(sign(rsa_key, aud=["another-service", AUDIENCE]))).name == "alice"
    assert_401(pem_auth, sign(rsa_key, iss="https://evil.example.com"), "issuer")
    assert_401(pem_auth, sign(rsa_key, iss=None), "'iss'")


def test_without_configured_audience_tokens_with_aud_are_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    (tmp_path / "idp.pem").write_bytes(pem(rsa_key))
    auth = make_auth({"jwt": {"public_key_file": str(tmp_path / "idp.pem")}})
    assert auth.authenticate(bearer(sign(rsa_key, aud=None, iss=None))).name == "alice"
    assert_401(auth, sign(rsa_key), "audience")


def test_bad_signature_and_garbage(
    pem_auth: Authenticator, other_rsa_key: rsa.RSAPrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert_401(pem_auth, sign(other_rsa_key), "signature")
    assert_401(pem_auth, "aaa.bbb.ccc", "malformed")
    good = sign(rsa_key)
    head, _body, sig = good.split(".")
    tampered = jwt.utils.base64url_encode(json.dumps({**claims(), "roles": ["admin"]}).encode()).decode()
    assert_401(pem_auth, f"{head}.{tampered}.{sig}", "signature")


def test_role_claim_list_string_nested_and_map(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, pem_auth: Authenticator
) -> None:
    assert pem_auth.authenticate(bearer(sign(rsa_key, roles=["reader", "admin", "other"]))).role is Role.ADMIN
    assert pem_auth.authenticate(bearer(sign(rsa_key, roles="reader writer offline_access"))).role is Role.WRITER
    assert pem_auth.authenticate(bearer(sign(rsa_key, roles="reader"))).role is Role.READER
    for roles in (["viewer"], "", None, 42):
        with pytest.raises(AuthError) as info:
            pem_auth.authenticate(bearer(sign(rsa_key, roles=roles)))
        assert info.value.status == 403 and "'roles'" in info.value.text

    (tmp_path / "idp.pem").write_bytes(pem(rsa_key))
    auth = make_auth(
        {
            "jwt": {
                "public_key_file": str(tmp_path / "idp.pem"),
                "audience": AUDIENCE,
                "issuer": ISSUER,
                "role_claim": "realm_access.roles",
                "role_map": {"aas-editor": "writer"},
            }
        }
    )
    token = sign(rsa_key, roles=None, realm_access={"roles": ["offline_access", "aas-editor"]})
    assert auth.authenticate(bearer(token)).role is Role.WRITER
    # a top-level claim whose name contains dots wins over the nested path
    token = sign(rsa_key, roles=None, **{"realm_access.roles": "admin"})
    assert auth.authenticate(bearer(token)).role is Role.ADMIN


def test_algorithm_none_rejected(pem_auth: Authenticator) -> None:
    unsigned = jwt.encode(claims(), "", algorithm="none")
    assert unsigned.endswith(".")
    assert_401(pem_auth, unsigned, "algorithm")
    # also with a forged signature part
    assert_401(pem_auth, unsigned + "c2ln", "algorithm")


def test_hs256_with_public_key_as_secret_rejected(pem_auth: Authenticator, rsa_key: rsa.RSAPrivateKey) -> None:
    # the classic key-confusion attack: HMAC "signed" with the PEM public key as secret
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims(roles=["admin"])).encode())
    sig = jwt.utils.base64url_encode(hmac.new(pem(rsa_key), header + b"." + body, hashlib.sha256).digest())
    assert_401(pem_auth, (header + b"." + body + b"." + sig).decode(), "algorithm")


def test_tokens_and_jwt_together(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    (tmp_path / "idp.pem").write_bytes(pem(rsa_key))
    auth = make_auth(
        {
            "tokens": [{"name": "agent", "role": "writer", "sha256": hash_token(WRITER_TOKEN)}],
            "jwt": {"public_key_file": str(tmp_path / "idp.pem"), "audience": AUDIENCE, "issuer": ISSUER},
        }
    )
    assert auth.authenticate(bearer(WRITER_TOKEN)).name == "agent"
    assert auth.authenticate(bearer(sign(rsa_key, roles="reader"))) == Principal("alice", Role.READER)
    assert_401(auth, READER_TOKEN, "unknown")


# -------------------------------------------------------------------------------- bind policy


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert bind_policy(host, auth_enabled=False, insecure=False) is None
    assert "loopback only" in startup_notice(host, auth_enabled=False, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "fe80::1", "twin.example.com", ""])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)
    refusal = bind_policy(host, auth_enabled=False, insecure=False)
    assert refusal is not None and "refusing" in refusal and "--insecure" in refusal
    assert startup_notice(host, auth_enabled=False, insecure=False) == refusal
    assert bind_policy(host, auth_enabled=True, insecure=False) is None
    assert bind_policy(host, auth_enabled=False, insecure=True) is None
    assert startup_notice(host, auth_enabled=False, insecure=True).startswith("INSECURE")
    assert startup_notice(host, auth_enabled=True, insecure=False).startswith("authentication on")


def test_startup_notice_wording() -> None:
    assert startup_notice("127.0.0.1", auth_enabled=False, insecure=False) == (
        "no tokens configured: listening on loopback only (127.0.0.1); "
        "every local client may read, write and administer"
    )
    assert "no effect" in startup_notice("0.0.0.0", auth_enabled=True, insecure=True)
    assert bind_policy("127.0.0.1", auth_enabled=True, insecure=True) is None
