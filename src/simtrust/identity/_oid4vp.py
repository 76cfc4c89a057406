"""OpenID for Verifiable Presentations 1.0: the verifier's requests and response checks.

Covered (OpenID4VP 1.0 section numbers): authorization requests passed by
reference (§5.7, RFC 9101 JAR: a request object signed by the verifier,
``typ`` ``oauth-authz-req+jwt``, fetched at ``request_uri``) under the
``decentralized_identifier`` client identifier prefix (§5.9.3, the verifier's
did:web); DCQL queries (§6: credential queries with ``format``, ``meta``
``vct_values``/``type_values``, ``claims`` paths and ``values``,
``claim_sets``, ``credential_sets``) and, for older wallets, DIF Presentation
Exchange definitions (``presentation_definition`` with a
``presentation_submission`` whose paths are ``$`` or ``$[n]`` and whose
constraint paths are ``$.a.b``); the ``direct_post`` response mode (§8.2) with
``vp_token`` and ``state``; and the per-format checks of Appendix B: SD-JWT VC
(B.3: key binding JWT with ``nonce`` = the request nonce and ``aud`` = the
client id) and W3C Data Integrity presentations (B.1: ``challenge`` = nonce,
``domain`` = client id, holder binding). Each verified presentation leaves a
verification receipt naming the relying party and the issuing operator.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from simtrust.crypto import Keyring
from simtrust.errors import InvalidInput, NotFound
from simtrust.identity._credentials import VerifiedPresentation
from simtrust.identity._errors import ProtocolError, VerificationFailed
from simtrust.identity._jws import parse_jws, sign_jws, verify_jws
from simtrust.identity._keys import Signer
from simtrust.identity._kyc import ReceiptLedger
from simtrust.identity._oid4vp_jwe import RESPONSE_ENC_VALUES, new_response_key, open_response
from simtrust.identity._receipt import VerificationReceipt
from simtrust.identity._resolver import DidResolver
from simtrust.identity._sdjwt import VerifiedSdJwt
from simtrust.identity._time import format_datetime, parse_datetime
from simtrust.store import Database

__all__ = [
    "DCQL_FORMATS",
    "REQUEST_OBJECT_TYP",
    "PresentationVerifier",
    "open_request_object",
    "validate_dcql_query",
]

REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
DCQL_FORMATS = ("dc+sd-jwt", "ldp_vc")
_LIFETIME = timedelta(minutes=10)
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_FORM_VALUE = 512 * 1024

#: verify_sd_jwt(presentation, nonce, audience) → verified SD-JWT
SdJwtCheck = Callable[[str, str, str], VerifiedSdJwt]
#: verify_ldp(presentation, challenge, domain) → verified presentation (holder-bound)
LdpCheck = Callable[[dict[str, Any], str, str], VerifiedPresentation]


def _fail(detail: str) -> InvalidInput:
    return InvalidInput(detail, rule="OpenID4VP 1.0 §6 DCQL")


def _check_path(path: object, where: str) -> None:
    if not isinstance(path, list) or not path or len(path) > 16:
        raise _fail(f"{where}: a claims path is a non-empty array")
    for item in path:
        if (item is not None and not isinstance(item, str | int)) or isinstance(item, bool):
            raise _fail(f"{where}: a path element is a string, an integer or null")


def validate_dcql_query(query: object) -> dict[str, Any]:
    """Check a DCQL query's shape (§6.1–§6.4); return it."""
    if not isinstance(query, dict) or set(query) - {"credentials", "credential_sets"}:
        raise _fail("a DCQL query has credentials and optionally credential_sets")
    credentials = query.get("credentials")
    if not isinstance(credentials, list) or not credentials or len(credentials) > 16:
        raise _fail("credentials is a non-empty array")
    ids: set[str] = set()
    for credential in credentials:
        if not isinstance(credential, dict):
            raise _fail("a credential query is an object")
        cid = credential.get("id")
        if not isinstance(cid, str) or not _ID.fullmatch(cid) or cid in ids:
            raise _fail("a credential query id is a unique [A-Za-z0-9_-] string")
        ids.add(cid)
        if credential.get("format") not in DCQL_FORMATS:
            raise _fail(f"credential query {cid}: format must be one of {DCQL_FORMATS}")
        meta = credential.get("meta")
        if not isinstance(meta, dict):
            raise _fail(f"credential query {cid}: meta is required (§6.1)")
        if credential["format"] == "dc+sd-jwt":
            values = meta.get("vct_values")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise _fail(f"credential query {cid}: meta.vct_values is an array of strings")
        else:
            values = meta.get("type_values")
            if not isinstance(values, list) or not all(
                isinstance(v, list) and v and all(isinstance(t, str) for t in v) for v in values
            ):
                raise _fail(f"credential query {cid}: meta.type_values is an array of arrays")
        claims = credential.get("claims", [])
        if not isinstance(claims, list):
            raise _fail(f"credential query {cid}: claims is an array")
        claim_ids = set()
        for claim in claims:
            if not isinstance(claim, dict):
                raise _fail(f"credential query {cid}: a claims query is an object")
            _check_path(claim.get("path"), f"credential query {cid}")
            if "values" in claim and not isinstance(claim["values"], list):
                raise _fail(f"credential query {cid}: values is an array")
            if "id" in claim:
                claim_ids.add(claim["id"])
        claim_sets = credential.get("claim_sets")
        if claim_sets is not None and (
            not isinstance(claim_sets, list)
            or not all(isinstance(s, list) and set(s) <= claim_ids for s in claim_sets)
        ):
            raise _fail(f"credential query {cid}: claim_sets name ids of its claims")
    sets = query.get("credential_sets")
    if sets is not None:
        if not isinstance(sets, list) or not sets:
            raise _fail("credential_sets is a non-empty array")
        for entry in sets:
            options = entry.get("options") if isinstance(entry, dict) else None
            if not isinstance(options, list) or not options or not all(
                isinstance(o, list) and set(o) <= ids for o in options
            ):
                raise _fail("a credential set's options name credential query ids")
    return query


