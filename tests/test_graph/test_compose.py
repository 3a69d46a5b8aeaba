"""Docker compose references: scopes of services, optional files, includes, build contexts."""

from __future__ import annotations


def _refs(tree, build_kb, files, **overrides):
    from kb.graph.rules import validate

    cat, settings = build_kb(tree(files), **overrides)
    found = validate(cat, settings)
    refs = cat.query('SELECT path, line, kind, target, status, severity, detail FROM "references" ORDER BY path, line')
    return found, refs


def test_override_files_share_services_and_optional_things_are_not_errors(tree, build_kb):
    found, refs = _refs(
        tree,
        build_kb,
        {
            "app/compose.yaml": "services:\n  api:\n    image: a\n    env_file:\n      - path: ./local.env\n        required: false\n",
            "app/compose.override.yaml": "services:\n  api:\n    depends_on:\n      db:\n        condition: service_started\n"
            "      cache:\n        condition: service_started\n        required: false\n  db:\n    image: postgres\n",
        },
    )
    assert [f for f in found if f.severity != "info"] == []
    statuses = {(r[2], r[3]): r[4] for r in refs}
    assert statuses[("compose-depends-on", "db")] == "ok"
    assert statuses[("compose-depends-on", "cache")] == "optional"
    assert statuses[("compose-env-file", "app/local.env")] == "optional"


def test_include_cycle_and_build_context_that_is_a_file(tree, build_kb):
    found, _ = _refs(
        tree,
        build_kb,
        {
            "a/compose.yaml": "include:\n  - ../b/compose.yaml\nservices:\n  x:\n    build: ./Dockerfile\n",
            "a/Dockerfile": "FROM alpine\n",
            "b/compose.yaml": "include:\n  - path: ../a/compose.yaml\nservices:\n  y:\n    image: alpine\n",
        },
    )
    rules = sorted((f.rule, f.path, f.line) for f in found)
    assert ("reference-cycle", "a/compose.yaml", 2) in rules
    ctx = [f for f in found if f.rule == "broken-reference"]
    assert len(ctx) == 1 and "is a file, not a folder" in ctx[0].message


def test_bind_mounts_are_warnings_and_named_volumes_are_not_paths(tree, build_kb):
    found, refs = _refs(
        tree,
        build_kb,
        {
            "compose.yaml": "services:\n  web:\n    image: nginx:1.25\n    volumes:\n      - ./site:/usr/share/nginx/html\n"
            "      - data:/data\n      - /etc/localtime:/etc/localtime:ro\n"
            "      - type: bind\n        source: ./conf\n        target: /conf\n"
            "      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n"
            "      - type: bind\n        source: ./certs\n        target: /certs\nvolumes:\n  data: {}\n",
            "conf/nginx.conf": "x = 1\n",
        },
    )
    # a missing file is mounted as an empty folder: a warning; so is a long-syntax folder that
    # nothing creates. A missing short-syntax folder is created by Docker: not a finding.
    broken = [(f.severity, f.line, f.target) for f in found if f.rule == "broken-reference"]
    assert broken == [("warning", 11, "nginx.conf"), ("warning", 13, "certs")]
    kinds = [(r[3], r[4]) for r in refs if r[2] == "compose-volume"]
    assert ("./conf", "ok") in kinds and ("/etc/localtime", "external") in kinds and ("site", "optional") in kinds


def test_run_time_bind_mounts_and_workflow_permissions_are_no_findings(tmp_path):
    """A compose stack whose data folders are made at run time (ignored by the tree's .gitignore,
    or created empty by Docker) and a GitHub workflow with ``permissions:``: nothing to report."""
    from kb import KnowledgeBase
    from tests.conftest import write_tree

    root = write_tree(
        tmp_path / "stack",
        {
            ".gitignore": "data/\n*.log\nsecrets/\n",
            "compose.yaml": "services:\n"
            "  db:\n    image: postgres:16\n    volumes:\n"
            "      - ./data/postgres:/var/lib/postgresql/data\n"
            "      - ./secrets/db-password.txt:/run/secrets/db-password:ro\n"
            "  app:\n    image: ghcr.io/acme/app:1.2\n    depends_on: [db]\n    volumes:\n"
            "      - ./uploads:/app/uploads\n      - ./logs/:/var/log/app\n      - ./app.log:/var/log/app.log\n"
            "      - type: bind\n        source: ./cache\n        target: /cache\n        bind:\n"
            "          create_host_path: true\n",
            ".github/workflows/ci.yml": "name: ci\non: [push]\npermissions:\n  id-token: write\n  contents: read\n"
            "  packages: write\njobs:\n  test:\n    runs-on: ubuntu-latest\n    permissions:\n"
            "      id-token: write\n    steps:\n      - uses: actions/checkout@v4\n      - run: make test\n",
        },
    )
    kb = KnowledgeBase.build(root, db=tmp_path / "kb", embed=False, workers=1)
    kb.validate(as_frame=False)
    assert kb.findings().to_dict("records") == []
    kb.close()


