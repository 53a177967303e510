{{- define "sb.service" -}}
{{- $v := .Values -}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "sb.selector" . | nindent 4 }}
  ports:
    - name: rpc
      port: {{ $v.service.ports.rpc }}
      targetPort: rpc
      appProtocol: tcp
    - name: ops
      port: {{ $v.service.ports.ops }}
      targetPort: ops
      appProtocol: http
    {{- with $v.service.edge }}
    - name: http
      port: {{ .port }}
      targetPort: http
      appProtocol: http
    {{- end }}
    {{- if $v.mesh.enabled }}
    - name: mesh-ops
      port: {{ $v.mesh.opsPort }}
      targetPort: mesh-ops
      appProtocol: http
    {{- end }}
{{- end -}}

{{- define "sb.pdb" -}}
{{- if .Values.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  {{- if hasKey .Values.pdb "maxUnavailable" }}
  maxUnavailable: {{ .Values.pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ .Values.pdb.minAvailable }}
  {{- end }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "sb.selector" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
sb.networkpolicy: this service's allow-lists. The namespace's default-deny policy lives in
k8s/base (namespace.yaml); here: in, the callers named in .Values.callers on the RPC port (the
same names the mesh sidecar allows), Prometheus on the ops port, the ingress controller on the
edge port; out, DNS, the upstreams' RPC ports, and the data stores the service uses.
*/}}
{{- define "sb.networkpolicy" -}}
{{- $v := .Values -}}
{{- if $v.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "sb.name" . }}
  labels:
    {{- include "sb.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "sb.selector" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  ingress:
    {{- if $v.callers }}
    - from:
        {{- range $v.callers }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ printf "sb-%s" . }}
        {{- end }}
      ports:
        - port: rpc
          protocol: TCP
    {{- end }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $v.networkPolicy.monitoringNamespace }}
      ports:
        - port: ops
          protocol: TCP
        {{- if $v.mesh.enabled }}
        - port: mesh-ops
          protocol: TCP
        {{- end }}
    {{- if $v.service.edge }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $v.networkPolicy.ingressNamespace }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range $name, $port := $v.upstreams }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ printf "sb-%s" $name }}
      ports:
        - port: {{ $port }}
          protocol: TCP
    {{- end }}
    {{- range $store := $v.networkPolicy.stores }}
    {{- with (index $v.networkPolicy.storeSelectors $store) }}
    - to:
        - podSelector:
            matchLabels:
              {{- toYaml .labels | nindent 14 }}
      ports:
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    {{- else }}
    {{- fail (printf "networkPolicy.stores: %q has no entry in networkPolicy.storeSelectors" $store) }}
    {{- end }}
    {{- end }}
    {{- if $v.networkPolicy.otlpCollector }}
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $v.networkPolicy.monitoringNamespace }}
      ports:
        - port: 4318
          protocol: TCP
    {{- end }}
    {{- with $v.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}
