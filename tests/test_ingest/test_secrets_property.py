"""Property (issue 11, item 1; issue 22, item 2): random documents of every format, a secret planted
in a random shape — credential-named keys, and issue 22's classes: weak values inside connection
strings and JAAS lines, YAML anchors, key=value inside a URL, URL passwords with an empty user or
``/``/``@`` inside, command-line flags (also in compose arrays), netrc/.pgpass/XML/Markdown tables,
Basic credentials under any header, key material by key name (kubeconfig, Terraform JSON), values
once excused as prose, versions or paths; no copy of the secret, nor any 8-character run of it, anywhere under the KB directory, in
any table, or in any CLI or HTTP output. Each example is a tree of several files built into one KB."""

from __future__ import annotations

import base64
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_ingest.test_secrets_leaks import cli_outputs, http_outputs, kb_bytes, kb_tables, leaks

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

KEYS = [
    "password",
    "DB_PASSWORD",
    "apiKey",
    "client_secret",
    "auth_token",
    "PGPASSWORD",
    "SECRET_KEY_BASE",
    "privateKey",
    "service.api-key",
]
ALPHABET = string.ascii_letters + string.digits + "-_.!%+"


def _secret(draw) -> str:
    # distinct characters: a run of 8 of them is not something a binary file holds by chance
    core = "".join(
        draw(
            st.lists(st.sampled_from(ALPHABET.replace("Q", "").replace("z", "")), min_size=10, max_size=40, unique=True)
        )
    )
    return "Q" + core + "z"


def _split(secret: str) -> tuple[str, str]:
    cut = len(secret) // 2
    return secret[:cut], secret[cut:]


def _env_key(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key).upper()


# (format suffix, builder(key, secret, filler) -> (text, the secret as parsed))
def yaml_shapes(key, s, filler):
    a, b = _split(s)
    return [
        (f"{key}: {s}\n", s),
        (f'{key}: "{s}"\n', s),
        (f"{key}: '{s}'\n", s),
        (f"{key}: |\n  {a}\n  {b}\n", f"{a}\n{b}"),
        (f"{key}: >-\n  {a}\n  {b}\n", f"{a} {b}"),
        (f"{key}: {a}\n  {b}\n", f"{a} {b}"),
        (f'{key}: "{a}\\n{b}"\n', f"{a}\n{b}"),
        (f"env:\n  - name: {_env_key(key)}\n    value: {s}\n", s),
        (f"passwords:\n  - {s}\n", s),
        (f"apiVersion: v1\nkind: Secret\nstringData:\n  {key}: {s}\n", s),
        # issue 22's classes
        (f'cs:\n  Default: "Server=db;User Id=sa;Password={s};"\n', s),
        (f"shared: &pw {s}\ndb:\n  {key}: *pw\n", s),
        (f"url: jdbc:mysql://db:3306/app?user=app&password={s}\n", s),
        (f"endpoint: https://api.example.com/v1?x=1&api_key={s}\n", s),
        (f"cache: redis://:{s}@redis:6379/0\n", s),
        (f"broker: amqp://guest:{a}/{b}@rabbit:5672/\n", f"{a}/{b}"),
        (f"db: postgres://app:{a}@{b}@db:5432/app\n", f"{a}@{b}"),
        (f"services:\n  r:\n    command: redis-server --requirepass {s}\n", s),
        (f'services:\n  r:\n    command: ["redis-server", "--requirepass", "{s}"]\n', s),
        (f'services:\n  d:\n    healthcheck:\n      test: ["CMD", "mysqladmin", "ping", "-uroot", "-p{s}"]\n', s),
        (f"hdr:\n  X-Api-Auth: Basic {_b64('svc:' + s)}\n", _b64("svc:" + s)),
        (f"users:\n- name: a\n  user:\n    client-key-data: {_b64(s)}\n", _b64(s)),
        (f"gpg:\n  passphrase: the {a} cactus {b}\n", f"the {a} cactus {b}"),
        (f"db:\n  {key}: 19.84.{s}\n", f"19.84.{s}"),
        (f"api:\n  {key}: /9Kx+{s}\n", f"/9Kx+{s}"),
    ]


