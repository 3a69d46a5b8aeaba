"""Find credentials in a parsed file and replace them with markers before anything is stored.

What counts as a secret (the README's "Secrets" section says the same):

* a value matching a credential format anywhere in the file: private-key blocks, cloud and SaaS
  tokens (:data:`RULES`: AWS, GitHub, GitLab, Slack tokens and webhooks, Stripe, Google, OpenAI,
  Anthropic, Azure storage keys, npm, PyPI, SendGrid, Twilio, ...), JWTs, passwords in URLs,
  ``Authorization: Bearer|Basic|Token <credential>``;
* a credential given by its place (issue 22): a ``?api_key=``/``&password=`` parameter inside a URL
  or a connection string, a command-line flag (``--requirepass X``, ``mysql -pX``, ``curl -u
  user:X``, ``docker login -p X``, also in compose arrays), a netrc ``password``, a ``.pgpass``
  line, an XML ``<password>``, a Markdown table's password cell, ``Basic <base64 of user:pw>``
  under any header;
* a non-placeholder value under a key that names a credential (``password``, ``PGPASSWORD``,
  ``apiKey``, ``client_secret``, ``SECRET_KEY_BASE``, ``api_keys:`` lists, ...), in a ``KEY=value``
  item, in a Kubernetes ``{name, value}`` pair, under a Kubernetes ``Secret``'s ``data`` or
  ``stringData``, in a Docker config's ``auths.*.auth``, or as the default of ``${DB_PASSWORD:-x}``.

Placeholders (``changeme``, ``${DB_PASSWORD}``, ``<your-token>``, ``xxx``, a path such as
``/run/secrets/db``, prose, ``12345``), setting words under a credential-named key (GitHub's
``id-token: write``, ``token: auto``), and the name of a Kubernetes Secret under ``*Secret`` are not
secrets.

A commented-out assignment (``# password: admin``, ``;secret_key = ...``) found by the ``key =
value`` scan is no secret when its value is a word, and a *warning* when the value is strong (the
file does not use it; it is still redacted); the same value on a live line is an error.

Each secret becomes one ``plaintext-secret`` problem carrying a fingerprint (a hash prefix of the
value with whitespace and escapes taken out, so one secret has one fingerprint in any rendering),
never the value. Redaction works on two levels:

* **the source text**: every place the value is written (found by a pattern in the raw text, or
  located from its record's line by aligning the parsed value with the source, through quotes,
  escapes such as ``\\n``, folded or continued lines and indentation) becomes
  ``[REDACTED:plaintext-secret:<fp>]``; line breaks inside it are kept, so line numbers hold.
  Sections are cut again from this text, so chunks, snippets, the keyword index and the embeddings
  never see the value;
* **the parsed data**: record values and key paths, and the documents.

An ordinary word used as a password (``MYSQL_PASSWORD=wordpress``) is redacted where it is
assigned, in the records of its line, and wherever it is a whole record value (a YAML anchor); not
wherever the word appears, so a heading ``# Gitea`` survives a password ``Gitea``. A strong value
(8 characters or more, unlike a word) is redacted wherever it appears, however many a file holds.

Every regular expression here runs in linear time: each unbounded run is anchored by a negative
lookbehind of its own class (a match attempt starts only where a run starts), other repeats are
bounded, and private-key blocks are found with ``str.find``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from kb.formats import SOURCE_SUFFIXES, formats_with
from kb.keypaths import key_segments
from kb.types import ParsedFile, Problem

__all__ = ["redact", "fingerprint", "marker", "is_placeholder", "secret_key", "scan_text", "Rule", "RULES"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A credential format: ``pattern`` (group ``group`` is the secret), run only when one of
    ``keywords`` occurs in the text (``ignore_case``: in its lower-cased form)."""

    id: str
    kind: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]
    group: int = 0
    ignore_case: bool = False


# A token starts where no token character precedes it and ends where none follows.
_B = r"(?<![A-Za-z0-9_\-])"
_E = r"(?![A-Za-z0-9_\-])"


def _rule(id: str, kind: str, body: str, keywords: tuple[str, ...], group: int = 0, flags: int = 0) -> Rule:
    return Rule(id, kind, re.compile(body, flags), keywords, group, bool(flags & re.I))


RULES: list[Rule] = [
    _rule(
        "aws-access-key-id",
        "an AWS access key id",
        _B + r"(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}" + _E,
        ("A3T", "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"),
    ),
    _rule(
        "github-token",
        "a GitHub token",
        _B + r"gh[pousr]_[A-Za-z0-9]{30,255}" + _E,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    _rule("github-pat", "a GitHub token", _B + r"github_pat_[A-Za-z0-9_]{22,255}" + _E, ("github_pat_",)),
    _rule(
        "gitlab-token",
        "a GitLab token",
        _B + r"(?:glpat|glptt|gldt|glrt|glsoat|glcbt|gloas|glimt|glagent|glffct|GR1348941)-?[A-Za-z0-9_\-]{20,64}" + _E,
        ("glpat", "glptt", "gldt", "glrt", "glsoat", "glcbt", "gloas", "glimt", "glagent", "glffct", "GR1348941"),
    ),
    _rule("slack-token", "a Slack token", _B + r"xox[abposre]-[A-Za-z0-9\-]{10,255}", ("xox",)),
    _rule("slack-app-token", "a Slack token", _B + r"xapp-\d-[A-Za-z0-9\-]{20,255}", ("xapp-",)),
    _rule(
        "slack-webhook",
        "a Slack webhook URL",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_\-]{20,255})",
        ("hooks.slack.com",),
        1,
    ),
    _rule(
        "stripe-key",
        "a Stripe secret key",
        _B + r"(?:sk|rk)_(?:live|test|prod)_[0-9A-Za-z]{10,247}" + _E,
        ("k_live_", "k_test_", "k_prod_"),
    ),
    _rule("google-api-key", "a Google API key", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E, ("AIza",)),
    _rule("google-oauth-secret", "a Google OAuth client secret", _B + r"GOCSPX-[A-Za-z0-9_\-]{28}" + _E, ("GOCSPX-",)),
    _rule(
        "jwt",
        "a JSON web token",
        _B + r"eyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,16384}\.[A-Za-z0-9_\-]{8,4096}",
        ("eyJ",),
    ),
    _rule(
        "openai-key",
        "an OpenAI API key",
        _B + r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})" + _E,
        ("sk-proj-", "sk-svcacct-", "sk-admin-", "T3BlbkFJ"),
    ),
    _rule(
        "anthropic-key",
        "an Anthropic API key",
        _B + r"sk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_\-]{60,200}" + _E,
        ("sk-ant-",),
    ),
    _rule(
        "azure-storage-key",
        "an Azure storage account key",
        r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,100}={0,2})",
        ("AccountKey=", "SharedAccessKey="),
    ),
    _rule("azure-sas-signature", "an Azure SAS signature", r"[?&]sig=([A-Za-z0-9%+/]{30,128}={0,2})", ("sig=",)),
    _rule(
        "azure-ad-client-secret",
        "an Azure AD client secret",
        r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~.\-])",
        ("Q~",),
    ),
    _rule("npm-token", "an npm token", _B + r"npm_[A-Za-z0-9]{36}" + _E, ("npm_",)),
    _rule("pypi-token", "a PyPI token", _B + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,1000}", ("pypi-AgEIcHlwaS5vcmc",)),
    _rule("sendgrid-key", "a SendGrid API key", _B + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _E, ("SG.",)),
    _rule("twilio-key", "a Twilio key", _B + r"(?:SK|AC)[0-9a-fA-F]{32}" + _E, ("SK", "AC")),
    _rule("mailchimp-key", "a Mailchimp API key", _B + r"[0-9a-f]{32}-us\d{1,2}" + _E, ("-us",)),
    _rule("mailgun-key", "a Mailgun API key", _B + r"key-[0-9a-f]{32}" + _E, ("key-",)),
    _rule(
        "square-token",
        "a Square token",
        _B + r"(?:sq0atp|sq0csp|EAAA)[0-9A-Za-z_\-]{22,60}" + _E,
        ("sq0atp", "sq0csp", "EAAA"),
    ),
    _rule(
        "discord-bot-token",
        "a Discord bot token",
        _B + r"[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}" + _E,
        (".",),
    ),
    _rule("telegram-bot-token", "a Telegram bot token", r"(?<![0-9])\d{8,10}:AA[0-9A-Za-z_\-]{32,33}" + _E, (":AA",)),
    _rule(
        "shopify-token",
        "a Shopify token",
        _B + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _E,
        ("shpat_", "shpca_", "shppa_", "shpss_"),
    ),
    _rule("huggingface-token", "a Hugging Face token", _B + r"(?:hf_|api_org_)[A-Za-z]{34}" + _E, ("hf_", "api_org_")),
    _rule("databricks-token", "a Databricks token", _B + r"dapi[a-f0-9]{32}(?:-\d)?" + _E, ("dapi",)),
    _rule(
        "digitalocean-token",
        "a DigitalOcean token",
        _B + r"do[opr]_v1_[a-f0-9]{64}" + _E,
        ("doo_v1_", "dop_v1_", "dor_v1_"),
    ),
    _rule(
        "doppler-token", "a Doppler token", _B + r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}" + _E, ("dp.",)
    ),
    _rule("linear-key", "a Linear API key", _B + r"lin_api_[A-Za-z0-9]{40}" + _E, ("lin_api_",)),
    _rule("postman-key", "a Postman API key", _B + r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}" + _E, ("PMAK-",)),
    _rule("pulumi-token", "a Pulumi token", _B + r"pul-[a-f0-9]{40}" + _E, ("pul-",)),
    _rule(
        "age-secret-key",
        "an age secret key",
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        ("AGE-SECRET-KEY-1",),
    ),
    _rule(
        "grafana-token",
        "a Grafana token",
        _B + r"(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})",
        ("glc_", "glsa_"),
    ),
    _rule("vault-token", "a HashiCorp Vault token", _B + r"(?:hvs|hvb)\.[A-Za-z0-9_\-]{24,400}" + _E, ("hvs.", "hvb.")),
    _rule(
        "terraform-token",
        "a Terraform Cloud token",
        _B + r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}" + _E,
        (".atlasv1.",),
    ),
    _rule("atlassian-token", "an Atlassian API token", _B + r"ATATT3[A-Za-z0-9_\-=]{150,250}" + _E, ("ATATT3",)),
    _rule("sentry-token", "a Sentry token", _B + r"sntry[su]_[A-Za-z0-9+/=_\-]{60,300}", ("sntrys_", "sntryu_")),
    _rule("artifactory-key", "an Artifactory API key", _B + r"AKC[a-zA-Z0-9]{10,100}" + _E, ("AKC",)),
    _rule("newrelic-key", "a New Relic key", _B + r"NR(?:AK|II)-[A-Za-z0-9]{27,32}" + _E, ("NRAK-", "NRII-")),
    _rule("dynatrace-token", "a Dynatrace token", _B + r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}" + _E, ("dt0c01.",)),
    _rule("heroku-key", "a Heroku API key", _B + r"HRKU-[A-Za-z0-9_\-]{40,70}" + _E, ("HRKU-",)),
    _rule(
        "authorization-header",
        "an Authorization header credential",
        r"(?<![a-z0-9_-])(?:proxy-)?authorization[\"']?[ \t]{0,16}[:=][ \t]{0,16}[\"']?"
        r"(?:bearer|basic|token|bot|digest|apikey)[ \t]{1,16}([A-Za-z0-9._~+/=\-]{8,4096})",
        ("authorization",),
        1,
        re.I,
    ),
    _rule(
        "bearer-token",
        "a bearer token",
        r"(?<![A-Za-z0-9_\-])[Bb]earer[ \t]{1,16}([A-Za-z0-9._~+/\-]{20,4096}={0,2})",
        ("earer",),
        1,
    ),
]