def test_variables_come_from_dotenv_in_scope_env_files_and_known_env(tree, build_kb):
    found, _ = _refs(
        tree,
        build_kb,
        {
            ".env": "TOP=1\n",
            "svc/vars.env": "FROM_ENV_FILE=1\n",
            "svc/compose.yaml": "services:\n  s:\n    image: x:${TOP}\n    env_file: vars.env\n    environment:\n"
            "      A: ${FROM_ENV_FILE}\n      B: ${CI_COMMIT_SHA}\n      C: ${MISSING}\n      D: $MISSING\n",
        },
        known_env=["CI_*"],
    )
    bad = [(f.rule, f.line, f.target) for f in found if f.severity == "error"]
    assert bad == [("undefined-variable", 8, "MISSING")]
    assert "used 2 times" in found[0].message


def test_a_grafana_dashboards_import_inputs_are_not_environment_variables(tree, build_kb):
    """A dashboard export's ${DS_INFLUXDB} is filled in by Grafana on import (its ``__inputs``);
    the same ${VAR} in a config without ``__inputs`` is still checked."""
    import json

    dash = {"__inputs": [{"name": "DS_INFLUXDB", "type": "datasource"}], "panels": [{"uid": "${DS_INFLUXDB}"}]}
    found, _ = _refs(
        tree,
        build_kb,
        {
            ".env": "X=1\n",
            "dash.json": json.dumps(dash, indent=1),
            "app.json": json.dumps({"uid": "${DS_INFLUXDB}"}, indent=1),
        },
    )
    assert [(f.path, f.target) for f in found if f.rule == "undefined-variable"] == [("app.json", "DS_INFLUXDB")]


