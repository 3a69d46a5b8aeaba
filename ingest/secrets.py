"""Find credentials in a parsed file and replace them with markers before anything is stored.

What counts as a secret (the README's "Secrets" section says the same):

* a value matching a credential format anywhere in the file: private-key blocks, cloud and SaaS
  tokens (:data:`RULES`: AWS, GitHub, GitLab, Slack tokens and webhooks, Stripe, Google, OpenAI,
  Anthropic, Azure storage keys, npm, PyPI, SendGrid, Twilio, ...), JWTs, passwords in URLs,
  ``Authorization: Bearer|Basic|Token <credential>``;
* a non-placeholder value under a key that names a credential (``password``, ``PGPASSWORD``,
  ``apiKey``, ``client_secret``, ``SECRET_KEY_BASE``, ``api_keys:`` lists, ...), in a ``KEY=value``
  item, in a Kubernetes ``{name, value}`` pair, under a Kubernetes ``Secret``'s ``data`` or
  ``stringData``, in a Docker config's ``auths.*.auth``, or as the default of ``${DB_PASSWORD:-x}``.

Placeholders (``changeme``, ``${DB_PASSWORD}``, ``<your-token>``, ``xxx``, a path such as
``/run/secrets/db``, prose) are not secrets.

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
assigned, not wherever the word appears; a strong value is redacted wherever it appears.

Every regular expression here runs in linear time: each unbounded run is anchored by a negative
lookbehind of its own class (a match attempt starts only where a run starts), other repeats are
bounded, and private-key blocks are found with ``str.find``. ``tests/test_ingest/test_secrets_linear.py``
holds hostile inputs for each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

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

# scheme://user:password@host — the password part only
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s:/@'\"?#]{1,256}:([^\s@/'\"]{1,1024})@"
)
# ${DB_PASSWORD:-default}, Spring's ${db.password:default}
_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]{0,127})(?::-|:=|:|-)([^}\n]{1,512})\}")


def scan_text(text: str) -> list[tuple[str, str, int, int]]:
    """``(kind, secret, start, end)`` for every credential format matched in ``text``."""
    found: list[tuple[str, str, int, int]] = []
    lower: str | None = None
    for rule in RULES:
        if rule.ignore_case:
            if lower is None:
                lower = text.lower()
            hit = any(map(lower.__contains__, rule.keywords))
        else:
            hit = any(map(text.__contains__, rule.keywords))
        if hit:
            for m in rule.pattern.finditer(text):
                value = m.group(rule.group)
                if rule.group and is_placeholder(value):
                    continue
                found.append((rule.kind, value, m.start(rule.group), m.end(rule.group)))
    if "PRIVATE KEY" in text:
        found.extend(_private_keys(text))
    if "://" in text and "@" in text:
        for m in _URL_PASSWORD.finditer(text):
            pw = m.group(1)
            if not is_placeholder(pw):
                found.append(("a password in a URL", pw, m.start(1), m.end(1)))
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
        if _BASE64_CHAR.subn("", body if cut < 0 else body[:cut])[1] >= need:
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
)

_PLACEHOLDER_WORDS = {
    "changeme",
    "change-me",
    "change_me",
    "changeit",
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
_PLACEHOLDER_RE = re.compile(
    r"""^(?:
        \$\{[^}]*\}.*                  # ${VAR}, ${VAR:-x}
      | (?-i:\$[A-Z_][A-Z0-9_]*)       # $VAR
      | (?-i:\$[a-z_][a-z0-9_]*)       # $var (a mixed-case $uperS3cret is a password)
      | <[^<>]*>                       # <your-token>
      | \{\{.*\}\}                     # {{ .Values.x }}
      | %\([^)]*\)s                    # %(name)s
      | [x*.\#-]{3,}                   # xxx, ***, ...
      | (?:your|insert|put|replace|enter|some|default)[-_ ].*
      | (?-i:(?:my|the)(?:[-_ ][a-z]+)+)  # my-certs, my-secret-password (a my-S3cret is a password)
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
      | (?:secret|vault|ref|env|file|ssm|arn|k8s|sm)://.*   # references to a secret store
      | arn:aws:.*
      | (?:/[\w.@+-]+){2,}/?           # a path of two or more parts (/run/secrets/db_password)
      | \./[^\s]*|~/[^\s]*             # relative and home paths
      | [~^<>=v]*\d+(?:\.[\dx*]+)+[-+.\w]*  # versions and ranges (^4.0.0)
      | (?:\w+=[^,=]*,)+\w+=[^,=]*       # key=value lists (id=x,src=./secret)
    )$""",
    re.X | re.I,
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
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


_DEFAULTED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.]{0,127}:-?([^}]*)\}$")


def is_placeholder(value: str) -> bool:
    v = value.strip().strip("'\"`")
    m = _DEFAULTED.match(v)
    if m:  # ${DB_PASSWORD:-default}, Spring's ${db.password:default}: the default is what is stored
        return is_placeholder(m.group(1))
    if len(v) < 4:
        return True
    if v.lower() in _PLACEHOLDER_WORDS or v.rstrip(".,;:)`").lower() in _PLACEHOLDER_WORDS:
        return True
    if " " in v and _prose(v):
        return True
    return bool(_PLACEHOLDER_RE.match(v))


def _prose(v: str) -> bool:
    """Words that read as a sentence, not a passphrase (``correct horse battery staple`` is one)."""
    words = v.split()
    if len(words) <= 3:
        return False
    if len(words) > 8 or v.rstrip().endswith((".", ":", "?", "!")):
        return True
    if sum(1 for w in words if any(c.isalpha() for c in w)) < len(words) - 1:
        return True  # 0 9 * * 1-5: a schedule, a list of numbers
    return any(w.lower().strip(",;()") in _STOPWORDS for w in words) or any(c in v for c in ",;()")


def _strong(value: str) -> bool:
    """A value unlike an ordinary word: scrubbed wherever it appears, not only where assigned."""
    if len(value) >= 12:
        return True
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


class _Redaction:
    """The secrets of one file and the text spans that hold them."""

    MAX_EVERYWHERE = 64  # strong secrets searched for across the whole file (the rest: where found)

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
        self, value: str, kind: str, line: int | None, key: str | None, strong: bool, report: bool = True
    ) -> _Secret | None:
        value = value.strip()
        if not value:
            return None
        fp = fingerprint(value)
        s = self.secrets.get(fp)
        if s is None:
            s = self.secrets[fp] = _Secret(kind, fp, line, key, strong, value, report)
        else:
            s.strong = s.strong or strong
            s.report = s.report or report
            if s.key is None and key is not None:
                s.line, s.key = line, key
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
        """Every literal occurrence of a strong secret (as parsed, JSON-escaped, or quote-doubled)."""
        strong = [s for s in self.secrets.values() if s.strong][: self.MAX_EVERYWHERE]
        text = self.text
        for s in strong:
            forms = set()
            for f in list(s.forms):
                forms.add(f)
                if "\n" in f or '"' in f or "\\" in f:
                    forms.add(json.dumps(f, ensure_ascii=False)[1:-1])
                if "'" in f:
                    forms.add(f.replace("'", "''"))
            for f in forms:
                if len(f) < 4:
                    continue
                p = text.find(f)
                while p >= 0:
                    self.spans.append((p, p + len(f), s.fp))
                    p = text.find(f, p + len(f))

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
_ASSIGN_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]{0,127})\s*[=:]\s*(.+?)\s*$", re.S)
_AUTH_VALUE = re.compile(r"^(?:bearer|basic|token|bot|digest|apikey)[ \t]+(\S{4,})$", re.I)
_WORDY = re.compile(r"[A-Za-z]{2}")
_PASSPHRASE_TAIL = re.compile(r"(?:[ \t]{1,8}[A-Za-z0-9]{1,32}){1,7}[ \t]{0,64}(?:#.*)?$")
_AUTH_KEY = re.compile(r"authorization$", re.I)
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


def redact(parsed: ParsedFile, text: str, *, structured: bool) -> ParsedFile:
    """Replace secrets in ``parsed`` (records, sections, documents) in place; add problems.

    ``text`` is the file's full text; ``structured`` says whether records carry the file's values
    (then key-name rules run on records; the ``key = value`` scan of the text runs either way).
    """
    red = _Redaction(text)

    # 1. credential formats anywhere in the text
    for kind, value, start, end in scan_text(text):
        strong = kind != "a password in a URL" or _strong(value)
        s = red.add(value, kind, red.line_of(start), None, strong)
        if s is not None:
            red.span(start, end, s)
    # 1b. ${DB_PASSWORD:-default}: the default is stored in clear
    if "${" in text:
        for m in _DEFAULT.finditer(text):
            if secret_key(m.group(1)) and not is_placeholder(m.group(2)):
                s = red.add(m.group(2), "a credential", red.line_of(m.start(2)), m.group(1), _strong(m.group(2)))
                if s is not None:
                    red.span(m.start(2), m.end(2), s)

    # 2. credential-named keys, KEY=value items, Kubernetes pairs and Secrets, Docker auths
    record_secrets: dict[int, tuple[_Secret, str]] = {}  # id(record) -> (secret, value to replace)
    keyed_lines: set[int] = set()
    if structured and parsed.records:
        _record_secrets(parsed, red, record_secrets, keyed_lines)
        # escapes may hide a format from the text scan (\u0041KIA..., a PEM in JSON): scan the values
        if "\\" in text or "PRIVATE KEY" in text:
            _decoded_formats(parsed, red, record_secrets)

    # 3. key = value in the text itself (a line a record already judged is left to the record)
    if _KEY_HINTS.search(text):
        _text_assignments(text, red, keyed_lines if structured else set())

    if not red.secrets:
        return parsed
    red.everywhere()
    new_text = red.redacted_text()

    # sections: cut again from the redacted text (same lines); a section that is not a plain slice
    # of the source (a plugin's) is scrubbed value by value
    old_lines = text.split("\n")
    new_lines = new_text.split("\n")
    marks = {f: marker(s.fp) for s in red.secrets.values() if s.strong for f in s.forms if len(f) >= 4}
    strong_forms = [(f, marks[f]) for f in sorted(marks, key=len, reverse=True)[: 4 * _Redaction.MAX_EVERYWHERE]]
    for sec in parsed.sections:
        a, b = sec.line_start - 1, sec.line_end
        if sec.text == "\n".join(old_lines[a:b]):
            sec.text = "\n".join(new_lines[a:b])
        else:
            sec.text = _scrub_forms(sec.text, strong_forms)
        if strong_forms and sec.key_path:
            sec.key_path = _scrub_forms(sec.key_path, strong_forms)

    # records and documents
    replaced: dict[str, str] = {}
    weak: dict[str, str] = {}
    for s in red.secrets.values():
        if not s.strong:
            weak[s.value] = marker(s.fp)
    unplaced = [s for s in red.secrets.values() if s.key is None]
    for rec in parsed.records:
        hit = record_secrets.get(id(rec))
        if strong_forms and any(f in rec.key_path for f, _ in strong_forms):
            rec.key_path = _scrub_forms(rec.key_path, strong_forms)
        v = rec.value
        if hit is not None:
            s, part = hit
            if isinstance(v, str):
                new = v.replace(part, marker(s.fp)) if part and part != v else marker(s.fp)
                new = _scrub_forms(new, strong_forms)
                if s.strong:
                    replaced[v] = new
                rec.value = new
            else:
                rec.value = marker(s.fp)
            continue
        if isinstance(v, str) and strong_forms:
            new = _scrub_forms(v, strong_forms)
            if new != v:
                replaced[v] = new
                rec.value = new
                for s in unplaced:  # a format found in the text: its record names the place
                    if s.key is None and any(f in v for f in s.forms):
                        s.line, s.key = rec.line, rec.key_path
    numeric = {int(s.value): marker(s.fp) for s in red.secrets.values() if s.value.isdigit() and len(s.value) < 40}
    parsed.documents = [_scrub_data(d, strong_forms, replaced, weak, numeric) for d in parsed.documents]

    for s in red.secrets.values():
        if not s.report:
            continue
        where = f" under '{s.key}'" if s.key else ""
        parsed.problems.append(
            Problem(
                "plaintext-secret",
                "error",
                f"{s.kind} is stored in plain text{where} (fingerprint {s.fp}); move it to a secret store "
                f"and reference it, e.g. ${{{_env_name(s.key)}}}",
                line=s.line,
                target=s.key,
                fingerprint=s.fp,
            )
        )
    return parsed


def _record_secrets(
    parsed: ParsedFile, red: _Redaction, out: dict[int, tuple[_Secret, str]], keyed_lines: set[int]
) -> None:
    records = parsed.records
    names: dict[str, Any] = {}
    k8s_secret_docs: set[int] = set()
    for rec in records:
        kp = rec.key_path
        if kp.endswith(".name") and isinstance(rec.value, str):
            names[kp[:-5]] = rec.value
        elif kp == "kind" and rec.value == "Secret":
            k8s_secret_docs.add(rec.doc)

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
        if rec.doc in k8s_secret_docs and (kp.startswith(("data.", "stringData."))):
            keyed_lines.add(rec.line)
            shown = _k8s_secret_value(v) if kp.startswith("data.") else v
            if shown is None:  # binary data (a keystore): secret material
                take(rec, v, "a Kubernetes Secret value", kp)
                continue
            if is_placeholder(shown):
                continue
            cred = _URL_PASSWORD.search(shown)
            if cred is not None:  # a DSN: its password is the secret, when it is not a placeholder
                if not is_placeholder(cred.group(1)):
                    take(rec, v, "a Kubernetes Secret value", kp)
                continue
            if secret_key(kp) or (_strong(shown) and "://" not in shown and len(shown) >= 16):
                take(rec, v, "a Kubernetes Secret value", kp)
            continue  # a user name, a host, a URL without credentials: configuration, not a secret
        if kp.startswith("auths") and kp.endswith(".auth") and len(v) >= 8 and key_segments(kp)[0] == "auths":
            keyed_lines.add(rec.line)  # ~/.docker/config.json: base64 of user:password
            take(rec, v, "a registry credential", kp)
            continue
        if secret_key(kp):
            keyed_lines.add(rec.line)
            m = _AUTH_VALUE.match(v.strip())
            if m:
                if not is_placeholder(m.group(1)):
                    take(rec, m.group(1), "a credential", kp, m.group(1))
            elif _AUTH_KEY.search(kp) and (len(v) < 16 or " " in v.strip()):
                continue  # authorization: disabled / BASIC: a setting, not a credential
            elif not is_placeholder(v):
                take(rec, v, "a credential", kp)
        elif kp.endswith(".value") and secret_key(str(names.get(kp[:-6], ""))):
            # Kubernetes env: {name: DB_PASSWORD, value: ...}
            keyed_lines.add(rec.line)
            if not is_placeholder(v):
                take(rec, v, "a credential", f"{kp} ({names[kp[:-6]]})")
        elif ("=" in v or ":" in v) and len(v) < 4096:
            m = _ASSIGN_ITEM.match(v)
            if m and secret_key(m.group(1)):
                keyed_lines.add(rec.line)
                val = m.group(2).strip().strip("'\"")
                if not is_placeholder(val):
                    take(rec, val, "a credential", kp, val)


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


def _text_assignments(text: str, red: _Redaction, skip_lines: set[int]) -> None:
    for m in _assignments(text):
        key = m.group("key")
        if not secret_key(key):
            continue
        if text[max(0, m.start() - 2) : m.start()].endswith(("${", "{", "$")):
            continue  # the NAME inside ${NAME:-default}: a reference, not an assignment
        line = red.line_of(m.start("value"))
        if line in skip_lines:
            continue
        raw = m.group("value")
        start, end = m.start("value"), m.end("value")
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
            if _WORDY.search(tail):
                words = _PASSPHRASE_TAIL.match(tail)
                whole = (raw + tail).strip()
                if words is not None and m.group("sep") == ":" and raw.isalnum():
                    if is_placeholder(whole):  # password: correct horse battery staple
                        continue
                    value, end = whole, end + len(tail.rstrip())
                elif _prose(whole) or (raw.isalpha() and raw.islower() and len(raw) < 12):
                    continue  # a sentence: "the new passwords: this is configured using ..."
        if is_placeholder(value):
            continue
        s = red.add(value, "a credential", line, key, _strong(value), report=line not in red.lines_with_secrets)
        if s is None:
            continue
        if raw[0] in "\"'" and auth is None and value == _unquote(raw):
            red.span(start + 1, end - 1, s)
        else:
            red.span(start, end, s)


def _scrub_forms(s: str, forms: list[tuple[str, str]]) -> str:
    for f, mark in forms:
        if f in s:
            s = s.replace(f, mark)
    return s


def _env_name(key: str | None) -> str:
    if not key:
        return "SECRET_NAME"
    return re.sub(r"[^A-Za-z0-9]+", "_", _last_key(key.split(" (")[0])).upper().strip("_") or "SECRET_NAME"


def _scrub_data(
    data: Any, forms: list[tuple[str, str]], replaced: dict[str, str], weak: dict[str, str], numeric: dict[int, str]
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


def _item_keyed(v: str) -> bool:
    m = _ASSIGN_ITEM.match(v) if ("=" in v or ":" in v) and len(v) < 4096 else None
    return bool(m and secret_key(m.group(1)))
