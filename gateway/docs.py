"""The API's documents at the public door: ``GET /openapi.json`` and a readable ``GET /docs``.

Both come from the committed ``gateway/openapi.json`` (written by ``python -m apidocs``),
read once per process. The page is plain HTML rendered here from the document: no script, no
internet, nothing to install.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from flask import Blueprint, Response, request
from markupsafe import Markup, escape

bp = Blueprint("docs", __name__)

SPEC_FILE = Path(__file__).with_name("openapi.json")
# The page has no script and no outside resource; say so to the browser.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@bp.get("/openapi.json")
def openapi_json():
    response = Response(spec_bytes(), mimetype="application/json")
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/docs")
def docs_page():
    response = Response(render_page(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@functools.cache
def spec_bytes() -> bytes:
    """Return the committed OpenAPI document, read on first use."""
    return SPEC_FILE.read_bytes()


@functools.cache
def render_page() -> str:
    """Return the HTML page of the document, rendered on first use."""
    spec = json.loads(spec_bytes())
    environment = jinja2.Environment(
        loader=jinja2.DictLoader({"page": _PAGE, "fields": _FIELDS}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["prose"] = prose
    return environment.get_template("page").render(
        info=spec["info"],
        server=spec["servers"][0]["url"],
        sections=_sections(spec),
        schemas=[
            {
                "name": name,
                "description": schema.get("description", ""),
                "fields": _fields(spec, schema),
            }
            for name, schema in spec["components"]["schemas"].items()
        ],
    )


def prose(text: str) -> Markup:
    """Return the document's light markdown as HTML: paragraphs, `code` and **bold**."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        html = str(escape(paragraph.replace("\n", " ")))
        html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
        html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
        paragraphs.append(f"<p>{html}</p>")
    return Markup("\n".join(paragraphs))


def _sections(spec: dict[str, Any]) -> list[dict[str, Any]]:
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    return [
        {
            "name": tag["name"],
            "description": tag.get("description", ""),
            "operations": [
                _operation(spec, path, method, op)
                for path, method, op in operations
                if tag["name"] in op.get("tags", [])
            ],
        }
        for tag in spec.get("tags", [])
    ]


def _operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    body = op.get("requestBody")
    return {
        "id": op["operationId"],
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary", ""),
        "description": op.get("description", ""),
        "public": op.get("security", spec.get("security")) == [],
        "parameters": [_parameter(spec, param) for param in op.get("parameters", [])],
        "body": _body(spec, body) if body else None,
        "responses": [
            _response(spec, status, answer) for status, answer in op["responses"].items()
        ],
    }


def _parameter(spec: dict[str, Any], param: dict[str, Any]) -> dict[str, Any]:
    param = resolve(spec, param)
    schema = param.get("schema", {})
    return {
        "name": param["name"],
        "in": param["in"],
        "required": param.get("required", False),
        "type": _type(schema),
        "rules": _rules(schema),
        "description": param.get("description", ""),
    }