def open_request_object(jwt: str, resolver: DidResolver) -> dict[str, Any]:
    """The wallet's side: check a request object's ``typ``, signer and client id; its payload.

    Under the ``decentralized_identifier`` prefix the ``kid`` must be a key of
    the DID the client id names (OpenID4VP 1.0 §5.9.3).
    """
    decoded = parse_jws(jwt)
    if decoded.header.get("typ") != REQUEST_OBJECT_TYP:
        raise VerificationFailed("malformed", f"a request object has typ {REQUEST_OBJECT_TYP}")
    client_id, kid = decoded.payload.get("client_id"), decoded.header.get("kid")
    prefix = "decentralized_identifier:"
    if not isinstance(client_id, str) or not client_id.startswith(prefix):
        raise VerificationFailed("malformed", "client_id uses the decentralized_identifier prefix")
    if not isinstance(kid, str) or kid.split("#", 1)[0] != client_id.removeprefix(prefix):
        raise VerificationFailed("key-not-authorized", "kid must be a key of the client's DID")
    verify_jws(decoded, resolver.verification_key(kid, "authentication"))
    return decoded.payload


def _walk(document: Any, path: list[Any]) -> list[Any]:
    """Claims path processing (§7): the values ``path`` selects; null selects all items."""
    selected = [document]
    for step in path:
        nxt: list[Any] = []
        for node in selected:
            if isinstance(step, str) and isinstance(node, dict) and step in node:
                nxt.append(node[step])
            elif step is None and isinstance(node, list):
                nxt.extend(node)
            elif isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
                nxt.append(node[step])
        selected = nxt
    return selected


@dataclass(frozen=True, slots=True)
class _Presented:
    """One verified presentation: what it disclosed and who issued it."""

    format: str
    issuer: str
    credential_type: str
    claims: dict[str, Any]
    raw: str