_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----")
# what may follow a BEGIN line that has no END: base64, whitespace, escaped newlines, headers
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\- \t\r\n]|\\[nr]){0,65536}")
_PEM_WINDOW = 65536
_BASE64_CHAR = re.compile(r"[A-Za-z0-9+/]")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16}")


def _mixed(body: str) -> bool:
    """Base64 of key material mixes upper case, lower case and digits; ``privatekeyprivatekey...``
    in an example is a word repeated."""
    return any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)


# scheme://user:password@host — the password part only: the user may be empty (redis://:pw@host),
# the password may hold "/" or "@" (the host follows the last "@" that a host name follows)
_URL_USER = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s:/@'\"?#`<>]{0,256}:")
_URL_END = re.compile(r"[\s'\"`<>]")
_URL_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_%]{0,252}(?::\d{1,5})?(?:[/?#;,)]|$)|\[[0-9A-Fa-f:.]{2,45}\]")
_URL_PORT_PATH = re.compile(r"\d{1,5}(?:[/?#]|$)")
# "Basic <base64 of user:password>" anywhere, whatever the header is called
_BASIC = re.compile(r"(?<![A-Za-z0-9_\-])[Bb]asic[ \t]{1,16}([A-Za-z0-9+/]{8,1024}={0,2})(?![A-Za-z0-9+/=])")


def url_passwords(text: str) -> list[tuple[str, int, int]]:
    """``(password, start, end)`` for each ``scheme://user:password@host`` in ``text``."""
    out = []
    for m in _URL_USER.finditer(text):
        start = m.end()
        e = _URL_END.search(text, start, start + 1024)
        token = text[start : e.start() if e else min(len(text), start + 1024)]
        at = token.rfind("@")
        while at > 0 and not _URL_HOST.match(token, at + 1):
            at = token.rfind("@", 0, at)
        if at <= 0:
            continue  # no host after an "@"
        pw = token[:at]
        if "/" in pw and _URL_PORT_PATH.match(pw):
            continue  # https://host:8443/path@x: a port and a path, not a password
        out.append((pw, start, start + at))
    return out


def _basic_credential(value: str) -> bool:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    user, sep, pw = raw.partition(":")
    return bool(sep and pw and raw.isprintable())


# ${DB_PASSWORD:-default}, Spring's ${db.password:default}
# ${VAR:-default}, ${VAR-default}, ${VAR:=default}, Spring's ${a.b:default}; not ${VAR:?message} or ${VAR:+alt}
_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]{0,127})(?::-|:=|:(?![?+])|-)([^}\n]{1,512})\}")


_CERTIFICATE = re.compile(r"-----BEGIN [A-Z0-9 ]*CERTIFICATE-----.*?(?:-----END [A-Z0-9 ]*CERTIFICATE-----|\Z)", re.S)


def scan_text(text: str) -> list[tuple[str, str, int, int]]:
    """``(kind, secret, start, end)`` for every credential format matched in ``text``."""
    found: list[tuple[str, str, int, int]] = []
    lower: str | None = None
    # a big file: skip the rules none of whose keywords can occur (a character the text lacks);
    # 10 MB of "a[a[a[..." then costs one pass, not one per keyword
    chars = set(text) if len(text) > 65536 else None
    lower_chars = {c.lower() for c in chars} if chars is not None else None
    for rule in RULES:
        if chars is not None and lower_chars is not None:
            have = lower_chars if rule.ignore_case else chars
            if not any(set(k) <= have for k in rule.keywords):
                continue
        if rule.ignore_case:
            if lower is None:
                lower = text.lower()
            hit = any(map(lower.__contains__, rule.keywords))
        else:
            hit = any(map(text.__contains__, rule.keywords))
        if hit:
            for m in rule.pattern.finditer(text):
                value = m.group(rule.group)
                if rule.group and is_placeholder(value, typed=False):
                    continue
                found.append((rule.kind, value, m.start(rule.group), m.end(rule.group)))
    if found and "BEGIN CERTIFICATE" in text:  # a certificate is public: its base64 holds no token
        certs = [(m.start(), m.end()) for m in _CERTIFICATE.finditer(text)]
        found = [f for f in found if not any(a <= f[2] < b for a, b in certs)]
    if "PRIVATE KEY" in text:
        found.extend(_private_keys(text))
    if "://" in text and "@" in text:
        for pw, start, end in url_passwords(text):
            if not is_placeholder(pw):
                found.append(("a password in a URL", pw, start, end))
    if "asic" in text:
        for m in _BASIC.finditer(text):
            if _basic_credential(m.group(1)):
                found.append(("a Basic credential", m.group(1), m.start(1), m.end(1)))
    return found


