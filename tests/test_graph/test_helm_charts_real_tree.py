"""Shapes met on a real tree of Helm charts (prometheus-community/helm-charts, held out, then
hand-checked, issue 24): helm-unittest suites name templates from the chart's templates/ folder,
``.Values`` in NOTES.txt prose or a usage comment is text, and a key of an existing Secret is a name."""

from __future__ import annotations

CHART = {
    "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
    "charts/app/values.yaml": "image:\n  tag: '1'\nrabbitmq:\n  existingUserSecretKey: username\n",
    "charts/app/templates/deployment.yaml": "image: {{ .Values.image.tag }}\n",
    "charts/app/templates/rules/a.yaml": "a: 1\n",
    "charts/app/templates/_helpers.tpl": '{{/*\nUsage:\n{{ include "x" (dict "value" .Values.path.to.the.Value) }}\n*/}}\n',
    "charts/app/templates/NOTES.txt": 'You\'ve set ".Values.ingressClassName" but it is not supported.\n'
    "{{ .Values.image.tag }} {{ .Values.missing.one }}\n",
    "charts/app/unittests/deployment_test.yaml": "suite: deployment\ntemplates:\n  - deployment.yaml\n  - rules/*.yaml\n"
    "tests:\n  - it: has labels\n    template: deployment.yaml\n    set:\n      secret.existingSecret.key: relabel.yaml\n"
    "    asserts:\n      - equal:\n          path: metadata.labels.env\n          value: prod\n"
    "  - it: names a template that is gone\n    templates:\n      - gone.yaml\n",
}


CHART_YAML = {"c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n"}
"""The chart file of the one-chart trees below."""


def broken_references(tree, build_kb, files: dict[str, str]) -> list[tuple[int | None, str]]:
    """(line, message up to its first colon) of each broken-reference finding of ``files``'s KB."""
    from kb.graph.rules import validate

    cat, settings = build_kb(tree(files))
    return [(f.line, f.message.split(":")[0]) for f in validate(cat, settings) if f.rule == "broken-reference"]


def test_helm_chart_shapes(tree, build_kb):
    from kb.graph.rules import validate

    cat, settings = build_kb(tree(CHART))
    found = sorted((f.rule, f.path, f.line, f.message.split(":")[0]) for f in validate(cat, settings))
    assert found == [
        ("broken-reference", "charts/app/templates/NOTES.txt", 2, "Helm value '.Values.missing.one' is not defined"),
        (
            "broken-reference",
            "charts/app/unittests/deployment_test.yaml",
            16,
            "File reference 'charts/app/templates/gone.yaml' is broken",
        ),
    ]
    refs = cat.query(
        "SELECT key_path, target, status FROM \"references\" WHERE path LIKE '%deployment_test.yaml' ORDER BY line"
    )
    assert [tuple(r) for r in refs] == [
        ("templates[0]", "deployment.yaml", "ok"),
        ("templates[1]", "rules/*.yaml", "ok"),
        ("tests[0].template", "deployment.yaml", "ok"),
        ("tests[1].templates[0]", "charts/app/templates/gone.yaml", "broken"),
    ]


def test_a_secret_holding_value_as_its_value_and_existing_secret_keys_are_no_secrets():
    from tests.test_ingest.test_secrets_real_tree_shapes import secrets_of

    text = 'extraManifests:\n  - apiVersion: v1\n    kind: Secret\n    stringData:\n      secret: "value"\n'
    assert secrets_of("ci/extramanifests-values.yaml", text) == []
    assert [
        p.line
        for p in secrets_of("values.yaml", "rabbitmq:\n  password: Xk9vT2mQ8rLw\n  existingUserSecretKey: username\n")
    ] == [2]


