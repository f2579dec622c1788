"""The networks' published specifications as the judge of what our integrations send and
what our emulators answer (../shared/specs, see its README.md).

Every emulator keeps each request with the answer it gave (`EmulatorServer.exchanges`);
`check_exchanges(network, emulator)` checks each pair against the operation its method
and path name in that network's spec and returns the problems found (empty: conforms):

- X (`x/openapi.json`) and Pinterest (`pinterest/v5/openapi.json`): OpenAPI 3.0 with a
  tolerant validator (jsonschema's Draft 4 on the spec's schemas, `nullable` honoured,
  the spec file itself not validated: X's has duplicate enum values, see its SOURCE.md):
  the operation must exist; path and query parameters (declared ones only, required
  ones present, values of their schema), the JSON or multipart body (its schema), and
  the answer's JSON for its status (or `default`).
- Bluesky (`bluesky/lexicons`): each XRPC call against its lexicon (query parameters,
  procedure input, output), records written with createRecord against their own
  `$type`'s lexicon (app.bsky.feed.post with its facets and embeds); a method with no
  lexicon in the folder is reported.
- Mastodon, Facebook, Flickr: the rules of their NOTES.md (endpoints, methods, what each
  call must carry, answer shapes), written out below, each with its section.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"


def specs_available() -> bool:
    return (SPECS / "README.md").is_file()


# ------------------------------------------------------------------ OpenAPI 3.0


def _normalise(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema Draft 4: `nullable` as a null type, enum values
    de-duplicated (X's file repeats some)."""
    if isinstance(node, dict):
        out = {k: _normalise(v) for k, v in node.items()}
        if out.get("nullable") is True:
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        if isinstance(out.get("enum"), list):
            seen: list[Any] = []
            for value in out["enum"]:
                if value not in seen:
                    seen.append(value)
            out["enum"] = seen
        return out
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    return node