def _body(spec: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    media_type, media = next(iter(body["content"].items()))
    return {
        "media_type": media_type,
        "required": body.get("required", False),
        "schema": _type(media["schema"]),
        "fields": _fields(spec, media["schema"]),
        "example": _pretty(media.get("example")),
    }


def _response(spec: dict[str, Any], status: str, answer: dict[str, Any]) -> dict[str, Any]:
    answer = resolve(spec, answer)
    content: dict[str, dict[str, Any]] = answer.get("content", {})
    media_type, media = next(iter(content.items()), ("", {}))
    examples = [example["value"] for example in media.get("examples", {}).values()]
    codes = [value["error"]["code"] for value in examples if "error" in value]
    return {
        "status": status,
        "description": answer.get("description", ""),
        "headers": list(answer.get("headers", {})),
        "media_type": media_type,
        "schema": _type(media["schema"]) if "schema" in media else "",
        "codes": list(dict.fromkeys(codes)),
        "example": _pretty(media.get("example")),
    }


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per property of an object schema."""
    schema = resolve(spec, schema)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type(prop),
            "required": name in required,
            "rules": _rules(prop),
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _type(schema: dict[str, Any]) -> str:
    """Return a short type label: ``string``, ``number | null``, ``array of Goal``, ``Goal``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(branch) for branch in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        if isinstance(values, dict):
            return f"map of {_type(values)}"
    return str(schema.get("type", "any"))


_RULES = (
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("pattern", "matches {}"),
    ("format", "format {}"),
    ("const", "always {}"),
    ("default", "default {}"),
)


def _rules(schema: dict[str, Any]) -> list[str]:
    """Return the constraints of ``schema`` (and of its non-null branches) in words."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    rules = []
    for branch in [schema, *branches]:
        if "enum" in branch:
            rules.append("one of " + ", ".join(map(str, branch["enum"])))
        rules += [text.format(_value(branch[key])) for key, text in _RULES if key in branch]
    return rules


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow ``node``'s local ``$ref`` chain to what it stands for."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ info.title }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 70rem; margin: 0 auto; padding: 1rem 2rem;
  color: #1d1d1f; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
section.op { border: 1px solid #ddd; border-radius: 6px; padding: .2rem 1rem 1rem; margin: 1rem 0; }
h3 code { font-size: 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; color: #fff;
  background: #555; border-radius: 4px; padding: 0 .4rem; text-align: center; }
.get { background: #2b6cb0; } .post { background: #2f855a; } .patch { background: #b7791f; }
.delete { background: #c53030; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; }
pre { background: #f5f5f7; padding: .5rem; overflow-x: auto; font-size: 13px; }
code { background: #f5f5f7; padding: 0 .2rem; }
.muted { color: #666; }
td p { margin: 0; }
nav ul { columns: 2; }
</style>
</head>
<body>
<h1>{{ info.title }} <small class="muted">{{ info.version }}</small></h1>
<p>Base URL: <code>{{ server }}</code>. A <code>*</code> marks what is required.
Machine-readable: <a href="openapi.json"><code>/openapi.json</code></a> (OpenAPI 3.1).</p>
{{ info.description | prose }}
<nav><h2>Operations</h2><ul>
{% for section in sections %}{% for op in section.operations %}
<li><a href="#{{ op.id }}"><code>{{ op.method }} {{ op.path }}</code></a> {{ op.summary }}</li>
{% endfor %}{% endfor %}
</ul></nav>
{% for section in sections %}
<h2 id="tag-{{ section.name }}">{{ section.name }}</h2>
<p>{{ section.description }}</p>
{% for op in section.operations %}
<section class="op" id="{{ op.id }}">
<h3><span class="method {{ op.method | lower }}">{{ op.method }}</span> <code>{{ op.path }}</code>
  {{ op.summary }}</h3>
<p class="muted">{% if op.public %}No token needed.{% else %}Needs
<code>Authorization: Bearer &lt;token&gt;</code>.{% endif %} Operation id
<code>{{ op.id }}</code>.</p>
{{ op.description | prose }}
{% if op.parameters %}<h4>Parameters</h4>
<table><tr><th>name</th><th>in</th><th>type</th><th>rules</th><th>description</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}</td>
<td>{{ p.in }}</td><td>{{ p.type }}</td><td>{{ p.rules | join("; ") }}</td>
<td>{{ p.description | prose }}</td></tr>
{% endfor %}</table>{% endif %}
{% if op.body %}<h4>Body: <a href="#schema-{{ op.body.schema }}">{{ op.body.schema }}</a>
{% if op.body.media_type != "application/json" %}<small>{{ op.body.media_type }}</small>{% endif %}
{% if not op.body.required %}<small class="muted">(may be empty)</small>{% endif %}</h4>
{% with fields = op.body.fields %}{% include "fields" %}{% endwith %}
{% if op.body.example %}<pre>{{ op.body.example }}</pre>{% endif %}{% endif %}
<h4>Responses</h4>
<table><tr><th>status</th><th>meaning</th><th>body</th><th>headers</th></tr>
{% for r in op.responses %}<tr><td><strong>{{ r.status }}</strong></td>
<td>{{ r.description | prose }}{% if r.codes %}<p>codes: {% for c in r.codes %}<code>{{ c }}</code>
{% endfor %}</p>{% endif %}</td>
<td>{% if r.schema %}<a href="#schema-{{ r.schema }}">{{ r.schema }}</a>{% endif %}
<span class="muted">{{ r.media_type }}</span></td><td>{{ r.headers | join(", ") }}</td></tr>
{% endfor %}</table>
{% for r in op.responses if r.example %}<p>Example {{ r.status }}:</p><pre>{{ r.example }}</pre>
{% endfor %}
</section>
{% endfor %}{% endfor %}
<h2>Schemas</h2>
{% for schema in schemas %}<section id="schema-{{ schema.name }}">
<h3>{{ schema.name }}</h3>{{ schema.description | prose }}
{% with fields = schema.fields %}{% include "fields" %}{% endwith %}
</section>{% endfor %}
</body>
</html>
"""

_FIELDS = """{% if fields %}<table>
<tr><th>field</th><th>type</th><th>rules</th><th>description</th></tr>
{% for f in fields %}<tr><td><code>{{ f.name }}</code>{% if f.required %} *{% endif %}</td>
<td>{{ f.type }}</td><td>{{ f.rules | join("; ") }}</td><td>{{ f.description | prose }}</td></tr>
{% endfor %}</table>{% endif %}"""