def _private_keys(text: str) -> list[tuple[str, str, int, int]]:
    """Private-key blocks, each from its BEGIN line to its END line (or, with no END, to the end
    of the base64 that follows). Linear: the next END is looked up once and reused."""
    out: list[tuple[str, str, int, int]] = []
    pos = 0
    end_at = -2  # cached position of the next END marker (-1: none within reach)
    end_from = -1
    while True:
        m = _PEM_BEGIN.search(text, pos)
        if m is None:
            return out
        if (
            end_at == -2
            or (end_at >= 0 and end_at < m.end())
            or (end_at == -1 and m.end() > end_from + _PEM_WINDOW // 2)
        ):
            end_from = m.end()
            end_at = text.find("-----END ", m.end(), m.end() + _PEM_WINDOW)
        stop = None
        end_found = False
        if end_at >= 0:
            e = _PEM_END.match(text, end_at)
            if e is not None:
                stop = e.end()
                end_at = -2
                end_found = True
        if stop is None:
            body_match = _PEM_BODY.match(text, m.end())
            assert body_match is not None  # _PEM_BODY matches the empty string
            stop = body_match.end()
            while stop > m.end() and text[stop - 1] in " \t\r\n":
                stop -= 1
        body = text[m.end() : min(stop, m.end() + 256)]
        cut = body.find("-----")
        need = 16 if end_found else 32  # not a "BEGIN ... KEY" in prose, nor "..." in an example
        body = body if cut < 0 else body[:cut]
        # and some base64 in one piece: <PRIVATE-KEY-DATA-COMES-HERE> is an instruction, not a key
        if _BASE64_CHAR.subn("", body)[1] >= need and _BASE64_RUN.search(body) and _mixed(body):
            out.append(("a private key block", text[m.start() : stop], m.start(), stop))
        pos = max(stop, m.end())


# ---------------------------------------------------------------------------------------------
# Key names and placeholders
# ---------------------------------------------------------------------------------------------

# plural "tokens" and "secrets" are left out: max_tokens is a count, compose's secrets: lists names
_SECRET_LAST_WORDS = {
    "password",
    "passwords",
    "passwd",
    "pwd",
    "pass",
    "pw",
    "passphrase",
    "passphrases",
    "secret",
    "token",
    "credential",
    "credentials",
    "authorization",
}
_SECRET_LAST_PAIRS = {
    ("api", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("private", "key"),
    ("auth", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("master", "key"),
    ("client", "secret"),
    ("app", "key"),
    ("api", "keys"),
    ("access", "keys"),
    ("secret", "keys"),
    ("private", "keys"),
    ("account", "key"),
    ("license", "key"),
    ("session", "key"),
    ("hmac", "key"),
    ("shared", "key"),
    ("api", "tokens"),
    ("access", "tokens"),
    ("auth", "tokens"),
    ("client", "secrets"),
    ("key", "data"),  # kubeconfig client-key-data: a base64 private key
}
_SECRET_TRIPLES = {("secret", "key", "base"), ("secret", "key", "value"), ("private", "key", "pem")}
# one word that ends like a credential: PGPASSWORD, mysqlRootPassword is split, apikey is not
_SECRET_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "apikey",
    "secretkey",
    "accesskey",
    "privatekey",
    "authtoken",
    "accesstoken",
    "apitoken",
    "refreshtoken",
    "bearertoken",
    "clientsecret",
    "identitytoken",  # ~/.docker/config.json
    "registrytoken",
    "sessiontoken",
    "securitytoken",
)

_PLACEHOLDER_WORDS = {
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "replace",
    "replaceme",
    "replace-me",
    "replace_me",
    "example",
    "dummy",
    "placeholder",
    "redacted",
    "none",
    "null",
    "nil",
    "undefined",
    "todo",
    "tbd",
    "xxx",
    "secret",
    "password",
    "token",
    "test",
    "sample",
    "fake",
    "notset",
    "not-set",
    "your-secret",
    "your-token",
    "your-password",
    "mypassword",
    "true",
    "false",
    "required",
    "optional",
    "string",
    "empty",
    "pass",
    "passwd",
    "pwd",
    "admin",
    "not-secret",
    "notsecret",
    "not_secret",
    "nosecret",
}
# a setting's word under a credential-named key (GitHub's permissions: id-token: write, token: auto)
_ENUM_WORDS = {
    "same-origin",  # fetch's credentials modes and OAuth's grant types
    "include",
    "omit",
    "client_credentials",
    "read",
    "write",
    "read-write",
    "readwrite",
    "read-only",
    "readonly",
    "all",
    "enabled",
    "disabled",
    "enable",
    "disable",
    "auto",
    "automatic",
    "yes",
    "no",
    "on",
    "off",
    "always",
    "never",
    "prompt",
    "env",
    "environment",
    "file",
    "inherit",
    "inherited",
    "default",
    "strict",
    "lax",
    "bearer",
    "basic",
    "oauth",
    "oauth2",
    "jwt",
    "plain",
    "plaintext",
    "random",
    "generate",
    "generated",
    "manual",
    "internal",
    "external",
    "allow",
    "deny",
    "public",
    "private",
    "unset",
    "blank",
    "write-all",
    "read-all",
    "value",
    "invalid",
    "text",
}
_PLACEHOLDER_RE = re.compile(
    r"""^(?:
        \$\{[^}]*\}.*                  # ${VAR}, ${VAR:-x}
      | (?-i:\$\$?[A-Z_][A-Z0-9_]*)     # $VAR ($$VAR: compose's escaped $)
      | (?-i:\$[a-z_][a-z0-9_]*)       # $var (a mixed-case $uperS3cret is a password)
      | (?-i:\$[a-z][a-z0-9]*(?:[.:-][A-Za-z0-9_]+)+)  # $dex.github.clientSecret, $slack-token: a key of a Secret (Argo CD)
      | (?:env|secret|pullsecret|ext|file):[\w./\#:-]+  # env:REGISTRY_SECRET, secret:ns/name#key, ext:/auth.sh (argocd-image-updater)
      | <[^<>]*>                       # <your-token>
      | \{\{.*\}\}                     # {{ .Values.x }}
      | %\([^)]*\)s                    # %(name)s
      | [x*.\#-]{3,}                   # xxx, ***, ...
      | (?:your|insert|put|replace|enter|some|default)[-_ ].*
      | fixme(?:[-_ ].*)?                # FIXME-LAPI-KEY
      | (?-i:Some[A-Z][a-z]+(?:[A-Z0-9][a-z0-9]*)+)  # SomeRandomStringOf32CharsExactly (an instruction)
      | (?-i:[A-Z]{2,6}(?:[A-Z][a-z]+)*(?:Password|Secret|Token|Key))  # SMTPPassword, DBPassword (names)
      | [^A-Za-z0-9]*(?:(?:please|pls)[-_ ]?)?change[-_ ]?(?:me|this)(?:[-_ ].*|(?-i:[A-Z]).*|[^A-Za-z0-9]*)  # change-me-to-something-secure, PleaseChangeMeToSecureValue, !changeme!, pls-changeme-to-strong-pw (not changeme123)
      | [A-Za-z0-9]{0,12}[-_]?(?:\.\.\.|…)  # ghp_..., sk-…: an example cut short
      | (?-i:[A-Za-z0-9_-]{0,12}(?:x{4,}|X{4,})[A-Za-z0-9_-]{0,8})  # AKIXXXXXX, sk-xxxxxxxx: an example masked
      | .*%[A-Za-z_][\w.]*%.*            # %kernel.project_dir%/config/jwt/private.pem: a parameter inside
      | (?:[\w.@-]+/)+[\w@-]+\.(?:pem|key|crt|cert|cer|p12|pfx|jks|keystore|json|ya?ml|txt|asc|gpg|der|pub)  # config/jwt/private.pem: a file's path
      | (?-i:[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:password|passwd|pass|pw|secret|token|key))  # access_token_secret, chrome_token, super_strong_password: a description
      | (?-i:(?:my|the)(?:[-_][a-z]+)+)  # my-certs, my-secret-password (a my-S3cret is a password)
      | (?-i:(?:my|your|test)[a-z0-9]{0,24}(?:password|passwd|pass|secret|token|key|pw))  # mysmtppassword, yourapikey, testpassword: a description
      | .*(?:\$\{|\$\(|\{\{|\{%).*      # a template or a shell substitution inside
      | \{[A-Za-z0-9_.\-]+\}              # {rabbitmq-password.value} (a reference)
      | (?-i:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)  # KEYSTORE_PASSWORD (the name of a variable)
      | (?-i:[A-Za-z][a-z]+(?:[A-Z][a-z]+)*(?:Password|Secret|Token|Key))  # brokerPassword, SendGridApiKey (names)
      | (?-i:[a-z][a-z0-9]*(?:-[a-z0-9]+)*-(?:password|secret|token|key|credentials?))  # keystore-password: a Secret or one of its keys
      | \#\{[^}]*\}\#?                   # #{variable} (Octopus Deploy substitution)
      | (?:your|insert|enter)[-_ ]?(?:password|passwd|pass|secret|token|api[-_]?key|key)\w*  # yourpassword
      | .*(?:os\.environ|os\.getenv|process\.env|System\.getenv|ENV\[|env\().*  # code reading a variable
      | (?-i:\$(?:1|2[aby]?|5|6|y|gy|7|argon2(?:id|i|d)?)\$\S+)  # a crypt(3) password hash ($6$salt$...), not the password
      | .*[-_](?:here|placeholder|example)
      | (?:[a-z]{1,6}[-_])?(?:dummy|fake|sample|example|redacted|unused|notasecret)(?:[-_][a-z]+)*  # sk-dummy, fake-token, dummy_api_key
      | (?:secret|vault|ref|env|file|ssm|arn|k8s|sm)://.*   # references to a secret store
      | arn:aws:.*
      | /[A-Za-z_.@][\w.@-]*(?:/[\w.@-]+)+/?  # a path of two or more parts (/run/secrets/db_password); not /9Kx+Ql/7mZw
      | \./[^\s]*|~/[^\s]*             # relative and home paths
      | [~^<>=v]*\d+(?:\.[\dx*]+)+(?:[-+.][0-9A-Za-z]{1,24}){0,4}  # versions and ranges (^4.0.0, 1.2.3-rc.1); not 19.84.Orwell_Was_Right
      | \d+\s*bytes?                    # 8 bytes: kubectl describe secret's output, not the value
      | (?:\\?[A-Za-z_]\w*\\)+[A-Za-z_]\w*  # OAuth2\Storage\RefreshTokenInterface: a class's name
      | (?-i:[A-Z]+\(\d+(?:,\s*\d+)?\)(?:\s+[A-Z]+)*)  # VARCHAR(255) NOT NULL: a column's type
      | <\s*(?:[~.]?/|[\w.-]+/)[\w./-]*   # </mail_crypt/ecprivkey.pem: read from a file (dovecot)
      | (?:md5|sha1|sha224|sha256|sha384|sha512|plain|bcrypt|argon2\w*)(?::\d+)?  # sha1:6: an algorithm
      | (?:1234567890)+(?:1(?:2(?:3(?:4(?:5(?:6(?:7(?:8(?:9)?)?)?)?)?)?)?)?)?  # 1234567890...: digits typed in order
      | 1234(?:5(?:6(?:7(?:8(?:9)?)?)?)?)?  # 1234: the dummy of every example (--set loki.password=1234)
      | (?:\w+=[^,=]*,)+\w+=[^,=]*       # key=value lists (id=x,src=./secret)
    )$""",
    re.X | re.I,
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# words of an instruction or a description, not of a passphrase
_INSTRUCTION_WORDS = {
    "your",
    "see",
    "use",
    "used",
    "set",
    "must",
    "should",
    "will",
    "enter",
    "replace",
    "here",
    "generated",
    "generate",
    "stored",
    "provided",
    "configured",
    "leave",
    "empty",
    "required",
    "change",
    "shown",
    "given",
    "obtain",
    "get",
    "password",
    "passwords",
    "secret",
    "secrets",
    "token",
    "tokens",
    "key",
    "keys",
    "credential",
    "credentials",
    "value",
    "vault",
    "automatically",
    "defaults",
    "default",
    "optional",
    "unused",
    "e.g.",
    "i.e.",
}
_STOPWORDS = {
    "the",
    "a",
    "an",
    "to",
    "of",
    "for",
    "in",
    "on",
    "is",
    "be",
    "and",
    "or",
    "with",
    "your",
    "this",
    "that",
    "it",
    "from",
    "by",
    "use",
    "used",
    "set",
    "not",
    "see",
    "if",
    "when",
    "must",
    "should",
    "will",
    "are",
    "as",
    "at",
    "can",
    "you",
    "we",
    "our",
    "no",
    "do",
    "does",
    "here",
    "there",
}


def fingerprint(value: str) -> str:
    """A hash prefix of ``value`` with whitespace and escapes taken out: one secret, one fingerprint,
    whether it is written on one line, folded over several or with ``\\n`` escapes."""
    return hashlib.sha256(_normal(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]


_ESCAPES_AND_SPACE = re.compile(r"\\[nrt]|\s+")


def _normal(value: str) -> str:
    if "\\" not in value and not any(c.isspace() for c in value):
        return value
    return _ESCAPES_AND_SPACE.sub("", value)


def marker(fp: str) -> str:
    return f"[REDACTED:plaintext-secret:{fp[:8]}]"


def _last_key(key_path: str) -> str:
    """The last mapping key of a key path (sequence indexes skipped)."""
    for seg in reversed(key_segments(key_path)):
        if isinstance(seg, str):
            return seg
    return key_path


_NGINX_PASS = {"proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached"}
# certificatesSecret, tlsSecret, imagePullSecret: the name of a Kubernetes Secret, not a value
_SECRET_NAME_WORDS = {
    "tls",
    "cert",
    "certs",
    "certificate",
    "certificates",
    "ca",
    "keystore",
    "truststore",
    "jks",
    "config",
    "configuration",
    "pull",
    "image",
    "registry",
    "docker",
    "basic",
    "auth",
    "env",
    "volume",
    "mount",
    "kubernetes",
    "k8s",
    "sealed",
    "external",
    "admin",
    "users",
}
_REFERENCE_WORDS = {"existing", "from", "use", "ref", "name", "k8s", "vault"}
_KEY_HINTS = re.compile(r"pass|pw|secret|token|key|credential|authoriz", re.I)
_HINT_WORDS = ("pass", "pw", "secret", "token", "key", "credential", "authoriz")  # the same, for `in`


@lru_cache(maxsize=65536)  # the same key paths come back in file after file
def secret_key(key_path: str) -> bool:
    """Whether the last key of ``key_path`` names a credential (``db_password``, ``apiKey``...)."""
    if not _KEY_HINTS.search(key_path):
        return False
    words = [w.lower() for w in _WORD_SPLIT.split(_last_key(key_path)) if w]
    if not words:
        return False
    if len(words) >= 2 and words[-2] in _REFERENCE_WORDS:
        return False  # existingSecret, from_secret: the name of a secret, not its value
    if "existing" in words[:-1] and ("secret" in words[:-1] or words[-1] == "secret"):
        return False  # existingSecret.key, existingUserSecretKey: a key of a Secret that exists elsewhere
    if words[-1] == "pass" and len(words) >= 2 and words[-2] in _NGINX_PASS:
        return False  # nginx proxy_pass / fastcgi_pass: an upstream, not a password
    if words[-1] == "secret" and len(words) >= 2 and words[-2] in _SECRET_NAME_WORDS:
        return False
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    if len(words) >= 2 and (words[-2], words[-1]) in _SECRET_LAST_PAIRS:
        return True
    if len(words) >= 3 and tuple(words[-3:]) in _SECRET_TRIPLES:
        return True
    return words[-1].endswith(_SECRET_SUFFIXES)


# keys their service publishes by design: a Stripe publishable key (pk_live_, pk_test_) and a PostHog
# project key (phc_) are written into web pages; they identify an account and grant no read access
_PUBLISHABLE = re.compile(r"(?:pk_(?:live|test)_|phc_)[0-9A-Za-z]{16,247}")
_DEFAULTED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.]{0,127}:-?(?![?+])([^}]*)\}$")


def is_placeholder(value: str, *, typed: bool = True) -> bool:
    """Whether ``value`` stands where a secret goes without being one. ``typed=False`` leaves out
    the characters-typed-in-order rule: a credential format's own match (a Slack webhook) is
    evidence enough."""
    v = value.strip().strip("'\"`")
    m = _DEFAULTED.match(v)
    if m:  # ${DB_PASSWORD:-default}, Spring's ${db.password:default}: the default is what is stored
        return is_placeholder(m.group(1), typed=typed)
    if len(v) < 4:
        return True
    low = v.rstrip(".,;:)`").lower()
    if v.lower() in _PLACEHOLDER_WORDS or low in _PLACEHOLDER_WORDS or low in _ENUM_WORDS:
        return True
    if " " in v and _prose(v):
        return True
    if "://" in v and _plain_url(v):
        return True
    if _WORD_PATH.fullmatch(v) or _STORE_REF.fullmatch(v) or _PUBLISHABLE.fullmatch(v) or _file_name(v):
        return True
    return bool(_PLACEHOLDER_RE.match(v)) or _described(v) or (typed and _typed_in_order(v))


def _typed_in_order(v: str) -> bool:
    """Characters typed in order at length, up or down: ``1234567890abcdefghifjkl``,
    ``87654321-432104321-4321-210987654321`` (three in four neighbours one step apart, 9 to 0 and
    0 to 9 counting as steps, separators left out), an example rather than a secret. Under 20
    characters (``abcd1234``) it may be a real, weak password: still reported."""
    low = re.sub(r"[-_. ]", "", v.lower())
    if len(low) < 20:
        return False
    steps = sum(
        1 for a, b in zip(low, low[1:], strict=False) if abs(ord(b) - ord(a)) == 1 or (a, b) in (("9", "0"), ("0", "9"))
    )
    return steps * 4 >= (len(low) - 1) * 3


_CAMEL_NAME = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]+)+")
# a relative path of words: NGINX Unit's "pass": "routes/status", "applications/netbox"
_WORD_PATH = re.compile(r"[a-z]{2,32}(?:/[a-z][a-z_.-]{0,63}){1,8}")
# a file that holds the credential, not the credential: GOOGLE_CREDENTIALS='credentials.json', tls.key
_FILE_NAME = re.compile(
    r"(?:~?/|\./)?(?:[a-z0-9_.-]+/)*[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*"
    r"\.(?:json|ya?ml|pem|crt|cer|key|p12|pfx|jks|keystore|txt|env|ini|conf|cfg|toml|properties|xml|der|gpg|asc|pub|keytab)"
)
# ...named as what it holds, or given as a path (hunter2.txt, s3cr3t.key are passwords)
_FILE_HOLDS = re.compile(
    r"credential|secret|key|token|cert|tls|ssl|auth|account|keystore|truststore|password|htpasswd|id_rsa|id_ed25519"
)