class OpenAPI:
    def __init__(self, path: Path, *, strip_prefix: str = "",
                 aliases: dict[str, str] | None = None,
                 field_objects: dict[str, tuple[str, ...]] | None = None):
        self.doc = _normalise(json.loads(path.read_text()))
        self.strip_prefix = strip_prefix
        self.aliases = aliases or {}
        self.field_objects = field_objects or {}
        self._ops: list[tuple[str, re.Pattern[str], str, dict[str, Any], list[Any]]] = []
        for template, item in self.doc["paths"].items():
            shared = item.get("parameters") or []
            regex = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$")
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    self._ops.append((method.upper(), regex, template, op, shared))
        # literal paths before templated ones (/2/media/upload/initialize before /{id})
        self._ops.sort(key=lambda o: o[2].count("{"))

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _validate(self, schema: dict[str, Any], instance: Any) -> list[str]:
        root = {**self.doc, **schema}
        validator = jsonschema.Draft4Validator(root)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}"
                for e in validator.iter_errors(instance)]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any], list[Any],
                                                          list[str]] | None:
        path = path.removeprefix(self.strip_prefix) if self.strip_prefix else path
        for verb, regex, template, op, shared in self._ops:
            m = regex.match(path)
            if verb == method and m:
                return template, op, shared, list(m.groups())
        return None

    @staticmethod
    def _coerce(value: str, schema: dict[str, Any]) -> Any:
        kind = schema.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
            if kind == "boolean":
                return {"true": True, "false": False}.get(value, value)
            if kind == "array":
                items = schema.get("items") or {}
                return [OpenAPI._coerce(v, items) for v in value.split(",")]
        except ValueError:
            return value
        return value

    def check_request(self, method: str, path: str, query: dict[str, str],
                      content_type: str, body: bytes) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in the spec"]
        template, op, shared, path_values = found
        where = f"{method} {template}"
        problems: list[str] = []
        params = [self._resolve(p) for p in [*shared, *(op.get("parameters") or [])]]
        declared_query = {p["name"]: p for p in params if p.get("in") == "query"}
        query = {self.aliases.get(k, k): ",".join(self.aliases.get(v, v) for v in val.split(","))
                 for k, val in query.items()}
        for name, value in query.items():
            param = declared_query.get(name) or declared_query.get(name.removesuffix("[]"))
            if param is None:
                problems.append(f"{where}: query parameter {name!r} is not in the spec")
                continue
            schema = self._resolve(param.get("schema") or {})
            if name in self.field_objects:
                problems += self._check_fields(where, name, value, schema)
                continue
            problems += [f"{where}: query {name}: {p}"
                         for p in self._validate(schema, self._coerce(value, schema))]
        for name, param in declared_query.items():
            if param.get("required") and name not in query:
                problems.append(f"{where}: required query parameter {name!r} is missing")
        path_params = [p for p in params if p.get("in") == "path"]
        for param, value in zip(path_params, path_values, strict=False):
            schema = self._resolve(param.get("schema") or {})
            problems += [f"{where}: path {param['name']}: {p}"
                         for p in self._validate(schema, self._coerce(value, schema))]
        request_body = self._resolve(op.get("requestBody") or {})
        content = request_body.get("content") or {}
        if not body:
            if request_body.get("required"):
                problems.append(f"{where}: the request body is required")
            return problems
        if content_type == "application/json":
            spec = content.get("application/json")
            if spec is None:
                return [*problems, f"{where}: a JSON body is not what the spec takes "
                                   f"({', '.join(content) or 'no body'})"]
            try:
                instance = json.loads(body)
            except ValueError:
                return [*problems, f"{where}: the body is not JSON"]
            problems += [f"{where}: body {p}" for p in self._validate(spec.get("schema") or {},
                                                                       instance)]
        elif content_type == "multipart/form-data":
            spec = content.get("multipart/form-data")
            if spec is None:
                return [*problems, f"{where}: a multipart body is not what the spec takes "
                                   f"({', '.join(content) or 'no body'})"]
            schema = self._resolve(spec.get("schema") or {})
            for name in schema.get("required") or []:
                if f'name="{name}"'.encode() not in body:
                    problems.append(f"{where}: multipart field {name!r} is required")
        return problems

    def check_response(self, method: str, path: str, status: int, content_type: str,
                       body: bytes) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            return []  # reported with the request
        template, op, _, _ = found
        responses = op.get("responses") or {}
        answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") \
            or responses.get("default")
        where = f"{method} {template} -> {status}"
        if answer is None:
            return [f"{where}: the spec declares no such answer ({', '.join(responses)})"]
        answer = self._resolve(answer)
        spec = (answer.get("content") or {}).get("application/json")
        if spec is None or content_type != "application/json" or not body:
            return []
        try:
            instance = self._renamed(json.loads(body))
        except ValueError:
            return [f"{where}: the answer is not JSON"]
        if status >= 400 and isinstance(instance, dict) and {"title", "type"} <= set(instance):
            # an RFC 7807 problem, as X answers errors (its recorded traffic; the spec's
            # `default` names only {code, message})
            return [] if isinstance(instance.get("title"), str) else [f"{where}: bad problem"]
        return [f"{where}: answer {p}" for p in self._validate(spec.get("schema") or {}, instance)]

    def _check_fields(self, where: str, name: str, value: str, schema: dict[str, Any]
                      ) -> list[str]:
        """A `*.fields`/`expansions` list: each name in the parameter's enum or a property
        of the object it selects from (X's enums leave out fields its own schemas have,
        such as Tweet.author_id)."""
        allowed = set((schema.get("items") or {}).get("enum") or [])
        objects = self.field_objects[name]
        for obj in objects:
            allowed |= set((self.doc["components"]["schemas"].get(obj) or {})
                           .get("properties") or {})
        return [f"{where}: query {name}: {item!r} is neither in its enum nor a field of "
                f"{'/'.join(objects)}" for item in value.split(",")
                if item not in allowed and item.split(".")[0] not in allowed]

    def _renamed(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {self.aliases.get(k, k): self._renamed(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._renamed(v) for v in node]
        return node


# X's spec (v2.167) renames some of the API's "tweet" names to "post" (not all: the create
# body keeps in_reply_to_tweet_id); the live API, tweepy and X's recorded traffic (see
# REFERENCES.md) use the tweet names. Treated as the same names, one way.
X_ALIASES = {"tweet.fields": "post.fields", "referenced_tweets.id": "referenced_posts.id",
             "referenced_tweets.id.author_id": "referenced_posts.id.author_id",
             "referenced_tweets": "referenced_posts", "tweet_count": "post_count",
             "edit_history_tweet_ids": "edit_history_post_ids"}


@cache
def x_spec() -> OpenAPI:
    return OpenAPI(SPECS / "x" / "openapi.json", aliases=X_ALIASES, field_objects={
        "post.fields": ("Post",), "user.fields": ("User",), "media.fields": ("Media",),
        "expansions": ("Post", "User")})


@cache
def pinterest_spec() -> OpenAPI:
    return OpenAPI(SPECS / "pinterest" / "v5" / "openapi.json", strip_prefix="/v5")


def _ctype(headers: dict[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower()
    return ""


def check_openapi(spec: OpenAPI, exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    problems: list[str] = []
    for request, response in exchanges:
        problems += spec.check_request(request.method, request.path, request.query,
                                       request.content_type, request.body)
        if not response.drop:
            problems += spec.check_response(request.method, request.path, response.status,
                                            _ctype(response.headers), response.body)
    return problems


# ------------------------------------------------------------------ Bluesky lexicons


@cache
def lexicon(nsid: str) -> dict[str, Any] | None:
    path = SPECS / "bluesky" / "lexicons" / (nsid.replace(".", "/") + ".json")
    return json.loads(path.read_text()) if path.is_file() else None


def _lex_def(ref: str, context: str) -> tuple[dict[str, Any], str] | None:
    nsid, _, name = ref.partition("#")
    nsid = nsid or context
    doc = lexicon(nsid)
    if doc is None:
        return None
    return doc["defs"].get(name or "main"), nsid


def check_lexicon_value(schema: dict[str, Any], value: Any, where: str, context: str
                        ) -> list[str]:
    """One value against a lexicon type (object, string, integer, boolean, array, ref,
    union, unknown, blob, bytes, cid-link, token)."""
    kind = schema.get("type")
    if kind == "ref":
        found = _lex_def(schema["ref"], context)
        if found is None:
            return []  # a lexicon not in the folder: not judged
        return check_lexicon_value(found[0], value, where, found[1])
    if kind == "union":
        if not isinstance(value, dict) or "$type" not in value:
            return [f"{where}: a union value needs $type"]
        refs = [r if "#" in r or "." in r else f"{context}{r}" for r in schema.get("refs") or []]
        full = [r if not r.startswith("#") else f"{context}{r}" for r in refs]
        vtype = value["$type"] if "#" in value["$type"] else f"{value['$type']}#main"
        normal = [r if "#" in r else f"{r}#main" for r in full]
        if vtype not in normal:
            return [] if schema.get("closed") is not True else [
                f"{where}: $type {value['$type']} is not one of {schema.get('refs')}"]
        found = _lex_def(vtype, context)
        return [] if found is None else check_lexicon_value(found[0], value, where, found[1])
    if kind in ("unknown", None):
        return []
    if kind == "object" or kind in ("record",):
        obj = schema.get("record", schema) if kind == "record" else schema
        if not isinstance(value, dict):
            return [f"{where}: must be an object"]
        problems = [f"{where}: {name} is required" for name in obj.get("required") or []
                    if name not in value]
        nullable = set(obj.get("nullable") or [])
        for name, sub in (obj.get("properties") or {}).items():
            if name in value and not (value[name] is None and name in nullable):
                problems += check_lexicon_value(sub, value[name], f"{where}.{name}", context)
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: must be a string"]
        problems = []
        if "maxLength" in schema and len(value.encode()) > schema["maxLength"]:
            problems.append(f"{where}: longer than {schema['maxLength']} bytes")
        if "maxGraphemes" in schema and len(value) > schema["maxGraphemes"]:
            problems.append(f"{where}: longer than {schema['maxGraphemes']} graphemes")
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {value!r} not one of {schema['enum']}")
        if "const" in schema and value != schema["const"]:
            problems.append(f"{where}: must be {schema['const']!r}")
        fmt = schema.get("format")
        if fmt == "datetime" and not re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            problems.append(f"{where}: {value!r} is not an RFC 3339 datetime")
        if fmt == "at-uri" and not value.startswith("at://"):
            problems.append(f"{where}: {value!r} is not an at-uri")
        if fmt == "did" and not re.fullmatch(r"did:[a-z]+:[A-Za-z0-9._:%-]+", value):
            problems.append(f"{where}: {value!r} is not a DID")
        if fmt == "handle" and not re.fullmatch(r"([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*", value):
            problems.append(f"{where}: {value!r} is not a handle")
        if fmt == "nsid" and not re.fullmatch(r"[a-zA-Z]+(\.[a-zA-Z0-9-]+)+", value):
            problems.append(f"{where}: {value!r} is not an NSID")
        if fmt == "language" and not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]+)*", value):
            problems.append(f"{where}: {value!r} is not a language tag")
        return problems
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: must be an integer"]
        if "minimum" in schema and value < schema["minimum"]:
            return [f"{where}: below {schema['minimum']}"]
        if "maximum" in schema and value > schema["maximum"]:
            return [f"{where}: above {schema['maximum']}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: must be a boolean"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: must be an array"]
        problems = []
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: more than {schema['maxLength']} items")
        for n, item in enumerate(value):
            problems += check_lexicon_value(schema.get("items") or {}, item, f"{where}[{n}]",
                                            context)
        return problems
    if kind == "blob":
        if not isinstance(value, dict) or value.get("$type") != "blob":
            return [f"{where}: must be a blob ($type blob)"]
        problems = []
        accept = schema.get("accept")
        if accept and not any(re.fullmatch(a.replace("*", ".*"), str(value.get("mimeType")))
                              for a in accept):
            problems.append(f"{where}: mimeType {value.get('mimeType')} not accepted")
        if "maxSize" in schema and int(value.get("size") or 0) > schema["maxSize"]:
            problems.append(f"{where}: larger than {schema['maxSize']} bytes")
        return problems
    return []


def _lexicon_params(schema: dict[str, Any], query: dict[str, Any], where: str,
                    context: str) -> list[str]:
    props = schema.get("properties") or {}
    problems = [f"{where}: parameter {name!r} is not in the lexicon" for name in query
                if name.removesuffix("[]") not in props]
    for name in schema.get("required") or []:
        if name not in query:
            problems.append(f"{where}: parameter {name!r} is required")
    for name, raw in query.items():
        sub = props.get(name.removesuffix("[]"))
        if sub is None:
            continue
        kind = sub.get("type")
        value: Any = raw
        if kind == "integer":
            value = int(raw) if str(raw).lstrip("-").isdigit() else raw
        elif kind == "boolean":
            value = {"true": True, "false": False}.get(str(raw), raw)
        elif kind == "array":
            value = raw if isinstance(raw, list) else [raw]
        problems += check_lexicon_value(sub, value, f"{where}?{name}", context)
    return problems


def check_xrpc(request: Any, response: Any) -> list[str]:
    nsid = request.path.removeprefix("/xrpc/")
    doc = lexicon(nsid)
    where = f"{request.method} {nsid}"
    if doc is None:
        return [f"{where}: no lexicon for this method in specs/bluesky"]
    main = doc["defs"]["main"]
    problems: list[str] = []
    expected = "GET" if main["type"] == "query" else "POST"
    if request.method != expected:
        problems.append(f"{where}: a {main['type']} is called with {expected}")
    multi = {k: v for k, v in parse_qs("&".join(f"{k}={v}" for k, v in request.query.items())).items()}
    problems += _lexicon_params(main.get("parameters") or {}, {k: v[0] for k, v in multi.items()},
                                where, nsid)
    spec_in = main.get("input") or {}
    if main["type"] == "procedure":
        if spec_in.get("encoding") == "application/json":
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                body = None
            problems += check_lexicon_value(spec_in.get("schema") or {}, body, f"{where} input",
                                            nsid)
            record = body.get("record") if isinstance(body, dict) else None
            if nsid == "com.atproto.repo.createRecord" and isinstance(record, dict):
                rec_lex = lexicon(str(record.get("$type") or body.get("collection")))
                if rec_lex is not None:
                    problems += check_lexicon_value(rec_lex["defs"]["main"], record,
                                                    f"{where} record", rec_lex["id"])
        elif spec_in.get("encoding") == "*/*" and not request.body:
            problems.append(f"{where}: the input (raw bytes) is missing")
    if response.drop or response.status != 200:
        if not response.drop and response.status >= 400:
            try:
                err = json.loads(response.body)
            except ValueError:
                err = None
            if not isinstance(err, dict) or not isinstance(err.get("error"), str):
                problems.append(f"{where} -> {response.status}: an XRPC error is "
                                "{\"error\": ..., \"message\"?: ...}")
        return problems
    out = main.get("output") or {}
    if out.get("encoding") == "application/json":
        try:
            answer = json.loads(response.body)
        except ValueError:
            return [*problems, f"{where}: the answer is not JSON"]
        problems += check_lexicon_value(out.get("schema") or {}, answer, f"{where} output", nsid)
    return problems


def check_bluesky(exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    problems: list[str] = []
    for request, response in exchanges:
        problems += check_xrpc(request, response)
    return problems


# ------------------------------------------------------------------ NOTES.md rules

# mastodon/NOTES.md: the REST endpoints a mention-and-reply bot uses, by method and path
MASTODON_ROUTES = [
    ("GET", r"/api/v1/accounts/verify_credentials"), ("GET", r"/api/v1/notifications"),
    ("GET", r"/api/v1/statuses/\d+"), ("POST", r"/api/v1/statuses"),
    ("DELETE", r"/api/v1/statuses/\d+"), ("GET", r"/api/v1/accounts/\d+/statuses"),
    ("GET", r"/api/v1/accounts/\d+"), ("POST", r"/api/v2/media"), ("GET", r"/api/v1/media/\d+"),
    ("GET", r"/api/v1/instance"), ("GET", r"/api/v2/instance"),
    ("GET", r"/api/v1/timelines/tag/[^/]+"), ("GET", r"/api/v2/search"),
]
MASTODON_NOTIFICATION_PARAMS = {"max_id", "since_id", "min_id", "limit", "types[]", "types",
                                "exclude_types[]", "account_id", "include_filtered"}


def check_mastodon(exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    """NOTES.md: bearer token on every call; notifications paged by notification id
    (max_id/since_id/min_id, limit at most 80); statuses posted with an Idempotency-Key;
    errors as {"error": ...}; ids are strings."""
    problems: list[str] = []
    for request, response in exchanges:
        where = f"{request.method} {request.path}"
        if not any(m == request.method and re.fullmatch(p, request.path)
                   for m, p in MASTODON_ROUTES):
            problems.append(f"{where}: not an endpoint of mastodon/NOTES.md")
            continue
        if not request.headers.get("authorization", "").startswith("Bearer "):
            problems.append(f"{where}: no bearer token")
        if request.path == "/api/v1/notifications":
            unknown = set(request.query) - MASTODON_NOTIFICATION_PARAMS
            if unknown:
                problems.append(f"{where}: unknown parameters {sorted(unknown)}")
            if int(request.query.get("limit", 40)) > 80:
                problems.append(f"{where}: limit above 80")
        if request.method == "POST" and request.path == "/api/v1/statuses" \
                and not request.headers.get("idempotency-key"):
            problems.append(f"{where}: no Idempotency-Key")
        if response.drop or not response.body:
            continue
        try:
            answer = json.loads(response.body)
        except ValueError:
            continue  # a "malformed" fault
        if response.status >= 400:
            if not isinstance(answer, dict) or "error" not in answer:
                problems.append(f"{where} -> {response.status}: errors are {{\"error\": ...}}")
            continue
        items = answer if isinstance(answer, list) else [answer]
        for item in items:
            if isinstance(item, dict) and "id" in item and not isinstance(item["id"], str):
                problems.append(f"{where}: ids are strings, got {item['id']!r}")
            status = item.get("status") if isinstance(item, dict) else None
            if isinstance(status, dict) and not isinstance(status.get("id"), str):
                problems.append(f"{where}: a status id is a string")
    return problems


FLICKR_METHODS = {"flickr.test.login", "flickr.people.getPhotos",
                  "flickr.photos.comments.getList", "flickr.photos.comments.addComment"}
FLICKR_WRITES = {"flickr.photos.comments.addComment"}


def check_flickr(exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    """NOTES.md §1-§4: /services/rest/ with `method` (writes by POST) and
    format=json&nojsoncallback=1, /services/upload/ as multipart with a `photo`; every
    call OAuth 1.0a HMAC-SHA1 signed (the emulator checks the signature itself, the
    upload rule of §3 included); answers `{"stat": "ok"|"fail", ...}` (JSON) or
    `<rsp stat=...>` (upload)."""
    problems: list[str] = []
    for request, response in exchanges:
        where = f"{request.method} {request.path}"
        auth = request.headers.get("authorization", "")
        if 'oauth_signature_method="HMAC-SHA1"' not in auth:
            problems.append(f"{where}: not signed with OAuth 1.0a HMAC-SHA1")
        if request.path == "/services/upload/":
            if request.method != "POST" or request.content_type != "multipart/form-data":
                problems.append(f"{where}: an upload is a multipart POST")
            elif b'name="photo"' not in request.body:
                problems.append(f"{where}: an upload carries `photo`")
            if not response.drop and response.status == 200 and b"<rsp stat=" not in response.body:
                problems.append(f"{where}: the upload answer is <rsp stat=...>")
            continue
        if request.path != "/services/rest/":
            problems.append(f"{where}: not a Flickr endpoint")
            continue
        params = {**request.query, **(request.form() if request.method == "POST" else {})}
        method = params.get("method", "")
        if method not in FLICKR_METHODS:
            problems.append(f"{where}: method {method!r} is not one NOTES.md §6 names")
        if method in FLICKR_WRITES and request.method != "POST":
            problems.append(f"{where}: {method} requires an HTTP POST")
        if params.get("format") != "json" or params.get("nojsoncallback") != "1":
            problems.append(f"{where}: format=json&nojsoncallback=1 expected (§4)")
        if not response.drop and response.status == 200:
            try:
                answer = json.loads(response.body)
            except ValueError:
                continue
            if answer.get("stat") not in ("ok", "fail") or (
                    answer["stat"] == "fail" and not {"code", "message"} <= set(answer)):
                problems.append(f"{where}: answers are {{stat, ...}} / {{stat: fail, code, message}}")
    return problems


FACEBOOK_ROUTES = [
    ("GET", r"/v\d+\.\d+/\d+"), ("GET", r"/v\d+\.\d+/\d+/feed"), ("POST", r"/v\d+\.\d+/\d+/feed"),
    ("GET", r"/v\d+\.\d+/[\d_]+/comments"), ("POST", r"/v\d+\.\d+/[\d_]+/comments"),
    ("POST", r"/v\d+\.\d+/\d+/photos"), ("POST", r"/v\d+\.\d+/(me|\d+)/messages"),
    ("GET", r"/v\d+\.\d+/[\d_]+"), ("DELETE", r"/v\d+\.\d+/[\d_]+"),
]


def check_facebook(exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    """NOTES.md: versioned Graph paths; a page access token on every call (with
    appsecret_proof when the app secret is known); edges answer {"data": [...],
    "paging"?}; errors {"error": {"message", "type", "code"}}."""
    problems: list[str] = []
    for request, response in exchanges:
        where = f"{request.method} {request.path}"
        if not any(m == request.method and re.fullmatch(p, request.path)
                   for m, p in FACEBOOK_ROUTES):
            problems.append(f"{where}: not a Graph call of facebook/NOTES.md")
            continue
        form = request.form() if request.content_type == "application/x-www-form-urlencoded" else {}
        if not (request.query.get("access_token") or form.get("access_token")
                or request.headers.get("authorization", "").startswith("OAuth ")):
            problems.append(f"{where}: no access token")
        if response.drop or not response.body:
            continue
        try:
            answer = json.loads(response.body)
        except ValueError:
            continue
        if response.status >= 400:
            err = answer.get("error") if isinstance(answer, dict) else None
            if not isinstance(err, dict) or not {"message", "type", "code"} <= set(err):
                problems.append(f"{where} -> {response.status}: errors are "
                                "{error: {message, type, code}}")
        elif request.method == "GET" and request.path.endswith(("/feed", "/comments")) \
                and not isinstance(answer.get("data"), list):
            problems.append(f"{where}: an edge answers {{data: [...]}}")
    return problems


def check_exchanges(network: str, emulator: Any) -> list[str]:
    """Every request the emulator saw and every answer it gave, against `network`'s spec."""
    exchanges = list(emulator.exchanges)
    if network == "x":
        return check_openapi(x_spec(), exchanges)
    if network == "pinterest":
        return check_openapi(pinterest_spec(), exchanges)
    if network == "bluesky":
        return check_bluesky(exchanges)
    if network == "mastodon":
        return check_mastodon(exchanges)
    if network == "flickr":
        return check_flickr(exchanges)
    if network == "facebook":
        return check_facebook(exchanges)
    if network == "slack":
        return check_slack(exchanges)
    raise ValueError(network)


def wrong(exchange: tuple[Any, Any], **changes: Any) -> tuple[Any, Any]:
    """A copy of an exchange with its request or response changed (validator self-tests)."""
    request, response = copy.deepcopy(exchange)
    for name, value in changes.items():
        target, _, attr = name.partition("__")
        setattr(request if target == "request" else response, attr, value)
    return request, response


# ------------------------------------------------------------------ Slack Web API

# methods newer than the frozen October 2020 spec, checked against Slack's method pages
# (https://api.slack.com/methods/<name>): their required arguments
SLACK_NEWER_METHODS = {
    "files.getUploadURLExternal": {"filename", "length"},
    "files.completeUploadExternal": {"files"},
}


@cache
def slack_spec() -> dict[str, Any]:
    return json.loads((SPECS / "slack" / "web-api" / "slack_web_openapi_v2.json").read_text())


def _slack_args(request: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json" and request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        if isinstance(body, dict):
            args.update(body)
    elif request.content_type == "application/x-www-form-urlencoded":
        args.update(request.form())
    elif request.content_type == "multipart/form-data":
        args.update({k: v.text() for k, v in request.multipart().items() if v.filename is None})
    return args


def check_slack(exchanges: Iterable[tuple[Any, Any]]) -> list[str]:
    """Each Web API call (`/api/<method>`) against `slack/web-api/slack_web_openapi_v2.json`
    (Swagger 2.0, tolerant: its "or null" tuple `items` are read by Draft 4 as tuples): the
    method exists (or is one of the newer ones, by their docs), its required arguments are
    there (the token may come as a bearer header), and the answer matches the method's
    success schema (`ok: true`) or its error schema (`ok: false`). Other paths (file
    downloads, response_url, the emulator's own) are not the Web API."""
    spec = slack_spec()
    problems: list[str] = []
    for request, response in exchanges:
        if not request.path.startswith("/api/"):
            continue
        method = request.path.removeprefix("/api/")
        where = f"slack {method}"
        args = _slack_args(request)
        item = spec["paths"].get(f"/{method}")
        if item is None:
            required = SLACK_NEWER_METHODS.get(method)
            if required is None:
                problems.append(f"{where}: not a Web API method (spec or method docs)")
            else:
                problems += [f"{where}: argument {name!r} is required" for name in required
                             if name not in args]
            continue
        op = item.get("post") or item.get("get") or {}
        for param in op.get("parameters") or []:
            if param.get("required") and param["name"] != "token" and param["name"] not in args:
                problems.append(f"{where}: argument {param['name']!r} is required")
        if "token" not in args and not request.headers.get("authorization", "").startswith(
                "Bearer "):
            problems.append(f"{where}: no token")
        if response.drop or response.status != 200 or not response.body:
            continue
        try:
            answer = json.loads(response.body)
        except ValueError:
            continue
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            problems.append(f"{where}: an answer carries ok: true|false")
            continue
        outcome = (op.get("responses") or {}).get("200" if answer["ok"] else "default") or {}
        schema = outcome.get("schema")
        if schema is None:
            continue
        validator = jsonschema.Draft4Validator({**spec, **schema})
        for e in validator.iter_errors(answer):
            at = "/".join(map(str, e.absolute_path))
            if _slack_tolerated(method, at, e):
                continue
            problems.append(f"{where} answer {at or '(body)'}: {e.message[-200:]}")
    return problems


# Where the frozen 2020 spec is wrong or too old, not our emulator (each checked against
# Slack's method pages and real answers): chat.update's `message.blocks` is an array, not
# an object; Slack has added fields since 2020 (`additionalProperties: false` would refuse
# `app_id` on a message); test workspaces use short readable ids (C0WASTE, B0BOT) where
# real ones are 9+ characters.
SLACK_SPEC_ERRATA = {("chat.update", "message/blocks")}


def _slack_tolerated(method: str, at: str, error: Any) -> bool:
    if (method, at) in SLACK_SPEC_ERRATA:
        return True
    if error.validator == "additionalProperties":
        return True
    return error.validator == "pattern" and str(error.schema.get("pattern", "")).startswith(
        ("^[CGD]", "^B[", "^U[", "^[UW]", "^T[", "^S[", "^F[", "^A[", "^[CDG]"))