def test_a_provisioned_grafana_dashboards_own_variables_are_not_environment_variables(tree, build_kb):
    """A dashboard (``schemaVersion`` and ``panels``) names its data source and query variables
    ``${DS_PROMETHEUS}``, ``${host}`` (``templating.list``): Grafana fills them in, not the shell."""
    import json

    dash = {
        "schemaVersion": 39,
        "panels": [{"datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, "title": "CPU on ${HOST}"}],
        "templating": {"list": [{"name": "DS_PROMETHEUS", "type": "datasource"}, {"name": "HOST", "type": "query"}]},
    }
    found, _ = _refs(
        tree,
        build_kb,
        {
            ".env": "X=1\n",
            "dashboards/node.json": json.dumps(dash, indent=1),
            "app.json": json.dumps({"schemaVersion": 1, "uid": "${DS_PROMETHEUS}"}, indent=1),
        },
    )
    assert [(f.path, f.target) for f in found if f.rule == "undefined-variable"] == [("app.json", "DS_PROMETHEUS")]


def test_github_actions_local_uses_are_named_from_the_repository_root(tree, build_kb):
    """``uses: ./.github/workflows/build.yml`` (a reusable workflow; a local action alike) is
    relative to the repository's root, the folder holding ``.github/``, not to the workflow's
    folder; one that exists nowhere is still broken."""
    wf = (
        "name: ci\non: [push]\njobs:\n  build:\n    uses: ./.github/workflows/build.yml\n"
        "  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./.github/actions/setup\n"
        "  gone:\n    uses: ./.github/workflows/missing.yml\n"
    )
    files = {
        ".github/workflows/ci.yml": wf,
        ".github/workflows/build.yml": "name: build\non: workflow_call\njobs: {}\n",
        ".github/actions/setup/action.yml": "name: setup\nruns:\n  using: composite\n  steps: []\n",
        "svc/.github/workflows/ci.yml": wf.replace("missing.yml", "build.yml"),
        "svc/.github/workflows/build.yml": "name: build\non: workflow_call\njobs: {}\n",
        "svc/.github/actions/setup/action.yml": "name: setup\nruns:\n  using: composite\n  steps: []\n",
    }
    found, refs = _refs(tree, build_kb, files)
    broken = [(f.path, f.line) for f in found if f.rule == "broken-reference"]
    assert broken == [(".github/workflows/ci.yml", 11)]
    status = {(p, line): st for p, line, _, _, st, _, _ in refs}
    assert status[(".github/workflows/ci.yml", 5)] == "ok"  # the reusable workflow, from the root
    assert status[("svc/.github/workflows/ci.yml", 5)] == "ok"  # a repository inside the tree
    assert status[("svc/.github/workflows/ci.yml", 11)] == "ok"


def test_variable_check_takes_the_compose_env_files_it_is_given(tree, build_kb):
    """Extractors share no state: the variable check sees compose's env files only through its
    arguments, and gives the same answer alone as inside the full run."""
    from kb.graph.refs import Corpus, ReferenceExtractor
    from kb.graph.refs.compose import extract_compose
    from kb.graph.refs.variables import check_variables

    cat, settings = build_kb(
        tree(
            {
                "app/compose.yaml": "services:\n  api:\n    image: a\n    env_file: ./conf/api.env\n"
                "    command: run ${TOKEN}\n",
                "app/conf/api.env": "TOKEN=abc\n",
            }
        )
    )
    corpus = Corpus(cat, settings)
    compose = extract_compose(cat, corpus)
    assert compose.env_files == {"app/compose.yaml": ["app/conf/api.env"]}

    def token(refs):
        return [(r.status, r.resolved) for r in refs if r.kind == "variable" and r.target == "TOKEN"]

    alone = check_variables(cat, corpus, compose_files=compose.files, compose_env_files=compose.env_files)
    assert token(alone) == [("ok", "app/conf/api.env#TOKEN")]
    without = check_variables(cat, corpus, compose_files=compose.files, compose_env_files={})
    assert token(without) == [("undefined", None)]
    assert token(ReferenceExtractor(cat, settings).run()) == token(alone)


def test_a_stack_that_ships_an_env_template_has_its_variables_defined(tree, build_kb):
    """A stack whose README says "copy env.example to .env": the variables the template defines
    are not undefined, the template is not an orphan, and a variable it lacks still is reported."""
    found, _ = _refs(
        tree,
        build_kb,
        {
            "keycloak/env.example": "KEYCLOAK_HOSTNAME=keycloak.example.com\nPOSTGRES_DB=keycloak_db\n",
            "keycloak/docker-compose.yml": "services:\n  kc:\n    image: keycloak\n    environment:\n"
            "      KC_HOSTNAME: ${KEYCLOAK_HOSTNAME}\n      KC_DB_URL_DATABASE: ${POSTGRES_DB}\n      KC_X: ${NOT_IN_TEMPLATE}\n",
        },
    )
    assert [(f.rule, f.target) for f in found] == [("undefined-variable", "NOT_IN_TEMPLATE")]


def test_repeated_environment_items_are_one_finding_that_names_the_item(tree, build_kb):
    """The compose spec wants unique environment items: the finding names the repeated item (not
    "is not of type 'object'"), and the service is not also said to have unexpected keys."""
    found, _ = _refs(
        tree,
        build_kb,
        {
            "upsnap/docker-compose.yml": "services:\n  upsnap:\n    image: ghcr.io/seriousm4x/upsnap:5\n"
            "    network_mode: host\n    environment:\n      - TZ=Europe/Berlin\n      - UPSNAP_INTERVAL=@every 10s\n"
            "      - TZ=Europe/Berlin\n",
        },
    )
    schema = [f for f in found if f.rule == "schema-violation"]
    assert len(schema) == 1, [f.message for f in schema]
    assert schema[0].line == 6 and 'the item "TZ=Europe/Berlin" appears more than once' in schema[0].message


def test_template_placeholders_are_not_schema_violations_and_env_files_without_compose_are_no_orphans(tree, build_kb):
    """kubernetes/examples: ``replicas: {{replicas}}`` in an unrendered template and ``lun: <ADD
    LUN ID Here>`` are left for someone to fill, not violations; in a tree with no compose file an
    env file is read some other way (kubectl --from-env-file), so it is no orphan."""
    found, _ = _refs(
        tree,
        build_kb,
        {
            "vitess/etcd-controller-template.yaml": "apiVersion: v1\nkind: ReplicationController\nmetadata:\n"
            "  name: etcd-{{cell}}\nspec:\n  replicas: {{replicas}}\n  template:\n    metadata:\n"
            "      labels:\n        cell: {{cell}}\n",
            "fc/fc.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fc\nspec:\n  containers:\n  - name: c\n"
            "    image: nginx\n  volumes:\n  - name: v\n    fc:\n      targetWWNs: ['500a0982991b8dc5']\n"
            "      lun: <ADD LUN ID Here>\n",
            "newrelic/nrconfig.env": "NRSYSMOND_loglevel=debug\n",
        },
    )
    assert found == []


def test_in_a_tree_with_compose_an_env_file_nothing_loads_is_an_orphan(tree, build_kb):
    found, _ = _refs(
        tree,
        build_kb,
        {
            "stack/compose.yaml": "services:\n  s:\n    image: x\n",
            "stack/extra.env": "A=1\n",
            "legacy/billing.env": "B=2\n",
        },
    )
    assert sorted((f.rule, f.path) for f in found) == [("orphan", "legacy/billing.env"), ("orphan", "stack/extra.env")]