def _file_name(v: str) -> bool:
    if not _FILE_NAME.fullmatch(v):
        return False
    return "/" in v or _FILE_HOLDS.search(v.rsplit(".", 1)[0]) is not None


# a secret store's item and field: get-vault-secrets' GPG_PRIVATE_KEY=helm-chart-signing-key:private_key
_STORE_REF = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+){1,8}:[a-z][a-z0-9_]{0,63}")
_URL = re.compile(r"^https?://(?P<host>[A-Za-z0-9.-]+)(?::\d{1,5})?(?P<rest>[/?#]\S*)?$")
_URL_PART = re.compile(r"[/?#&=._~+-]+")


def _plain_url(v: str) -> bool:
    """A link with no credential in it (``https://dashboard.ngrok.com/get-started/your-authtoken``:
    where to get a token, not the token): no user or password, and every part of its path and
    query a word or a short number. A webhook URL that carries its token
    (``/api/webhooks/123456789012345678/AbC...``) is not plain."""
    m = _URL.match(v)
    if m is None:
        return False
    for part in _URL_PART.split(m.group("rest") or ""):
        if part and not (part.isalpha() and (part.islower() or len(part) <= 12) or (part.isdigit() and len(part) <= 6)):
            return False
    return True


_CODE_NAME = r"[A-Za-z_$][A-Za-z0-9_$]*"
_CODE_REFERENCE = re.compile(rf"{_CODE_NAME}(?:\.{_CODE_NAME})*")


_DECLARED = re.compile(r"(?:^|[\s;{(])(?:const|let|var)\s+$")


def _code_reference(raw: str, sep: str, after: str, head: str, quote: str) -> bool:
    """An unquoted value that is JavaScript naming where the value is, in a file kb reads as
    configuration (a script in a ConfigMap): a property path a declaration reads
    (``const token = body.token.value``), or a variable as an object's quoted entry
    (``"token": base64Token,``), each part made of words (three letters or more, runs of at most
    three digits). ``head``: the line before the key; ``quote``: the character before the key.
    ``password = Tiger.Lemon.Rocket``, ``password: PurpleMonkeyDishwasher,`` and a value in a
    ``key=value,`` list are not code: still reported."""
    v = raw.rstrip(",;")
    listed = raw.endswith(",") or after == ","
    if not _CODE_REFERENCE.fullmatch(v):
        return False
    if "." in v:
        if listed or sep != "=" or not _DECLARED.search(head):
            return False
    elif not (sep == ":" and listed and quote in ('"', "'")):
        return False
    for part in v.split("."):
        words = _CAMEL_WORDS.findall(part)
        if not words or "".join(words) != part.replace("_", "").replace("$", ""):
            return False
        if any(len(w) < 3 if w.isalpha() else len(w) > 3 for w in words):
            return False
    return True


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CAMEL_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_CREDENTIAL_NOUNS = {"password", "passwd", "pass", "pw", "secret", "token", "key", "passphrase"}
# how an instruction written as one identifier starts (My…, ChooseYour…), and words only an instruction has
_DESCRIBING_FIRST = _words("choose my this your some enter insert put define set change replace please use generate")
_DESCRIBING_ANY = {"your", "here"}
_CONNECTIVES = {"of", "or", "and", "to", "for", "the", "from", "with", "in"}


def _described(v: str) -> bool:
    """An instruction written as one identifier: ``ChooseYourOwnPasswordHere1234``,
    ``MySecureLoginPasswordForPhotoprism``, ``ThisIsAVerySecretString``, ``My-Secure-Password5`` —
    three or more words, one of them naming a credential, starting as an instruction does (or with
    ``your``/``here`` in it); or four or more joined by ``of``/``or``/``to``...
    (``contents_of_key_or_certificate``). ``SuperDuperAdminPW``, ``Dl2PassLong`` and ``Tr0ub4dor&3``
    are passwords."""
    if " " in v or len(v) > 128:
        return False
    words = [w.lower() for w in _CAMEL_WORDS.findall(v) if not w.isdigit()]
    if len(words) < 3:
        return False
    if not any(w in _CREDENTIAL_NOUNS for w in words):
        return False
    if len(words) >= 4 and any(w in _CONNECTIVES for w in words[1:-1]):
        return True  # contents_of_key_or_certificate, path-to-the-secret-key: a phrase, not a password
    return words[0] in _DESCRIBING_FIRST or any(w in _DESCRIBING_ANY for w in words)


def _prose(v: str) -> bool:
    """Words that read as a sentence or an instruction, not a passphrase: ``correct horse battery
    staple`` and ``the purple cactus dances`` are passphrases; ``see the vault``, ``set at first
    login`` and ``generated on first start`` are not."""
    words = v.split()
    if len(words) <= 1:
        return False
    bare = [w.lower().strip(",;()`*_\"'") for w in words]
    if any(w in _INSTRUCTION_WORDS for w in bare):
        return True
    if len(words) <= 3:
        return False
    if len(words) > 8 or v.rstrip().endswith((".", ":", "?", "!")):
        return True
    if sum(1 for w in words if any(c.isalpha() for c in w)) < len(words) - 1:
        return True  # 0 9 * * 1-5: a schedule, a list of numbers
    if any(c in v for c in ",;()"):
        return True
    return len(words) > 5 and any(w in _STOPWORDS for w in bare)


_RESOURCE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+|[A-Za-z]+(?:-[A-Za-z]+)+")


def _names_its_key(value: str, key: str | None) -> bool:
    """Not a credential although its key names one: ``privacyPassword: privacy_password`` (the
    value spells its key), ``sessionKey = 'session'`` (the name a storage key has), ``initScriptsSecret: special-scripts-sensitive`` and ``secret: custom-CA``
    (the name of a Kubernetes Secret, not its contents), ``access_key: tempo`` (the identifier of
    an S3 key pair: :func:`_access_key_id`)."""
    if not key:
        return False
    last = _last_key(key.split(" (")[0])
    norm = re.sub(r"[^a-z0-9]", "", value.lower())
    if len(norm) >= 4 and norm == re.sub(r"[^a-z0-9]", "", last.lower()):
        return True
    head = [w.lower() for w in _WORD_SPLIT.split(last) if w]
    if len(head) >= 2 and head[-1] in ("key", "name", "id") and value.strip().strip("'\"") == "".join(head[:-1]):
        return True  # sessionKey = 'session', cacheKey: cache: a storage key's name, not a key
    if len(head) >= 3 and head[-2:] in (["secret", "key"], ["secret", "name"]) and norm == "".join(head[:-2]):
        return True  # clusterSecretKey: cluster, hostedGrafanaIdSecretKey: hosted-grafana-id (a Secret's key)
    if _access_key_id(head, value):
        return True  # access_key: tempo beside secret_key: an S3 access key is the user name of the pair
    if _ENV_VAR_NAME.fullmatch(last):
        return False  # CMD_SESSION_SECRET=discolor-subtitle-seducing: a variable holds the secret itself
    words = [w.lower() for w in _WORD_SPLIT.split(last) if w]
    return bool(words) and words[-1] == "secret" and words[:-1] != ["client"] and bool(_RESOURCE_NAME.fullmatch(value))


_ENV_VAR_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
_WORDS_ONLY = re.compile(r"[A-Za-z]+(?:[-_.][A-Za-z]+){0,5}")  # enterprise-metrics, grafana_tempo


def _access_key_id(words: list[str], value: str) -> bool:
    """An S3-style access key (``access_key``, ``accessKey``; not ``secret_access_key``) whose value
    is a plain name (``tempo``, ``minio``, words joined by dashes: ``enterprise-metrics``): the
    identifier of a key pair, as a user name is, not its secret. Any other value (``AKIA...``,
    ``minio123``, anything :func:`_strong` with a digit or a sign in it) stays a finding."""
    named = words[-2:] == ["access", "key"] and words[-3:-2] != ["secret"] or words == ["accesskey"]
    v = value.strip().strip("'\"")
    return named and (bool(_WORDS_ONLY.fullmatch(v)) or bool(_PLAIN_NAME.fullmatch(v)) and not _strong(v))


def _strong(value: str) -> bool:
    """A value unlike an ordinary word: scrubbed wherever it appears, not only where assigned.
    Shorter than 8 characters it is never strong: ``Gitea`` as a password must not take the
    heading ``# Gitea`` with it."""
    if len(value) >= 12:
        return True
    if len(value) < 8:
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    return classes >= 2


# ---------------------------------------------------------------------------------------------
# Locating a parsed value in the source text
# ---------------------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "f": "\f",
    "v": "\v",
    "b": "\b",
    "0": "\0",
    "a": "\a",
    "e": "\x1b",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_QUOTES = "\"'"
_MAX_NOISE = 512


def _decode_escape(text: str, i: int) -> tuple[str | None, int]:
    """The character an escape at ``text[i] == '\\'`` stands for, and its width. A backslash
    before a line break (a continuation) stands for nothing (``""``)."""
    n = len(text)
    if i + 1 >= n:
        return None, 1
    c = text[i + 1]
    if c in "\r\n":
        return "", 2 + (c == "\r" and i + 2 < n and text[i + 2] == "\n")
    if c in "uUx":
        width = {"u": 4, "U": 8, "x": 2}[c]
        digits = text[i + 2 : i + 2 + width]
        if len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDBFF and text[i + 6 : i + 8] == "\\u":  # a UTF-16 pair
                low = text[i + 8 : i + 12]
                if len(low) == 4 and all(d in "0123456789abcdefABCDEF" for d in low):
                    lo = int(low, 16)
                    if 0xDC00 <= lo <= 0xDFFF:
                        return chr(0x10000 + ((code - 0xD800) << 10) + (lo - 0xDC00)), 12
            try:
                return chr(code), 2 + width
            except (ValueError, OverflowError):
                return None, 2
    return _SIMPLE_ESCAPES.get(c, c), 2


