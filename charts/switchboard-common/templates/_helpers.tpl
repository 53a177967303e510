{{/*
switchboard-common: the templates every Switchboard service chart is made of. A service chart's
templates/all.yaml is one line, {{ include "sb.all" . }}, and its values.yaml says what differs:
the service's name and ports, its config (the rows of `sb-<name> --config-reference`), which
variables come from a Secret, the services it calls and that call it, its autoscaling signal.
*/}}

{{/* sb.name: the name of every object of the service, "sb-<service>". */}}
{{- define "sb.name" -}}
{{- printf "sb-%s" .Values.service.name -}}
{{- end -}}

{{- define "sb.labels" -}}
app.kubernetes.io/name: {{ include "sb.name" . }}
app.kubernetes.io/component: {{ .Values.service.name }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sb.selector" -}}
app.kubernetes.io/name: {{ include "sb.name" . }}
app.kubernetes.io/part-of: switchboard
{{- end -}}

{{/* sb.meshRpcPort: the loopback port the service's RPC server binds when the sidecar owns the pod port. */}}
{{- define "sb.meshRpcPort" -}}
{{- add .Values.service.ports.rpc .Values.mesh.inboundPortOffset -}}
{{- end -}}

{{/* sb.upstreamUrl: the nng URL of upstream (dict "ctx" . "name" n "port" p). */}}
{{- define "sb.upstreamUrl" -}}
{{- $v := .ctx.Values -}}
{{- if $v.mesh.enabled -}}
{{- printf "tcp://127.0.0.1:%d" (add .port $v.mesh.outboundPortOffset | int) -}}
{{- else -}}
{{- printf "tcp://sb-%s:%d" .name (.port | int) -}}
{{- end -}}
{{- end -}}

{{/*
sb.computedEnv: the variables the chart sets itself, from the ports and upstreams, as YAML
key: "value" lines. Everything else comes from .Values.config (ConfigMap) or .Values.secretEnv
(Secret); values.schema.json keeps the three sets apart.
*/}}
{{- define "sb.computedEnv" -}}
{{- $v := .Values -}}
SB_OPS_ADDR: "0.0.0.0"
SB_OPS_PORT: {{ $v.service.ports.ops | int | quote }}
{{- if $v.mesh.enabled }}
SB_RPC_URL: {{ printf "tcp://127.0.0.1:%s" (include "sb.meshRpcPort" .) | quote }}
{{- else }}
SB_RPC_URL: {{ printf "tcp://0.0.0.0:%d" ($v.service.ports.rpc | int) | quote }}
{{- end }}
{{- with $v.service.edge }}
{{ .addrEnv }}: "0.0.0.0"
{{ .portEnv }}: {{ .port | int | quote }}
{{- end }}
{{- range $name, $port := $v.upstreams }}
{{ printf "SB_%s_RPC_URL" (upper $name) }}: {{ include "sb.upstreamUrl" (dict "ctx" $ "name" $name "port" $port) | quote }}
{{- end }}
{{- end -}}

{{/* sb.secretName: the Secret the secretEnv variables are read from. */}}
{{- define "sb.secretName" -}}
{{- if .Values.secret.create -}}
{{- printf "%s-env" (include "sb.name" .) -}}
{{- else -}}
{{- $name := required (printf "secret.existingSecret: name the Secret that holds %s (or secret.create=true with secret.data, for dev only)" (join ", " .Values.secretEnv)) .Values.secret.existingSecret -}}
{{- tpl $name . -}}
{{- end -}}
{{- end -}}

{{/*
sb.all: every object of the service. The chart's values are laid over sb.defaults first, and
the templates see the merged values as .Values.
*/}}
{{- define "sb.all" -}}
{{- $v := mergeOverwrite (include "sb.defaults" . | fromYaml) (deepCopy .Values) -}}
{{- $ctx := dict "Values" $v "Release" .Release "Chart" .Chart -}}
{{ include "sb.serviceaccount" $ctx }}
{{ include "sb.configmap" $ctx }}
{{ include "sb.secret" $ctx }}
{{ include "sb.deployment" $ctx }}
{{ include "sb.service" $ctx }}
{{ include "sb.pdb" $ctx }}
{{ include "sb.networkpolicy" $ctx }}
{{ include "sb.servicemonitor" $ctx }}
{{ include "sb.prometheusrule" $ctx }}
{{ include "sb.hpa" $ctx }}
{{ include "sb.vpa" $ctx }}
{{ include "sb.ingress" $ctx }}
{{- end -}}