def json_shapes(key, s, filler):
    a, b = _split(s)
    esc = "".join(f"\\u{ord(c):04x}" if i % 5 == 2 else c for i, c in enumerate(s))
    return [
        (json.dumps({"svc": {key: s}, "note": filler}, indent=2), s),
        (json.dumps({key: f"{a}\n{b}"}), f"{a}\n{b}"),
        (f'{{"{key}": "{esc}", "x": 1}}', s),
        (json.dumps([{"name": _env_key(key), "value": s}]), s),
        (json.dumps({"variable": {"db_password": {"type": "string", "default": s}}}, indent=2), s),
        (json.dumps({"auths": {"r.example.com": {"identitytoken": s}}}, indent=2), s),
        (json.dumps({"feed": f"https://feeds.example.org/rss?format=xml&apikey={s}"}), s),
    ]


def env_shapes(key, s, filler):
    a, b = _split(s)
    k = _env_key(key)
    return [
        (f"{k}={s}\n", s),
        (f'{k}="{s}"\n', s),
        (f"{k}='{s}'\n", s),
        (f'export {k}="{a}\\n{b}"\n', f"{a}\n{b}"),
        (f'{k}="{a}\n{b}"\n', f"{a}\n{b}"),
        (f"REDIS_URL=redis://:{s}@redis:6379/0\n", s),
        (f"WEBHOOK=https://hooks.example.com/notify?channel=ops&token={s}\n", s),
    ]


def properties_shapes(key, s, filler):
    a, b = _split(s)
    return [
        (f"app.{key}={s}\n", s),
        (f"app.{key} = {a}\\\n    {b}\n", a + b),
        (f"app.{key}: {s}\n", s),
        (f'sasl.jaas.config=x.PlainLoginModule required username="admin" password="{s}";\n', s),
        (f"spring.datasource.url=jdbc:postgresql://db/app?user=app&password={s}\n", s),
    ]


def toml_shapes(key, s, filler):
    a, b = _split(s)
    k = key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'
    return [
        (f'[db]\n{k} = "{s}"\n', s),
        (f"[db]\n{k} = '{s}'\n", s),
        (f'[db]\n{k} = """\n{a} \\\n   {b}"""\n', a + b),
        (f"[db]\n{k} = '''\n{a}\n{b}'''\n", f"{a}\n{b}"),
    ]


def ini_shapes(key, s, filler):
    a, b = _split(s)
    return [(f"[db]\n{key} = {s}\n", s), (f"[db]\n{key}: {a}\n  {b}\nhost = h\n", f"{a}\n{b}")]


def md_shapes(key, s, filler):
    return [
        (f"# Setup\n\n{filler}\n\n```sh\nexport {_env_key(key)}={s}\n```\n", s),
        (f'# Config\n\n```yaml\ndb:\n  {key}: "{s}"\n```\n', s),
        (f"# Restore\n\n```sh\nmysql -u root -p{s} app < dump.sql\n```\n", s),
        (f"```sh\ncurl -u admin:{s} https://ci.example.com/api/json\n```\n", s),
        (f"```sh\ndocker login -u deploy -p {s} registry.example.com\n```\n", s),
        (f"```xml\n<server>\n  <id>central</id>\n  <password>{s}</password>\n</server>\n```\n", s),
        (f"# Accounts\n\n| what | value |\n|---|---|\n| admin password | {s} |\n", s),
        (f"# Logins\n\n| Service | Username | Password |\n|---|---|---|\n| grafana | admin | {s} |\n", s),
        (f'```nginx\nproxy_set_header Authorization "Basic {_b64("ops:" + s)}";\n```\n', _b64("ops:" + s)),
        (f"```sh\nopenssl pkcs12 -export -in c.pem -passout pass:{s}\n```\n", s),
    ]


