{{/*
sb.hpa: CPU at 70 % of the request (the seed's signal) and, where it says more about load than
CPU does, a per-pod custom metric served by prometheus-adapter (k8s/base/prometheus-adapter):
requests per second at the gateway, open WebSockets at realtime, consumer lag at the notifier,
relay lag at the outbox. Scale-down waits 300 s so a dip does not drop pods that are needed
again a minute later.
*/}}
{{- define "sb.hpa" -}}
{{- $a := .Values.autoscaling -}}
{{- if $a.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "sb.name" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.cpuUtilization }}
    {{- with $a.customMetric }}
    - type: Pods
      pods:
        metric:
          name: {{ .name }}
        target:
          type: AverageValue
          averageValue: {{ .averageValue | quote }}
    {{- end }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: {{ $a.scaleDownStabilizationSeconds }}
      policies:
        - type: Pods
          value: 1
          periodSeconds: 60
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 30
{{- end }}
{{- end -}}

{{/* sb.vpa: recommendations only (updateMode Off): the HPA owns the replica count and CPU. */}}
{{- define "sb.vpa" -}}
{{- if .Values.vpa.enabled }}
---
apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "sb.name" . }}
  updatePolicy:
    updateMode: "Off"
  resourcePolicy:
    containerPolicies:
      - containerName: {{ .Values.service.name }}
        controlledResources: ["cpu", "memory"]
{{- end }}
{{- end -}}

{{/*
sb.ingress: this service's share of the public routes, the same as tools/nginx.conf.in (/ws to
realtime, /files and /v1/files to files, the rest to the gateway); every edge chart adds its own
paths to the one host. ingress-nginx annotations carry the timeouts nginx.conf.in sets.
*/}}
{{- define "sb.ingress" -}}
{{- $i := .Values.ingress -}}
{{- if and $i.enabled .Values.service.edge }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
  {{- with $i.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  ingressClassName: {{ $i.className }}
  {{- if $i.tlsSecret }}
  tls:
    - hosts: [{{ required "ingress.host: the public host name" $i.host | quote }}]
      secretName: {{ $i.tlsSecret }}
  {{- end }}
  rules:
    - host: {{ required "ingress.host: the public host name" $i.host | quote }}
      http:
        paths:
          {{- range $i.paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ include "sb.name" $ }}
                port:
                  name: http
          {{- end }}
{{- end }}
{{- end -}}