def test_argo_helm_shapes_are_no_secrets():
    """argoproj/argo-helm (held out, then checked): a helm-docs table's Type column is no value,
    ``$dex.github.clientSecret`` and ``$slack-token`` name keys of a Secret, ``env:X`` /
    ``secret:ns/name#key`` / ``ext:/auth.sh`` say where a credential comes from, and a Secret
    manifest nested in values is decoded like a top-level one."""
    import base64

    from tests.test_ingest.test_secrets_real_tree_shapes import secrets_of

    table = (
        "| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n"
        "| workflow.serviceAccount.createSecret | bool | `false` | Specifies whether a secret is made |\n"
        "| metrics.serviceMonitor.authorization | object | `{}` | Prometheus ServiceMonitor authorization |\n"
        "| admin.password | string | `Xk9vT2mQ8rLw` | The admin password |\n"
    )
    assert [p.line for p in secrets_of("README.md", table)] == [5]
    refs = (
        "dex:\n  clientSecret: $dex.github.clientSecret\nnotifiers:\n  token: $slack-token\n"
        "registries:\n  - credentials: env:REGISTRY_SECRET\n  - credentials: secret:foo/bar#creds\n"
        "  - credentials: pullsecret:foo/bar\n  - credentials: ext:/scripts/auth1.sh\n"
    )
    assert secrets_of("values.yaml", refs) == []
    fake, real = base64.b64encode(b"test-api-key").decode(), base64.b64encode(b"Xk9vT2mQ8rLwZ3pQ7sT").decode()
    nested = (
        "extraObjects:\n  - apiVersion: v1\n    kind: Secret\n    metadata:\n      name: s\n    data:\n"
        f"      api-key: {fake}\n      token: {real}\n"
    )
    found = secrets_of("ci/values.yaml", nested)
    assert [(p.line, p.message.split(" is stored")[0]) for p in found] == [(8, "a Kubernetes Secret value")]


def test_an_optional_block_written_with_to_yaml_is_no_finding_but_a_missing_parent_is(tree, build_kb):
    """grafana/helm-charts (held out, then checked): ``{{ toYaml .Values.gateway.livenessProbe }}``
    with no ``livenessProbe`` under ``gateway`` renders null, the chart's optional-block idiom; a
    missing key *above* the one read (``.Values.alertmanager.persistence.subPath`` with no
    ``persistence``) is a nil pointer that fails ``helm template``, and a plain read of a missing
    leaf renders nothing (a typo): both stay findings."""
    files = {
        **CHART_YAML,
        "c/values.yaml": "gateway:\n  replicas: 1\nalertmanager:\n  replicas: 1\n",
        "c/templates/dep.yaml": "spec:\n"
        "  livenessProbe:\n    {{- toYaml .Values.gateway.livenessProbe | nindent 4 }}\n"
        "  subPath: {{ .Values.alertmanager.persistence.subPath }}\n"
        "  replicas: {{ .Values.gateway.replicaz }}\n"
        "  probe: {{ toYaml .Values.gatewy.livenessProbe }}\n",
    }
    found = sorted(broken_references(tree, build_kb, files))
    assert found == [
        (4, "Helm value '.Values.alertmanager.persistence.subPath' is not defined"),
        (5, "Helm value '.Values.gateway.replicaz' is not defined"),
        (6, "Helm value '.Values.gatewy.livenessProbe' is not defined"),
    ]


def test_a_value_that_values_yaml_shows_commented_out_is_documented_and_optional(tree, build_kb):
    """prometheus-kafka-exporter documents ``# secretName: <name of an existing secret>`` under
    ``sasl.kerberos``; the template reading it is no finding, nor is ``range`` over a missing list.
    A key no comment mentions still is."""
    files = {
        **CHART_YAML,
        "c/values.yaml": "sasl:\n  kerberos:\n    enabled: false\n    # secretName: <name of an existing secret>\n"
        "config:\n  level: info\n",
        "c/templates/dep.yaml": "secretName: {{ .Values.sasl.kerberos.secretName }}\n"
        "{{- range $o := .Values.config.extraOutputs }}\n{{ $o }}\n{{- end }}\n"
        "realm: {{ .Values.sasl.kerberos.realm }}\n",
    }
    found = broken_references(tree, build_kb, files)
    assert found == [(5, "Helm value '.Values.sasl.kerberos.realm' is not defined")]


