{{- define "sb.serviceaccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{- define "sb.configmap" -}}
{{- $computed := include "sb.computedEnv" . | fromYaml -}}
{{- range $k, $_ := .Values.config }}
{{- if hasKey $computed $k }}
{{- fail (printf "config.%s: set by the chart from service.ports/upstreams, not in config" $k) }}
{{- end }}
{{- if has $k $.Values.secretEnv }}
{{- fail (printf "config.%s: listed in secretEnv, so it comes from the Secret, not the ConfigMap" $k) }}
{{- end }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "sb.name" . }}-config
  labels:
    {{- include "sb.labels" . | nindent 4 }}
data:
  {{- include "sb.computedEnv" . | nindent 2 }}
  {{- range $k, $val := .Values.config }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end -}}

{{- define "sb.secret" -}}
{{- if and .Values.secret.create .Values.secretEnv }}
{{- range .Values.secretEnv }}
{{- if not (hasKey $.Values.secret.data .) }}
{{- fail (printf "secret.data.%s: required when secret.create is true" .) }}
{{- end }}
{{- end }}
---
# DEVELOPMENT ONLY: a Secret made from values. Staging and production name an existing Secret
# (secret.existingSecret) managed outside the chart (sealed-secrets, external-secrets, Vault).
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "sb.secretName" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
type: Opaque
stringData:
  {{- range .Values.secretEnv }}
  {{ . }}: {{ index $.Values.secret.data . | quote }}
  {{- end }}
{{- end }}
{{- end -}}
