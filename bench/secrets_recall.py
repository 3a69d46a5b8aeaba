"""Benchmark: kb's secret detection against detect-secrets (Yelp, PyPI) as the reference scanner.

    pip install detect-secrets==1.5.0        # the reference; not a kb dependency
    python bench/secrets_recall.py [--show]

A planted set of positive shapes (credential formats from detect-secrets' and gitleaks' rule sets,
credential-named keys in every format and quoting style, the shapes of issue 11) and of negative
shapes (placeholders, references, hashes, ids) is written one file each to a temporary tree. kb
runs its parser + redaction on each file; detect-secrets runs ``scan_file`` with its default
plugins. A file counts as found when the scanner reports a secret in it. Prints recall on the
positives and false alarms on the negatives for both, and the shapes each one misses.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----"
)
B64 = "q8Zt3VbN7xKp2Lw9Rf4Hs6Jd1Gm5Yc0TaEuQiOvWnXyP"
HEX = "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


POSITIVE: dict[str, str] = {
    # credential formats
    "aws-key.yaml": "aws:\n  access_key_id: AKIAQ7ZP4M2XW9KD3JHT\n",
    "aws-secret.env": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYz8Kq2Lw9Rf\n",
    "github.env": "GITHUB_TOKEN=ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6" + "\n",
    "github-pat.yaml": "token_ref: github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\n",
    "gitlab.ini": "[ci]\nvalue = glpat-Qw7eRt9yUiKp3zXv5bNm\n",
    "slack-token.json": json.dumps({"slack": {"bot": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"}}),
    "slack-webhook.yaml": "alerts:\n  url: https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/abcdEFGHijklMNOPqrstUVWX\n",
    "stripe.properties": "payments.stripe=sk_live_4eC39HqLyjWDarjtT1zdp7dc\n",
    "google-api.json": json.dumps({"maps": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"}),
    "jwt.md": "# Auth\n\n```\neyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n```\n",
    "openai.toml": '[llm]\nvalue = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zT3BlbkFJ"\n',
    "openai-legacy.env": "X=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\n",
    "anthropic.env": "CLAUDE=sk-ant-api03-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 3 + "AA\n",
    "azure-storage.properties": "storage.conn=DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
    + "Zq8" * 28
    + "xy==;EndpointSuffix=core.windows.net\n",
    "npm.npmrc.ini": "//registry.npmjs.org/:_authToken=npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3d\n",
    "pypi.ini": "[pypi]\nusername = __token__\nvalue = pypi-AgEIcHlwaS5vcmc" + "Ab3dEf6hIj9kLm2nOp5q" * 4 + "\n",
    "sendgrid.env": "MAIL=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\n",
    "twilio.yaml": "twilio:\n  sid_value: SK0123456789abcdef0123456789abcdef\n",
    "mailchimp.json": json.dumps({"mc": "0123456789abcdef0123456789abcdef-us12"}),
    "square.env": "SQUARE=sq0atp-Ab3dEf6hIj9kLm2nOp5qRs\n",
    "discord.yaml": "bot:\n  value: MTE4NzY1NDMyMTA5ODc2NTQz.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456\n",
    "telegram.env": "BOT=1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1\n",
    "shopify.env": "SHOP=shpat_0123456789abcdef0123456789abcdef\n",
    "huggingface.env": "HF=hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh\n",
    "databricks.env": "DB=dapi0123456789abcdef0123456789abcdef\n",
    "digitalocean.env": "DO=dop_v1_" + "0123456789abcdef" * 4 + "\n",
    "artifactory.env": "ART=AKCp8jQ8tUv1wXy4zAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2nOp5qRs8\n",
    "private-key.pem.txt": PEM + "\n",
    "private-key-yaml-block.yaml": "tls:\n  key: |\n" + "".join(f"    {ln}\n" for ln in PEM.split("\n")),
    "private-key-json.json": json.dumps({"type": "service_account", "private_key": PEM + "\n"}),
    "private-key-env.env": 'TLS_KEY="' + PEM.replace("\n", "\\n") + '"\n',
    "basic-auth-url.yaml": "db:\n  url: postgres://app:Pg5ecretPw9@db.internal:5432/app\n",
    "basic-auth-header.json": json.dumps({"headers": {"Authorization": "Basic " + b64("deploy:Dk8rPassw0rd")}}),
    "bearer-yaml.yaml": "proxy:\n  headers:\n    Authorization: Bearer op4que7TokenValueZ9x\n",
    "bearer-curl.md": "```sh\ncurl -H 'Authorization: Bearer op4queMdTok3nValue8' https://api.example.com\n```\n",
    "docker-config.json": json.dumps({"auths": {"registry.example.com": {"auth": b64("deploy:Dk8rPassw0rd")}}}),
    "k8s-secret-data.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: "
    + b64("K8sS3cretValue")
    + "\n",
    "k8s-secret-stringdata.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: K8sStr1ngS3cret\n",
    "k8s-env-pair.yaml": "env:\n  - name: DB_PASSWORD\n    value: K8sP4irS3cret\n",
    # credential-named keys, every format and quoting style
    "yaml-plain.yaml": "db:\n  password: Yp1ainS3cretQ\n",
    "yaml-dq.yaml": 'db:\n  password: "YdqS3cret#Q9"\n',
    "yaml-sq.yaml": "db:\n  password: 'it''s-Sq4etQuoted'\n",
    "yaml-folded.yaml": "db:\n  password: >-\n    FoldPartOne9x\n    FoldPartTwo8y\n",
    "yaml-literal.yaml": "db:\n  password: |\n    LitPartOne9x\n    LitPartTwo8y\n",
    "yaml-list.yaml": "passwords:\n  - L1stPassw0rdA\n",
    "yaml-api-keys.yaml": "api_keys:\n  - ak9f8e7d6c5b4a3928\n",
    "json-nested.json": json.dumps({"svc": {"db": {"password": "Js0nS3cretPw!"}}}, indent=2),
    "json-client-secret.json": json.dumps({"oauth": {"client_secret": "Cl13ntS3cretValue"}}),
    "env-plain.env": "DB_PASSWORD=EnvS3cretPw7\n",
    "env-quoted.env": 'DB_PASSWORD="Env Quoted S3cret"\n',
    "env-pgpassword.env": "PGPASSWORD=Pg9Secret7Zx\n",
    "env-secret-key-base.env": f"SECRET_KEY_BASE={HEX}\n",
    "env-default.env": "OTHER=${DB_PASSWORD:-Def4ultS3cret}\n",
    "properties.properties": "spring.datasource.password=Spr1ngS3cret\n",
    "properties-continued.properties": "db.password=ContOne7qz\\\n    ContTwo8rz\n",
    "toml.toml": '[database]\npassword = "T0mlS3cretPw"\n',
    "toml-multiline.toml": '[db]\npassword = """\nTomlOne7qz \\\n  TomlTwo8rz"""\n',
    "ini.ini": "[db]\npassword = In1S3cretPw\n",
    "ini-continued.ini": "[db]\npassword = IniOne7qz\n  IniTwo8rz\n",
    "dockerfile.Dockerfile": "FROM alpine\nENV DB_PASSWORD=D0ckerS3cret\n",
    "markdown-code.md": "# Setup\n\n```sh\nexport API_KEY=Md4piK3yValue9\n```\n",
    "slash-password.yaml": "db:\n  password: /xK9#mP2vQ\n",
    "dollar-password.yaml": "db:\n  password: $uperS3cretZ\n",
    "my-password.yaml": "db:\n  password: my-S3cretPa55\n",
    "passphrase.yaml": "db:\n  passphrase: correct horse battery staple\n",
    "numeric-pin.yaml": "atm:\n  pin_password: 84736251\n",
    "connection-string.json": json.dumps({"cs": "Server=db;User Id=app;Password=C0nnStr1ngPw;"}),
    # high-entropy strings with no credential name (detect-secrets' entropy plugins)
    "entropy-b64-unnamed.yaml": f'blob: "{B64}"\n',
    "entropy-hex-unnamed.yaml": f'value: "{HEX}"\n',
}

NEGATIVE: dict[str, str] = {
    "ph-changeme.yaml": "db:\n  password: changeme\n",
    "ph-var.env": "DB_PASSWORD=${DB_PASSWORD}\n",
    "ph-angle.yaml": "api_key: <your-api-key>\n",
    "ph-template.yaml": "password: {{ .Values.password }}\n",
    "ph-path.yaml": "password_file: /run/secrets/db_password\npassword: /run/secrets/db_password\n",
    "ph-ref.yaml": "password:\n  valueFrom:\n    secretKeyRef:\n      name: db\n      key: password\n",
    "ph-existing.yaml": "auth:\n  existingSecret: my-db-secret\n",
    "ph-shell.sh.md": '```sh\nexport DB_PASSWORD="$(cat /run/secrets/db)"\n```\n',
    "ph-aspire.json": json.dumps({"env": {"POSTGRES_PASSWORD": "{postgres-password.value}"}}),
    "ph-caps.md": "kubectl create secret generic x --from-literal=password=DB_PASSWORD\n",
    "ph-prose.md": "The password: is set in the vault for each environment by the platform team.\n",
    "neg-sha256.json": json.dumps({"integrity": "sha256-" + "a" * 5 + HEX[:38]}),
    "neg-uuid.yaml": "id: 123e4567-e89b-12d3-a456-426614174000\n",
    "neg-digest.yaml": "image: nginx@sha256:" + "0123456789abcdef" * 4 + "\n",
    "neg-cron.ini": "[schedule]\ntoken = 0 9 * * 1-5\n",
    "neg-max-tokens.yaml": "llm:\n  max_tokens: 4096\n",
    "neg-nginx.conf.ini": "proxy_pass = http://backend:8080\n",
}


def kb_found(path: Path) -> bool:
    from ingest.parsers.base import Limits, format_for, parse_text
    from ingest.pipeline import STRUCTURED_FORMATS
    from ingest.secrets import redact

    name = path.name.rsplit(".", 1)[1] if path.name.endswith(".Dockerfile") else path.name
    fmt = "dockerfile" if path.name.endswith(".Dockerfile") else format_for(PurePosixPath(name))
    text = path.read_text()
    parsed = redact(
        parse_text(fmt, text, PurePosixPath(path.name), Limits()), text, structured=fmt in STRUCTURED_FORMATS
    )
    return any(p.rule == "plaintext-secret" for p in parsed.problems)


def ds_found(path: Path) -> bool:
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    with default_settings():
        return any(True for _ in scan_file(str(path)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="list every shape with both verdicts")
    args = ap.parse_args()
    try:
        import detect_secrets  # noqa: F401
    except ImportError:
        raise SystemExit("pip install detect-secrets==1.5.0 (the reference scanner) first") from None
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for kind, shapes in (("positive", POSITIVE), ("negative", NEGATIVE)):
            for name, text in shapes.items():
                p = Path(d) / name
                p.write_text(text)
                rows.append((kind, name, kb_found(p), ds_found(p)))
    pos = [r for r in rows if r[0] == "positive"]
    neg = [r for r in rows if r[0] == "negative"]
    if args.show:
        for kind, name, k, s in rows:
            print(f"{kind:9} {name:34} kb={'yes' if k else 'no ':3} detect-secrets={'yes' if s else 'no'}")
    print(f"\npositives: {len(pos)} shapes; negatives: {len(neg)} shapes")
    print(
        f"recall        kb {sum(r[2] for r in pos)}/{len(pos)} ({100 * sum(r[2] for r in pos) / len(pos):.1f}%)   "
        f"detect-secrets {sum(r[3] for r in pos)}/{len(pos)} ({100 * sum(r[3] for r in pos) / len(pos):.1f}%)"
    )
    print(f"false alarms  kb {sum(r[2] for r in neg)}/{len(neg)}   detect-secrets {sum(r[3] for r in neg)}/{len(neg)}")
    print(f"found by detect-secrets, missed by kb: {[r[1] for r in pos if r[3] and not r[2]]}")
    print(f"found by kb, missed by detect-secrets: {len([r for r in pos if r[2] and not r[3]])} shapes")
    print(f"kb false alarms: {[r[1] for r in neg if r[2]]}")
    print(f"detect-secrets false alarms: {[r[1] for r in neg if r[3]]}")


if __name__ == "__main__":
    main()