def test_a_key_commented_out_above_its_siblings_is_documented(tree, build_kb):
    """prometheus-elasticsearch-exporter: ``es.ssl.ca`` shows ``# pem:`` above its one live key
    (``path``); ``.Values.es.ssl.ca.pem`` is documented. ``client`` documents no ``crt``."""
    files = {
        **CHART_YAML,
        "c/values.yaml": "es:\n  ssl:\n    enabled: false\n    ca:\n      ## PEM of the trusted CAs\n      ##\n"
        "      # pem:\n\n      # Path of the CA file\n      path: /ssl/ca.pem\n    client:\n      keyPath: /ssl/c.key\n",
        "c/templates/cert.yaml": "ca.pem: {{ .Values.es.ssl.ca.pem }}\ncrt: {{ .Values.es.ssl.client.crt }}\n",
    }
    found = broken_references(tree, build_kb, files)
    assert found == [(2, "Helm value '.Values.es.ssl.client.crt' is not defined")]


def test_a_key_commented_out_elsewhere_in_values_yaml_does_not_document_another(tree, build_kb):
    files = {
        **CHART_YAML,
        "c/values.yaml": "service:\n  type: ClusterIP\n  ## e.g.:\n  ##     port: 80\ningress:\n  enabled: false\n  # port: 80\n",
        "c/templates/svc.yaml": "port: {{ .Values.service.port }}\nother: {{ .Values.ingress.port }}\n",
    }
    found = broken_references(tree, build_kb, files)
    assert found == [(1, "Helm value '.Values.service.port' is not defined")]


def test_a_v1_chart_lists_its_subcharts_in_requirements_yaml(tree, build_kb):
    """grafana/helm-charts' loki-stack (apiVersion v1): its subcharts are in requirements.yaml, and
    ``.Values.loki.service.port`` is the loki subchart's value, not a missing one of the parent."""
    from kb.graph.rules import validate

    files = {
        "charts/stack/Chart.yaml": "apiVersion: v1\nname: stack\nversion: 2.10.3\n",
        "charts/stack/requirements.yaml": "dependencies:\n- name: loki\n  condition: loki.enabled\n"
        "- name: promtail\n  alias: tail\n",
        "charts/stack/values.yaml": "loki:\n  enabled: true\n",
        "charts/stack/templates/test-pod.yaml": "port: {{ .Values.loki.service.port }}\n"
        "tail: {{ .Values.tail.image }}\nmissing: {{ .Values.grafana.port }}\n",
    }
    cat, settings = build_kb(tree(files))
    found = sorted((f.rule, f.line, f.message.split(":")[0]) for f in validate(cat, settings))
    assert found == [("broken-reference", 3, "Helm value '.Values.grafana.port' is not defined")]


def test_a_missing_value_assigned_to_a_variable_the_template_tests_is_optional(tree, build_kb):
    """elastic/helm-charts (checked by hand): ``{{- $ingressPath := .Values.ingress.path -}}`` with no
    ``ingress.path`` in values.yaml, then ``{{- if $ingressPath }}`` before the variable is used: nil in
    the variable, tested, no finding. A variable used without a test, and a missing key above the one
    assigned (a nil pointer), stay findings."""
    files = {
        **CHART_YAML,
        "c/values.yaml": "ingress:\n  enabled: false\n  hosts: []\n",
        "c/templates/ingress.yaml": "{{- $ingressPath := .Values.ingress.path -}}\n"
        "{{- $pathtype := .Values.ingress.pathtype -}}\n"
        "{{- $class := .Values.gateway.className -}}\n"
        "paths:\n{{- if $ingressPath }}\n  - path: {{ $ingressPath }}\n{{- end }}\n"
        "  type: {{ $pathtype }}\n{{- if $class }}\nclass: {{ $class }}\n{{- end }}\n"
        "{{- $tls := .Values.ingress.tls -}}\n{{- if $tls.enabled }}\ntls: true\n{{- end }}\n",
    }
    found = sorted(broken_references(tree, build_kb, files))
    assert found == [
        (2, "Helm value '.Values.ingress.pathtype' is not defined"),
        (3, "Helm value '.Values.gateway.className' is not defined"),
        (12, "Helm value '.Values.ingress.tls' is not defined"),  # `if $tls.enabled` reads a field: no test
    ]
