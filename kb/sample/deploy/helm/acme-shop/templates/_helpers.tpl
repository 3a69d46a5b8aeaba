{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "acme-shop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "acme-shop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: {{ include "acme-shop.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
acme-shop.example/environment: {{ .Values.environment }}
{{- end -}}

{{/* Image reference for one service: repository/name:tag */}}
{{- define "acme-shop.image" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{ $root.Values.image.repository }}/{{ $name }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- end -}}
