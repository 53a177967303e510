{{- define "sb.servicemonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "sb.selector" . | nindent 6 }}
  endpoints:
    - port: ops
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
    {{- if .Values.mesh.enabled }}
    # The sidecar's TCP and per-method RPC metrics and its certificate-expiry gauge.
    - port: mesh-ops
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
sb.prometheusrule: the Kubernetes alerts every service has (fewer pods ready than wanted,
restarting) and the service's own from .Values.alerts (rules in Prometheus's format, checked by
promtool in make deploy-check). The platform's alerts (a service down, 5xx ratio, lags, DLQs,
pools, certificates) are k8s/observability/rules, deployed once by k8s/base.
*/}}
{{- define "sb.prometheusrule" -}}
{{- if .Values.prometheusRule.enabled }}
{{- $job := include "sb.name" . }}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ $job }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  groups:
    - name: {{ $job }}
      rules:
        - alert: SwitchboardServiceNotReady
          expr: {{ printf "kube_deployment_status_replicas_available{deployment=%q} < kube_deployment_spec_replicas{deployment=%q}" $job $job | quote }}
          for: 10m
          labels:
            severity: warning
          annotations:
            summary: {{ printf "%s: fewer pods ready than wanted for 10 minutes" $job | quote }}
        - alert: SwitchboardServiceRestarting
          expr: {{ printf "increase(kube_pod_container_status_restarts_total{container=%q}[15m]) > 3" .Values.service.name | quote }}
          labels:
            severity: warning
          annotations:
            summary: {{ printf "%s: container restarting" $job | quote }}
        {{- with .Values.alerts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end }}
{{- end -}}