def _align(text: str, i: int, value: str) -> int:
    """Where ``value`` written from ``text[i]`` ends, or -1.

    Whitespace in ``value`` may be written as any whitespace, an escape or nothing (folded
    lines); the text may put quotes, line continuations and indentation between characters; an
    escape counts as the character it stands for.
    """
    n = len(text)
    for c in value:
        if c.isspace():
            continue
        noise = 0
        while True:
            if i >= n:
                return -1
            t = text[i]
            if t == "\\":
                d, w = _decode_escape(text, i)
                if d == c:
                    i += w
                    break
                if t == c:
                    i += 1
                    break
                if d is not None and (d == "" or d.isspace()):
                    i += w
                    noise += w
                    if noise > _MAX_NOISE:
                        return -1
                    continue
                return -1
            if t == c:
                i += 1
                break
            if t.isspace() or t in _QUOTES:
                i += 1
                noise += 1
                if noise > _MAX_NOISE:
                    return -1
                continue
            return -1
    return i


def _anchor(value: str) -> tuple[str, int]:
    """A literal run at the start of ``value`` to search for, and how many characters precede it."""
    k = 0
    while k < len(value) and (value[k].isspace() or value[k] in "\\\"'"):
        k += 1
    j = k
    while j < len(value) and j - k < 12 and not (value[j].isspace() or value[j] in "\\\"'"):
        j += 1
    return value[k:j], k


_SEPARATOR = re.compile(r"[:=]")


@dataclass(slots=True)
class _Secret:
    kind: str
    fp: str
    line: int | None
    key: str | None
    strong: bool
    value: str
    report: bool = True
    forms: set[str] = field(default_factory=set)
    commented: bool = False
    """Only ever seen on commented-out lines (``# password: ...``, ``;secret_key = ...``): reported
    as a warning, since the file does not use it."""


class _Redaction:
    """The secrets of one file and the text spans that hold them."""

    FIND_EACH = 64  # up to this many forms, str.find each; past it, one pass of a trie regex

    def __init__(self, text: str) -> None:
        self.text = text
        self.secrets: dict[str, _Secret] = {}
        self.spans: list[tuple[int, int, str]] = []
        self._starts: list[int] | None = None
        self.lines_with_secrets: set[int] = set()

    # -- lines --------------------------------------------------------------------------------

    def line_starts(self) -> list[int]:
        if self._starts is None:
            starts = [0]
            find = self.text.find
            p = find("\n")
            while p >= 0:
                starts.append(p + 1)
                p = find("\n", p + 1)
            self._starts = starts
        return self._starts

    def line_of(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self.line_starts(), offset)

    def line_span(self, line: int, count: int = 1) -> tuple[int, int]:
        starts = self.line_starts()
        a = starts[min(max(line, 1), len(starts)) - 1]
        b_line = line + count
        b = starts[b_line - 1] if b_line - 1 < len(starts) else len(self.text)
        return a, b

    # -- secrets ------------------------------------------------------------------------------

    def add(
        self,
        value: str,
        kind: str,
        line: int | None,
        key: str | None,
        strong: bool,
        report: bool = True,
        commented: bool = False,
    ) -> _Secret | None:
        value = value.strip()
        if not value:
            return None
        fp = fingerprint(value)
        s = self.secrets.get(fp)
        if s is None:
            s = self.secrets[fp] = _Secret(kind, fp, line, key, strong, value, report, commented=commented)
        else:
            s.strong = s.strong or strong
            s.report = s.report or report
            s.commented = s.commented and commented
            if s.key is None and key is not None:  # reported where a key names it, as what the key says
                s.line, s.key, s.kind = line, key, kind
        s.forms.add(value)
        if line is not None:
            self.lines_with_secrets.add(line)
        return s

    def span(self, start: int, end: int, secret: _Secret) -> None:
        if end > start:
            self.spans.append((start, end, secret.fp))
            secret.forms.add(self.text[start:end])

    def locate(self, secret: _Secret, value: str, line: int) -> bool:
        """Find ``value`` as written from line ``line`` (or the next) and add its span."""
        anchor, skip = _anchor(value)
        if not anchor:
            return False
        a, b = self.line_span(line, 2)
        body = value[skip:].rstrip()
        pos = self.text.find(anchor, a, b)
        tries = 0
        while pos >= 0 and tries < 32:
            end = _align(self.text, pos, body)
            if end >= 0:
                self.span(pos, end, secret)
                return True
            tries += 1
            pos = self.text.find(anchor, pos + 1, b)
        return False

    def blank_value_lines(self, secret: _Secret, line: int) -> None:
        """Last resort when a value cannot be located: blank what follows the first ``:`` or ``=``
        on its line, and the lines below indented deeper (its continuation)."""
        a, b = self.line_span(line)
        first = self.text[a:b]
        m = _SEPARATOR.search(first)
        start = a + (m.end() if m else len(first) - len(first.lstrip()))
        indent = len(first) - len(first.lstrip())
        end = b
        starts = self.line_starts()
        nxt = line + 1
        while nxt <= len(starts):
            la, lb = self.line_span(nxt)
            row = self.text[la:lb]
            if row.strip() and len(row) - len(row.lstrip()) <= indent:
                break
            end = lb
            nxt += 1
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        self.span(start, end, secret)

    def everywhere(self) -> None:
        """Every literal occurrence of a strong secret (as parsed, JSON-escaped, or quote-doubled),
        however many secrets the file holds."""
        owner: dict[str, str] = {}
        for s in self.secrets.values():
            if not s.strong:
                continue
            for f in list(s.forms):
                for g in (f, json.dumps(f, ensure_ascii=False)[1:-1], f.replace("'", "''")):
                    if len(g) >= 4:
                        owner.setdefault(g, s.fp)
        text = self.text
        if len(owner) <= self.FIND_EACH:
            for f, fp in owner.items():
                p = text.find(f)
                while p >= 0:
                    self.spans.append((p, p + len(f), fp))
                    p = text.find(f, p + len(f))
            return
        for m in re.compile(_trie_regex(owner)).finditer(text):
            self.spans.append((m.start(), m.end(), owner[m.group(0)]))

    def span_lines(self) -> dict[str, set[int]]:
        """fingerprint -> the lines its spans cover."""
        out: dict[str, set[int]] = {}
        for start, end, fp in self.spans:
            a, b = self.line_of(start), self.line_of(max(start, end - 1))
            out.setdefault(fp, set()).update(range(a, b + 1))
        return out

    def redacted_text(self) -> str:
        if not self.spans:
            return self.text
        out = []
        prev = 0
        text = self.text
        for start, end, fp in sorted(self.spans, key=lambda s: (s[0], -s[1])):
            if end <= prev:
                continue
            start = max(start, prev)
            out.append(text[prev:start])
            out.append(marker(fp))
            out.append("\n" * text.count("\n", start, end))
            prev = end
        out.append(text[prev:])
        return "".join(out)