class PresentationVerifier:
    """The verifier side of OpenID4VP for relying parties that use simtrust to verify."""

    __slots__ = (
        "_base", "_check_ldp", "_check_sd_jwt", "_db", "_keyring", "_receipts", "_signer",
    )  # fmt: skip

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        *,
        base_url: str,
        signer: Callable[[], Signer],
        check_sd_jwt: SdJwtCheck,
        check_ldp: LdpCheck,
        receipts: ReceiptLedger,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._base = base_url.rstrip("/")
        self._signer = signer
        self._check_sd_jwt = check_sd_jwt
        self._check_ldp = check_ldp
        self._receipts = receipts

    def client_id(self) -> str:
        """``decentralized_identifier:`` + the DID whose key signs the request objects."""
        return "decentralized_identifier:" + self._signer().controller

    # -- requests

    def create_request(
        self,
        relying_party: str,
        *,
        now: datetime,
        dcql_query: object = None,
        presentation_definition: object = None,
        response_mode: str = "direct_post",
    ) -> dict[str, Any]:
        if (dcql_query is None) == (presentation_definition is None):
            raise InvalidInput("give exactly one of dcql_query and presentation_definition",
                               rule="OpenID4VP 1.0 §5.1")  # fmt: skip
        if dcql_query is not None:
            query: dict[str, Any] = {"dcql_query": validate_dcql_query(dcql_query)}
        else:
            query = {"presentation_definition": _validate_definition(presentation_definition)}
        if response_mode not in ("direct_post", "direct_post.jwt"):
            raise InvalidInput("response_mode is direct_post or direct_post.jwt (§8.2, §8.3)")
        request_id = secrets.token_urlsafe(16)
        nonce, state = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        client_id = self.client_id()
        sealed = None
        if response_mode == "direct_post.jwt":
            private, public = new_response_key()
            query["_enc"] = public  # the public half goes into client_metadata.jwks
            sealed = self._keyring.seal(private.encode(), self._aad(request_id, "enc"))
        with self._db.transaction(durable=True):
            self._db.execute(
                "INSERT INTO identity_oid4vp_request (request_id, relying_party, client_id, nonce,"
                " state, query, created, expires, status, enc_key_sealed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id, relying_party, client_id, nonce, state, json.dumps(query),
                    format_datetime(now), format_datetime(now + _LIFETIME), "pending", sealed,
                ),
            )
        request_uri = f"{self._base}/oid4vp/requests/{request_id}/object"
        return {
            "id": request_id,
            "clientId": client_id,
            "requestUri": request_uri,
            "authorizationRequest": "openid4vp://?client_id=" + quote(client_id, "")
            + "&request_uri=" + quote(request_uri, ""),
            "status": "pending",
            "expiresAt": format_datetime(now + _LIFETIME),
        }

    def _row(self, request_id: str) -> tuple[Any, ...]:
        row = self._db.query_one(
            "SELECT relying_party, client_id, nonce, state, query, expires, status, result_sealed,"
            " error FROM identity_oid4vp_request WHERE request_id = ?",
            (request_id,),
        )
        if row is None:
            raise NotFound("no such presentation request")
        return tuple(row)

    def request_object(self, request_id: str, *, now: datetime) -> str:
        """The signed request object served at ``request_uri`` (RFC 9101 §5.2, §5.10)."""
        _, client_id, nonce, state, query, expires, status, _, _ = self._row(request_id)
        if status != "pending" or parse_datetime(str(expires), "expires") < now:
            raise NotFound("the presentation request is no longer open")
        signer = self._signer()
        spec = json.loads(str(query))
        public = spec.pop("_enc", None)
        payload: dict[str, Any] = {
            "aud": "https://self-issued.me/v2",
            "client_id": client_id,
            "response_type": "vp_token",
            "response_mode": "direct_post",
            "response_uri": f"{self._base}/oid4vp/responses/{request_id}",
            "nonce": nonce,
            "state": state,
            "iat": int(now.timestamp()),
            "exp": int(parse_datetime(str(expires), "expires").timestamp()),
            "client_metadata": {
                "vp_formats_supported": {
                    "dc+sd-jwt": {
                        "sd-jwt_alg_values": ["EdDSA"],
                        "kb-jwt_alg_values": ["EdDSA", "ES256"],
                    },
                    "ldp_vc": {
                        "proof_type_values": ["DataIntegrityProof"],
                        "cryptosuite_values": ["eddsa-jcs-2022", "eddsa-rdfc-2022"],
                    },
                },
            },
            **spec,
        }
        if public is not None:
            payload["response_mode"] = "direct_post.jwt"
            payload["client_metadata"]["jwks"] = {"keys": [public]}
            payload["client_metadata"]["encrypted_response_enc_values_supported"] = list(
                RESPONSE_ENC_VALUES)
        header = {"typ": REQUEST_OBJECT_TYP, "kid": signer.verification_method}
        return sign_jws(header, payload, signer)

    # -- direct_post response (§8.2)

    def respond(self, request_id: str, form: Mapping[str, str], *, now: datetime) -> dict[str, Any]:
        """Verify a wallet's ``direct_post``; record the outcome; raise ProtocolError if refused."""
        relying_party, client_id, nonce, state, query, expires, status, _, _ = self._row(
            request_id
        )
        if status != "pending":
            raise ProtocolError("invalid_request", "this request was already answered")
        if parse_datetime(str(expires), "expires") < now:
            raise ProtocolError("invalid_request", "the presentation request has expired")
        form = self._opened(request_id, form)
        if form.get("state") != state:
            raise ProtocolError("invalid_request", "state does not match the request")
        if "error" in form:
            self._finish(request_id, "refused", None, str(form["error"])[:200])
            return {}
        try:
            raw = form.get("vp_token")
            if raw is None or len(raw) > _MAX_FORM_VALUE:
                raise VerificationFailed("malformed", "vp_token is required")
            spec = json.loads(str(query))
            if "dcql_query" in spec:
                presented = self._verify_dcql(spec["dcql_query"], raw, nonce, client_id)
            else:
                submission = form.get("presentation_submission")
                presented = self._verify_pe(
                    spec["presentation_definition"], raw, submission, nonce, client_id
                )
        except VerificationFailed as exc:
            self._finish(request_id, "failed", None, f"{exc.reason}: {exc.detail}")
            raise ProtocolError("invalid_request", f"{exc.reason}: {exc.detail}") from exc
        receipts = []
        verifier = client_id.removeprefix("decentralized_identifier:")
        for items in presented.values():
            for item in items:
                receipt = VerificationReceipt(
                    presentation_hash=hashlib.sha256(item.raw.encode("utf-8")).hexdigest(),
                    verifier=verifier,
                    issuer=item.issuer,
                    verified_at=format_datetime(now),
                    relying_party=relying_party,
                    credential_type=item.credential_type,
                )
                receipts.append(self._receipts.record(receipt))
        result = {
            "verified": True,
            "credentials": {
                qid: [
                    {
                        "format": i.format,
                        "issuer": i.issuer,
                        "credentialType": i.credential_type,
                        "claims": i.claims,
                    }
                    for i in items
                ]
                for qid, items in presented.items()
            },
            "receipts": receipts,
        }
        self._finish(request_id, "verified", result, None)
        return {}

    def _finish(
        self, request_id: str, status: str, result: dict[str, Any] | None, error: str | None
    ) -> None:
        sealed = None
        if result is not None:
            sealed = self._keyring.seal(
                json.dumps(result, ensure_ascii=False).encode("utf-8"), self._aad(request_id)
            )
        with self._db.transaction(durable=True):
            self._db.execute(
                "UPDATE identity_oid4vp_request SET status = ?, result_sealed = ?, error = ?"
                " WHERE request_id = ? AND status = 'pending'",
                (status, sealed, error, request_id),
            )

    def _aad(self, request_id: str, field: str = "result") -> bytes:
        return f"identity_oid4vp_request:{request_id}:{field}".encode()

    def _opened(self, request_id: str, form: Mapping[str, str]) -> Mapping[str, str]:
        """The response as posted (``direct_post``) or decrypted (``direct_post.jwt``)."""
        row = self._db.query_one("SELECT enc_key_sealed FROM identity_oid4vp_request"
                                 " WHERE request_id = ?", (request_id,))  # fmt: skip
        if row is None or row[0] is None:
            return form
        if set(form) != {"response"}:
            raise ProtocolError("invalid_request", "this request wants direct_post.jwt: only"
                                " the encrypted response parameter (§8.3)")  # fmt: skip
        private = self._keyring.open(bytes(row[0]), self._aad(request_id, "enc")).decode()
        return open_response(form["response"], private)

    def result(self, request_id: str, relying_party: str | None) -> dict[str, Any]:
        """The request's state and, once verified, the disclosed claims (its relying party only)."""
        owner, _, _, _, _, expires, status, sealed, error = self._row(request_id)
        if relying_party is not None and owner != relying_party:
            raise NotFound("no such presentation request")
        out: dict[str, Any] = {"id": request_id, "status": status, "expiresAt": expires}
        if sealed is not None:
            out.update(json.loads(self._keyring.open(bytes(sealed), self._aad(request_id))))
        if error is not None:
            out["error"] = error
        return out

    # -- per format (Appendix B)

    def _verify_one(self, fmt: str, item: object, nonce: str, client_id: str) -> _Presented:
        if fmt in ("dc+sd-jwt", "vc+sd-jwt"):
            if not isinstance(item, str):
                raise VerificationFailed("malformed", "an SD-JWT presentation is a string")
            sd = self._check_sd_jwt(item, nonce, client_id)
            return _Presented("dc+sd-jwt", sd.issuer, str(sd.claims.get("vct")), sd.claims, item)
        if fmt in ("ldp_vc", "ldp_vp"):
            if isinstance(item, str):
                try:
                    item = json.loads(item)
                except ValueError as exc:
                    raise VerificationFailed("malformed", "ldp presentation is not JSON") from exc
            if not isinstance(item, dict):
                raise VerificationFailed("malformed", "an ldp presentation is a JSON object")
            vp = self._check_ldp(item, nonce, client_id)
            if len(vp.credentials) != 1:
                raise VerificationFailed("malformed", "present one credential per presentation")
            vc = vp.credentials[0]
            types = vc.credential.get("type", [])
            types = [types] if isinstance(types, str) else types
            named = [t for t in types if t != "VerifiableCredential"]
            return _Presented("ldp_vc", vc.issuer, ",".join(named), vc.credential,
                              json.dumps(item, sort_keys=True))  # fmt: skip
        raise VerificationFailed("malformed", f"format {fmt!r} is not supported")

    def _verify_dcql(
        self, query: dict[str, Any], raw: str, nonce: str, client_id: str
    ) -> dict[str, list[_Presented]]:
        try:
            token = json.loads(raw)
        except ValueError as exc:
            raise VerificationFailed("malformed", "vp_token is a JSON object (§8.1)") from exc
        if not isinstance(token, dict):
            raise VerificationFailed("malformed", "vp_token is a JSON object keyed by query id")
        queries = {q["id"]: q for q in query["credentials"]}
        unknown = set(token) - set(queries)
        if unknown:
            raise VerificationFailed("malformed", f"unknown query ids {sorted(unknown)}")
        presented: dict[str, list[_Presented]] = {}
        for qid, answer in token.items():
            items = answer if isinstance(answer, list) else [answer]
            q = queries[qid]
            if not items or (len(items) > 1 and not q.get("multiple", False)):
                raise VerificationFailed("malformed", f"query {qid} takes one presentation")
            presented[qid] = []
            for item in items:
                got = self._verify_one(q["format"], item, nonce, client_id)
                _match(q, got)
                presented[qid].append(got)
        sets = query.get("credential_sets")
        if sets is None:
            missing = set(queries) - set(presented)
            if missing:
                raise VerificationFailed("disclosure", f"no presentation for {sorted(missing)}")
        else:
            for entry in sets:
                if entry.get("required", True) and not any(
                    set(option) <= set(presented) for option in entry["options"]
                ):
                    raise VerificationFailed("disclosure", "a required credential set is not met")
        return presented

    def _verify_pe(
        self, definition: dict[str, Any], raw: str, submission: str | None,
        nonce: str, client_id: str,
    ) -> dict[str, list[_Presented]]:  # fmt: skip
        try:
            sub = json.loads(submission or "")
            token = json.loads(raw) if raw.lstrip().startswith(("[", "{", '"')) else raw
        except ValueError as exc:
            raise VerificationFailed("malformed", "presentation_submission is JSON") from exc
        if not isinstance(sub, dict) or sub.get("definition_id") != definition["id"]:
            raise VerificationFailed("malformed", "presentation_submission names this definition")
        descriptors = {d["id"]: d for d in definition["input_descriptors"]}
        mapped = sub.get("descriptor_map")
        if not isinstance(mapped, list):
            raise VerificationFailed("malformed", "presentation_submission needs descriptor_map")
        presented: dict[str, list[_Presented]] = {}
        for entry in mapped:
            if not isinstance(entry, dict) or entry.get("id") not in descriptors:
                raise VerificationFailed("malformed", "a descriptor names no input descriptor")
            path = entry.get("path")
            if path == "$":
                item = token
            elif isinstance(path, str) and re.fullmatch(r"\$\[\d{1,2}\]", path) and isinstance(
                token, list
            ) and int(path[2:-1]) < len(token):
                item = token[int(path[2:-1])]
            else:
                raise VerificationFailed("malformed", f"descriptor path {path!r} selects nothing")
            got = self._verify_one(str(entry.get("format")), item, nonce, client_id)
            for field in descriptors[entry["id"]].get("constraints", {}).get("fields", []):
                if not any(_pe_field(got.claims, p, field.get("filter")) for p in field["path"]):
                    raise VerificationFailed(
                        "disclosure", f"field {field['path']} of {entry['id']} is not presented"
                    )
            presented.setdefault(entry["id"], []).append(got)
        missing = set(descriptors) - set(presented)
        if missing:
            raise VerificationFailed("disclosure", f"no presentation for {sorted(missing)}")
        return presented


