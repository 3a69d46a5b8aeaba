{{- define "app.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 -}}
{{- end }}

{{- define "app.fullname" -}}
{{- .Values.fullnameOverride | default (include "app.name" .) -}}
{{- end }}