def docker_shapes(key, s, filler):
    return [
        (f"FROM alpine:3\nENV {_env_key(key)}={s}\nRUN echo hi\n", s),
        (f'FROM alpine:3\nENV A=1 \\\n    {_env_key(key)}="{s}"\n', s),
        (f'FROM mysql:8\nRUN mysql -uroot -p{s} -e "CREATE DATABASE app"\n', s),
        (f'FROM alpine:3\nRUN echo "machine repo.example.com login ci password {s}" > /root/.netrc\n', s),
    ]


def text_shapes(key, s, filler):
    return [
        (f"machine github.com\n  login deploy\n  password {s}\n", s),
        (f"db.example.com:5432:app:app:{s}\n", s),
        (f"<settings><servers><server>\n<password>{s}</password>\n</server></servers></settings>\n", s),
    ]


FORMATS = {
    ".yaml": yaml_shapes,
    ".json": json_shapes,
    ".env": env_shapes,
    ".properties": properties_shapes,
    ".toml": toml_shapes,
    ".ini": ini_shapes,
    ".md": md_shapes,
    "Dockerfile": docker_shapes,
    ".txt": text_shapes,
}


def _b64(v: str) -> str:
    return base64.b64encode(v.encode()).decode()


@st.composite
def planted_file(draw, i: int):
    suffix = draw(st.sampled_from(sorted(FORMATS)))
    key = draw(st.sampled_from(KEYS))
    secret = _secret(draw)
    filler = draw(st.sampled_from(["The service reads its settings at start.", "See the runbook.", "Nothing here."]))
    shapes = FORMATS[suffix](key, secret, filler)
    text, parsed = draw(st.sampled_from(shapes))
    name = f"d{i}/Dockerfile" if suffix == "Dockerfile" else f"d{i}/f{i}{suffix}"
    return name, text, parsed


@st.composite
def planted_tree(draw):
    n = draw(st.integers(min_value=5, max_value=12))
    return [draw(planted_file(i)) for i in range(n)]


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tree=planted_tree())
def test_no_run_of_a_planted_secret_reaches_the_kb_or_any_output(tree, tmp_path_factory):
    from tests.test_ingest.test_secrets_leaks import build

    tmp = tmp_path_factory.mktemp("planted")
    files = {name: text for name, text, _ in tree}
    root, db, found = build(tmp, files)
    blobs = {
        "kb bytes": kb_bytes(db),
        "tables": kb_tables(db),
        "cli": cli_outputs(db, list(files), ["password", "db"]),
        "http": http_outputs(db, root, list(files), ["password"]),
    }
    bad = {
        (name, where): leaks(blob, secret)[:2]
        for name, _, secret in tree
        for where, blob in blobs.items()
        if leaks(blob, secret)
    }
    assert not bad, (bad, files)
    missing = sorted(set(files) - set(found))
    assert not missing, {m: files[m] for m in missing}


def test_the_planted_shapes_cover_every_format():
    assert {s.lstrip(".") for s in FORMATS} >= {"yaml", "json", "env", "properties", "toml", "ini", "md", "Dockerfile"}
    assert sum(len(f("password", "Q1abcdefghijz", "x")) for f in FORMATS.values()) >= 65


def test_every_shape_once_reaches_no_table_and_no_output(tmp_path):
    """Each shape of every format once (a fixed secret per file), so every class is exercised
    whatever examples hypothesis draws."""
    from tests.test_ingest.test_secrets_leaks import build

    files, secrets = {}, {}
    for n, (suffix, shapes) in enumerate(FORMATS.items()):
        for i, (text, parsed) in enumerate(shapes("DB_PASSWORD", f"Q{n}Xv7!kW_p%mBz", "x")):
            name = f"{suffix.strip('.')}{i}/Dockerfile" if suffix == "Dockerfile" else f"s{i}{suffix}"
            files[name], secrets[name] = text, parsed
    root, db, found = build(tmp_path, files)
    blobs = {"kb bytes": kb_bytes(db), "tables": kb_tables(db), "cli": cli_outputs(db, list(files), ["password"])}
    bad = {(n, w): leaks(b, secrets[n])[:2] for n in files for w, b in blobs.items() if leaks(b, secrets[n])}
    assert not bad, bad
    assert not sorted(set(files) - set(found)), sorted(set(files) - set(found))