def _match(query: dict[str, Any], got: _Presented) -> None:
    """Does a verified presentation answer its credential query (§6.1, §6.3)?"""
    meta = query["meta"]
    if query["format"] == "dc+sd-jwt":
        if got.claims.get("vct") not in meta["vct_values"]:
            raise VerificationFailed("disclosure", f"vct {got.claims.get('vct')!r} was not asked")
    else:
        types = got.claims.get("type", [])
        types = [types] if isinstance(types, str) else types
        if not any(set(option) <= set(types) for option in meta["type_values"]):
            raise VerificationFailed("disclosure", "the credential's types were not asked for")
    claims = query.get("claims", [])
    by_id = {c["id"]: c for c in claims if "id" in c}

    def met(claim: dict[str, Any]) -> bool:
        found = _walk(got.claims, claim["path"])
        if "values" in claim:
            return any(v in claim["values"] for v in found)
        return bool(found)

    sets = query.get("claim_sets")
    if sets is None:
        for claim in claims:
            if not met(claim):
                raise VerificationFailed("disclosure", f"claim {claim['path']} is not disclosed")
    elif not any(all(met(by_id[i]) for i in option) for option in sets):
        raise VerificationFailed("disclosure", "no claim set of the query is disclosed")


def _pe_field(claims: dict[str, Any], path: object, filt: object) -> bool:
    if not isinstance(path, str) or not re.fullmatch(r"\$(\.[A-Za-z0-9_@-]+)+", path):
        return False
    found = _walk(claims, path.split(".")[1:])
    if not found:
        return False
    if not isinstance(filt, dict):
        return True
    if "const" in filt:
        return any(v == filt["const"] for v in found)
    if "enum" in filt:
        return any(v in filt["enum"] for v in found)
    if "pattern" in filt:
        return any(isinstance(v, str) and re.fullmatch(str(filt["pattern"]), v) for v in found)
    return True


def _validate_definition(definition: object) -> dict[str, Any]:
    """A Presentation Exchange 2.0 definition of the subset this verifier evaluates."""
    rule = "DIF Presentation Exchange 2.0 §5"
    if not isinstance(definition, dict) or not isinstance(definition.get("id"), str):
        raise InvalidInput("presentation_definition needs an id", rule=rule)
    descriptors = definition.get("input_descriptors")
    if not isinstance(descriptors, list) or not descriptors:
        raise InvalidInput("input_descriptors is a non-empty array", rule=rule)
    for d in descriptors:
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise InvalidInput("an input descriptor has an id", rule=rule)
        for field in d.get("constraints", {}).get("fields", []):
            paths = field.get("path") if isinstance(field, dict) else None
            if not isinstance(paths, list) or not all(
                isinstance(p, str) and re.fullmatch(r"\$(\.[A-Za-z0-9_@-]+)+", p) for p in paths
            ):
                raise InvalidInput("field paths are $.name[.name...] JSONPaths", rule=rule)
            filt = field.get("filter")
            if "pattern" in (filt or {}) and len(str(filt["pattern"])) > 200:
                raise InvalidInput("a filter pattern is at most 200 characters", rule=rule)
    return definition