# key = value lines inside free text (Markdown code blocks, Dockerfile ENV, templates, and every
# structured file's text too: a file that failed to parse, a value written with escapes)
_ASSIGN = re.compile(
    r"""(?<![A-Za-z0-9_.\-\]])(?P<key>[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,127})["']?[ \t]{0,64}(?P<sep>:=|=>|=|:)[ \t]{0,64}"""
    r"""(?P<value>"(?:[^"\\\n]|\\.){1,1024}"|'[^'\n]{1,1024}'|[^\s"'#,;{}()\[\]<>]{1,1024})"""
)
_ASSIGN_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]{0,127})\s*[=:]\s*(.+)$", re.S)  # value trimmed by its reader
_AUTH_VALUE = re.compile(r"^(?:bearer|basic|token|bot|digest|apikey)[ \t]+(\S{4,})$", re.I)
_WORDY = re.compile(r"[A-Za-z]{2}")
_PASSPHRASE_TAIL = re.compile(r"(?:[ \t]{1,8}[A-Za-z0-9]{1,32}){1,7}[ \t]{0,64}(?:#.*)?$")
_AUTH_KEY = re.compile(r"authorization$", re.I)
_NEXT_ASSIGN = re.compile(r"[ \t]{1,64}[A-Za-z_][A-Za-z0-9_.\-]{0,127}=")
# after an Authorization key's separator: an optional quote, a scheme, the credential
_AUTH_TEXT = re.compile(
    r"[\"']?(?:(?:bearer|basic|token|bot|digest|apikey|api-token)[ \t]{1,16})"
    r"([A-Za-z0-9._~+/=\-]{4,4096})",
    re.I,
)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        body = value[1:-1]
        if "\\" in body:
            try:
                return json.loads(value)
            except ValueError:
                return body
        return body
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def _k8s_secret_value(value: str) -> str | None:
    """A Kubernetes Secret's base64 ``data`` value decoded, when it is text."""
    try:
        raw = base64.b64decode(value, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def is_source_code(path: str | PurePosixPath | None, text: str = "") -> bool:
    """Whether ``path`` names a program's source file (by its suffix), or ``text`` starts with a
    ``#!`` line naming a language's interpreter (``imapsync``: ``#!/usr/bin/perl``). Shell scripts
    are not: their unquoted ``PASS=x`` is a literal."""
    if path is not None and PurePosixPath(str(path)).suffix.lower() in SOURCE_SUFFIXES:
        return True
    if text.startswith("#!"):
        first = text[2 : text.find("\n") if "\n" in text else 200].split()
        words = [PurePosixPath(w).name for w in first[:2]]  # #!/usr/bin/perl, #!/usr/bin/env python3
        return any(w.rstrip("0123456789.") in _INTERPRETERS for w in words)
    return False


_INTERPRETERS = frozenset({"perl", "python", "node", "ruby", "php", "lua", "deno", "bun", "Rscript", "julia"})


# message catalogues: the values are what a UI says ("app_password": "Add app password"), never a
# credential; key names say which text it is. Found by their folder or a language-code name.
_MESSAGE_DIRS = _words(
    "i18n l10n lang langs language languages locale locales messages strings translation translations"
)
_LANGUAGES = _words(
    "af am ar az be bg bn bs ca cs cy da de el en eo es et eu fa fi fil fr ga gl gu he hi hr "
    "hu hy id is it ja ka kk km kn ko ky lo lt lv mk ml mn mr ms mt my nb ne nl nn no pa pl "
    "pt ro ru si sk sl sq sr sv sw ta te th tl tr uk ur uz vi zh zu"
)
_LOCALE_NAME = re.compile(
    r"(?:(?:lang|language|messages|strings|translations?|locale|i18n)[._-])?([a-z]{2,3})(?:[-_][A-Za-z]{2,4})?",
    re.I,
)
_CATALOGUE_SUFFIXES = frozenset({".json", ".yaml", ".yml", ".properties", ".toml", ".ini", ".po", ".xlf"})


def is_message_catalogue(path: str | PurePosixPath | None) -> bool:
    """Whether ``path`` is a UI message catalogue (``lang/lang.ro-ro.json``, ``locales/de.yml``,
    ``messages_fr.properties``): under a language folder, or named by a language code."""
    if path is None:
        return False
    p = PurePosixPath(str(path))
    if p.suffix.lower() not in _CATALOGUE_SUFFIXES:
        return False
    if any(part.lower() in _MESSAGE_DIRS for part in p.parts[:-1]):
        return True
    m = _LOCALE_NAME.fullmatch(p.stem)
    if m is None or m.group(1).lower() not in _LANGUAGES:
        return False
    # a bare code that is also a word or an abbreviation (id.yaml, ca.json, ms.yaml) needs a prefix
    return m.group(1) != p.stem or p.stem.lower() not in _AMBIGUOUS_CODES


_AMBIGUOUS_CODES = _words("am be ca hr id is it kk km ml ms mt my ne no si sr ta te")


_STRUCTURED = formats_with(lambda t: t.structured)


def redact_file(parsed: ParsedFile, text: str, path: str, fmt: str) -> ParsedFile:
    """:func:`redact` a parsed file with what its format, path and first line say: structured
    records, program source (:func:`is_source_code`), a UI message catalogue
    (:func:`is_message_catalogue`). Ingest and the change log both read files through this."""
    return redact(
        parsed,
        text,
        structured=fmt in _STRUCTURED,
        code=is_source_code(path, text[:256]),
        messages=is_message_catalogue(path),
    )


def redact(
    parsed: ParsedFile, text: str, *, structured: bool, code: bool = False, messages: bool = False
) -> ParsedFile:
    """Replace secrets in ``parsed`` (records, sections, documents) in place; add problems.

    ``text`` is the file's full text; ``structured`` says whether records carry the file's values
    (then key-name rules run on records; the ``key = value`` scan of the text runs either way);
    ``code`` says the text is a program's source (:func:`is_source_code`): there the ``key =
    value`` scan takes string literals only. ``messages`` says it is a UI message catalogue
    (:func:`is_message_catalogue`): there key names say nothing, only credential formats count.
    """
    red = _Redaction(text)

    # 1. credential formats anywhere in the text
    for kind, value, start, end in scan_text(text):
        strong = kind != "a password in a URL" or _strong(value)
        s = red.add(value, kind, red.line_of(start), None, strong)
        if s is not None:
            red.span(start, end, s)
    comments = parsed.format != "markdown"  # there '#' starts a heading
    # 1b. ${DB_PASSWORD:-default}: the default is stored in clear (on a commented-out line, only a
    # strong one, as a warning: see _text_assignments)
    if "${" in text:
        for m in _DEFAULT.finditer(text):
            if secret_key(m.group(1)) and not is_placeholder(m.group(2)):
                value, strong = m.group(2), _strong(m.group(2))
                commented = comments and _commented(text, m.start(), _FLAG_COMMENT_LEAD)
                if commented and _an_example(value, strong):
                    continue  # #- SMTP_PASSWORD=${SMTP_PASS:-smtppass}
                s = red.add(value, "a credential", red.line_of(m.start(2)), m.group(1), strong, commented=commented)
                if s is not None:
                    red.span(m.start(2), m.end(2), s)

    # 2. credential-named keys, KEY=value items, Kubernetes pairs and Secrets, Docker auths
    record_secrets: dict[int, tuple[_Secret, str]] = {}  # id(record) -> (secret, value to replace)
    keyed_lines: set[int] = set()
    if structured and parsed.records and not messages:
        _record_secrets(parsed, red, record_secrets, keyed_lines)
        # escapes may hide a format from the text scan (\u0041KIA..., a PEM in JSON): scan the values
        if "\\" in text or "PRIVATE KEY" in text:
            _decoded_formats(parsed, red, record_secrets)

    # 3. key = value in the text itself (a line a record already judged is left to the record)
    prose = _markdown_prose_lines(text) if parsed.format == "markdown" else set()
    low = text.lower()
    hints = not messages and any(h in low for h in _HINT_WORDS)
    if hints:
        _text_assignments(
            text,
            red,
            keyed_lines if structured else set(),
            prose,
            literals_only=code,
            comments=comments,
        )
    # 4. credentials given by their context: URL query parameters, command-line flags, netrc,
    # .pgpass, XML tags, Markdown tables
    _context_secrets(text, red, keyed_lines if structured else set(), prose, hints, code=code, comments=comments)

    if not red.secrets:
        return parsed
    # a weak value also written as a whole record value elsewhere (a YAML anchor, a user named
    # like its password): redacted there too
    weak_values = {s.value: s for s in red.secrets.values() if not s.strong}
    equal: dict[int, _Secret] = {}
    if weak_values and structured:
        for rec in parsed.records:
            if id(rec) not in record_secrets and isinstance(rec.value, str):
                same = weak_values.get(rec.value.strip())
                if same is not None:
                    equal[id(rec)] = same
                    red.locate(same, rec.value.strip(), rec.line)
    red.everywhere()
    lines_of = red.span_lines()
    new_text = red.redacted_text()

    # sections: cut again from the redacted text (same lines); a section that is not a plain slice
    # of the source (a plugin's) is scrubbed value by value
    old_lines = text.split("\n")
    new_lines = new_text.split("\n")
    strong_forms = _Forms({f: marker(s.fp) for s in red.secrets.values() if s.strong for f in s.forms if len(f) >= 4})
    for sec in parsed.sections:
        a, b = sec.line_start - 1, sec.line_end
        if sec.text == "\n".join(old_lines[a:b]):
            sec.text = "\n".join(new_lines[a:b])
        else:
            sec.text = _scrub_forms(sec.text, strong_forms)
        if strong_forms and sec.key_path:
            sec.key_path = strong_forms.sub(sec.key_path)

    # records and documents
    replaced: dict[str, str] = {}
    weak: dict[str, str] = {}
    for s in red.secrets.values():
        if not s.strong:
            weak[s.value] = marker(s.fp)
    unplaced = [s for s in red.secrets.values() if s.key is None]
    at_path: list[tuple[int, str, Any, Any]] = []  # (doc, key path, old value, new value)
    weak_on_line: dict[int, list[_Secret]] = {}
    for s in red.secrets.values():
        if not s.strong:
            for ln in lines_of.get(s.fp, ()):
                weak_on_line.setdefault(ln, []).append(s)
    for rec in parsed.records:
        hit = record_secrets.get(id(rec))
        kp = rec.key_path  # as the documents spell it, before any scrub
        if strong_forms:
            rec.key_path = strong_forms.sub(rec.key_path)
        v = rec.value
        if hit is not None:
            s, part = hit
            if isinstance(v, str):
                new = v.replace(part, marker(s.fp)) if part and part != v else marker(s.fp)
                new = _scrub_forms(new, strong_forms)
                if s.strong:
                    replaced[v] = new
                at_path.append((rec.doc, kp, v, new))
                rec.value = new
            else:
                at_path.append((rec.doc, kp, v, marker(s.fp)))
                rec.value = marker(s.fp)
            continue
        if isinstance(v, str):
            eq = equal.get(id(rec))
            new = marker(eq.fp) if eq is not None else _scrub_forms(v, strong_forms)
            if weak_on_line and rec.line in weak_on_line:
                for s in weak_on_line[rec.line]:
                    rec.key_path = _scrub_token(rec.key_path, s.value, marker(s.fp))
            if weak_on_line and eq is None:  # a weak value the text scan found on this record's lines
                for ln in range(rec.line, rec.line + v.count("\n") + 2):
                    for s in weak_on_line.get(ln, ()):
                        for f in sorted(s.forms, key=len, reverse=True):
                            new = _scrub_token(new, f.strip("\"'"), marker(s.fp)) if f.strip("\"'") else new
            if new != v:
                replaced[v] = new
                rec.value = new
                for s in unplaced:  # a format found in the text: its record names the place
                    if s.key is None and any(f in v for f in s.forms):
                        s.line, s.key = rec.line, rec.key_path
    numeric = {int(s.value): marker(s.fp) for s in red.secrets.values() if s.value.isdigit() and len(s.value) < 40}
    parsed.documents = [_scrub_data(d, strong_forms, replaced, weak, numeric) for d in parsed.documents]
    for doc, kp, old, new in at_path:  # a weak value under a key the documents cannot tell apart
        if 0 <= doc < len(parsed.documents):
            parsed.documents[doc] = _replace_at(parsed.documents[doc], kp, old, new)

    for s in red.secrets.values():
        if not s.report:
            continue
        where = f" under '{s.key}'" if s.key else ""
        if s.commented:
            severity = "warning"
            message = (
                f"{s.kind} is written in plain text on a commented-out line{where} (fingerprint {s.fp}): "
                f"not used here, but readable by anyone with the file; if it is real, rotate it and delete the line"
            )
        else:
            severity = "error"
            message = (
                f"{s.kind} is stored in plain text{where} (fingerprint {s.fp}); move it to a secret store "
                f"and reference it, e.g. ${{{_env_name(s.key)}}}"
            )
        parsed.problems.append(
            Problem(
                "plaintext-secret",
                severity,
                message,
                line=s.line,
                target=s.key,
                fingerprint=s.fp,
            )
        )
    return parsed


_SECRET_DATA = ("data.", "stringData.", "data[", "stringData[")
_EXAMPLE_KEYS = frozenset({"example", "examples", "x-example", "x-examples"})


def _under_example(kp: str) -> bool:
    """Whether a key of ``kp`` is an API description's ``example``/``examples`` (not a quoted
    key that merely holds the word, ``auths["r.example.com"]``)."""
    try:
        return any(isinstance(seg, str) and seg in _EXAMPLE_KEYS for seg in key_segments(kp))
    except ValueError:
        return False


def _record_secrets(
    parsed: ParsedFile, red: _Redaction, out: dict[int, tuple[_Secret, str]], keyed_lines: set[int]
) -> None:
    records = parsed.records
    names: dict[str, Any] = {}
    k8s_secret_docs: set[int] = set()
    nested_secrets: set[tuple[int, str]] = set()  # (doc, "extraObjects[0].") a Secret inside values
    for rec in records:
        kp = rec.key_path
        if kp.endswith(".name") and isinstance(rec.value, str):
            names[kp[:-5]] = rec.value
        elif kp == "kind" and rec.value == "Secret":
            k8s_secret_docs.add(rec.doc)
        elif kp.endswith(".kind") and rec.value == "Secret":
            nested_secrets.add((rec.doc, kp[:-4]))

    def secret_data(doc: int, kp: str) -> str | None:
        """``kp`` relative to the Secret manifest holding it (``data.x``), or None."""
        if doc in k8s_secret_docs and kp.startswith(_SECRET_DATA):
            return kp
        if nested_secrets:
            for d, prefix in nested_secrets:
                if d == doc and kp.startswith(prefix) and kp[len(prefix) :].startswith(_SECRET_DATA):
                    return kp[len(prefix) :]
        return None

    def take(rec, value: str, kind: str, key: str, part: str | None = None) -> None:
        s = red.add(value, kind, rec.line, key, _strong(value))
        if s is None:
            return
        out[id(rec)] = (s, part if part is not None else rec.value)
        if not red.locate(s, value, rec.line):
            red.blank_value_lines(s, rec.line)

    for rec in records:
        v = rec.value
        kp = rec.key_path
        if isinstance(v, int) and not isinstance(v, bool):
            if v >= 100_000 and secret_key(kp):  # a numeric PIN or password
                keyed_lines.add(rec.line)
                take(rec, str(v), "a credential", kp)
            continue
        if not isinstance(v, str) or not v:
            continue
        rel = secret_data(rec.doc, kp)
        if rel is not None:
            keyed_lines.add(rec.line)
            shown = _k8s_secret_value(v) if rel.startswith(("data.", "data[")) else v
            if shown is None:  # binary data (a keystore): secret material...
                if not is_placeholder(v):  # ...unless a template fills it in: config: {{config_data}}
                    take(rec, v, "a Kubernetes Secret value", kp)
                continue
            if is_placeholder(shown):
                continue
            creds = url_passwords(shown) if "://" in shown else []
            if creds:  # a DSN: its password is the secret, when it is not a placeholder
                if not is_placeholder(creds[0][0]):
                    take(rec, v, "a Kubernetes Secret value", kp)
                continue
            if secret_key(kp) or (_strong(shown) and "://" not in shown and len(shown) >= 16):
                take(rec, v, "a Kubernetes Secret value", kp)
            continue  # a user name, a host, a URL without credentials: configuration, not a secret
        if kp.startswith("auths") and kp.endswith(".auth") and len(v) >= 8 and key_segments(kp)[0] == "auths":
            keyed_lines.add(rec.line)  # ~/.docker/config.json: base64 of user:password
            take(rec, v, "a registry credential", kp)
            continue
        if "example" in kp and _under_example(kp):
            keyed_lines.add(rec.line)  # the line is judged: the text scan leaves it alone
            continue  # an API description's example (OpenAPI example/examples): documentation
        if secret_key(kp) or (kp.endswith((".default", ".value")) and secret_key(kp.rsplit(".", 1)[0])):
            # variable.db_password.default (Terraform JSON), password: {value: x}
            keyed_lines.add(rec.line)
            m = _AUTH_VALUE.match(v.strip())
            if m:
                if not is_placeholder(m.group(1)):
                    take(rec, m.group(1), "a credential", kp, m.group(1))
            elif _AUTH_KEY.search(kp) and (len(v) < 16 or " " in v.strip()):
                continue  # authorization: disabled / BASIC: a setting, not a credential
            elif not is_placeholder(v) and not _names_its_key(v, kp):
                d = _DEFAULTED.match(v.strip())
                if d:  # ${POSTGRES_PASSWORD:db-x}: the default is the secret (one finding with the text scan's)
                    take(rec, d.group(1).strip(), "a credential", kp, d.group(1).strip())
                else:
                    take(rec, v, "a credential", kp)
        elif kp.endswith(".value") and secret_key(str(names.get(kp[:-6], ""))):
            # Kubernetes env: {name: DB_PASSWORD, value: ...}
            keyed_lines.add(rec.line)
            name = str(names[kp[:-6]])
            if not is_placeholder(v) and not _names_its_key(v, name):  # MINIO_ACCESS_KEY: minio is a user
                take(rec, v, "a credential", f"{kp} ({name})")
        elif ("=" in v or ":" in v) and len(v) < 4096:
            m = _ASSIGN_ITEM.match(v)
            if m and secret_key(m.group(1)):
                keyed_lines.add(rec.line)
                # a block of KEY=value lines: this item's value ends at its line (the text scan reads the rest)
                val = m.group(2).split("\n", 1)[0].strip().strip("'\"")
                if not is_placeholder(val) and not _names_its_key(val, m.group(1)):
                    d = _DEFAULTED.match(val)
                    if d:  # - DB_PASSWORD=${PG_PASS:-x}: the default is the secret (one finding with the text scan's)
                        val = d.group(1).strip()
                    take(rec, val, "a credential", f"{kp} ({m.group(1)})", val)


def _decoded_formats(parsed: ParsedFile, red: _Redaction, out: dict[int, tuple[_Secret, str]]) -> None:
    """Credential formats in parsed string values that the raw text hides behind escapes."""
    for rec in parsed.records:
        v = rec.value
        if not isinstance(v, str) or len(v) < 16 or id(rec) in out:
            continue
        for kind, value, _, _ in scan_text(v):
            s = red.add(value, kind, rec.line, rec.key_path, True)
            if s is None:
                continue
            # not seen in the raw text: find where it is written
            if len(s.forms) == 1 and not red.locate(s, value, rec.line):
                red.blank_value_lines(s, rec.line)
            out[id(rec)] = (s, value)


def _assignments(text: str):
    """``_ASSIGN`` matches, and those inside a quoted value (``"Server=x;Password=y"``), once each."""
    for m in _ASSIGN.finditer(text):
        yield m
        raw = m.group("value")
        if raw[0] in "\"'" and ("=" in raw or ":" in raw):
            yield from _ASSIGN.finditer(text, m.start("value") + 1, m.end("value") - 1)


def _template_completes(text: str, end: int, value: str) -> bool:
    """The value found ends where a template goes on (``-token=write-{{ $tenant.name }}``,
    ``--password=db-${ENV}``, ``$(cmd)``): the template makes it, it is not written in the file."""
    tail = text[end : end + 2]
    return tail in ("{{", "${", "$(") or (value.endswith("$") and tail[:1] in ("{", "("))


# a function's or a method's name, before the "(" of its call
_CALLED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LOWER_WORDS = re.compile(r"[a-z]+[0-9]{0,4}")
_LEADS = r"#|;|//|/\*|\*|<!--|(?i:rem)[ \t]"
# a line that is a comment up to the key: ``# password: x``, ``;secret_key = x``, ``// 'key' => 'x'``,
# SQL's ``-- password: x`` (not ``--set auth.password=x``: a flag on a shell continuation line)
_COMMENT_LEAD = re.compile(rf"[ \t]{{0,64}}(?:--(?![\w-])|{_LEADS})")
# the same before a credential given by its context, where "--" starts the flag itself
_FLAG_COMMENT_LEAD = re.compile(rf"[ \t]{{0,64}}(?:{_LEADS})")


def _commented(text: str, pos: int, lead: re.Pattern[str]) -> bool:
    """Whether the line holding ``pos`` is a comment up to it."""
    return lead.match(text, text.rfind("\n", 0, pos) + 1, pos) is not None


def _an_example(value: str, strong: bool) -> bool:
    """On a commented-out line, a weak value or lowercase letters, perhaps numbered
    (``strongpassword``, ``password1`` beside ``user1``), is an example; a strong one a warning."""
    return not strong or _LOWER_WORDS.fullmatch(value) is not None


def _text_assignments(
    text: str,
    red: _Redaction,
    skip_lines: set[int],
    prose: set[int],
    *,
    literals_only: bool = False,
    comments: bool = True,
) -> None:
    """``comments``: a ``#``/``;``/``//`` line is a comment in this format. A commented-out
    assignment (a sample config's documented default, an example) is reported only when its value
    is strong, and then as a warning (:attr:`_Secret.commented`): ``# secretKey: kubeconfig``
    names a key, ``;admin_password = admin`` is a default written down."""
    for m in _assignments(text):
        key = m.group("key")
        if not secret_key(key):
            continue
        q = text[m.start("key") - 1] if m.start("key") else ""
        if q and q in "\"'" and text[m.end("key") : m.end("key") + 1] != q:
            continue  # "Password:" in a label, echo "Pass: no-op": text in a string, not a key
        if q == "^":
            continue  # s/^system.secret-key:.*$/.../: a pattern, not an assignment
        if literals_only:
            raw = m.group("value")
            if raw[0] not in "\"'" or len(raw) < 2 or raw[-1] != raw[0]:
                continue  # source code: password = pf.read() is an expression, not a credential
            if _CAMEL_NAME.fullmatch(raw[1:-1]):
                continue  # allPass: "overEvery" maps a name to a name
        if text[max(0, m.start() - 2) : m.start()].endswith(("${", "{", "$")):
            continue  # the NAME inside ${NAME:-default}: a reference, not an assignment
        line = red.line_of(m.start("value"))
        if line in skip_lines:
            continue
        if line in prose and m.group("sep") == ":" and m.group("value")[0] not in "\"'":
            eol = text.find("\n", m.end("value"))
            if _WORDY.search(text[m.end("value") : eol if eol >= 0 else len(text)]):
                continue  # Markdown prose: "API_TOKEN: generated on first start"
        raw = m.group("value")
        start, end = m.start("value"), m.end("value")
        if raw[0] not in "\"'" and text[end : end + 1] == "(" and _CALLED.fullmatch(raw):
            continue  # old_token = Token.objects.get(key="..."): code calls for the value
        line_head = text[text.rfind("\n", 0, m.start("key")) + 1 : m.start("key")]
        if raw[0] not in "\"'" and _code_reference(raw, m.group("sep"), text[end : end + 1], line_head, q):
            continue  # const token = body.token.value; "token": base64Token, : code names the value
        value = _unquote(raw)
        auth = None
        if _AUTH_KEY.search(key):
            auth = _AUTH_TEXT.match(text, start)
            if auth is None:
                continue
            value, start, end = auth.group(1), auth.start(1), auth.end(1)
        elif raw[0] not in "\"'":
            eol = text.find("\n", end)
            tail = text[end : eol if eol >= 0 else len(text)]
            if _WORDY.search(tail) and not _NEXT_ASSIGN.match(tail):  # not "password=x dbname=app"
                words = _PASSPHRASE_TAIL.match(tail)
                whole = (raw + tail).strip()
                if words is not None and m.group("sep") == ":" and raw.isalnum():
                    if is_placeholder(whole):  # password: correct horse battery staple
                        continue
                    value, end = whole, end + len(tail.rstrip())
                elif _prose(whole) or (raw.isalpha() and raw.islower() and len(raw) < 12):
                    continue  # a sentence: "the new passwords: this is configured using ..."
        if is_placeholder(value) or _names_its_key(value, key):
            continue
        if _template_completes(text, end, value):
            continue
        strong = _strong(value)
        commented = comments and _commented(text, m.start("key"), _COMMENT_LEAD)
        if commented and _an_example(value, strong):
            continue  # a commented-out example: "# secretKey: kubeconfig", "# adminPassword: strongpassword"
        s = red.add(
            value, "a credential", line, key, strong, report=line not in red.lines_with_secrets, commented=commented
        )
        if s is None:
            continue
        if raw[0] in "\"'" and auth is None and value == _unquote(raw):
            red.span(start + 1, end - 1, s)
        else:
            red.span(start, end, s)


# -- credentials given by their context ----------------------------------------------------------

# ?api_key=..., &password=..., ;password=... inside a URL or a connection string
_PARAM = re.compile(r"(?<=[?&;])(?P<key>[A-Za-z_][A-Za-z0-9_.\-]{0,127})=(?P<value>[^&;#\s\"'<>`]{1,1024})")
_FLAG_VALUE = r"(?P<value>(?!-)[^\s\"'`,\]\[;|&<>(){}]{1,256})"  # not the next flag (--disabled-password --gecos)
# --requirepass X, --password=X, -storepass X, ["--requirepass", "X"], "- --requirepass\n- X"
_FLAG = re.compile(
    r"(?<![\w-])--?(?:[A-Za-z]{1,20}-){0,4}"
    r"(?:requirepass|masterauth|password|passwd|pass|storepass|keypass|srcstorepass|deststorepass|passout|passin"
    r"|token|api-key|apikey|secret|client-secret)"
    r"(?:=|[ \t]{1,8}|[\"'][ \t]{0,8},[ \t]{0,8}[\"']|[ \t]{0,8}\n[ \t]{0,64}-[ \t]{1,8}[\"']?)" + _FLAG_VALUE
)
# tool-specific short flags, each valid only after its tool on the same line
_SHORT_FLAGS = (
    (re.compile(r"(?<![\w-])-p" + _FLAG_VALUE), ("mysql", "mariadb")),  # mysql -pX
    (re.compile(r"(?<![\w-])-a(?:[ \t]{1,8}|[\"'][ \t]{0,8},[ \t]{0,8}[\"'])" + _FLAG_VALUE), ("redis-cli",)),
    (re.compile(r"(?<![\w-])-p(?:[ \t]{1,8}|[\"'][ \t]{0,8},[ \t]{0,8}[\"'])" + _FLAG_VALUE), ("login", "sshpass")),
    (re.compile(r"(?<![\w-])(?:-u|--user)(?:[ \t]{1,8}|=)[\"']?[^\s:\"'`]{1,128}:" + _FLAG_VALUE), ("curl", "wget")),
)
# netrc: machine HOST login USER password PW
_FLAG_WORDS = {"flag", "option", "argument", "parameter", "when", "with", "instead", "only", "which", "that", "this"}
_NETRC = re.compile(r"(?<![\w-])password[ \t]{1,8}" + _FLAG_VALUE)
# .pgpass: host:port:database:user:password
_PGPASS = re.compile(r"^[^:\s#]{1,253}:(?:\d{1,5}|\*):[^:\s]{1,128}:[^:\s]{1,128}:([^\s]{1,1024})$", re.M)
# <password>X</password>, <apiKey>X</apiKey>
_IPV6 = re.compile(r"(?:[0-9A-Fa-f]{1,4}:){3,}|::")
_XML_TAG = re.compile(r"<(?P<tag>[A-Za-z][\w.\-:]{0,63})>(?P<value>[^<\n]{1,1024})</(?P=tag)>")
_TABLE_RULE = re.compile(r"^\s*:?-{3,}:?\s*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def _markdown_prose_lines(text: str) -> set[int]:
    """Line numbers of a Markdown file outside fenced code blocks."""
    out = set()
    fence = ""
    for i, row in enumerate(text.split("\n"), 1):
        m = _FENCE.match(row)
        if m and (not fence or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fence = "" if fence else m.group(1)
            continue
        if not fence:
            out.add(i)
    return out


def _context_secrets(
    text: str,
    red: _Redaction,
    skip_lines: set[int],
    prose: set[int],
    hints: bool,
    *,
    code: bool = False,
    comments: bool = True,
) -> None:
    """Credentials that no key names but their place does: a URL's ``?token=``, a command-line
    ``--requirepass``/``-pX``/``-u user:pw``, a netrc ``password``, a ``.pgpass`` line, an XML
    ``<password>`` and a Markdown table's password cell. On a commented-out line (``comments``: the
    format has ``#``/``;``/``//`` comments) the rule of :func:`_text_assignments` holds: a weak or
    lowercase-word value is an example (``# cscli machines add x --password secretpassphrase``), a
    strong one a warning."""

    def take(value: str, start: int, key: str) -> None:
        value = value.strip()
        if value.startswith("pass:"):  # openssl -passout pass:X
            value, start = value[5:], start + 5
        line = red.line_of(start)
        if line in skip_lines or not value or is_placeholder(value) or _names_its_key(value, key):
            return
        if _template_completes(text, start + len(value), value):
            return
        strong = _strong(value)
        commented = comments and _commented(text, start, _FLAG_COMMENT_LEAD)
        if commented and _an_example(value, strong):
            return
        s = red.add(
            value, "a credential", line, key, strong, report=line not in red.lines_with_secrets, commented=commented
        )
        if s is not None:
            red.span(start, start + len(value), s)

    def before(pos: int, words: tuple[str, ...]) -> bool:
        """A tool named earlier on the line, not as a quoted shell argument (``-name 'mysql'``)."""
        a = max(text.rfind("\n", 0, pos) + 1, pos - 512)
        head = text[a:pos].lower()
        for w in words:
            at = head.find(w)
            while at >= 0:
                if not (at > 0 and head[at - 1] == "'" and head[at + len(w) : at + len(w) + 1] == "'"):
                    return True
                at = head.find(w, at + 1)
        return False

    if hints and "=" in text:
        for m in _PARAM.finditer(text):
            if code and text[m.start() - 1] == ";":
                continue  # a statement (;r.token=o()), not a connection string's parameter
            if secret_key(m.group("key")):
                take(m.group("value"), m.start("value"), m.group("key"))
    if hints and "-" in text:
        for m in _FLAG.finditer(text):
            value = m.group("value")
            if red.line_of(m.start()) in prose or (value.rstrip(".:!?").isalpha() and value[-1] in ".:!?"):
                continue  # prose: "the same as the --secret flag."
            if value.lower() in _FLAG_WORDS:
                continue
            flag = re.split(r"[\s=\"',]", m.group(0).lstrip("-"), maxsplit=1)[0]  # --token=x names "token"
            take(value, m.start("value"), flag)
    for pattern, tools in _SHORT_FLAGS:
        if any(t in text for t in tools):
            for m in pattern.finditer(text):
                if before(m.start(), tools) and red.line_of(m.start()) not in prose:
                    take(m.group("value"), m.start("value"), tools[0] + " password")
    if "machine" in text:
        for m in _NETRC.finditer(text):
            if before(m.start(), ("machine",)) or "machine" in text[max(0, m.start() - 200) : m.start()]:
                take(m.group("value"), m.start("value"), "netrc password")
    if text.count(":") >= 4:
        for m in _PGPASS.finditer(text):
            if not _IPV6.search(m.group(0)):  # fd4d:6169:6c63:6f77::/64 is an address
                take(m.group(1), m.start(1), "pgpass password")
    if hints and "</" in text:
        for m in _XML_TAG.finditer(text):
            if secret_key(m.group("tag")):
                take(m.group("value"), m.start("value"), m.group("tag"))
    if hints and "|" in text:
        _table_secrets(text, take)


_VALUE_HEADERS = {"default", "default value", "value", "values", "example"}


def _table_secrets(text: str, take) -> None:
    """Markdown tables: a row whose first cell names a credential (``| admin password | X |``), and
    the cells under a header that names one (``| user | password |``). A cell with spaces in it is
    a description, not a value."""
    offset = 0
    header: list[str] | None = None
    prev: list[tuple[str, int]] | None = None
    for row in text.split("\n"):
        start = offset
        offset += len(row) + 1
        stripped = row.strip()
        if not (stripped.startswith("|") and stripped.count("|") >= 2):
            header = prev = None
            continue
        cells: list[tuple[str, int]] = []
        pos = row.index("|") + 1
        for part in row[pos:].split("|"):
            cells.append((part, start + pos))
            pos += len(part) + 1
        if cells and not cells[-1][0].strip():
            cells.pop()
        if all(_TABLE_RULE.match(c) for c, _ in cells):
            header = [c.strip().strip("*`_ ") for c, _ in prev] if prev else None
            continue
        prev = cells
        # helm-docs and the like: | Key | Type | Default | Description |, the value is under Default
        at_col = next((i for i, h in enumerate(header or []) if h.lower() in _VALUE_HEADERS), 1)
        row_key = cells[0][0].strip().strip("*`_ ") if cells else ""
        wanted = [at_col] if cells and secret_key(row_key or "x") else []
        if header:
            wanted += [i for i, h in enumerate(header) if h and secret_key(h) and i != at_col]
        for i in wanted:
            if i < len(cells):
                raw, at = cells[i]
                value = raw.strip().strip("`")
                if len(value) > 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]  # helm-docs writes a string default JSON-quoted: `"supersecret"`
                if value and " " not in value:
                    # the row's key names the value under Default (| clusterSecretKey | string | `"cluster"` |)
                    key = row_key if i == at_col and row_key else (header[i] if header and i < len(header) else "")
                    take(value, at + raw.index(value), key or "password")


class _Forms:
    """Literal strings and their markers, replaced in one call: a few with ``str.replace`` (longest
    first), many with one pass of a regex over their trie."""

    def __init__(self, marks: dict[str, str]) -> None:
        self.marks = marks
        self.ordered = sorted(marks, key=len, reverse=True)
        self.pattern = re.compile(_trie_regex(marks)) if len(marks) > _Redaction.FIND_EACH else None

    def __bool__(self) -> bool:
        return bool(self.marks)

    def sub(self, s: str) -> str:
        if self.pattern is not None:
            return self.pattern.sub(lambda m: self.marks[m.group(0)], s)
        for f in self.ordered:
            if f in s:
                s = s.replace(f, self.marks[f])
        return s


def _trie_regex(words) -> str:
    """A regex for any of ``words``, longest first at a place, built over their trie: an attempt
    costs the length of the common prefix it follows, not the number of words. Built without
    recursion (a private-key block is thousands of characters)."""
    root: dict[str, dict] = {}
    for w in words:
        node = root
        for c in w:
            node = node.setdefault(c, {})
        node[""] = {}
    out: dict[int, str] = {}
    stack: list[tuple[dict, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            stack.extend((child, False) for k, child in node.items() if k)
            continue
        alts = [re.escape(k) + out.pop(id(node[k])) for k in sorted(k for k in node if k)]
        if not alts:
            out[id(node)] = ""
            continue
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        out[id(node)] = f"(?:{body})?" if "" in node else body
    return out[id(root)]


def _scrub_forms(s: str, forms: _Forms) -> str:
    return forms.sub(s) if forms else s


def _scrub_token(s: str, value: str, mark: str) -> str:
    """``value`` replaced where it stands as a whole token (not inside a longer word)."""
    if value not in s:
        return s
    return re.sub(r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])", lambda _: mark, s)


def _env_name(key: str | None) -> str:
    """The variable to suggest: the key's last name, or the name in ``environment[2] (DB_PASSWORD)``."""
    if not key:
        return "SECRET_NAME"
    base, _, named = key.partition(" (")
    name = named[:-1] if named.endswith(")") else _last_key(base)
    return re.sub(r"[^A-Za-z0-9]+", "_", name).upper().strip("_") or "SECRET_NAME"


def _scrub_data(
    data: Any, forms: _Forms, replaced: dict[str, str], weak: dict[str, str], numeric: dict[int, str]
) -> Any:
    """Scrub strings in a parsed tree (keys too): what the records' values became, strong secrets
    anywhere, a weak secret only under a credential-named key, in a ``KEY=value`` item or in a
    ``{name: DB_PASSWORD, value: ...}`` pair."""

    def scrub(v: str, keyed: bool) -> str:
        new = replaced.get(v)
        if new is not None:
            return new
        if keyed and v in weak:
            return weak[v]
        if keyed:
            for w, mark in weak.items():
                if w in v:
                    v = v.replace(w, mark)
        return _scrub_forms(v, forms) if forms else v

    if isinstance(data, str):
        return scrub(data, False)
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            named = secret_key(node["name"]) if isinstance(node.get("name"), str) else False
            for k in list(node):
                v = node[k]
                new_k = scrub(k, False) if isinstance(k, str) else k
                keyed = (secret_key(str(k)) if isinstance(k, str) else False) or (named and k == "value")
                if isinstance(v, str):
                    v = scrub(v, keyed or _item_keyed(v))
                elif isinstance(v, int) and not isinstance(v, bool) and keyed and v in numeric:
                    v = numeric[v]
                elif isinstance(v, (dict, list)):
                    if keyed and isinstance(v, list):  # passwords: [a, b]
                        v = [scrub(x, True) if isinstance(x, str) else x for x in v]
                    stack.append(v)
                if new_k != k:
                    del node[k]
                node[new_k] = v
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    node[i] = scrub(v, _item_keyed(v))
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return data


def _replace_at(data: Any, key_path: str, old: Any, new: Any) -> Any:
    """``data`` with the value at ``key_path`` replaced by ``new`` when it is still ``old``."""
    try:
        segs = key_segments(key_path)
    except ValueError:
        return data
    if not segs:
        return new if data == old else data
    node = data
    for seg in segs[:-1]:
        try:
            node = node[seg]
        except (KeyError, IndexError, TypeError):
            return data
    last = segs[-1]
    try:
        if node[last] == old:
            node[last] = new
    except (KeyError, IndexError, TypeError):
        pass
    return data


def _item_keyed(v: str) -> bool:
    m = _ASSIGN_ITEM.match(v) if ("=" in v or ":" in v) and len(v) < 4096 else None
    return bool(m and secret_key(m.group(1)))
